//! The sizes of a SAM model: the three official image encoders and tiny ones for tests.

use serde::{Deserialize, Serialize};

use super::SamError;

/// Side of the square patches the image encoder embeds, in pixels.
pub const PATCH_SIZE: usize = 16;

/// Input size the official weights were trained at.
pub const OFFICIAL_IMAGE_SIZE: usize = 1024;

/// The sizes of a SAM model, as `build_sam.py` of the reference sets them.
///
/// `image_size` is the side of the square input; it may be any multiple of
/// [`PATCH_SIZE`]. Weights trained at another size are resampled when loaded
/// (see [`super::resample`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamConfig {
    /// A short name used in messages ("ViT-B").
    pub name: String,
    /// Side of the square input image, in pixels (a multiple of 16).
    pub image_size: usize,
    /// Width of the image encoder's tokens.
    pub encoder_embed_dim: usize,
    /// Number of transformer blocks in the image encoder.
    pub encoder_depth: usize,
    /// Attention heads in each image encoder block.
    pub encoder_num_heads: usize,
    /// Blocks that attend globally; the others attend within windows.
    pub encoder_global_attn_indexes: Vec<usize>,
    /// Side of the attention windows, in tokens.
    pub window_size: usize,
    /// Width of the image embedding and of the prompt embeddings.
    pub prompt_embed_dim: usize,
    /// Hidden channels of the mask prompt's downscaling convolutions.
    pub mask_in_chans: usize,
    /// Masks predicted besides the single-mask output.
    pub num_multimask_outputs: usize,
    /// Blocks of the two-way transformer.
    pub decoder_depth: usize,
    /// Hidden width of the two-way transformer's MLPs.
    pub decoder_mlp_dim: usize,
    /// Attention heads of the two-way transformer.
    pub decoder_num_heads: usize,
    /// Layers of the IoU prediction head.
    pub iou_head_depth: usize,
    /// Hidden width of the IoU prediction head.
    pub iou_head_hidden_dim: usize,
}

impl SamConfig {
    fn official(name: &str, dim: usize, depth: usize, heads: usize, global: [usize; 4]) -> Self {
        Self {
            name: name.to_string(),
            image_size: OFFICIAL_IMAGE_SIZE,
            encoder_embed_dim: dim,
            encoder_depth: depth,
            encoder_num_heads: heads,
            encoder_global_attn_indexes: global.to_vec(),
            window_size: 14,
            prompt_embed_dim: 256,
            mask_in_chans: 16,
            num_multimask_outputs: 3,
            decoder_depth: 2,
            decoder_mlp_dim: 2048,
            decoder_num_heads: 8,
            iou_head_depth: 3,
            iou_head_hidden_dim: 256,
        }
    }

    /// SAM ViT-B (91M parameters in the image encoder), the one the product uses.
    pub fn vit_b() -> Self {
        Self::official("ViT-B", 768, 12, 12, [2, 5, 8, 11])
    }

    /// SAM ViT-L.
    pub fn vit_l() -> Self {
        Self::official("ViT-L", 1024, 24, 16, [5, 11, 17, 23])
    }

    /// SAM ViT-H.
    pub fn vit_h() -> Self {
        Self::official("ViT-H", 1280, 32, 16, [7, 15, 23, 31])
    }

    fn tiny(name: &str, image_size: usize, depth: usize) -> Self {
        Self {
            name: name.to_string(),
            image_size,
            encoder_embed_dim: 16,
            encoder_depth: depth,
            encoder_num_heads: 2,
            encoder_global_attn_indexes: vec![1],
            window_size: 4,
            prompt_embed_dim: 16,
            mask_in_chans: 8,
            num_multimask_outputs: 3,
            decoder_depth: 2,
            decoder_mlp_dim: 32,
            decoder_num_heads: 2,
            iou_head_depth: 3,
            iou_head_hidden_dim: 16,
        }
    }

    /// A tiny model for tests whose 6x6 tokens are padded to 8x8 for the 4x4 windows.
    pub fn tiny_padded() -> Self {
        Self::tiny("tiny (padded windows)", 96, 3)
    }

    /// A tiny model for tests whose 8x8 tokens split into 4x4 windows exactly.
    pub fn tiny_unpadded() -> Self {
        Self::tiny("tiny (unpadded windows)", 128, 2)
    }

    /// The same model at another input size (a multiple of 16).
    pub fn with_image_size(mut self, image_size: usize) -> Self {
        self.image_size = image_size;
        self
    }

    /// Side of the image embedding in tokens: `image_size / 16`.
    pub fn grid_size(&self) -> usize {
        self.image_size / PATCH_SIZE
    }

    /// Masks the mask decoder predicts in all (single plus multi-mask outputs).
    pub fn num_mask_tokens(&self) -> usize {
        self.num_multimask_outputs + 1
    }

    /// Check that the sizes fit together.
    pub fn validate(&self) -> Result<(), SamError> {
        let bad = |reason: String| Err(SamError::Config(reason));
        if self.image_size == 0 || self.image_size % PATCH_SIZE != 0 {
            return bad(format!(
                "the input size {} is not a positive multiple of {PATCH_SIZE}",
                self.image_size
            ));
        }
        if self.encoder_num_heads == 0 || self.encoder_embed_dim % self.encoder_num_heads != 0 {
            return bad(format!(
                "{} image encoder heads do not divide the width {}",
                self.encoder_num_heads, self.encoder_embed_dim
            ));
        }
        if let Some(i) = self
            .encoder_global_attn_indexes
            .iter()
            .find(|&&i| i >= self.encoder_depth)
        {
            return bad(format!(
                "global attention block {i} is past the {} image encoder blocks",
                self.encoder_depth
            ));
        }
        if self.window_size == 0 {
            return bad("the window size is 0".to_string());
        }
        let internal = self.prompt_embed_dim / 2;
        if self.decoder_num_heads == 0
            || self.prompt_embed_dim % 8 != 0
            || internal % self.decoder_num_heads != 0
        {
            return bad(format!(
                "the mask decoder width {} must be a multiple of 8 and of twice its {} heads",
                self.prompt_embed_dim, self.decoder_num_heads
            ));
        }
        if self.mask_in_chans < 4 || self.mask_in_chans % 4 != 0 {
            return bad(format!(
                "mask_in_chans {} is not a multiple of 4",
                self.mask_in_chans
            ));
        }
        if self.iou_head_depth == 0 {
            return bad("the IoU head has no layers".to_string());
        }
        Ok(())
    }
}
