//! PROS inference: the frozen SAM with adapters, decoded without prompts.
//!
//! Prompt-free decoding: no points and no boxes (the sparse prompt is empty), the
//! "no mask" dense embedding, and only the single-mask output of the mask decoder. Its
//! low-res logits (`4 * grid` square) are bilinearly upsampled to the input size (see
//! [`super::upsample`], which also has a backward pass on WebGPU).
//!
//! SAM is built on the plain device; the [`Adapters`] may live on an autodiff device. In a
//! training forward, activations become tracked at the first adapter and flow through the
//! rest of SAM, whose weights enter the graph as constants.

use burn::tensor::Tensor;

use super::adapter::{AdapterConfig, Adapters};
use crate::sam::Sam;

/// SAM with the places where adapters plug in.
#[derive(Debug)]
pub struct ProsModel {
    /// The frozen SAM, on the plain device.
    pub sam: Sam,
    /// Where the adapters go.
    pub config: AdapterConfig,
}

impl ProsModel {
    /// Wrap a SAM. The adapter positions must fit its image encoder.
    pub fn new(sam: Sam, config: AdapterConfig) -> Result<Self, super::ProsError> {
        let depth = sam.image_encoder.blocks().len();
        if config.encoder_positions.iter().any(|&p| p >= depth) {
            return Err(super::ProsError::AdapterPositions {
                positions: config.encoder_positions.clone(),
                depth,
            });
        }
        Ok(Self { sam, config })
    }

    /// Side of the square input in pixels.
    pub fn image_size(&self) -> usize {
        self.sam.image_size()
    }

    /// The frozen prefix: patch embedding and the blocks before the first adapter. It does
    /// not depend on the adapters, so training computes it once per image.
    ///
    /// # Shapes
    ///
    /// - images: `[batch, 3, image_size, image_size]`, normalised (see
    ///   [`crate::sam::preprocess::normalize_and_pad`])
    /// - output: `[batch, grid, grid, encoder_dim]`
    pub fn prefix(&self, images: Tensor<4>) -> Tensor<4> {
        let encoder = &self.sam.image_encoder;
        let mut x = encoder.patch_embed(images);
        for i in 0..self.config.first_position() {
            x = encoder.block_forward(i, x);
        }
        x
    }

    /// Mask logits at the input size from the frozen prefix.
    ///
    /// # Shapes
    ///
    /// - prefix: `[batch, grid, grid, encoder_dim]` (see [`Self::prefix`])
    /// - output: `[batch, 1, image_size, image_size]`
    pub fn forward_from_prefix(&self, prefix: Tensor<4>, adapters: &Adapters) -> Tensor<4> {
        let embeddings = self.encode_from_prefix(prefix, adapters);
        self.decode_to_input_size(embeddings, adapters)
    }

    /// The image embeddings from the frozen prefix: the remaining blocks with their
    /// adapters, then the neck.
    ///
    /// # Shapes
    ///
    /// - prefix: `[batch, grid, grid, encoder_dim]`
    /// - output: `[batch, decoder_dim, grid, grid]`
    pub fn encode_from_prefix(&self, prefix: Tensor<4>, adapters: &Adapters) -> Tensor<4> {
        let encoder = &self.sam.image_encoder;
        let depth = encoder.blocks().len();
        let mut x = prefix;
        let mut next_adapter = 0;
        for i in self.config.first_position()..depth {
            x = encoder.block_forward(i, x);
            if self.config.encoder_positions.get(next_adapter) == Some(&i) {
                x = adapters.encoder[next_adapter].forward(x);
                next_adapter += 1;
            }
        }
        encoder.neck(x)
    }

    /// Mask logits at the input size from image embeddings (prompt-free decoding, then
    /// bilinear upsampling).
    ///
    /// # Shapes
    ///
    /// - embeddings: `[batch, decoder_dim, grid, grid]`
    /// - output: `[batch, 1, image_size, image_size]`
    pub fn decode_to_input_size(&self, embeddings: Tensor<4>, adapters: &Adapters) -> Tensor<4> {
        let low_res = self.decode(embeddings, adapters);
        let size = self.image_size();
        let device = low_res.device();
        super::upsample::bilinear(low_res, [size, size], &device)
    }

    /// Mask logits at the input size.
    ///
    /// # Shapes
    ///
    /// - images: `[batch, 3, image_size, image_size]`, normalised
    /// - output: `[batch, 1, image_size, image_size]`
    pub fn forward(&self, images: Tensor<4>, adapters: &Adapters) -> Tensor<4> {
        self.forward_from_prefix(self.prefix(images), adapters)
    }

    /// The mask decoder without prompts, single-mask output, with the decoder adapters and
    /// the trainable hypernetwork when present. Mirrors `MaskDecoder.predict_masks`.
    ///
    /// # Shapes
    ///
    /// - embeddings: `[batch, decoder_dim, grid, grid]`
    /// - output: `[batch, 1, 4 * grid, 4 * grid]`
    fn decode(&self, embeddings: Tensor<4>, adapters: &Adapters) -> Tensor<4> {
        let decoder = &self.sam.mask_decoder;
        let transformer = &decoder.transformer;
        let [b, c, h, w] = embeddings.dims();

        // No points, no boxes: the tokens are the IoU token and the mask tokens.
        let (_, dense) = self.sam.prompt_encoder.forward(None, None, None);
        let image_pe = self.sam.prompt_encoder.get_dense_pe();
        let output_tokens = Tensor::cat(
            vec![
                decoder.iou_token.weight.val(),
                decoder.mask_tokens.weight.val(),
            ],
            0,
        );
        let [n_tokens, _] = output_tokens.dims();
        let tokens = output_tokens.unsqueeze_dim::<3>(0).expand([b, n_tokens, c]);
        let src = embeddings + dense.expand([b, c, h, w]);

        // The two-way transformer, with an adapter on the image stream after each layer.
        // [b, h * w, c]
        let keys_pe = image_pe.reshape([1, c, h * w]).swap_dims(1, 2);
        let mut keys = src.reshape([b, c, h * w]).swap_dims(1, 2);
        let mut queries = tokens.clone();
        for (i, layer) in transformer.layers.iter().enumerate() {
            (queries, keys) = layer.forward(queries, keys, tokens.clone(), keys_pe.clone());
            if let Some(adapter) = adapters.decoder.get(i) {
                keys = adapter.forward(keys);
            }
        }
        let q = queries.clone() + tokens;
        let k = keys.clone() + keys_pe;
        let attn_out = transformer
            .final_attn_token_to_image
            .forward(q, k, keys.clone());
        let queries = transformer.norm_final_attn.forward(queries + attn_out);

        // Single-mask output: mask token 0 through the first hypernetwork MLP.
        let src = keys.swap_dims(1, 2).reshape([b, c, h, w]);
        let upscaled = decoder.output_upscaling.forward(src);
        let [_, uc, uh, uw] = upscaled.dims();
        let mask_token = queries.narrow(1, 1, 1).reshape([b, c]);
        let hyper_in = if adapters.hypernetwork.is_empty() {
            decoder.output_hypernetworks_mlps[0].forward(mask_token)
        } else {
            adapters.hypernetwork_forward(mask_token)
        };
        hyper_in
            .reshape([b, 1, uc])
            .matmul(upscaled.reshape([b, uc, uh * uw]))
            .reshape([b, 1, uh, uw])
    }

    /// The first hypernetwork MLP's layers as `(weight [in, out], bias [out])`, to make a
    /// trainable copy with [`Adapters::with_hypernetwork`].
    pub fn hypernetwork_layers(&self) -> Vec<(Tensor<2>, Tensor<1>)> {
        self.sam.mask_decoder.output_hypernetworks_mlps[0]
            .layers
            .iter()
            .map(|l| {
                let bias = l.bias.as_ref().map(|b| b.val()).unwrap_or_else(|| {
                    Tensor::zeros([l.weight.val().dims()[1]], &l.weight.val().device())
                });
                (l.weight.val(), bias)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam::SamConfig;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    use burn::tensor::{Device, Distribution};

    #[test]
    fn untrained_adapters_give_exactly_sam() {
        // Fresh adapters (zero up-projection) everywhere, decoded without prompts, must
        // equal SAM's own forward with no prompt and the single-mask output.
        let device = Device::flex();
        let config = SamConfig::tiny_padded();
        let sam = Sam::new(&config, &device).unwrap();
        let mut adapter_config = AdapterConfig::last_k(2, config.encoder_depth).unwrap();
        adapter_config.decoder_adapters = true;
        let adapters = Adapters::new(&adapter_config, 16, 16, 2, 3, &device);
        let model = ProsModel::new(sam, adapter_config).unwrap();

        let size = config.image_size;
        let x = Tensor::<4>::random([2, 3, size, size], Distribution::Default, &device);
        let ours = model.forward(x.clone(), &adapters);
        let (low_res, _) = model.sam.forward(x, None, None, None, false);
        let theirs = interpolate(
            low_res,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size([size, size]),
        );
        assert_eq!(ours.dims(), [2, 1, size, size]);
        let diff: f32 = (ours - theirs).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }
}
