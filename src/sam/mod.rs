//! Segment Anything (SAM) in burn, equal to the reference implementation
//! (`segment-anything` 1.0) to float precision.
//!
//! One file per part of the reference, so the two can be read side by side:
//!
//! - [`image_encoder`]: the ViT that turns a 1024x1024 (or any multiple of 16) input into
//!   a `[256, 64, 64]` image embedding; it can be run block by block for adapters;
//! - [`prompt_encoder`]: points, boxes and masks (or no prompt) to embeddings;
//! - [`transformer`] and [`mask_decoder`]: prompts and image embedding to low-res mask
//!   logits and IoU predictions;
//! - [`common`]: LayerNorm2d and the MLP block;
//! - [`config`]: ViT-B, ViT-L, ViT-H and tiny test models, at any input size;
//! - [`load`]: official checkpoint keys to modules, resampling position tables
//!   ([`resample`]) when the input size differs from the one trained at;
//! - [`preprocess`]: resize, normalise and pad images; upscale and threshold masks.
//!
//! Everything in a forward pass is a tensor op, so the model runs on `Device::flex()`
//! (CPU, also in wasm), on wgpu natively and on WebGPU in the browser.

pub mod common;
pub mod config;
pub mod image_encoder;
pub mod load;
pub mod mask_decoder;
pub mod preprocess;
pub mod prompt_encoder;
pub mod resample;
pub mod transformer;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

pub use config::SamConfig;
pub use image_encoder::ImageEncoderViT;
pub use mask_decoder::MaskDecoder;
pub use prompt_encoder::{PointPrompts, PromptEncoder};

use crate::weights::WeightsError;

/// SAM's pixel mean (RGB, 0-255 scale); not stored in the checkpoint.
pub const PIXEL_MEAN: [f32; 3] = [123.675, 116.28, 103.53];

/// SAM's pixel standard deviation (RGB, 0-255 scale); not stored in the checkpoint.
pub const PIXEL_STD: [f32; 3] = [58.395, 57.12, 57.375];

/// Mask logits above this are inside the mask.
pub const MASK_THRESHOLD: f32 = 0.0;

/// What went wrong building or loading SAM; every message says what differs.
#[derive(Debug, thiserror::Error)]
pub enum SamError {
    /// The configuration does not describe a valid model.
    #[error("invalid SAM configuration: {0}")]
    Config(String),
    /// A tensor of the weights file has another shape than the model expects.
    #[error("tensor `{name}` has shape {found:?}; SAM {model} expects {expected:?}{hint}")]
    Shape {
        /// Checkpoint key.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the model expects.
        expected: Vec<usize>,
        /// Name of the configured model.
        model: String,
        /// What the file looks like instead (may be empty).
        hint: String,
    },
    /// The file has another number of image encoder blocks than the model.
    #[error("the weights file has {found} image encoder blocks; SAM {model} has {expected}{hint}")]
    Depth {
        /// Blocks in the file.
        found: usize,
        /// Blocks in the model.
        expected: usize,
        /// Name of the configured model.
        model: String,
        /// What the file looks like instead (may be empty).
        hint: String,
    },
    /// The file's image encoder is none of the sizes this program knows.
    #[error(
        "the weights file's image encoder is {width} wide and {depth} blocks deep, which is \
         not SAM ViT-B, ViT-L or ViT-H; use an official SAM checkpoint or one converted from it"
    )]
    UnknownModel {
        /// Width of the patch embedding (0 when the file has none).
        width: usize,
        /// Image encoder blocks in the file.
        depth: usize,
    },
    /// Reading the weights failed.
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

/// SAM: image encoder, prompt encoder and mask decoder.
#[derive(Module, Debug)]
pub struct Sam {
    /// The image encoder.
    pub image_encoder: ImageEncoderViT,
    /// The prompt encoder.
    pub prompt_encoder: PromptEncoder,
    /// The mask decoder.
    pub mask_decoder: MaskDecoder,
}

impl Sam {
    /// A model with random weights (for benchmarks and tests); see [`load`] for weights.
    pub fn new(config: &SamConfig, device: &Device) -> Result<Self, SamError> {
        config.validate()?;
        Ok(Self {
            image_encoder: ImageEncoderViT::new(config, device),
            prompt_encoder: PromptEncoder::new(config, device),
            mask_decoder: MaskDecoder::new(config, device),
        })
    }

    /// Side of the square input, in pixels.
    pub fn image_size(&self) -> usize {
        self.image_encoder.image_size
    }

    /// Predict masks for a batch of images and one set of prompts per call: the image
    /// embedding, then the prompt encoder and the mask decoder.
    ///
    /// Returns low-res mask logits and IoU predictions; see
    /// [`preprocess::postprocess_masks`] for masks at the image size.
    ///
    /// # Shapes
    /// - images: `[images, 3, image_size, image_size]` (see [`preprocess::normalize_and_pad`])
    /// - output: `[batch, masks, 4 * grid, 4 * grid]` and `[batch, masks]`, as
    ///   [`MaskDecoder::forward`]
    pub fn forward(
        &self,
        images: Tensor<4>,
        points: Option<PointPrompts>,
        boxes: Option<Tensor<2>>,
        masks: Option<Tensor<4>>,
        multimask_output: bool,
    ) -> (Tensor<4>, Tensor<2>) {
        let embeddings = self.image_encoder.forward(images);
        self.decode(embeddings, points, boxes, masks, multimask_output)
    }

    /// Predict masks from image embeddings already computed.
    ///
    /// # Shapes
    /// - embeddings: `[images, 256, grid, grid]`
    /// - output: as [`MaskDecoder::forward`]
    pub fn decode(
        &self,
        embeddings: Tensor<4>,
        points: Option<PointPrompts>,
        boxes: Option<Tensor<2>>,
        masks: Option<Tensor<4>>,
        multimask_output: bool,
    ) -> (Tensor<4>, Tensor<2>) {
        let (sparse, dense) = self.prompt_encoder.forward(points, boxes, masks);
        self.mask_decoder.forward(
            embeddings,
            self.prompt_encoder.get_dense_pe(),
            sparse,
            dense,
            multimask_output,
        )
    }
}
