//! The prompt encoder: points, boxes and masks to sparse and dense embeddings, as the
//! reference's `prompt_encoder.py`.

use std::f32::consts::PI;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::common::LayerNorm2d;
use super::config::SamConfig;

/// Positional encoding with random spatial frequencies.
#[derive(Module, Debug)]
pub struct PositionEmbeddingRandom {
    /// The frequencies, `[2, embed_dim / 2]`; a buffer in the checkpoint
    /// (`pe_layer.positional_encoding_gaussian_matrix`), never trained.
    pub positional_encoding_gaussian_matrix: Tensor<2>,
}

/// Sine and cosine of angles in `[-π, π]` by their Taylor series (through x^15 and x^16,
/// truncation error below 1e-6), in plain tensor arithmetic so every backend agrees.
fn sin_cos(x: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let x2 = x.clone().mul(x.clone());
    let horner = |coefficients: &[f64]| {
        let (last, rest) = coefficients.split_last().expect("coefficients");
        rest.iter()
            .rev()
            .fold(x2.clone().mul_scalar(*last), |acc, &c| {
                acc.add_scalar(c).mul(x2.clone())
            })
    };
    // sin x = x (1 - x²/3! + x⁴/5! - ...), cos x = 1 - x²/2! + x⁴/4! - ...
    let mut sin_terms = Vec::new();
    let mut cos_terms = Vec::new();
    let mut factorial = 1.0f64;
    for k in 1..=16u32 {
        factorial *= f64::from(k);
        let sign = if (k / 2) % 2 == 1 { -1.0 } else { 1.0 };
        if k % 2 == 1 && k > 1 {
            sin_terms.push(sign / factorial);
        } else if k % 2 == 0 {
            cos_terms.push(sign / factorial);
        }
    }
    let sin = horner(&sin_terms).add_scalar(1.0).mul(x);
    let cos = horner(&cos_terms).add_scalar(1.0);
    (sin, cos)
}

impl PositionEmbeddingRandom {
    /// Encode points normalised to `[0, 1]`.
    ///
    /// # Shapes
    /// - coords: `[batch, points, 2]` as (x, y)
    /// - output: `[batch, points, embed_dim]`
    fn pe_encoding(&self, coords: Tensor<3>) -> Tensor<3> {
        let [b, n, _] = coords.dims();
        let g = self.positional_encoding_gaussian_matrix.clone();
        let [_, feats] = g.dims();
        let coords = coords.mul_scalar(2.0).sub_scalar(1.0);
        let coords = coords.matmul(g.unsqueeze_dim::<3>(0).expand([b, 2, feats]));
        // The reference takes sin and cos of 2π·c. WGSL only promises sin/cos to 2^-11
        // (SwiftShader is 2e-4 off), so whole turns are removed and the series are summed
        // here: the angle lands in [-π, π] and the result is within 1e-6 on every backend.
        let coords = coords.clone().sub(coords.round());
        let coords = coords.mul_scalar(2.0 * PI);
        debug_assert_eq!(coords.dims(), [b, n, feats]);
        let (sin, cos) = sin_cos(coords);
        Tensor::cat(vec![sin, cos], 2)
    }

    /// The encoding of every cell centre of an `h` x `w` grid.
    ///
    /// # Shapes
    /// - output: `[embed_dim, h, w]`
    pub fn forward(&self, h: usize, w: usize) -> Tensor<3> {
        let device = self.positional_encoding_gaussian_matrix.device();
        // Same float32 steps as the reference: cumsum of ones, minus 0.5, over the size.
        let mut grid = Vec::with_capacity(h * w * 2);
        for i in 0..h {
            for j in 0..w {
                grid.push(((j + 1) as f32 - 0.5) / w as f32);
                grid.push(((i + 1) as f32 - 0.5) / h as f32);
            }
        }
        let coords = Tensor::<3>::from_data(TensorData::new(grid, [1, h * w, 2]), &device);
        let pe = self.pe_encoding(coords);
        let [_, _, c] = pe.dims();
        pe.reshape([h, w, c]).permute([2, 0, 1])
    }

    /// Encode points given in pixels of an input of `(height, width)`.
    ///
    /// # Shapes
    /// - coords: `[batch, points, 2]` as (x, y)
    /// - output: `[batch, points, embed_dim]`
    pub fn forward_with_coords(
        &self,
        coords: Tensor<3>,
        (height, width): (usize, usize),
    ) -> Tensor<3> {
        let device = coords.device();
        let size = Tensor::<3>::from_data(
            TensorData::new(vec![width as f32, height as f32], [1, 1, 2]),
            &device,
        );
        self.pe_encoding(coords / size)
    }
}

/// The mask prompt's downscaling: two strided convolutions with LayerNorm2d and GELU,
/// then a 1x1 convolution (checkpoint keys `mask_downscaling.0`, `.1`, `.3`, `.4`, `.6`).
#[derive(Module, Debug)]
pub struct MaskDownscaling {
    /// `1 -> mask_in_chans / 4`, 2x2 stride 2.
    pub conv1: Conv2d,
    /// LayerNorm2d after `conv1`.
    pub ln1: LayerNorm2d,
    /// `mask_in_chans / 4 -> mask_in_chans`, 2x2 stride 2.
    pub conv2: Conv2d,
    /// LayerNorm2d after `conv2`.
    pub ln2: LayerNorm2d,
    /// `mask_in_chans -> embed_dim`, 1x1.
    pub conv3: Conv2d,
}

impl MaskDownscaling {
    /// # Shapes
    /// - masks: `[batch, 1, 4 * grid, 4 * grid]`
    /// - output: `[batch, embed_dim, grid, grid]`
    pub fn forward(&self, masks: Tensor<4>) -> Tensor<4> {
        let x = gelu(self.ln1.forward(self.conv1.forward(masks)));
        let x = gelu(self.ln2.forward(self.conv2.forward(x)));
        self.conv3.forward(x)
    }
}

/// Point prompts: pixel coordinates in the input frame and labels
/// (1 foreground, 0 background, -1 padding, to be ignored).
///
/// # Shapes
/// - `.0`: `[prompts, points, 2]` as (x, y)
/// - `.1`: `[prompts, points]`
pub type PointPrompts = (Tensor<3>, Tensor<2, Int>);

/// SAM's prompt encoder.
#[derive(Module, Debug)]
pub struct PromptEncoder {
    /// The positional encoding shared by points, boxes and the image.
    pub pe_layer: PositionEmbeddingRandom,
    /// Negative point, positive point, box top-left and box bottom-right embeddings.
    pub point_embeddings: Vec<Embedding>,
    /// The embedding of padding points (label -1).
    pub not_a_point_embed: Embedding,
    /// The mask prompt's encoder.
    pub mask_downscaling: MaskDownscaling,
    /// The dense embedding when no mask is given.
    pub no_mask_embed: Embedding,
    /// Width of the embeddings.
    pub embed_dim: usize,
    /// Side of the image embedding, in tokens.
    pub grid_size: usize,
    /// Side of the square input image, in pixels.
    pub image_size: usize,
}

impl PromptEncoder {
    /// A prompt encoder with random weights.
    pub fn new(config: &SamConfig, device: &Device) -> Self {
        let dim = config.prompt_embed_dim;
        let chans = config.mask_in_chans;
        let embedding = |n| EmbeddingConfig::new(n, dim).init(device);
        Self {
            pe_layer: PositionEmbeddingRandom {
                positional_encoding_gaussian_matrix: Tensor::random(
                    [2, dim / 2],
                    burn::tensor::Distribution::Normal(0.0, 1.0),
                    device,
                ),
            },
            point_embeddings: (0..4).map(|_| embedding(1)).collect(),
            not_a_point_embed: embedding(1),
            mask_downscaling: MaskDownscaling {
                conv1: Conv2dConfig::new([1, chans / 4], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
                ln1: LayerNorm2d::new(chans / 4, device),
                conv2: Conv2dConfig::new([chans / 4, chans], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
                ln2: LayerNorm2d::new(chans, device),
                conv3: Conv2dConfig::new([chans, dim], [1, 1]).init(device),
            },
            no_mask_embed: embedding(1),
            embed_dim: dim,
            grid_size: config.grid_size(),
            image_size: config.image_size,
        }
    }

    /// The positional encoding of the image embedding's grid.
    ///
    /// # Shapes
    /// - output: `[1, embed_dim, grid, grid]`
    pub fn get_dense_pe(&self) -> Tensor<4> {
        self.pe_layer
            .forward(self.grid_size, self.grid_size)
            .unsqueeze_dim(0)
    }

    /// Embed points; with `pad`, one padding point (label -1) is appended.
    ///
    /// # Shapes
    /// - output: `[prompts, points (+1 with pad), embed_dim]`
    fn embed_points(&self, points: Tensor<3>, labels: Tensor<2, Int>, pad: bool) -> Tensor<3> {
        let device = points.device();
        let [b, _, _] = points.dims();
        let points = points.add_scalar(0.5);
        let (points, labels) = if pad {
            let padding_point = Tensor::<3>::zeros([b, 1, 2], &device);
            let padding_label = Tensor::<2, Int>::full([b, 1], -1, &device);
            (
                Tensor::cat(vec![points, padding_point], 1),
                Tensor::cat(vec![labels, padding_label], 1),
            )
        } else {
            (points, labels)
        };
        let pe = self
            .pe_layer
            .forward_with_coords(points, (self.image_size, self.image_size));

        // 0/1 weights per point: the arithmetic equals the reference's masked writes.
        let is = |value: i64| {
            labels
                .clone()
                .equal_elem(value)
                .float()
                .unsqueeze_dim::<3>(2)
        };
        let (pad_w, neg_w, pos_w) = (is(-1), is(0), is(1));
        let weight = |e: &Embedding| e.weight.val().unsqueeze_dim::<3>(0);
        pe * (pad_w.clone().neg().add_scalar(1.0))
            + pad_w * weight(&self.not_a_point_embed)
            + neg_w * weight(&self.point_embeddings[0])
            + pos_w * weight(&self.point_embeddings[1])
    }

    /// Embed boxes as their two corners.
    ///
    /// # Shapes
    /// - boxes: `[prompts, 4]` as (x0, y0, x1, y1)
    /// - output: `[prompts, 2, embed_dim]`
    fn embed_boxes(&self, boxes: Tensor<2>) -> Tensor<3> {
        let [b, _] = boxes.dims();
        let coords = boxes.add_scalar(0.5).reshape([b, 2, 2]);
        let pe = self
            .pe_layer
            .forward_with_coords(coords, (self.image_size, self.image_size));
        let corners = Tensor::cat(
            vec![
                self.point_embeddings[2].weight.val(),
                self.point_embeddings[3].weight.val(),
            ],
            0,
        );
        pe + corners.unsqueeze_dim::<3>(0)
    }

    /// Embed the prompts. Prompt sets are counted from the points, else the boxes, else
    /// the masks, else 1. Without boxes a padding point is appended to the points.
    ///
    /// Returns the sparse embeddings (`None` when there are neither points nor boxes,
    /// where the reference has an empty tensor) and the dense embeddings.
    ///
    /// # Shapes
    /// - points: see [`PointPrompts`]
    /// - boxes: `[prompts, 4]`
    /// - masks: `[prompts, 1, 4 * grid, 4 * grid]`
    /// - output: `[prompts, tokens, embed_dim]` and `[prompts, embed_dim, grid, grid]`
    pub fn forward(
        &self,
        points: Option<PointPrompts>,
        boxes: Option<Tensor<2>>,
        masks: Option<Tensor<4>>,
    ) -> (Option<Tensor<3>>, Tensor<4>) {
        let bs = match (&points, &boxes, &masks) {
            (Some((p, _)), _, _) => p.dims()[0],
            (None, Some(b), _) => b.dims()[0],
            (None, None, Some(m)) => m.dims()[0],
            (None, None, None) => 1,
        };
        let pad = boxes.is_none();
        let mut sparse = Vec::new();
        if let Some((coords, labels)) = points {
            sparse.push(self.embed_points(coords, labels, pad));
        }
        if let Some(boxes) = boxes {
            sparse.push(self.embed_boxes(boxes));
        }
        let sparse = (!sparse.is_empty()).then(|| Tensor::cat(sparse, 1));

        let dense = match masks {
            Some(masks) => self.mask_downscaling.forward(masks),
            None => self
                .no_mask_embed
                .weight
                .val()
                .reshape([1, self.embed_dim, 1, 1])
                .expand([bs, self.embed_dim, self.grid_size, self.grid_size]),
        };
        (sparse, dense)
    }
}
