//! The image encoder: a ViT with windowed and global attention, decomposed relative
//! positions and a convolutional neck, as the reference's `image_encoder.py`.
//!
//! The encoder can be run in pieces ([`ImageEncoderViT::patch_embed`],
//! [`ImageEncoderViT::block_forward`], [`ImageEncoderViT::neck`]) so that adapters can
//! be applied to the output of chosen blocks; [`ImageEncoderViT::forward`] composes them.

use std::ops::Range;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::softmax;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::common::{
    Activation, ENCODER_LAYER_NORM_EPS, LayerNorm2d, MlpBlock, apply_linear, linear_rows,
};
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

/// Largest attention map computed at once, in elements (32M, 128 MB in f32): below
/// WebGPU's default 256 MB buffer limit with room for the relative-position terms.
const MAX_ATTENTION_ELEMENTS: usize = 1 << 25;

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
        apply_linear(&self.proj, self.attend(apply_linear(&self.qkv, x)))
    }

    /// Attention within windows of `window` tokens, as the reference's zero-padded
    /// `window_partition`, `forward`, `window_unpartition`, with the same result.
    ///
    /// A padding token is zero after the partition, so its qkv is the bias alone; it is a
    /// key and a value like any other, but its own output is cropped. So the projections
    /// run on the real tokens only (the bias is added after padding), and only real tokens
    /// are queries: windows are grouped by how much of them is real (whole windows, the
    /// last column, the last row, the corner), one batched attention per group. At 256
    /// input (16x16 tokens padded to 28x28) this skips two thirds of the projections and
    /// of the attention.
    ///
    /// # Shapes
    /// - x: `[batch, height, width, dim]`
    /// - output: `[batch, height, width, dim]`
    pub fn forward_windowed(&self, x: Tensor<4>, window: usize) -> Tensor<4> {
        let [_, h, w, _] = x.dims();
        let qkv = window_grid(linear_rows(x, self.qkv.weight.val(), None), window);
        let qkv = match &self.qkv.bias {
            Some(bias) => qkv + bias.val().unsqueeze::<6>(),
            None => qkv,
        };
        let rows: Vec<Tensor<4>> = window_groups(h, window)
            .into_iter()
            .map(|rows| {
                let columns = window_groups(w, window)
                    .into_iter()
                    .map(|columns| self.attend_windows(&qkv, rows.clone(), columns))
                    .collect();
                Tensor::cat(columns, 2)
            })
            .collect();
        apply_linear(&self.proj, Tensor::cat(rows, 1))
    }

    /// Attention within the windows in `rows` x `columns` of the grid, for their real
    /// tokens (the top-left `real rows x real columns` of each window).
    ///
    /// # Shapes
    /// - qkv: `[batch, window rows, window columns, window, window, 3 * dim]`
    /// - output: `[batch, windows' rows * real rows, windows' columns * real columns, dim]`
    fn attend_windows(
        &self,
        qkv: &Tensor<6>,
        (rows, qh): WindowGroup,
        (columns, qw): WindowGroup,
    ) -> Tensor<4> {
        let [b, _, _, window, _, dim3] = qkv.dims();
        let dim = dim3 / 3;
        let (nr, nc) = (rows.len(), columns.len());
        let n = b * nr * nc;
        let part = qkv
            .clone()
            .slice([0..b, rows, columns, 0..window, 0..window, 0..dim3]);
        let q = part
            .clone()
            .slice([0..b, 0..nr, 0..nc, 0..qh, 0..qw, 0..dim])
            .reshape([n, qh, qw, dim]);
        let kv = part
            .slice([0..b, 0..nr, 0..nc, 0..window, 0..window, dim..dim3])
            .reshape([n, window, window, 2 * dim]);
        self.attend_to(q, kv)
            .reshape([b, nr, nc, qh, qw, dim])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([b, nr * qh, nc * qw, dim])
    }

    /// The attention itself, between the qkv and output projections.
    ///
    /// # Shapes
    /// - qkv: `[batch, height, width, 3 * dim]`
    /// - output: `[batch, height, width, dim]`
    fn attend(&self, qkv: Tensor<4>) -> Tensor<4> {
        let dim = qkv.dims()[3] / 3;
        let q = qkv.clone().narrow(3, 0, dim);
        self.attend_to(q, qkv.narrow(3, dim, 2 * dim))
    }

    /// Attention of the queries `q` to the keys and values of `kv`, both laid out on a
    /// grid whose top-left corners align (the relative positions count from there).
    ///
    /// # Shapes
    /// - q: `[batch, query rows, query columns, dim]`
    /// - kv: `[batch, key rows, key columns, 2 * dim]`, keys then values
    /// - output: `[batch, query rows, query columns, dim]`
    fn attend_to(&self, q: Tensor<4>, kv: Tensor<4>) -> Tensor<4> {
        let [b, qh, qw, dim] = q.dims();
        let [_, kh, kw, _] = kv.dims();
        let heads = self.num_heads;
        let hd = dim / heads;
        let scale = (hd as f64).powf(-0.5);
        let (nq, nk) = (qh * qw, kh * kw);

        // [batch * heads, queries, head_dim]
        let q = q
            .reshape([b, nq, heads, hd])
            .permute([0, 2, 1, 3])
            .reshape([b * heads, nq, hd]);
        // [2, batch * heads, keys, head_dim]
        let kv = kv
            .reshape([b, nk, 2, heads, hd])
            .permute([2, 0, 3, 1, 4])
            .reshape([2, b * heads, nk, hd]);
        let take = |i: usize| kv.clone().narrow(0, i, 1).reshape([b * heads, nk, hd]);
        let (k, v) = (take(0), take(1));

        // The attention maps are computed a few heads at a time: at 1024 input a global
        // block's maps are [12, 4096, 4096] (805 MB), past WebGPU's buffer size limit.
        let n = b * heads;
        let chunk = (MAX_ATTENTION_ELEMENTS / (nq * nk)).clamp(1, n);
        let outputs: Vec<Tensor<3>> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let len = chunk.min(n - start);
                let q = q.clone().narrow(0, start, len);
                let k = k.clone().narrow(0, start, len);
                let v = v.clone().narrow(0, start, len);

                // [chunk, queries, keys]
                let attn = q.clone().mul_scalar(scale).matmul(k.swap_dims(1, 2));
                let attn = self.add_decomposed_rel_pos(attn, q, (qh, qw), (kh, kw));
                softmax(attn, 2).matmul(v)
            })
            .collect();
        let out = if outputs.len() == 1 {
            outputs.into_iter().next().expect("one chunk")
        } else {
            Tensor::cat(outputs, 0)
        };

        out.reshape([b, heads, qh, qw, hd])
            .permute([0, 2, 3, 1, 4])
            .reshape([b, qh, qw, dim])
    }

    /// Add the relative positions, computed with the unscaled query (as the reference).
    ///
    /// The queries are the top-left `q_rows x q_cols` of the `k_rows x k_cols` key grid
    /// (all of it, except for the real part of a padded window).
    ///
    /// # Shapes
    /// - attn: `[batch * heads, queries, keys]`
    /// - q: `[batch * heads, queries, head_dim]`
    /// - output: `[batch * heads, queries, keys]`
    fn add_decomposed_rel_pos(
        &self,
        attn: Tensor<3>,
        q: Tensor<3>,
        (qh, qw): (usize, usize),
        (kh, kw): (usize, usize),
    ) -> Tensor<3> {
        let [bh, _, hd] = q.dims();
        let rh = get_rel_pos(kh, self.rel_pos_h.val()).narrow(0, 0, qh);
        let rw = get_rel_pos(kw, self.rel_pos_w.val()).narrow(0, 0, qw);
        let r_q = q.reshape([bh, qh, qw, hd]);

        // einsum("bhwc,hkc->bhwk"): one matmul per query row.
        let rel_h = r_q
            .clone()
            .permute([1, 0, 2, 3])
            .reshape([qh, bh * qw, hd])
            .matmul(rh.swap_dims(1, 2))
            .reshape([qh, bh, qw, kh])
            .permute([1, 0, 2, 3]);
        // einsum("bhwc,wkc->bhwk"): one matmul per query column.
        let rel_w = r_q
            .permute([2, 0, 1, 3])
            .reshape([qw, bh * qh, hd])
            .matmul(rw.swap_dims(1, 2))
            .reshape([qw, bh, qh, kw])
            .permute([1, 2, 0, 3]);

        let attn = attn.reshape([bh, qh, qw, kh, kw])
            + rel_h.unsqueeze_dim::<5>(4)
            + rel_w.unsqueeze_dim::<5>(3);
        attn.reshape([bh, qh * qw, kh * kw])
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
            self.attn.forward_windowed(x, self.window_size)
        } else {
            self.attn.forward(x)
        };
        let x = shortcut + x;
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

/// Zero-pad the bottom and right to whole windows and lay the tokens out as a grid of
/// windows (the reference's `window_partition`, before it flattens the grid).
///
/// The padding tokens take part in the attention unmasked, as in the reference.
///
/// # Shapes
/// - x: `[batch, height, width, dim]`
/// - output: `[batch, window rows, window columns, window, window, dim]`
pub fn window_grid(x: Tensor<4>, window: usize) -> Tensor<6> {
    let [b, h, w, c] = x.dims();
    let (nh, nw) = (h.div_ceil(window), w.div_ceil(window));
    let (pad_h, pad_w) = (nh * window - h, nw * window - w);
    let x = if pad_h > 0 || pad_w > 0 {
        x.pad([(0, pad_h), (0, pad_w), (0, 0)], PadMode::Constant(0.0))
    } else {
        x
    };
    x.reshape([b, nh, window, nw, window, c])
        .permute([0, 1, 3, 2, 4, 5])
}

/// A run of window rows (or columns) and the number of real token rows (columns) in each.
type WindowGroup = (Range<usize>, usize);

/// The window rows (or columns) over `real` tokens: the whole ones, then the last one
/// when padding fills part of it.
fn window_groups(real: usize, window: usize) -> Vec<WindowGroup> {
    let whole = real / window;
    let mut groups = Vec::new();
    if whole > 0 {
        groups.push((0..whole, window));
    }
    if !real.is_multiple_of(window) {
        groups.push((whole..whole + 1, real % window));
    }
    groups
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
