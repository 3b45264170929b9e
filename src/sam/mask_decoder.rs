//! The mask decoder: output tokens and prompts attend to the image embedding through
//! the two-way transformer; hypernetwork MLPs turn the mask tokens into weights over
//! the upscaled embedding, and an MLP head predicts each mask's IoU. As the
//! reference's `mask_decoder.py`.

use burn::module::Module;
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::{Device, Tensor};

use super::common::LayerNorm2d;
use super::config::SamConfig;
use super::transformer::TwoWayTransformer;

/// A stack of linear layers with ReLU between them.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The layers.
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// An MLP with random weights: `input -> hidden -> ... -> output`.
    pub fn new(input: usize, hidden: usize, output: usize, depth: usize, device: &Device) -> Self {
        let layers = (0..depth)
            .map(|i| {
                let d_in = if i == 0 { input } else { hidden };
                let d_out = if i + 1 == depth { output } else { hidden };
                LinearConfig::new(d_in, d_out).init(device)
            })
            .collect();
        Self { layers }
    }

    /// # Shapes
    /// - x: `[batch, input]`
    /// - output: `[batch, output]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |x, (i, layer)| {
            let x = layer.forward(x);
            if i < last { relu(x) } else { x }
        })
    }
}

/// Upscaling of the image embedding by 4: two transposed convolutions
/// (checkpoint keys `output_upscaling.0`, `.1` and `.3`).
#[derive(Module, Debug)]
pub struct OutputUpscaling {
    /// `dim -> dim / 4`, 2x2 stride 2.
    pub conv1: ConvTranspose2d,
    /// LayerNorm2d after `conv1`.
    pub ln: LayerNorm2d,
    /// `dim / 4 -> dim / 8`, 2x2 stride 2.
    pub conv2: ConvTranspose2d,
}

impl OutputUpscaling {
    /// # Shapes
    /// - x: `[batch, dim, grid, grid]`
    /// - output: `[batch, dim / 8, 4 * grid, 4 * grid]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = gelu(self.ln.forward(self.conv1.forward(x)));
        gelu(self.conv2.forward(x))
    }
}

/// SAM's mask decoder.
#[derive(Module, Debug)]
pub struct MaskDecoder {
    /// The two-way transformer.
    pub transformer: TwoWayTransformer,
    /// The IoU output token.
    pub iou_token: Embedding,
    /// One output token per mask (single-mask output first).
    pub mask_tokens: Embedding,
    /// Upscaling of the image embedding.
    pub output_upscaling: OutputUpscaling,
    /// One hypernetwork MLP per mask token.
    pub output_hypernetworks_mlps: Vec<Mlp>,
    /// Predicts the IoU of every mask.
    pub iou_prediction_head: Mlp,
    /// Width of the tokens.
    pub transformer_dim: usize,
}

impl MaskDecoder {
    /// A mask decoder with random weights.
    pub fn new(config: &SamConfig, device: &Device) -> Self {
        let dim = config.prompt_embed_dim;
        let masks = config.num_mask_tokens();
        Self {
            transformer: TwoWayTransformer::new(
                config.decoder_depth,
                dim,
                config.decoder_num_heads,
                config.decoder_mlp_dim,
                device,
            ),
            iou_token: EmbeddingConfig::new(1, dim).init(device),
            mask_tokens: EmbeddingConfig::new(masks, dim).init(device),
            output_upscaling: OutputUpscaling {
                conv1: ConvTranspose2dConfig::new([dim, dim / 4], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
                ln: LayerNorm2d::new(dim / 4, device),
                conv2: ConvTranspose2dConfig::new([dim / 4, dim / 8], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
            },
            output_hypernetworks_mlps: (0..masks)
                .map(|_| Mlp::new(dim, dim, dim / 8, 3, device))
                .collect(),
            iou_prediction_head: Mlp::new(
                dim,
                config.iou_head_hidden_dim,
                masks,
                config.iou_head_depth,
                device,
            ),
            transformer_dim: dim,
        }
    }

    /// Predict masks and their IoU from the image embeddings and the prompt embeddings.
    ///
    /// One image with several prompt sets gives one prediction per prompt set (the image
    /// embedding is repeated); one prompt set with several images gives one prediction per
    /// image (the prompts are broadcast), as the reference does.
    ///
    /// With `multimask_output` the 3 disambiguating masks are returned, else the single one.
    ///
    /// # Shapes
    /// - image_embeddings: `[images, dim, grid, grid]`
    /// - image_pe: `[1, dim, grid, grid]`
    /// - sparse_prompt_embeddings: `[prompts, tokens, dim]` (`None`: no points nor boxes)
    /// - dense_prompt_embeddings: `[prompts, dim, grid, grid]`
    /// - output: low-res mask logits `[batch, masks, 4 * grid, 4 * grid]` and IoU
    ///   `[batch, masks]`, where `batch = max(images, prompts)`
    ///
    /// # Panics
    /// If both `images` and `prompts` exceed 1 (the reference fails there as well).
    pub fn forward(
        &self,
        image_embeddings: Tensor<4>,
        image_pe: Tensor<4>,
        sparse_prompt_embeddings: Option<Tensor<3>>,
        dense_prompt_embeddings: Tensor<4>,
        multimask_output: bool,
    ) -> (Tensor<4>, Tensor<2>) {
        let (masks, iou_pred) = self.predict_masks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
        );
        let [b, m, h, w] = masks.dims();
        let range = if multimask_output { 1..m } else { 0..1 };
        (
            masks.slice([0..b, range.clone(), 0..h, 0..w]),
            iou_pred.slice([0..b, range]),
        )
    }

    /// All masks (single-mask output first) and their IoU; see [`Self::forward`].
    ///
    /// # Shapes
    /// - output: `[batch, num_mask_tokens, 4 * grid, 4 * grid]` and `[batch, num_mask_tokens]`
    pub fn predict_masks(
        &self,
        image_embeddings: Tensor<4>,
        image_pe: Tensor<4>,
        sparse_prompt_embeddings: Option<Tensor<3>>,
        dense_prompt_embeddings: Tensor<4>,
    ) -> (Tensor<4>, Tensor<2>) {
        let [images, c, h, w] = image_embeddings.dims();
        let [prompts, ..] = dense_prompt_embeddings.dims();
        assert!(
            images == 1 || prompts == 1,
            "the mask decoder takes one image with {prompts} prompt sets or one prompt set \
             with {images} images, not both"
        );
        let b = images.max(prompts);
        let num_mask_tokens = self.output_hypernetworks_mlps.len();

        // [b, 1 + masks + prompt tokens, dim]
        let output_tokens = Tensor::cat(
            vec![self.iou_token.weight.val(), self.mask_tokens.weight.val()],
            0,
        );
        let [n_out, _] = output_tokens.dims();
        let output_tokens = output_tokens
            .unsqueeze_dim::<3>(0)
            .expand([prompts, n_out, c]);
        let tokens = match sparse_prompt_embeddings {
            Some(sparse) => Tensor::cat(vec![output_tokens, sparse], 1),
            None => output_tokens,
        };
        let [_, n_tokens, _] = tokens.dims();
        let tokens = tokens.expand([b, n_tokens, c]);

        // Per-image data repeated per prompt set (or prompts per image).
        let src =
            image_embeddings.expand([b, c, h, w]) + dense_prompt_embeddings.expand([b, c, h, w]);
        let pos_src = image_pe.expand([b, c, h, w]);

        let (hs, src) = self.transformer.forward(src, pos_src, tokens);
        let iou_token_out = hs.clone().narrow(1, 0, 1).reshape([b, c]);
        let mask_tokens_out = hs.narrow(1, 1, num_mask_tokens);

        let src = src.swap_dims(1, 2).reshape([b, c, h, w]);
        let upscaled = self.output_upscaling.forward(src);
        let [_, uc, uh, uw] = upscaled.dims();
        let hyper_in = Tensor::stack(
            self.output_hypernetworks_mlps
                .iter()
                .enumerate()
                .map(|(i, mlp)| {
                    mlp.forward(mask_tokens_out.clone().narrow(1, i, 1).reshape([b, c]))
                })
                .collect(),
            1,
        );
        let masks = hyper_in
            .matmul(upscaled.reshape([b, uc, uh * uw]))
            .reshape([b, num_mask_tokens, uh, uw]);

        let iou_pred = self.iou_prediction_head.forward(iou_token_out);
        (masks, iou_pred)
    }
}
