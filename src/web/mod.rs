//! The page's facade (wasm only): thin bindings from JavaScript to the library.
//!
//! Each call does one short piece of work (decode one image, make one pair, one training
//! step) so its caller can yield between calls; nothing here blocks or reads the GPU
//! synchronously. The page runs the model, training and segmentation in a Web Worker
//! (`www/js/worker.js`, its own instance of this module), so even a step's kernel
//! compilation keeps off the page's thread; the synthesizer runs on the page.
//!
//! - [`synth`]: normal images and synthetic pairs;
//! - [`model`]: the compute device and SAM loaded from a weights file;
//! - [`training`]: a training run, one step per call;
//! - [`segmentation`]: adapters, segmenting an image, thresholding its scores.

use std::io::Cursor;

use wasm_bindgen::prelude::*;

pub mod model;
pub mod segmentation;
pub mod synth;
pub mod training;

unsafe extern "C" {
    /// Runs the static constructors (crates registering themselves with `inventory`);
    /// synthesized by wasm-ld.
    fn __wasm_call_ctors();
}

/// Run the static constructors (crates that register themselves with `inventory`, such as
/// the GPU backend's kernel compiler), once; [`start`] calls it. Tests in the browser whose
/// harness does not run the start function call it themselves.
///
/// Calling `__wasm_call_ctors` explicitly matters for speed too: without such a call,
/// wasm-ld wraps *every* export so that it runs all constructors again on each call, and
/// the GPU backend calls into the module thousands of times per training step (a profile
/// showed most of a step's main-thread time in those constructors).
pub fn run_static_constructors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: wasm-ld synthesizes this function; the Once runs it a single time.
    ONCE.call_once(|| unsafe { __wasm_call_ctors() });
}

/// Runs the static constructors, installs the panic hook and the console logger; runs when
/// the module loads.
#[wasm_bindgen(start)]
pub fn start() {
    run_static_constructors();
    // A second call (tests load the module more than once) only fails to set the logger again.
    let _ = console_log::init_with_level(log::Level::Info);
}

pub(crate) fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

pub(crate) fn png(encode: impl FnOnce(&mut Cursor<Vec<u8>>) -> image::ImageResult<()>) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    // Encoding an in-memory image to PNG into a Vec cannot fail.
    encode(&mut out).expect("PNG encoding to memory");
    out.into_inner()
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

/// Bytes of WebAssembly memory this module holds (it grows and never shrinks, so a value
/// that keeps rising from one kiosk loop to the next is a leak).
#[wasm_bindgen]
pub fn wasm_memory_bytes() -> f64 {
    (core::arch::wasm32::memory_size(0) * 65536) as f64
}
