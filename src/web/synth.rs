//! Normal images and synthetic pairs for the page.

use image::{ImageFormat, RgbImage};
use wasm_bindgen::prelude::*;

use super::{js_error, png};
use crate::image_input;
use crate::pros::pairs::training_pair;
use crate::synth::{self, SynthConfig};

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
    /// fields take their defaults) and `seed`. With `size`, the normal image is first
    /// resized to `size` x `size` (the model's input, as training pairs are made).
    pub fn pair(
        &self,
        index: u32,
        config: JsValue,
        seed: u64,
        size: Option<u32>,
    ) -> Result<PairView, JsError> {
        let normal = self
            .normals
            .get(index as usize)
            .ok_or_else(|| js_error(format!("there is no normal image number {index}")))?;
        let config: SynthConfig = if config.is_undefined() || config.is_null() {
            SynthConfig::default()
        } else {
            serde_wasm_bindgen::from_value(config).map_err(js_error)?
        };
        let pair = match size {
            Some(size) => training_pair(normal, size, &config, seed).map_err(js_error)?,
            None => synth::synthesize(normal, &config, seed).map_err(js_error)?,
        };
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
