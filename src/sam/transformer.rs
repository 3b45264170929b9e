//! The two-way transformer of the mask decoder, as the reference's `transformer.py`.
//!
//! Its LayerNorms use PyTorch's default epsilon 1e-5 (the image encoder's use 1e-6)
//! and its MLPs use ReLU.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::common::{Activation, DECODER_LAYER_NORM_EPS, MlpBlock, apply_linear};

/// Attention whose projections may shrink the width by `downsample_rate`.
#[derive(Module, Debug)]
pub struct Attention {
    /// `embedding_dim -> internal_dim`.
    pub q_proj: Linear,
    /// `embedding_dim -> internal_dim`.
    pub k_proj: Linear,
    /// `embedding_dim -> internal_dim`.
    pub v_proj: Linear,
    /// `internal_dim -> embedding_dim`.
    pub out_proj: Linear,
    /// Number of heads.
    pub num_heads: usize,
}

impl Attention {
    /// An attention layer with random weights.
    pub fn new(dim: usize, heads: usize, downsample_rate: usize, device: &Device) -> Self {
        let internal = dim / downsample_rate;
        Self {
            q_proj: LinearConfig::new(dim, internal).init(device),
            k_proj: LinearConfig::new(dim, internal).init(device),
            v_proj: LinearConfig::new(dim, internal).init(device),
            out_proj: LinearConfig::new(internal, dim).init(device),
            num_heads: heads,
        }
    }

    /// # Shapes
    /// - x: `[batch, tokens, internal_dim]`
    /// - output: `[batch, heads, tokens, internal_dim / heads]`
    fn separate_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, n, c] = x.dims();
        x.reshape([b, n, self.num_heads, c / self.num_heads])
            .swap_dims(1, 2)
    }

    /// Queries `q` attend to keys `k` and take values `v`.
    ///
    /// # Shapes
    /// - q: `[batch, queries, embedding_dim]`
    /// - k, v: `[batch, keys, embedding_dim]`
    /// - output: `[batch, queries, embedding_dim]`
    pub fn forward(&self, q: Tensor<3>, k: Tensor<3>, v: Tensor<3>) -> Tensor<3> {
        let q = self.separate_heads(apply_linear(&self.q_proj, q));
        let k = self.separate_heads(apply_linear(&self.k_proj, k));
        let v = self.separate_heads(apply_linear(&self.v_proj, v));
        let [b, heads, n, c_per_head] = q.dims();

        let attn = q
            .matmul(k.swap_dims(2, 3))
            .div_scalar((c_per_head as f64).sqrt());
        let attn = softmax(attn, 3);

        let out = attn
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, n, heads * c_per_head]);
        apply_linear(&self.out_proj, out)
    }
}

/// Self-attention of the tokens, tokens to image, MLP, image to tokens.
#[derive(Module, Debug)]
pub struct TwoWayAttentionBlock {
    /// Self-attention of the tokens.
    pub self_attn: Attention,
    /// LayerNorm (epsilon 1e-5).
    pub norm1: LayerNorm,
    /// Tokens attend to the image.
    pub cross_attn_token_to_image: Attention,
    /// LayerNorm (epsilon 1e-5).
    pub norm2: LayerNorm,
    /// MLP with ReLU.
    pub mlp: MlpBlock,
    /// LayerNorm (epsilon 1e-5).
    pub norm3: LayerNorm,
    /// LayerNorm (epsilon 1e-5).
    pub norm4: LayerNorm,
    /// The image attends to the tokens.
    pub cross_attn_image_to_token: Attention,
    /// In the first block: no positional encoding and no residual in the self-attention.
    pub skip_first_layer_pe: bool,
}

impl TwoWayAttentionBlock {
    /// # Shapes
    /// - queries, query_pe: `[batch, tokens, dim]`
    /// - keys, key_pe: `[batch, grid * grid, dim]`
    /// - output: queries `[batch, tokens, dim]` and keys `[batch, grid * grid, dim]`
    pub fn forward(
        &self,
        queries: Tensor<3>,
        keys: Tensor<3>,
        query_pe: Tensor<3>,
        key_pe: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let queries = if self.skip_first_layer_pe {
            self.self_attn
                .forward(queries.clone(), queries.clone(), queries)
        } else {
            let q = queries.clone() + query_pe.clone();
            let attn_out = self.self_attn.forward(q.clone(), q, queries.clone());
            queries + attn_out
        };
        let queries = self.norm1.forward(queries);

        let q = queries.clone() + query_pe.clone();
        let k = keys.clone() + key_pe.clone();
        let attn_out = self.cross_attn_token_to_image.forward(q, k, keys.clone());
        let queries = self.norm2.forward(queries + attn_out);

        let mlp_out = self.mlp.forward(queries.clone());
        let queries = self.norm3.forward(queries + mlp_out);

        let q = queries.clone() + query_pe;
        let k = keys.clone() + key_pe;
        let attn_out = self
            .cross_attn_image_to_token
            .forward(k, q, queries.clone());
        let keys = self.norm4.forward(keys + attn_out);

        (queries, keys)
    }
}

/// The two-way transformer: its blocks, then a last attention from tokens to image.
#[derive(Module, Debug)]
pub struct TwoWayTransformer {
    /// The blocks.
    pub layers: Vec<TwoWayAttentionBlock>,
    /// Last attention of the tokens to the image.
    pub final_attn_token_to_image: Attention,
    /// LayerNorm (epsilon 1e-5).
    pub norm_final_attn: LayerNorm,
}

impl TwoWayTransformer {
    /// A transformer with random weights (attention downsample rate 2, as SAM).
    pub fn new(depth: usize, dim: usize, heads: usize, mlp_dim: usize, device: &Device) -> Self {
        let norm = || {
            LayerNormConfig::new(dim)
                .with_epsilon(DECODER_LAYER_NORM_EPS)
                .init(device)
        };
        let layers = (0..depth)
            .map(|i| TwoWayAttentionBlock {
                self_attn: Attention::new(dim, heads, 1, device),
                norm1: norm(),
                cross_attn_token_to_image: Attention::new(dim, heads, 2, device),
                norm2: norm(),
                mlp: MlpBlock::new(dim, mlp_dim, Activation::Relu, device),
                norm3: norm(),
                norm4: norm(),
                cross_attn_image_to_token: Attention::new(dim, heads, 2, device),
                skip_first_layer_pe: i == 0,
            })
            .collect();
        Self {
            layers,
            final_attn_token_to_image: Attention::new(dim, heads, 2, device),
            norm_final_attn: norm(),
        }
    }

    /// Tokens and image attend to each other.
    ///
    /// # Shapes
    /// - image_embedding, image_pe: `[batch, dim, grid, grid]`
    /// - point_embedding: `[batch, tokens, dim]`
    /// - output: tokens `[batch, tokens, dim]` and image `[batch, grid * grid, dim]`
    pub fn forward(
        &self,
        image_embedding: Tensor<4>,
        image_pe: Tensor<4>,
        point_embedding: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let [b, c, h, w] = image_embedding.dims();
        let image_embedding = image_embedding.reshape([b, c, h * w]).swap_dims(1, 2);
        let [pb, ..] = image_pe.dims();
        let image_pe = image_pe.reshape([pb, c, h * w]).swap_dims(1, 2);

        let mut queries = point_embedding.clone();
        let mut keys = image_embedding;
        for layer in &self.layers {
            (queries, keys) =
                layer.forward(queries, keys, point_embedding.clone(), image_pe.clone());
        }

        let q = queries.clone() + point_embedding;
        let k = keys.clone() + image_pe;
        let attn_out = self.final_attn_token_to_image.forward(q, k, keys.clone());
        let queries = self.norm_final_attn.forward(queries + attn_out);
        (queries, keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam::{Sam, SamConfig};

    /// The parity fixtures cannot tell 1e-5 from 1e-6 (their variances are far larger),
    /// so the epsilons are checked where burn shows them.
    #[test]
    fn layer_norm_epsilons_are_the_reference_ones() {
        let device = Device::flex();
        let sam = Sam::new(&SamConfig::tiny_padded(), &device).unwrap();
        let layer = &sam.mask_decoder.transformer.layers[0];
        for norm in [&layer.norm1, &layer.norm2, &layer.norm3, &layer.norm4] {
            let shown = format!("{norm}");
            assert!(shown.contains("epsilon: 0.00001,"), "{shown}");
        }
        let final_norm = format!("{}", sam.mask_decoder.transformer.norm_final_attn);
        assert!(final_norm.contains("epsilon: 0.00001,"), "{final_norm}");
        let block = &sam.image_encoder.blocks[0];
        for norm in [&block.norm1, &block.norm2] {
            let shown = format!("{norm}");
            assert!(shown.contains("epsilon: 0.000001,"), "{shown}");
        }
    }
}
