//! Adapters and segmentation for the page.
//!
//! [`SamModel::segment`] runs the model once and keeps the per-pixel defect
//! probabilities; [`Segmented::view`] thresholds them again for every position of the
//! page's slider without touching the GPU.

use burn::tensor::Tensor;
use image::{ImageFormat, Rgba, RgbaImage};
use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::model::SamModel;
use super::{js_error, png};
use crate::image_input;
use crate::pros::adapter::{AdapterConfig, Adapters};
use crate::pros::adapter_file::{self, AdapterMetadata};
use crate::pros::model::ProsModel;
use crate::pros::predict::{input_tensor, mask_image, resize_logits};
use crate::pros::segment::{SegmentConfig, Segmentation, sigmoid};
use crate::pros::train::LossHistory;

/// Adapters with what they were trained on.
#[wasm_bindgen]
pub struct AdapterSet {
    pub(crate) adapters: Adapters,
    pub(crate) metadata: AdapterMetadata,
}

#[wasm_bindgen]
impl AdapterSet {
    /// Read an adapter file made for `model` (by the page or by `pros train`). Adapters
    /// trained on other SAM weights or another input size are refused with the reason.
    pub fn from_file(model: &SamModel, bytes: &[u8]) -> Result<AdapterSet, JsError> {
        let (adapters, metadata) =
            adapter_file::from_bytes(bytes, &model.config, &model.sha256, None, &model.device)
                .map_err(js_error)?;
        Ok(AdapterSet { adapters, metadata })
    }

    /// One untrained adapter (its up-projection is zero, so the model is plain SAM,
    /// decoded without prompts): what segmentation gives before any training.
    pub fn untrained(model: &SamModel) -> Result<AdapterSet, JsError> {
        let config = &model.config;
        let adapter_config = AdapterConfig::last_k(1, config.encoder_depth).map_err(js_error)?;
        let adapters = Adapters::new(
            &adapter_config,
            config.encoder_embed_dim,
            config.prompt_embed_dim,
            config.decoder_depth,
            0,
            &model.device,
        );
        Ok(AdapterSet {
            adapters,
            metadata: AdapterMetadata {
                sam_config: config.clone(),
                k: 1,
                adapter_config,
                sam_sha256: model.sha256.clone(),
                seed: 0,
                epochs: 0,
                loss_history: LossHistory::default(),
            },
        })
    }

    /// The file's metadata: `{ sam_config, k, adapter_config, sam_sha256, seed, epochs,
    /// loss_history }`.
    pub fn info(&self) -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&self.metadata).map_err(js_error)
    }

    /// The adapter file's bytes (safetensors with metadata).
    pub fn file(&self) -> Promise {
        let adapters = self.adapters.clone();
        let metadata = self.metadata.clone();
        future_to_promise(async move {
            let bytes = adapter_file::to_bytes_async(&adapters, &metadata)
                .await
                .map_err(js_error)?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        })
    }
}

/// The defect probabilities of one image at its own size.
#[wasm_bindgen]
pub struct Segmented {
    probabilities: Vec<f32>,
    width: u32,
    height: u32,
    encoder_ms: f64,
    total_ms: f64,
}

/// One thresholding of a [`Segmented`] image.
#[wasm_bindgen(getter_with_clone)]
pub struct SegmentView {
    /// The mask (white = defect), PNG, for download.
    pub mask_png: Vec<u8>,
    /// The mask as a red layer with transparency elsewhere, PNG, to lay over the image.
    pub layer_png: Vec<u8>,
    /// The defects (`[{ bbox: { x0, y0, x1, y1 }, area, mean_score }]`), JSON.
    pub defects_json: String,
}

#[wasm_bindgen]
impl Segmented {
    /// Width of the image in pixels.
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height of the image in pixels.
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Milliseconds the image encoder took (adapters included), until its output was read.
    #[wasm_bindgen(getter)]
    pub fn encoder_ms(&self) -> f64 {
        self.encoder_ms
    }

    /// Milliseconds from the upload of the input to the probabilities in memory.
    #[wasm_bindgen(getter)]
    pub fn total_ms(&self) -> f64 {
        self.total_ms
    }

    /// Threshold the probabilities (a pixel is defect at `threshold` or above) and drop
    /// regions smaller than `min_area` pixels.
    pub fn view(&self, threshold: f32, min_area: u32) -> Result<SegmentView, JsError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(js_error(format!(
                "the threshold {threshold} is not between 0 and 1"
            )));
        }
        let config = SegmentConfig {
            threshold,
            min_area: min_area.max(1) as usize,
        };
        let segmentation =
            Segmentation::from_probabilities(&self.probabilities, self.width, self.height, &config)
                .map_err(js_error)?;
        let layer = RgbaImage::from_fn(self.width, self.height, |x, y| {
            if segmentation.mask[(y * self.width + x) as usize] {
                Rgba([255, 32, 32, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        let mask = mask_image(&segmentation);
        Ok(SegmentView {
            mask_png: png(|out| mask.write_to(out, ImageFormat::Png)),
            layer_png: png(|out| layer.write_to(out, ImageFormat::Png)),
            defects_json: serde_json::to_string(&segmentation.defects).map_err(js_error)?,
        })
    }
}

/// Milliseconds from the page's clock.
fn now_ms() -> f64 {
    let performance = Reflect::get(&js_sys::global(), &"performance".into()).ok();
    performance
        .and_then(|p| {
            let now: js_sys::Function = Reflect::get(&p, &"now".into()).ok()?.dyn_into().ok()?;
            now.call0(&p).ok()?.as_f64()
        })
        .unwrap_or_else(js_sys::Date::now)
}

#[wasm_bindgen]
impl SamModel {
    /// Segment an image (PNG or JPEG bytes) with `adapters`; resolves to a [`Segmented`].
    pub fn segment(&self, adapters: &AdapterSet, image: &[u8]) -> Result<Promise, JsError> {
        let meta = &adapters.metadata;
        if meta.sam_config != self.config || meta.sam_sha256 != self.sha256 {
            return Err(js_error(
                "these adapters were trained on other SAM weights or another input size; \
                 train again or load their adapter file with the matching weights",
            ));
        }
        let image = image_input::decode(image).map_err(js_error)?;
        let model =
            ProsModel::new(self.sam.clone(), meta.adapter_config.clone()).map_err(js_error)?;
        let adapters = adapters.adapters.clone();
        let device = self.device.clone();
        Ok(future_to_promise(async move {
            let started = now_ms();
            let x = input_tensor(&image, model.image_size(), &device).map_err(js_error)?;
            let embeddings = model.encode_from_prefix(model.prefix(x), &adapters);
            // Reading one value waits for the encoder to finish.
            let probe: Tensor<4> = embeddings.clone().slice([0..1, 0..1, 0..1, 0..1]);
            probe
                .into_data_async()
                .await
                .map_err(|e| js_error(format!("reading the image embedding failed: {e:?}")))?;
            let encoded = now_ms();
            let logits = model.decode_to_input_size(embeddings, &adapters);
            let logits = resize_logits(logits, image.width(), image.height());
            let values = logits
                .into_data_async()
                .await
                .map_err(|e| js_error(format!("reading the mask failed: {e:?}")))?
                .try_to_vec::<f32>()
                .map_err(|e| js_error(format!("reading the mask failed: {e:?}")))?;
            let probabilities = values.into_iter().map(sigmoid).collect();
            Ok(Segmented {
                probabilities,
                width: image.width(),
                height: image.height(),
                encoder_ms: encoded - started,
                total_ms: now_ms() - started,
            }
            .into())
        }))
    }
}
