//! Dice and IoU of predicted defect masks against ground truth.
//!
//! Masks are binary, one `bool` per pixel (row-major), `true` = defect.
//!
//! **Empty against empty.** An image whose ground truth has no defect pixel and whose
//! prediction has none either scores dice = IoU = 1: the prediction is exactly right, and
//! normal images (with no defect) would otherwise be undefined or counted as failures. An
//! empty ground truth with any predicted pixel scores 0, as does the reverse.

use serde::{Deserialize, Serialize};

use super::ProsError;

/// Pixel counts of one comparison: `|G ∩ P|`, `|G|` and `|P|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Overlap {
    /// Pixels that are defect in both the ground truth and the prediction.
    pub intersection: u64,
    /// Defect pixels in the ground truth.
    pub ground_truth: u64,
    /// Defect pixels in the prediction.
    pub predicted: u64,
}

impl Overlap {
    /// Count the overlap of two masks of the same size.
    pub fn of(ground_truth: &[bool], prediction: &[bool]) -> Result<Self, ProsError> {
        if ground_truth.len() != prediction.len() {
            return Err(ProsError::MaskSize {
                ground_truth: ground_truth.len(),
                prediction: prediction.len(),
            });
        }
        let mut overlap = Self::default();
        for (&g, &p) in ground_truth.iter().zip(prediction) {
            overlap.ground_truth += u64::from(g);
            overlap.predicted += u64::from(p);
            overlap.intersection += u64::from(g && p);
        }
        Ok(overlap)
    }

    /// Dice `2|G∩P| / (|G| + |P|)`; 1 when both masks are empty.
    pub fn dice(&self) -> f64 {
        let denominator = self.ground_truth + self.predicted;
        if denominator == 0 {
            return 1.0;
        }
        2.0 * self.intersection as f64 / denominator as f64
    }

    /// IoU `|G∩P| / |G∪P|`; 1 when both masks are empty.
    pub fn iou(&self) -> f64 {
        let union = self.ground_truth + self.predicted - self.intersection;
        if union == 0 {
            return 1.0;
        }
        self.intersection as f64 / union as f64
    }
}

/// Dice and IoU over a set of images, both averaged over images and pooled over pixels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetMetrics {
    /// Number of images.
    pub images: usize,
    /// Mean of the per-image dice.
    pub mean_dice: f64,
    /// Mean of the per-image IoU.
    pub mean_iou: f64,
    /// Dice of the summed counts: every pixel of the set weighs the same.
    pub pooled_dice: f64,
    /// IoU of the summed counts.
    pub pooled_iou: f64,
}

impl SetMetrics {
    /// Summarise per-image overlaps. An empty set has no score: `None`.
    pub fn from_overlaps(overlaps: &[Overlap]) -> Option<Self> {
        if overlaps.is_empty() {
            return None;
        }
        let n = overlaps.len() as f64;
        let pooled = overlaps.iter().fold(Overlap::default(), |sum, o| Overlap {
            intersection: sum.intersection + o.intersection,
            ground_truth: sum.ground_truth + o.ground_truth,
            predicted: sum.predicted + o.predicted,
        });
        Some(Self {
            images: overlaps.len(),
            mean_dice: overlaps.iter().map(Overlap::dice).sum::<f64>() / n,
            mean_iou: overlaps.iter().map(Overlap::iou).sum::<f64>() / n,
            pooled_dice: pooled.dice(),
            pooled_iou: pooled.iou(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    #[test]
    fn hand_checked_overlap() {
        // G = {0,1,2}, P = {1,2,3,4}: |G∩P| = 2, dice = 4/7, IoU = 2/5.
        let o = Overlap::of(&mask("111000"), &mask("011110")).unwrap();
        assert_eq!((o.intersection, o.ground_truth, o.predicted), (2, 3, 4));
        assert!((o.dice() - 4.0 / 7.0).abs() < 1e-12);
        assert!((o.iou() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn empty_cases() {
        let both_empty = Overlap::of(&mask("000"), &mask("000")).unwrap();
        assert_eq!((both_empty.dice(), both_empty.iou()), (1.0, 1.0));
        let missed = Overlap::of(&mask("010"), &mask("000")).unwrap();
        assert_eq!((missed.dice(), missed.iou()), (0.0, 0.0));
        let false_alarm = Overlap::of(&mask("000"), &mask("001")).unwrap();
        assert_eq!((false_alarm.dice(), false_alarm.iou()), (0.0, 0.0));
    }

    #[test]
    fn size_mismatch_is_an_error() {
        assert!(matches!(
            Overlap::of(&mask("01"), &mask("010")),
            Err(ProsError::MaskSize { .. })
        ));
    }

    #[test]
    fn mean_and_pooled_differ_as_expected() {
        // Image A: big defect found exactly (dice 1). Image B: one-pixel defect missed (0).
        let a = Overlap::of(&mask("11111111"), &mask("11111111")).unwrap();
        let b = Overlap::of(&mask("10000000"), &mask("00000000")).unwrap();
        let m = SetMetrics::from_overlaps(&[a, b]).unwrap();
        assert_eq!(m.images, 2);
        assert!((m.mean_dice - 0.5).abs() < 1e-12);
        assert!((m.mean_iou - 0.5).abs() < 1e-12);
        // Pooled: |G∩P| = 8, |G| = 9, |P| = 8: dice 16/17, IoU 8/9.
        assert!((m.pooled_dice - 16.0 / 17.0).abs() < 1e-12);
        assert!((m.pooled_iou - 8.0 / 9.0).abs() < 1e-12);
        assert_eq!(SetMetrics::from_overlaps(&[]), None);
    }
}
