//! Official SAM checkpoint keys (`image_encoder.blocks.0.attn.qkv.weight`, ...) to modules.
//!
//! Weights trained at another input size than the configured one are resampled on the
//! host as the reference would: `pos_embed` bicubically to the new token grid, the
//! global blocks' `rel_pos` linearly (see [`super::resample`]). Windowed blocks' tables
//! depend on the window only and are taken as they are.

use burn::module::Param;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use super::common::{LayerNorm2d, MlpBlock};
use super::config::SamConfig;
use super::image_encoder::ImageEncoderViT;
use super::mask_decoder::{MaskDecoder, Mlp};
use super::prompt_encoder::PromptEncoder;
use super::resample::{bicubic_hwc, linear_rows};
use super::transformer::{Attention, TwoWayTransformer};
use super::{Sam, SamError};
use crate::weights::{Checkpoint, WeightsError};

/// Where named tensors come from: a [`Checkpoint`], or anything with the same two calls.
pub trait WeightSource {
    /// The shape of a tensor not taken yet; `None` if there is no such tensor.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Remove a tensor and return it as row-major f32, checking its shape.
    fn take(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError>;
}

impl WeightSource for Checkpoint<'_> {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        Checkpoint::shape(self, name).map(<[usize]>::to_vec)
    }

    fn take(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError> {
        Checkpoint::take(self, name, expected)
    }
}

impl Sam {
    /// Load SAM from the bytes of an official checkpoint (`.pth`) or a safetensors file,
    /// failing if the file has tensors the model does not use.
    pub fn from_bytes(config: &SamConfig, bytes: &[u8], device: &Device) -> Result<Self, SamError> {
        let mut checkpoint = Checkpoint::parse(bytes)?;
        let sam = Self::load(config, &mut checkpoint, device)?;
        checkpoint.finish()?;
        Ok(sam)
    }

    /// Load SAM from the bytes of a weights file, telling its size from the file (see
    /// [`detect_config`]); returns the model with its configuration at `image_size`.
    pub fn from_bytes_detected(
        bytes: &[u8],
        image_size: usize,
        device: &Device,
    ) -> Result<(Self, SamConfig), SamError> {
        let mut checkpoint = Checkpoint::parse(bytes)?;
        let config = detect_config(&checkpoint, image_size)?;
        let sam = Self::load(&config, &mut checkpoint, device)?;
        checkpoint.finish()?;
        Ok((sam, config))
    }

    /// Load SAM's tensors from `source`, leaving any others there.
    pub fn load<S: WeightSource>(
        config: &SamConfig,
        source: &mut S,
        device: &Device,
    ) -> Result<Self, SamError> {
        let mut sam = Sam::new(config, device)?;
        let mut loader = Loader::new(config, source, device);
        loader.check_depth()?;
        loader.image_encoder(&mut sam.image_encoder, config)?;
        loader.prompt_encoder(&mut sam.prompt_encoder)?;
        loader.mask_decoder(&mut sam.mask_decoder)?;
        log::info!(
            "loaded SAM {} weights for {}x{} input",
            config.name,
            config.image_size,
            config.image_size
        );
        Ok(sam)
    }
}

/// The configuration of the model whose weights `source` holds, at `image_size`: the
/// official ViT-B, ViT-L or ViT-H, or one of the tiny test models, told apart by the
/// width of the patch embedding and the number of image encoder blocks.
pub fn detect_config<S: WeightSource>(
    source: &S,
    image_size: usize,
) -> Result<SamConfig, SamError> {
    let width = source
        .shape("image_encoder.patch_embed.proj.weight")
        .and_then(|s| s.first().copied())
        .unwrap_or(0);
    let depth = (0..)
        .take_while(|i| {
            source
                .shape(&format!("image_encoder.blocks.{i}.norm1.weight"))
                .is_some()
        })
        .count();
    [
        SamConfig::vit_b(),
        SamConfig::vit_l(),
        SamConfig::vit_h(),
        SamConfig::tiny_padded(),
        SamConfig::tiny_unpadded(),
    ]
    .into_iter()
    .find(|c| c.encoder_embed_dim == width && c.encoder_depth == depth)
    .map(|c| c.with_image_size(image_size))
    .ok_or(SamError::UnknownModel { width, depth })
}

/// Which official model an image encoder width belongs to.
fn model_of_width(width: usize) -> Option<&'static str> {
    match width {
        768 => Some("ViT-B"),
        1024 => Some("ViT-L"),
        1280 => Some("ViT-H"),
        _ => None,
    }
}

struct Loader<'s, S> {
    source: &'s mut S,
    device: Device,
    model: String,
    /// Image encoder blocks of the configured model.
    depth: usize,
    /// What the file looks like when it is not the configured model (or empty).
    hint: String,
}

impl<'s, S: WeightSource> Loader<'s, S> {
    fn new(config: &SamConfig, source: &'s mut S, device: &Device) -> Self {
        let width = source
            .shape("image_encoder.patch_embed.proj.weight")
            .and_then(|s| s.first().copied());
        let hint = match width.and_then(model_of_width) {
            Some(found) if width != Some(config.encoder_embed_dim) => {
                format!(": this looks like a {found} checkpoint")
            }
            _ => String::new(),
        };
        Self {
            source,
            device: device.clone(),
            model: config.name.clone(),
            depth: config.encoder_depth,
            hint,
        }
    }

    fn check_depth(&self) -> Result<(), SamError> {
        let expected = self.depth;
        let has = |i: usize| {
            self.source
                .shape(&format!("image_encoder.blocks.{i}.norm1.weight"))
                .is_some()
        };
        if expected == 0 || !has(0) {
            return Ok(()); // the first take will name what is missing
        }
        let mut found = 1;
        while has(found) {
            found += 1;
        }
        if found != expected {
            return Err(SamError::Depth {
                found,
                expected,
                model: self.model.clone(),
                hint: self.hint.clone(),
            });
        }
        Ok(())
    }

    /// Take a tensor, checking its shape against the model's first for a clear message.
    fn values(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, SamError> {
        if let Some(found) = self.source.shape(name)
            && found != expected
        {
            return Err(self.shape_error(name, found, expected));
        }
        Ok(self.source.take(name, expected)?)
    }

    fn shape_error(&self, name: &str, found: Vec<usize>, expected: &[usize]) -> SamError {
        SamError::Shape {
            name: name.to_string(),
            found,
            expected: expected.to_vec(),
            model: self.model.clone(),
            hint: self.hint.clone(),
        }
    }

    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>, SamError> {
        let values = self.values(name, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }

    fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<D>>, SamError> {
        Ok(Param::from_tensor(self.tensor(name, shape)?))
    }

    /// PyTorch stores `[out, in]`; burn's `Linear` holds `[in, out]`.
    fn linear(&mut self, prefix: &str, linear: &mut Linear) -> Result<(), SamError> {
        let [d_in, d_out] = linear.weight.lazy_shape().dims::<2>();
        let values = self.values(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let mut transposed = vec![0f32; values.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                transposed[i * d_out + o] = values[o * d_in + i];
            }
        }
        linear.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(transposed, [d_in, d_out]),
            &self.device,
        ));
        if linear.bias.is_some() {
            linear.bias = Some(self.param(&format!("{prefix}.bias"), [d_out])?);
        }
        Ok(())
    }

    /// Convolution weights are `[out, in, kh, kw]` in both.
    fn conv2d(&mut self, prefix: &str, conv: &mut Conv2d) -> Result<(), SamError> {
        let shape = conv.weight.lazy_shape().dims::<4>();
        conv.weight = self.param(&format!("{prefix}.weight"), shape)?;
        if conv.bias.is_some() {
            conv.bias = Some(self.param(&format!("{prefix}.bias"), [shape[0]])?);
        }
        Ok(())
    }

    /// Transposed convolution weights are `[in, out, kh, kw]` in both.
    fn conv_transpose2d(
        &mut self,
        prefix: &str,
        conv: &mut ConvTranspose2d,
    ) -> Result<(), SamError> {
        let shape = conv.weight.lazy_shape().dims::<4>();
        conv.weight = self.param(&format!("{prefix}.weight"), shape)?;
        if conv.bias.is_some() {
            conv.bias = Some(self.param(&format!("{prefix}.bias"), [shape[1]])?);
        }
        Ok(())
    }

    fn layer_norm(&mut self, prefix: &str, norm: &mut LayerNorm) -> Result<(), SamError> {
        let [d] = norm.gamma.lazy_shape().dims::<1>();
        norm.gamma = self.param(&format!("{prefix}.weight"), [d])?;
        norm.beta = Some(self.param(&format!("{prefix}.bias"), [d])?);
        Ok(())
    }

    fn layer_norm2d(&mut self, prefix: &str, norm: &mut LayerNorm2d) -> Result<(), SamError> {
        let [d] = norm.weight.lazy_shape().dims::<1>();
        norm.weight = self.param(&format!("{prefix}.weight"), [d])?;
        norm.bias = self.param(&format!("{prefix}.bias"), [d])?;
        Ok(())
    }

    fn embedding(&mut self, prefix: &str, embedding: &mut Embedding) -> Result<(), SamError> {
        let shape = embedding.weight.lazy_shape().dims::<2>();
        embedding.weight = self.param(&format!("{prefix}.weight"), shape)?;
        Ok(())
    }

    fn mlp_block(&mut self, prefix: &str, mlp: &mut MlpBlock) -> Result<(), SamError> {
        self.linear(&format!("{prefix}.lin1"), &mut mlp.lin1)?;
        self.linear(&format!("{prefix}.lin2"), &mut mlp.lin2)
    }

    /// `pos_embed`, resampled bicubically if the file's grid differs.
    fn pos_embed(
        &mut self,
        name: &str,
        expected: [usize; 4],
    ) -> Result<Param<Tensor<4>>, SamError> {
        let [_, grid, _, dim] = expected;
        let values = match self.source.shape(name) {
            Some(found)
                if found.len() == 4
                    && found[0] == 1
                    && found[1] == found[2]
                    && found[3] == dim
                    && found[1] != grid =>
            {
                let from = found[1];
                log::info!(
                    "resampling {name} from {from}x{from} to {grid}x{grid} tokens (bicubic)"
                );
                let values = self.source.take(name, &found)?;
                bicubic_hwc(&values, (from, from), dim, (grid, grid))
            }
            _ => self.values(name, &expected)?,
        };
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(values, expected),
            &self.device,
        )))
    }

    /// A global block's `rel_pos`, resampled linearly if the file's length differs.
    fn global_rel_pos(
        &mut self,
        name: &str,
        expected: [usize; 2],
    ) -> Result<Param<Tensor<2>>, SamError> {
        let [len, head_dim] = expected;
        let values = match self.source.shape(name) {
            Some(found)
                if found.len() == 2
                    && found[1] == head_dim
                    && found[0] != len
                    && found[0] % 2 == 1 =>
            {
                log::debug!(
                    "resampling {name} from {} to {len} positions (linear)",
                    found[0]
                );
                let values = self.source.take(name, &found)?;
                linear_rows(&values, found[0], head_dim, len)
            }
            _ => self.values(name, &expected)?,
        };
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(values, expected),
            &self.device,
        )))
    }

    fn image_encoder(
        &mut self,
        encoder: &mut ImageEncoderViT,
        config: &SamConfig,
    ) -> Result<(), SamError> {
        let p = "image_encoder";
        self.conv2d(
            &format!("{p}.patch_embed.proj"),
            &mut encoder.patch_embed.proj,
        )?;
        let pos_shape = encoder.pos_embed.lazy_shape().dims::<4>();
        encoder.pos_embed = self.pos_embed(&format!("{p}.pos_embed"), pos_shape)?;
        for (i, block) in encoder.blocks.iter_mut().enumerate() {
            let b = format!("{p}.blocks.{i}");
            self.layer_norm(&format!("{b}.norm1"), &mut block.norm1)?;
            self.linear(&format!("{b}.attn.qkv"), &mut block.attn.qkv)?;
            self.linear(&format!("{b}.attn.proj"), &mut block.attn.proj)?;
            let global = config.encoder_global_attn_indexes.contains(&i);
            for (axis, rel_pos) in [
                ("h", &mut block.attn.rel_pos_h),
                ("w", &mut block.attn.rel_pos_w),
            ] {
                let name = format!("{b}.attn.rel_pos_{axis}");
                let shape = rel_pos.lazy_shape().dims::<2>();
                *rel_pos = if global {
                    self.global_rel_pos(&name, shape)?
                } else {
                    self.param(&name, shape)?
                };
            }
            self.layer_norm(&format!("{b}.norm2"), &mut block.norm2)?;
            self.mlp_block(&format!("{b}.mlp"), &mut block.mlp)?;
        }
        self.conv2d(&format!("{p}.neck.0"), &mut encoder.neck.conv1)?;
        self.layer_norm2d(&format!("{p}.neck.1"), &mut encoder.neck.ln1)?;
        self.conv2d(&format!("{p}.neck.2"), &mut encoder.neck.conv2)?;
        self.layer_norm2d(&format!("{p}.neck.3"), &mut encoder.neck.ln2)
    }

    fn prompt_encoder(&mut self, prompt: &mut PromptEncoder) -> Result<(), SamError> {
        let p = "prompt_encoder";
        let g = &mut prompt.pe_layer.positional_encoding_gaussian_matrix;
        let shape = g.dims();
        *g = self.tensor(
            &format!("{p}.pe_layer.positional_encoding_gaussian_matrix"),
            shape,
        )?;
        for (i, e) in prompt.point_embeddings.iter_mut().enumerate() {
            self.embedding(&format!("{p}.point_embeddings.{i}"), e)?;
        }
        self.embedding(
            &format!("{p}.not_a_point_embed"),
            &mut prompt.not_a_point_embed,
        )?;
        let m = &mut prompt.mask_downscaling;
        self.conv2d(&format!("{p}.mask_downscaling.0"), &mut m.conv1)?;
        self.layer_norm2d(&format!("{p}.mask_downscaling.1"), &mut m.ln1)?;
        self.conv2d(&format!("{p}.mask_downscaling.3"), &mut m.conv2)?;
        self.layer_norm2d(&format!("{p}.mask_downscaling.4"), &mut m.ln2)?;
        self.conv2d(&format!("{p}.mask_downscaling.6"), &mut m.conv3)?;
        self.embedding(&format!("{p}.no_mask_embed"), &mut prompt.no_mask_embed)
    }

    fn attention(&mut self, prefix: &str, attn: &mut Attention) -> Result<(), SamError> {
        self.linear(&format!("{prefix}.q_proj"), &mut attn.q_proj)?;
        self.linear(&format!("{prefix}.k_proj"), &mut attn.k_proj)?;
        self.linear(&format!("{prefix}.v_proj"), &mut attn.v_proj)?;
        self.linear(&format!("{prefix}.out_proj"), &mut attn.out_proj)
    }

    fn transformer(&mut self, p: &str, t: &mut TwoWayTransformer) -> Result<(), SamError> {
        for (i, layer) in t.layers.iter_mut().enumerate() {
            let l = format!("{p}.layers.{i}");
            self.attention(&format!("{l}.self_attn"), &mut layer.self_attn)?;
            self.layer_norm(&format!("{l}.norm1"), &mut layer.norm1)?;
            self.attention(
                &format!("{l}.cross_attn_token_to_image"),
                &mut layer.cross_attn_token_to_image,
            )?;
            self.layer_norm(&format!("{l}.norm2"), &mut layer.norm2)?;
            self.mlp_block(&format!("{l}.mlp"), &mut layer.mlp)?;
            self.layer_norm(&format!("{l}.norm3"), &mut layer.norm3)?;
            self.layer_norm(&format!("{l}.norm4"), &mut layer.norm4)?;
            self.attention(
                &format!("{l}.cross_attn_image_to_token"),
                &mut layer.cross_attn_image_to_token,
            )?;
        }
        self.attention(
            &format!("{p}.final_attn_token_to_image"),
            &mut t.final_attn_token_to_image,
        )?;
        self.layer_norm(&format!("{p}.norm_final_attn"), &mut t.norm_final_attn)
    }

    fn mlp(&mut self, prefix: &str, mlp: &mut Mlp) -> Result<(), SamError> {
        for (i, layer) in mlp.layers.iter_mut().enumerate() {
            self.linear(&format!("{prefix}.layers.{i}"), layer)?;
        }
        Ok(())
    }

    fn mask_decoder(&mut self, decoder: &mut MaskDecoder) -> Result<(), SamError> {
        let p = "mask_decoder";
        self.transformer(&format!("{p}.transformer"), &mut decoder.transformer)?;
        self.embedding(&format!("{p}.iou_token"), &mut decoder.iou_token)?;
        self.embedding(&format!("{p}.mask_tokens"), &mut decoder.mask_tokens)?;
        let u = &mut decoder.output_upscaling;
        self.conv_transpose2d(&format!("{p}.output_upscaling.0"), &mut u.conv1)?;
        self.layer_norm2d(&format!("{p}.output_upscaling.1"), &mut u.ln)?;
        self.conv_transpose2d(&format!("{p}.output_upscaling.3"), &mut u.conv2)?;
        for (i, mlp) in decoder.output_hypernetworks_mlps.iter_mut().enumerate() {
            self.mlp(&format!("{p}.output_hypernetworks_mlps.{i}"), mlp)?;
        }
        self.mlp(
            &format!("{p}.iou_prediction_head"),
            &mut decoder.iou_prediction_head,
        )
    }
}
