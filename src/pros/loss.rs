//! Training losses on mask logits.
//!
//! The model predicts one logit per pixel (the mask decoder's single mask output). The
//! paper compares three objectives; all of them are here, plus their building blocks:
//!
//! - [`bce_with_logits`]: binary cross-entropy on the logits, averaged over all pixels;
//! - [`soft_dice`]: one minus the soft dice of the sigmoid probabilities, per image, averaged
//!   over the batch;
//! - [`bce_dice`]: their sum, the default;
//! - [`two_class_cross_entropy`]: softmax cross-entropy over a background and a defect logit.

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

/// Smoothing added to the numerator and the denominator of the soft dice, so that an image
/// with an empty mask and an empty prediction has a loss of 0 rather than 0/0.
pub const DICE_SMOOTH: f64 = 1.0;

/// Which objective a training run minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Binary cross-entropy on the logits.
    Bce,
    /// Soft dice on the sigmoid probabilities.
    Dice,
    /// Binary cross-entropy plus soft dice (the default).
    #[default]
    BceDice,
    /// Two-class softmax cross-entropy over the logits `(0, x)`; see [`LossKind::compute`].
    CrossEntropy,
}

impl LossKind {
    /// The names the CLI and the page accept.
    pub const NAMES: [&'static str; 4] = ["bce", "dice", "bce-dice", "cross-entropy"];

    /// Parse a name from [`LossKind::NAMES`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "bce" => Some(Self::Bce),
            "dice" => Some(Self::Dice),
            "bce-dice" => Some(Self::BceDice),
            "cross-entropy" => Some(Self::CrossEntropy),
            _ => None,
        }
    }

    /// The loss of single-channel logits against a binary mask.
    ///
    /// For [`LossKind::CrossEntropy`] the single logit `x` is read as the two class logits
    /// `(0, x)` (background, defect), the usual way a one-output head is trained with a
    /// softmax loss; [`two_class_cross_entropy`] takes explicit two-channel logits.
    ///
    /// # Shapes
    ///
    /// - `logits`: `[batch, 1, height, width]`
    /// - `target`: `[batch, 1, height, width]`, values 0 or 1
    /// - output: `[1]`
    pub fn compute(self, logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        match self {
            Self::Bce => bce_with_logits(logits, target),
            Self::Dice => soft_dice(logits, target),
            Self::BceDice => bce_dice(logits, target),
            Self::CrossEntropy => {
                let background = logits.zeros_like();
                two_class_cross_entropy(Tensor::cat(vec![background, logits], 1), target)
            }
        }
    }
}

/// Binary cross-entropy on logits, averaged over every pixel of the batch:
/// `max(x, 0) - x t + ln(1 + e^{-|x|})`, which is stable for large `|x|`.
///
/// # Shapes
///
/// - `logits`, `target`: `[batch, 1, height, width]` (any equal shapes work)
/// - output: `[1]`
pub fn bce_with_logits(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let positive = logits.clone().clamp_min(0.0);
    let softplus_neg_abs = logits.clone().abs().neg().exp().add_scalar(1.0).log();
    (positive - logits * target + softplus_neg_abs).mean()
}

/// Soft dice loss on sigmoid probabilities, per image, averaged over the batch:
/// `1 - (2 Σ p t + s) / (Σ p + Σ t + s)` with `s =` [`DICE_SMOOTH`].
///
/// # Shapes
///
/// - `logits`, `target`: `[batch, 1, height, width]`
/// - output: `[1]`
pub fn soft_dice(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let probabilities = activation::sigmoid(logits);

    // [batch, 1, 1, 1] sums per image.
    let intersection = (probabilities.clone() * target.clone()).sum_dims(&[1, 2, 3]);
    let total = probabilities.sum_dims(&[1, 2, 3]) + target.sum_dims(&[1, 2, 3]);

    let dice = intersection
        .mul_scalar(2.0)
        .add_scalar(DICE_SMOOTH)
        .div(total.add_scalar(DICE_SMOOTH));
    dice.neg().add_scalar(1.0).mean()
}

/// The default objective: [`bce_with_logits`] plus [`soft_dice`].
///
/// # Shapes
///
/// - `logits`, `target`: `[batch, 1, height, width]`
/// - output: `[1]`
pub fn bce_dice(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    bce_with_logits(logits.clone(), target.clone()) + soft_dice(logits, target)
}

/// Softmax cross-entropy over two classes (channel 0 background, channel 1 defect),
/// averaged over every pixel of the batch.
///
/// # Shapes
///
/// - `logits`: `[batch, 2, height, width]`
/// - `target`: `[batch, 1, height, width]`, values 0 or 1 (1 = defect)
/// - output: `[1]`
pub fn two_class_cross_entropy(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let log_probabilities = activation::log_softmax(logits, 1);

    // One-hot target: [batch, 2, height, width].
    let one_hot = Tensor::cat(vec![target.clone().neg().add_scalar(1.0), target], 1);

    (log_probabilities * one_hot).sum_dim(1).neg().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn tensor(values: &[f32], shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Device::flex())
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().expect("f32 data")[0]
    }

    #[test]
    fn bce_matches_hand_computation() {
        // x = 0 gives ln 2 whatever the target; x = 2, t = 1 gives ln(1 + e^-2);
        // x = -3, t = 1 gives 3 + ln(1 + e^-3).
        let logits = tensor(&[0.0, 0.0, 2.0, -3.0], [1, 1, 2, 2]);
        let target = tensor(&[0.0, 1.0, 1.0, 1.0], [1, 1, 2, 2]);
        let expected =
            (2.0 * 2f64.ln() + (1.0 + (-2f64).exp()).ln() + 3.0 + (1.0 + (-3f64).exp()).ln()) / 4.0;
        let got = scalar(bce_with_logits(logits, target)) as f64;
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn bce_is_finite_for_huge_logits() {
        let logits = tensor(&[1e4, -1e4], [1, 1, 1, 2]);
        let target = tensor(&[0.0, 1.0], [1, 1, 1, 2]);
        let got = scalar(bce_with_logits(logits, target));
        assert!((got - 1e4).abs() < 1.0, "{got}");
    }

    #[test]
    fn dice_is_zero_for_a_confident_exact_prediction_and_averages_images() {
        // Image 0: perfect (loss ~0). Image 1: predicts two defect pixels, target has none:
        // dice = (0 + 1) / (2 + 0 + 1) = 1/3, loss 2/3. Mean: 1/3.
        let logits = tensor(&[50.0, -50.0, 50.0, 50.0], [2, 1, 1, 2]);
        let target = tensor(&[1.0, 0.0, 0.0, 0.0], [2, 1, 1, 2]);
        let got = scalar(soft_dice(logits, target));
        assert!((got - 1.0 / 3.0).abs() < 1e-5, "{got}");
    }

    #[test]
    fn dice_of_empty_target_and_empty_prediction_is_zero() {
        let logits = tensor(&[-50.0; 4], [1, 1, 2, 2]);
        let target = tensor(&[0.0; 4], [1, 1, 2, 2]);
        assert!(scalar(soft_dice(logits, target)).abs() < 1e-6);
    }

    #[test]
    fn bce_dice_is_the_sum() {
        let logits = tensor(&[0.3, -1.2, 2.5, 0.0], [1, 1, 2, 2]);
        let target = tensor(&[1.0, 0.0, 1.0, 0.0], [1, 1, 2, 2]);
        let sum = scalar(bce_with_logits(logits.clone(), target.clone()))
            + scalar(soft_dice(logits.clone(), target.clone()));
        let got = scalar(bce_dice(logits, target));
        assert!((got - sum).abs() < 1e-6);
    }

    #[test]
    fn cross_entropy_matches_hand_computation() {
        // Pixel 0: logits (0, ln 3) -> p(defect) = 3/4, target defect: -ln(3/4).
        // Pixel 1: logits (1, 1) -> 1/2 each, target background: ln 2.
        let logits = tensor(&[0.0, 1.0, 3f32.ln(), 1.0], [1, 2, 1, 2]);
        let target = tensor(&[1.0, 0.0], [1, 1, 1, 2]);
        let expected = (-(0.75f64).ln() + 2f64.ln()) / 2.0;
        let got = scalar(two_class_cross_entropy(logits, target)) as f64;
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn single_logit_cross_entropy_equals_bce() {
        let logits = tensor(&[0.3, -1.2, 2.5, 0.0], [1, 1, 2, 2]);
        let target = tensor(&[1.0, 0.0, 1.0, 0.0], [1, 1, 2, 2]);
        let ce = scalar(LossKind::CrossEntropy.compute(logits.clone(), target.clone()));
        let bce = scalar(LossKind::Bce.compute(logits, target));
        assert!((ce - bce).abs() < 1e-6);
    }

    #[test]
    fn names_round_trip() {
        for name in LossKind::NAMES {
            assert!(LossKind::from_name(name).is_some(), "{name}");
        }
        assert_eq!(LossKind::from_name("l2"), None);
    }
}
