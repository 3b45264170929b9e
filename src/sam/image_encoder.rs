//! The image encoder: a ViT with windowed and global attention, decomposed relative
//! positions and a convolutional neck, as the reference's `image_encoder.py`.
//!
//! The encoder can be run in pieces ([`ImageEncoderViT::patch_embed`],
//! [`ImageEncoderViT::block_forward`], [`ImageEncoderViT::neck`]) so that adapters can
//! be applied to the output of chosen blocks; [`ImageEncoderViT::forward`] composes them.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::softmax;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::common::{Activation, ENCODER_LAYER_NORM_EPS, LayerNorm2d, MlpBlock};
use super::config::{PATCH_SIZE, SamConfig};

/// Image to patch tokens: a 16x16 convolution with stride 16.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// `[embed_dim, 3, 16, 16]` with bias.
    pub proj: Conv2d,
}

impl PatchEmbed {
    /// Embed the patches, channels last.
    ///
    /// # Shapes
    /// - x: `[batch, 3, height, width]`
    /// - output: `[batch, height / 16, width / 16, embed_dim]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.proj.forward(x).permute([0, 2, 3, 1])
    }
}

/// Multi-head attention with decomposed relative positions.
#[derive(Module, Debug)]
pub struct Attention {
    /// `dim -> 3 * dim`, with bias.
    pub qkv: Linear,
    /// `dim -> dim`.
    pub proj: Linear,
    /// Relative positions along the height, `[2 * size - 1, head_dim]`.
    pub rel_pos_h: Param<Tensor<2>>,
    /// Relative positions along the width, `[2 * size - 1, head_dim]`.
    pub rel_pos_w: Param<Tensor<2>>,
    /// Number of heads.
    pub num_heads: usize,
}

/// Gather `rel_pos[i - j + size - 1]` for every query `i` and key `j` along one axis.
///
/// Queries and keys always have the same size here, so the reference's coordinate
/// scaling is the identity. `rel_pos` must already have `2 * size - 1` rows (the
/// loader resamples it, see [`super::resample`]).
///
/// # Shapes
/// - rel_pos: `[2 * size - 1, head_dim]`
/// - output: `[size, size, head_dim]`
fn get_rel_pos(size: usize, rel_pos: Tensor<2>) -> Tensor<3> {
    let [_, head_dim] = rel_pos.dims();
    let device = rel_pos.device();
    let index: Vec<i64> = (0..size)
        .flat_map(|i| (0..size).map(move |j| (i + size - 1 - j) as i64))
        .collect();
    let index = Tensor::<1, Int>::from_data(TensorData::new(index, [size * size]), &device);
    rel_pos.select(0, index).reshape([size, size, head_dim])
}

impl Attention {
    /// Attention of every token to every other token of `x`.
    ///
    /// # Shapes
    /// - x: `[batch, height, width, dim]`
    /// - output: `[batch, height, width, dim]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, dim] = x.dims();
        let heads = self.num_heads;
        let hd = dim / heads;
        let scale = (hd as f64).powf(-0.5);

        // [3, batch * heads, tokens, head_dim]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, h * w, 3, heads, hd])
            .permute([2, 0, 3, 1, 4])
            .reshape([3, b * heads, h * w, hd]);
        let take = |i: usize| qkv.clone().narrow(0, i, 1).reshape([b * heads, h * w, hd]);
        let (q, k, v) = (take(0), take(1), take(2));

        // [batch * heads, tokens, tokens]
        let attn = q.clone().mul_scalar(scale).matmul(k.swap_dims(1, 2));
        let attn = self.add_decomposed_rel_pos(attn, q, h, w);
        let attn = softmax(attn, 2);

        let x = attn
            .matmul(v)
            .reshape([b, heads, h, w, hd])
            .permute([0, 2, 3, 1, 4])
            .reshape([b, h, w, dim]);
        self.proj.forward(x)
    }

    /// Add the relative positions, computed with the unscaled query (as the reference).
    ///
    /// # Shapes
    /// - attn: `[batch * heads, tokens, tokens]`
    /// - q: `[batch * heads, tokens, head_dim]`
    /// - output: `[batch * heads, tokens, tokens]`
    fn add_decomposed_rel_pos(
        &self,
        attn: Tensor<3>,
        q: Tensor<3>,
        h: usize,
        w: usize,
    ) -> Tensor<3> {
        let [bh, _, hd] = q.dims();
        let rh = get_rel_pos(h, self.rel_pos_h.val());
        let rw = get_rel_pos(w, self.rel_pos_w.val());
        let r_q = q.reshape([bh, h, w, hd]);

        // einsum("bhwc,hkc->bhwk"): one matmul per query row.
        let rel_h = r_q
            .clone()
            .permute([1, 0, 2, 3])
            .reshape([h, bh * w, hd])
            .matmul(rh.swap_dims(1, 2))
            .reshape([h, bh, w, h])
            .permute([1, 0, 2, 3]);
        // einsum("bhwc,wkc->bhwk"): one matmul per query column.
        let rel_w = r_q
            .permute([2, 0, 1, 3])
            .reshape([w, bh * h, hd])
            .matmul(rw.swap_dims(1, 2))
            .reshape([w, bh, h, w])
            .permute([1, 2, 0, 3]);

        let attn = attn.reshape([bh, h, w, h, w])
            + rel_h.unsqueeze_dim::<5>(4)
            + rel_w.unsqueeze_dim::<5>(3);
        attn.reshape([bh, h * w, h * w])
    }
}

/// A transformer block attending within windows (`window_size > 0`) or globally.
#[derive(Module, Debug)]
pub struct Block {
    /// LayerNorm before attention (epsilon 1e-6).
    pub norm1: LayerNorm,
    /// The attention.
    pub attn: Attention,
    /// LayerNorm before the MLP (epsilon 1e-6).
    pub norm2: LayerNorm,
    /// The MLP, with exact GELU.
    pub mlp: MlpBlock,
    /// Side of the attention windows in tokens; 0 for global attention.
    pub window_size: usize,
}

impl Block {
    /// Attention (within windows or global), then the MLP, each with a residual.
    ///
    /// # Shapes
    /// - x: `[batch, height, width, dim]`
    /// - output: `[batch, height, width, dim]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = x.clone();
        let x = self.norm1.forward(x);
        let x = if self.window_size > 0 {
            let [_, h, w, _] = x.dims();
            let (windows, hp, wp) = window_partition(x, self.window_size);
            let windows = self.attn.forward(windows);
            window_unpartition(windows, self.window_size, (hp, wp), (h, w))
        } else {
            self.attn.forward(x)
        };
        let x = shortcut + x;
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

/// Split tokens into non-overlapping windows, zero-padding the bottom and right.
///
/// The padding tokens take part in the attention unmasked, as in the reference.
///
/// # Shapes
/// - x: `[batch, height, width, dim]`
/// - output: `[batch * windows, window, window, dim]`, with the padded height and width
pub fn window_partition(x: Tensor<4>, window: usize) -> (Tensor<4>, usize, usize) {
    let [b, h, w, c] = x.dims();
    let pad_h = (window - h % window) % window;
    let pad_w = (window - w % window) % window;
    let x = if pad_h > 0 || pad_w > 0 {
        x.pad([(0, pad_h), (0, pad_w), (0, 0)], PadMode::Constant(0.0))
    } else {
        x
    };
    let (hp, wp) = (h + pad_h, w + pad_w);
    let windows = x
        .reshape([b, hp / window, window, wp / window, window, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b * (hp / window) * (wp / window), window, window, c]);
    (windows, hp, wp)
}

/// Put windows back together and drop the padding.
///
/// # Shapes
/// - windows: `[batch * windows, window, window, dim]`
/// - output: `[batch, height, width, dim]`
pub fn window_unpartition(
    windows: Tensor<4>,
    window: usize,
    (hp, wp): (usize, usize),
    (h, w): (usize, usize),
) -> Tensor<4> {
    let [n, _, _, c] = windows.dims();
    let b = n / ((hp / window) * (wp / window));
    let x = windows
        .reshape([b, hp / window, wp / window, window, window, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, hp, wp, c]);
    if hp > h || wp > w {
        x.slice([0..b, 0..h, 0..w, 0..c])
    } else {
        x
    }
}

/// The convolutional neck: 1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d.
#[derive(Module, Debug)]
pub struct Neck {
    /// `embed_dim -> out_chans`, 1x1, no bias (key `neck.0`).
    pub conv1: Conv2d,
    /// Key `neck.1`.
    pub ln1: LayerNorm2d,
    /// `out_chans -> out_chans`, 3x3 with padding 1, no bias (key `neck.2`).
    pub conv2: Conv2d,
    /// Key `neck.3`.
    pub ln2: LayerNorm2d,
}

/// SAM's image encoder.
#[derive(Module, Debug)]
pub struct ImageEncoderViT {
    /// Patches to tokens.
    pub patch_embed: PatchEmbed,
    /// Absolute positions, `[1, grid, grid, embed_dim]`.
    pub pos_embed: Param<Tensor<4>>,
    /// The transformer blocks.
    pub blocks: Vec<Block>,
    /// Tokens to the image embedding.
    pub neck: Neck,
    /// Side of the square input in pixels.
    pub image_size: usize,
}

impl ImageEncoderViT {
    /// An image encoder with random weights; pos_embed and rel_pos start at zero
    /// and LayerNorms at weight 1, bias 0, as in the reference.
    pub fn new(config: &SamConfig, device: &Device) -> Self {
        let dim = config.encoder_embed_dim;
        let out = config.prompt_embed_dim;
        let grid = config.grid_size();
        let head_dim = dim / config.encoder_num_heads;
        let blocks = (0..config.encoder_depth)
            .map(|i| {
                let global = config.encoder_global_attn_indexes.contains(&i);
                let window_size = if global { 0 } else { config.window_size };
                let size = if global { grid } else { config.window_size };
                Block {
                    norm1: LayerNormConfig::new(dim)
                        .with_epsilon(ENCODER_LAYER_NORM_EPS)
                        .init(device),
                    attn: Attention {
                        qkv: LinearConfig::new(dim, 3 * dim).init(device),
                        proj: LinearConfig::new(dim, dim).init(device),
                        rel_pos_h: Param::from_tensor(Tensor::zeros(
                            [2 * size - 1, head_dim],
                            device,
                        )),
                        rel_pos_w: Param::from_tensor(Tensor::zeros(
                            [2 * size - 1, head_dim],
                            device,
                        )),
                        num_heads: config.encoder_num_heads,
                    },
                    norm2: LayerNormConfig::new(dim)
                        .with_epsilon(ENCODER_LAYER_NORM_EPS)
                        .init(device),
                    mlp: MlpBlock::new(dim, 4 * dim, Activation::Gelu, device),
                    window_size,
                }
            })
            .collect();
        Self {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([3, dim], [PATCH_SIZE, PATCH_SIZE])
                    .with_stride([PATCH_SIZE, PATCH_SIZE])
                    .init(device),
            },
            pos_embed: Param::from_tensor(Tensor::zeros([1, grid, grid, dim], device)),
            blocks,
            neck: Neck {
                conv1: Conv2dConfig::new([dim, out], [1, 1])
                    .with_bias(false)
                    .init(device),
                ln1: LayerNorm2d::new(out, device),
                conv2: Conv2dConfig::new([out, out], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(false)
                    .init(device),
                ln2: LayerNorm2d::new(out, device),
            },
            image_size: config.image_size,
        }
    }

    /// Patch tokens with the absolute positions added.
    ///
    /// # Shapes
    /// - x: `[batch, 3, image_size, image_size]` (normalised and padded, see
    ///   [`super::preprocess`])
    /// - output: `[batch, grid, grid, embed_dim]`
    pub fn patch_embed(&self, x: Tensor<4>) -> Tensor<4> {
        self.patch_embed.forward(x) + self.pos_embed.val()
    }

    /// The transformer blocks, in order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Run block `i` alone.
    ///
    /// # Shapes
    /// - x: `[batch, grid, grid, embed_dim]`
    /// - output: `[batch, grid, grid, embed_dim]`
    ///
    /// # Panics
    /// If `i` is not below [`Self::blocks`]`.len()`.
    pub fn block_forward(&self, i: usize, x: Tensor<4>) -> Tensor<4> {
        self.blocks[i].forward(x)
    }

    /// Tokens to the image embedding.
    ///
    /// # Shapes
    /// - x: `[batch, grid, grid, embed_dim]`
    /// - output: `[batch, out_chans, grid, grid]` (`out_chans` is 256 for the official models)
    pub fn neck(&self, x: Tensor<4>) -> Tensor<4> {
        let x = x.permute([0, 3, 1, 2]);
        let x = self.neck.ln1.forward(self.neck.conv1.forward(x));
        self.neck.ln2.forward(self.neck.conv2.forward(x))
    }

    /// The image embedding: patch_embed, every block, then the neck.
    ///
    /// # Shapes
    /// - x: `[batch, 3, image_size, image_size]`
    /// - output: `[batch, out_chans, grid, grid]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.patch_embed(x);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.neck(x)
    }
}
