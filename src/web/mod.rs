//! The page's facade (wasm only): thin bindings from JavaScript to the library.
//!
//! Each call does one short piece of work (decode one image, make one pair) so the page can
//! yield to the browser between calls; nothing here blocks or reads the GPU synchronously.

use std::io::Cursor;

use image::{ImageFormat, RgbImage};
use wasm_bindgen::prelude::*;

use crate::image_input;
use crate::synth::{self, SynthConfig};

/// Installs the panic hook and the console logger; runs when the module loads.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    // A second call (tests load the module more than once) only fails to set the logger again.
    let _ = console_log::init_with_level(log::Level::Info);
}

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn png(encode: impl FnOnce(&mut Cursor<Vec<u8>>) -> image::ImageResult<()>) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    // Encoding an in-memory image to PNG into a Vec cannot fail.
    encode(&mut out).expect("PNG encoding to memory");
    out.into_inner()
}

/// The normal images the visitor brought or picked, decoded once.
#[wasm_bindgen]
#[derive(Default)]
pub struct Synthesizer {
    normals: Vec<RgbImage>,
}

/// One synthetic pair as the page shows it: PNG bytes and the defect list as JSON.
#[wasm_bindgen(getter_with_clone)]
pub struct PairView {
    /// The defect image, PNG.
    pub image_png: Vec<u8>,
    /// The mask (white = defect), PNG.
    pub mask_png: Vec<u8>,
    /// The defect image with the mask tinted red, PNG.
    pub overlay_png: Vec<u8>,
    /// The defect records, JSON.
    pub defects_json: String,
    /// SHA-256 of the defect image and mask bytes.
    pub fingerprint: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

#[wasm_bindgen]
impl Synthesizer {
    /// An empty set of normal images.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode a PNG or JPEG and keep it as a normal image; returns its index. Images larger
    /// than `max_side` are downscaled to fit (0 keeps them as they are).
    pub fn add_image(&mut self, bytes: &[u8], max_side: u32) -> Result<u32, JsError> {
        let image = image_input::decode(bytes).map_err(js_error)?;
        let image = image_input::fit_within(image, max_side);
        log::info!("normal image {}x{} added", image.width(), image.height());
        self.normals.push(image);
        Ok(self.normals.len() as u32 - 1)
    }

    /// How many normal images are kept.
    pub fn len(&self) -> u32 {
        self.normals.len() as u32
    }

    /// Whether no normal image is kept.
    pub fn is_empty(&self) -> bool {
        self.normals.is_empty()
    }

    /// Forget all normal images.
    pub fn clear(&mut self) {
        self.normals.clear();
    }

    /// The default synthesizer settings, as a JavaScript object.
    pub fn default_config() -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&SynthConfig::default()).map_err(js_error)
    }

    /// Make one pair from normal image `index` with `config` (a settings object, missing
    /// fields take their defaults) and `seed`.
    pub fn pair(&self, index: u32, config: JsValue, seed: u64) -> Result<PairView, JsError> {
        let normal = self
            .normals
            .get(index as usize)
            .ok_or_else(|| js_error(format!("there is no normal image number {index}")))?;
        let config: SynthConfig = if config.is_undefined() || config.is_null() {
            SynthConfig::default()
        } else {
            serde_wasm_bindgen::from_value(config).map_err(js_error)?
        };
        let pair = synth::synthesize(normal, &config, seed).map_err(js_error)?;
        let overlay = synth::overlay(&pair.image, &pair.mask);
        Ok(PairView {
            image_png: png(|out| pair.image.write_to(out, ImageFormat::Png)),
            mask_png: png(|out| pair.mask.write_to(out, ImageFormat::Png)),
            overlay_png: png(|out| overlay.write_to(out, ImageFormat::Png)),
            defects_json: serde_json::to_string(&pair.defects).map_err(js_error)?,
            fingerprint: pair.fingerprint(),
            width: pair.image.width(),
            height: pair.image.height(),
        })
    }
}

/// What the browser offers for GPU work: `{ webgpu: bool, adapter: string | null, reason }`.
#[wasm_bindgen]
pub async fn gpu_info() -> Result<JsValue, JsError> {
    use js_sys::{Object, Reflect};

    let result = Object::new();
    let set = |k: &str, v: JsValue| Reflect::set(&result, &k.into(), &v).map(|_| ());
    let global = js_sys::global();
    let navigator = Reflect::get(&global, &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    let gpu = Reflect::get(&navigator, &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() {
        set("webgpu", false.into()).ok();
        set("adapter", JsValue::NULL).ok();
        set(
            "reason",
            "this browser does not expose WebGPU (navigator.gpu is missing)".into(),
        )
        .ok();
        return Ok(result.into());
    }
    let request: js_sys::Function = Reflect::get(&gpu, &"requestAdapter".into())
        .map_err(|_| js_error("navigator.gpu has no requestAdapter"))?
        .into();
    let promise: js_sys::Promise = request
        .call0(&gpu)
        .map_err(|_| js_error("requestAdapter failed"))?
        .into();
    let adapter = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .unwrap_or(JsValue::NULL);
    if adapter.is_null() || adapter.is_undefined() {
        set("webgpu", false.into()).ok();
        set("adapter", JsValue::NULL).ok();
        set(
            "reason",
            "WebGPU is exposed but no adapter was granted (blocked or no usable GPU)".into(),
        )
        .ok();
        return Ok(result.into());
    }
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let field = |k: &str| {
        Reflect::get(&info, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    let name = [field("vendor"), field("architecture"), field("description")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" / ");
    set("webgpu", true.into()).ok();
    set(
        "adapter",
        if name.is_empty() {
            "unnamed adapter".into()
        } else {
            name.into()
        },
    )
    .ok();
    set("reason", JsValue::NULL).ok();
    Ok(result.into())
}
