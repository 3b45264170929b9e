//! Bottleneck adapters: the only weights PROS learns.
//!
//! An [`Adapter`] maps `x` to `x + up(gelu(down(x)))`, with `down: dim → dim/4`,
//! `up: dim/4 → dim` and the exact (erf) GELU. `up` starts at zero, so an untrained adapter
//! is the identity and an untrained PROS model equals SAM.
//!
//! [`Adapters`] holds everything trainable:
//!
//! - one adapter after each chosen image encoder block (by default the last K);
//! - optionally one 256-wide adapter on the image stream after each layer of the mask
//!   decoder's two-way transformer;
//! - optionally a trainable copy of the mask decoder's first hypernetwork MLP (the one that
//!   makes the single-mask output), off by default.
//!
//! Adapters live on the autodiff device and SAM on the plain one, so SAM's tensors enter
//! the graph as constants and get no gradient.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData, activation};
use serde::{Deserialize, Serialize};

use super::ProsError;
use super::random::SeededRng;
use crate::sam::common::linear_rows;

/// The bottleneck is the width divided by this.
pub const REDUCTION: usize = 4;

/// Where adapters go and what else is trained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// Image encoder blocks followed by an adapter, strictly increasing.
    pub encoder_positions: Vec<usize>,
    /// One adapter after each layer of the mask decoder's two-way transformer.
    pub decoder_adapters: bool,
    /// Train the mask decoder's first hypernetwork MLP too.
    pub train_hypernetwork: bool,
}

impl AdapterConfig {
    /// Adapters after the last `k` of `depth` image encoder blocks (the paper's placement),
    /// nothing else trained.
    pub fn last_k(k: usize, depth: usize) -> Result<Self, ProsError> {
        if k == 0 || k > depth {
            return Err(ProsError::AdapterCount { k, depth });
        }
        Ok(Self {
            encoder_positions: (depth - k..depth).collect(),
            decoder_adapters: false,
            train_hypernetwork: false,
        })
    }

    /// Adapters after the given blocks; they must be distinct and below `depth`.
    pub fn at_positions(mut positions: Vec<usize>, depth: usize) -> Result<Self, ProsError> {
        positions.sort_unstable();
        positions.dedup();
        if positions.is_empty() || positions.iter().any(|&p| p >= depth) {
            return Err(ProsError::AdapterPositions { positions, depth });
        }
        Ok(Self {
            encoder_positions: positions,
            decoder_adapters: false,
            train_hypernetwork: false,
        })
    }

    /// K adapters after the last K blocks, or after `positions` when that is not empty,
    /// with the mask decoder adapters and the hypernetwork as asked.
    pub fn choose(
        k: usize,
        positions: &[usize],
        decoder_adapters: bool,
        train_hypernetwork: bool,
        depth: usize,
    ) -> Result<Self, ProsError> {
        let mut config = if positions.is_empty() {
            Self::last_k(k, depth)?
        } else {
            Self::at_positions(positions.to_vec(), depth)?
        };
        config.decoder_adapters = decoder_adapters;
        config.train_hypernetwork = train_hypernetwork;
        Ok(config)
    }

    /// The number of image encoder adapters, K.
    pub fn k(&self) -> usize {
        self.encoder_positions.len()
    }

    /// The first block with an adapter: blocks before it are a frozen prefix.
    pub fn first_position(&self) -> usize {
        self.encoder_positions.first().copied().unwrap_or(0)
    }

    /// The exact number of learnable scalars for a SAM of these sizes.
    ///
    /// - `encoder_dim`: width of the image encoder (768 for ViT-B);
    /// - `decoder_dim`, `decoder_depth`: width and layers of the two-way transformer
    ///   (256 and 2 for every official SAM);
    /// - hypernetwork: three layers `decoder_dim → decoder_dim → decoder_dim → decoder_dim/8`.
    pub fn learnable_parameters(
        &self,
        encoder_dim: usize,
        decoder_dim: usize,
        decoder_depth: usize,
    ) -> usize {
        let mut total = self.k() * Adapter::parameter_count(encoder_dim);
        if self.decoder_adapters {
            total += decoder_depth * Adapter::parameter_count(decoder_dim);
        }
        if self.train_hypernetwork {
            let d = decoder_dim;
            total += 2 * (d * d + d) + d * (d / 8) + d / 8;
        }
        total
    }
}

/// One bottleneck adapter: `x + up(gelu(down(x)))`.
#[derive(Module, Debug)]
pub struct Adapter {
    /// `[dim, dim / 4]`
    pub down_weight: Param<Tensor<2>>,
    /// `[dim / 4]`
    pub down_bias: Param<Tensor<1>>,
    /// `[dim / 4, dim]`, zero at initialisation.
    pub up_weight: Param<Tensor<2>>,
    /// `[dim]`, zero at initialisation.
    pub up_bias: Param<Tensor<1>>,
}

impl Adapter {
    /// A fresh adapter: `down` drawn as PyTorch's `nn.Linear` default
    /// (uniform in `±1/sqrt(dim)` for weight and bias), `up` all zero.
    ///
    /// The weight values are drawn in PyTorch's `[out, in]` order and transposed, so a
    /// reference implementation reading the same stream gets the same adapter.
    pub fn new(dim: usize, rng: &mut SeededRng, device: &Device) -> Self {
        let hidden = dim / REDUCTION;
        let bound = 1.0 / (dim as f32).sqrt();

        // Drawn as [hidden, dim] (PyTorch's layout), stored as [dim, hidden].
        let drawn: Vec<f32> = (0..hidden * dim)
            .map(|_| rng.uniform(-bound, bound))
            .collect();
        let mut down = vec![0.0; dim * hidden];
        for o in 0..hidden {
            for i in 0..dim {
                down[i * hidden + o] = drawn[o * dim + i];
            }
        }
        let down_bias: Vec<f32> = (0..hidden).map(|_| rng.uniform(-bound, bound)).collect();

        Self::from_values(
            dim,
            [down, down_bias, vec![0.0; hidden * dim], vec![0.0; dim]],
            device,
        )
    }

    /// An adapter from values in this module's layout:
    /// `[down_weight [dim, hidden], down_bias [hidden], up_weight [hidden, dim], up_bias [dim]]`.
    pub fn from_values(dim: usize, values: [Vec<f32>; 4], device: &Device) -> Self {
        let hidden = dim / REDUCTION;
        let [dw, db, uw, ub] = values;
        let param2 = |v: Vec<f32>, shape: [usize; 2]| {
            Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), device))
        };
        let param1 = |v: Vec<f32>| {
            let n = v.len();
            Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), device))
        };
        Self {
            down_weight: param2(dw, [dim, hidden]),
            down_bias: param1(db),
            up_weight: param2(uw, [hidden, dim]),
            up_bias: param1(ub),
        }
    }

    /// Learnable scalars of one adapter of width `dim`:
    /// `dim*(dim/4) + dim/4 + (dim/4)*dim + dim`.
    pub fn parameter_count(dim: usize) -> usize {
        let hidden = dim / REDUCTION;
        dim * hidden + hidden + hidden * dim + dim
    }

    /// Apply the adapter with its residual.
    ///
    /// # Shapes
    ///
    /// - x: `[..., dim]`, e.g. `[batch, grid, grid, dim]` in the image encoder or
    ///   `[batch, tokens, dim]` in the mask decoder
    /// - output: the same shape
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let hidden = linear_rows(
            x.clone(),
            self.down_weight.val(),
            Some(self.down_bias.val()),
        );
        let hidden = activation::gelu(hidden);
        let update = linear_rows(hidden, self.up_weight.val(), Some(self.up_bias.val()));
        x + update
    }
}

/// One linear layer of the trainable hypernetwork copy, in burn's `[in, out]` layout.
#[derive(Module, Debug)]
pub struct TrainableLinear {
    /// `[in, out]`
    pub weight: Param<Tensor<2>>,
    /// `[out]`
    pub bias: Param<Tensor<1>>,
}

/// Everything PROS trains; see the module docs.
#[derive(Module, Debug)]
pub struct Adapters {
    /// One adapter per entry of [`AdapterConfig::encoder_positions`], in the same order.
    pub encoder: Vec<Adapter>,
    /// One adapter per two-way transformer layer, or none.
    pub decoder: Vec<Adapter>,
    /// The trainable copy of the first hypernetwork MLP's layers (ReLU between them), or
    /// empty to use SAM's frozen one.
    pub hypernetwork: Vec<TrainableLinear>,
}

impl Adapters {
    /// Fresh adapters for `config`, drawn from `seed` in a fixed order: the image encoder
    /// adapters by position, then the mask decoder adapters by layer.
    ///
    /// The hypernetwork copy is not made here (it needs SAM's weights); see
    /// [`Adapters::with_hypernetwork`].
    pub fn new(
        config: &AdapterConfig,
        encoder_dim: usize,
        decoder_dim: usize,
        decoder_depth: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = SeededRng::new(seed);
        let encoder = config
            .encoder_positions
            .iter()
            .map(|_| Adapter::new(encoder_dim, &mut rng, device))
            .collect();
        let decoder = if config.decoder_adapters {
            (0..decoder_depth)
                .map(|_| Adapter::new(decoder_dim, &mut rng, device))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            encoder,
            decoder,
            hypernetwork: Vec::new(),
        }
    }

    /// Add a trainable copy of a hypernetwork MLP given as `(weight [in, out], bias [out])`
    /// tensors; the copies are new leaves on `device`, so gradients stop at them.
    pub fn with_hypernetwork(
        mut self,
        layers: Vec<(Tensor<2>, Tensor<1>)>,
        device: &Device,
    ) -> Self {
        self.hypernetwork = layers
            .into_iter()
            .map(|(w, b)| TrainableLinear {
                weight: Param::from_tensor(w.to_device(device).detach()),
                bias: Param::from_tensor(b.to_device(device).detach()),
            })
            .collect();
        self
    }

    /// Run the trainable hypernetwork copy (ReLU between layers, none after the last).
    ///
    /// # Shapes
    ///
    /// - x: `[batch, decoder_dim]`
    /// - output: `[batch, decoder_dim / 8]`
    pub fn hypernetwork_forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.hypernetwork.len().saturating_sub(1);
        let mut x = x;
        for (i, layer) in self.hypernetwork.iter().enumerate() {
            x = burn::tensor::module::linear(x, layer.weight.val(), Some(layer.bias.val()));
            if i < last {
                x = activation::relu(x);
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_b_parameter_counts() {
        assert_eq!(Adapter::parameter_count(768), 295_872);
        assert_eq!(Adapter::parameter_count(256), 33_088);
        for k in [1, 4, 12] {
            let config = AdapterConfig::last_k(k, 12).unwrap();
            assert_eq!(config.learnable_parameters(768, 256, 2), k * 295_872);
        }
        let mut config = AdapterConfig::last_k(12, 12).unwrap();
        config.decoder_adapters = true;
        config.train_hypernetwork = true;
        let hyper = 256 * 256 + 256 + 256 * 256 + 256 + 256 * 32 + 32;
        assert_eq!(
            config.learnable_parameters(768, 256, 2),
            12 * 295_872 + 2 * 33_088 + hyper
        );
    }

    #[test]
    fn the_count_matches_the_module() {
        let device = Device::flex();
        let mut config = AdapterConfig::at_positions(vec![3, 1], 4).unwrap();
        assert_eq!(config.encoder_positions, vec![1, 3]);
        config.decoder_adapters = true;
        let adapters = Adapters::new(&config, 32, 16, 2, 0, &device);
        assert_eq!(
            adapters.num_params(),
            config.learnable_parameters(32, 16, 2)
        );
    }

    #[test]
    fn bad_counts_and_positions_are_errors() {
        assert!(AdapterConfig::last_k(0, 12).is_err());
        assert!(AdapterConfig::last_k(13, 12).is_err());
        assert!(AdapterConfig::at_positions(vec![12], 12).is_err());
        assert!(AdapterConfig::at_positions(vec![], 12).is_err());
        assert_eq!(
            AdapterConfig::last_k(3, 12).unwrap().encoder_positions,
            vec![9, 10, 11]
        );
    }

    #[test]
    fn a_fresh_adapter_is_the_identity_and_a_trained_one_is_not() {
        let device = Device::flex();
        let mut rng = SeededRng::new(1);
        let adapter = Adapter::new(8, &mut rng, &device);
        let x = Tensor::<3>::random([2, 3, 8], burn::tensor::Distribution::Default, &device);
        let y = adapter.forward(x.clone());
        let diff: f32 = (y - x.clone()).abs().max().into_scalar();
        assert_eq!(diff, 0.0);

        let mut values = [vec![0.1; 16], vec![0.0; 2], vec![0.5; 16], vec![0.0; 8]];
        values[0][0] = 1.0;
        let changed = Adapter::from_values(8, values, &device);
        let diff: f32 = (changed.forward(x.clone()) - x).abs().max().into_scalar();
        assert!(diff > 1e-3);
    }

    #[test]
    fn forward_matches_a_hand_computation() {
        // dim 4, hidden 1: down = [1, 0, 0, 0], bias 0; up = [1, 2, 3, 4], bias 0.5.
        let device = Device::flex();
        let adapter = Adapter::from_values(
            4,
            [
                vec![1.0, 0.0, 0.0, 0.0],
                vec![0.0],
                vec![1.0, 2.0, 3.0, 4.0],
                vec![0.5; 4],
            ],
            &device,
        );
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 0.0], [1, 4]),
            &device,
        );
        let y = adapter.forward(x).into_data().try_to_vec::<f32>().unwrap();
        // gelu(1) = 0.5 * (1 + erf(1/sqrt 2)) = 0.841344746...
        let g = 0.841_344_7_f32;
        let expected = [1.0 + g + 0.5, 2.0 * g + 0.5, 3.0 * g + 0.5, 4.0 * g + 0.5];
        for (a, b) in y.iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{y:?} vs {expected:?}");
        }
    }

    #[test]
    fn frozen_plain_weights_get_no_gradient() {
        // A frozen layer built on the plain device, an adapter on the autodiff device:
        // the frozen weight enters the graph as a constant.
        let plain = Device::flex();
        let autodiff = plain.clone().autodiff();
        let frozen = burn::nn::LinearConfig::new(8, 8).init(&plain);
        let mut rng = SeededRng::new(2);
        let mut adapter = Adapter::new(8, &mut rng, &autodiff);
        adapter.up_weight = Param::from_tensor(Tensor::full([2, 8], 0.1, &autodiff));

        let x = Tensor::<2>::random([3, 8], burn::tensor::Distribution::Default, &plain);
        let loss = frozen.forward(adapter.forward(frozen.forward(x))).sum();
        let grads = loss.backward();

        assert!(!frozen.weight.val().is_tracked());
        assert!(frozen.weight.val().grad(&grads).is_none());
        assert!(adapter.down_weight.val().grad(&grads).is_some());
        assert!(adapter.up_weight.val().grad(&grads).is_some());
    }

    #[test]
    fn seeds_decide_the_initialisation() {
        let device = Device::flex();
        let config = AdapterConfig::last_k(2, 4).unwrap();
        let read = |seed| {
            let a = Adapters::new(&config, 16, 16, 2, seed, &device);
            a.encoder[1]
                .down_weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(read(5), read(5));
        assert_ne!(read(5), read(6));
    }
}
