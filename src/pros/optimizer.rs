//! AdamW as PyTorch defines it by default.
//!
//! burn's `AdamWConfig` defaults differ from PyTorch's (epsilon 1e-5 against 1e-8, weight
//! decay 1e-4 against 0.01); the paper trains with PyTorch's, so every setting is passed
//! explicitly here.

use burn::optim::{AdamWConfig, ModuleOptimizer};

/// PyTorch's `torch.optim.AdamW` defaults, besides the learning rate.
pub const PYTORCH_BETAS: (f32, f32) = (0.9, 0.999);
/// PyTorch's AdamW epsilon.
pub const PYTORCH_EPSILON: f32 = 1e-8;
/// PyTorch's AdamW weight decay.
pub const PYTORCH_WEIGHT_DECAY: f32 = 0.01;

/// An AdamW optimizer with the given moments, epsilon and decoupled weight decay
/// (the learning rate is passed at each step).
pub fn adamw(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(beta_1)
        .with_beta_2(beta_2)
        .with_epsilon(epsilon)
        .with_weight_decay(weight_decay)
        .init()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    #[derive(Module, Debug)]
    struct One {
        w: Param<Tensor<1>>,
    }

    /// PyTorch's AdamW update for one scalar, in f64.
    fn reference(mut p: f64, grads: &[f64], lr: f64) -> f64 {
        let (b1, b2) = (0.9f64, 0.999f64);
        let (mut m, mut v) = (0.0, 0.0);
        for (t, &g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            p *= 1.0 - lr * 0.01;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let m_hat = m / (1.0 - b1.powi(t));
            let v_hat = v / (1.0 - b2.powi(t));
            p -= lr * m_hat / (v_hat.sqrt() + 1e-8);
        }
        p
    }

    #[test]
    fn two_steps_match_pytorch_defaults() {
        // Tiny gradients make epsilon matter: with burn's 1e-5 the step would be ~10x
        // smaller than PyTorch's; large weights make the decay visible.
        let device = Device::flex().autodiff();
        let start = [2.0f32, -3.0, 0.5];
        let scales = [[1e-6f32, -2e-6, 3e-7], [2e-6, 1e-6, -1e-6]];
        let mut model = One {
            w: Param::from_tensor(Tensor::from_data(
                TensorData::new(start.to_vec(), [3]),
                &device,
            )),
        };
        let (b1, b2) = PYTORCH_BETAS;
        let mut optimizer = adamw(b1, b2, PYTORCH_EPSILON, PYTORCH_WEIGHT_DECAY);
        let lr = 0.1;
        for c in scales {
            let coefficients = Tensor::<1>::from_data(TensorData::new(c.to_vec(), [3]), &device);
            let loss = (model.w.val() * coefficients).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
        }
        let got = model.w.val().into_data().try_to_vec::<f32>().unwrap();
        for i in 0..3 {
            let grads = [f64::from(scales[0][i]), f64::from(scales[1][i])];
            let expected = reference(f64::from(start[i]), &grads, lr);
            assert!(
                (f64::from(got[i]) - expected).abs() < 1e-5,
                "weight {i}: {} vs {expected}",
                got[i]
            );
        }
    }
}
