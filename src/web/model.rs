//! The compute device and SAM, loaded from the bytes of a weights file.

use std::cell::RefCell;

use burn::tensor::Device;
use js_sys::Uint8Array;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::js_error;
use crate::pros::adapter_file::sha256_hex;
use crate::sam::{Sam, SamConfig};

thread_local! {
    /// WebGPU can be set up once per page; every later load reuses its device.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// The WebGPU device, set up on the first call.
async fn webgpu() -> Result<Device, JsError> {
    if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options().init_async().await.map_err(|e| {
        js_error(format!(
            "WebGPU could not start ({e}); reload the page with ?cpu to use the CPU instead"
        ))
    })?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// The device for `backend`: `"webgpu"` or `"cpu"`.
pub(crate) async fn device_for(backend: &str) -> Result<Device, JsError> {
    match backend {
        "webgpu" => webgpu().await,
        "cpu" => Ok(Device::flex()),
        other => Err(js_error(format!(
            "unknown backend `{other}`; use \"webgpu\" or \"cpu\""
        ))),
    }
}

/// Why a file whose first bytes (64 are enough) are `first_bytes` cannot be SAM weights,
/// or `undefined` when its format is one [`SamModel::load`] reads: the page checks this
/// before copying a whole, possibly huge, file into memory.
#[wasm_bindgen]
pub fn weights_header_problem(first_bytes: &[u8]) -> Option<String> {
    crate::weights::format_of(first_bytes)
        .err()
        .map(|e| e.to_string())
}

/// SAM loaded on a device, with what identifies its weights.
#[wasm_bindgen]
pub struct SamModel {
    pub(crate) sam: Sam,
    pub(crate) config: SamConfig,
    pub(crate) sha256: String,
    pub(crate) device: Device,
    backend: String,
}

/// What the page shows about a loaded model.
#[derive(Serialize)]
struct ModelInfo<'a> {
    name: &'a str,
    image_size: usize,
    encoder_width: usize,
    encoder_depth: usize,
    sha256: &'a str,
    backend: &'a str,
}

#[wasm_bindgen]
impl SamModel {
    /// Load SAM from the bytes of a weights file (the official `.pth` or a safetensors
    /// file, f32 or f16), at `image_size` input (256 in the paper), on `backend`
    /// (`"webgpu"` or `"cpu"`). The model size is told from the file.
    ///
    // Limitation: parsing and uploading the weights is one synchronous piece of work
    // (about a second for ViT-B); the page shows a "loading" state meanwhile.
    pub async fn load(
        bytes: Uint8Array,
        image_size: u32,
        backend: String,
    ) -> Result<SamModel, JsError> {
        if !(32..=1024).contains(&image_size) || !image_size.is_multiple_of(16) {
            return Err(js_error(format!(
                "the input size {image_size} is not a multiple of 16 from 32 to 1024; the paper uses 256"
            )));
        }
        let device = device_for(&backend).await?;
        let bytes = bytes.to_vec();
        let sha256 = sha256_hex(&bytes);
        let (sam, config) =
            Sam::from_bytes_detected(&bytes, image_size as usize, &device).map_err(js_error)?;
        drop(bytes);
        log::info!(
            "SAM {} loaded on {backend} at {image_size} px (weights {})",
            config.name,
            &sha256[..12]
        );
        Ok(SamModel {
            sam,
            config,
            sha256,
            device,
            backend,
        })
    }

    /// `{ name, image_size, encoder_width, encoder_depth, sha256, backend }`.
    pub fn info(&self) -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&ModelInfo {
            name: &self.config.name,
            image_size: self.config.image_size,
            encoder_width: self.config.encoder_embed_dim,
            encoder_depth: self.config.encoder_depth,
            sha256: &self.sha256,
            backend: &self.backend,
        })
        .map_err(js_error)
    }

    /// Side of the square input in pixels.
    pub fn image_size(&self) -> u32 {
        self.config.image_size as u32
    }
}
