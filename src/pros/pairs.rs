//! Synthetic pairs for training, made from normal images.
//!
//! Each normal image is first resized to the model's square input and defects are then
//! pasted at that scale, so every pasted defect is as large in the input as the
//! synthesizer's settings say (pasting at full resolution and shrinking afterwards would
//! shrink small defects below a pixel on large board photos).

use image::RgbImage;
use image::imageops::FilterType;

use super::ProsError;
use super::train::TrainingPair;
use crate::synth::{SynthConfig, synthesize};

/// `per_image` synthetic pairs from every normal image, at `size` x `size`.
///
/// Pair `j` of image `i` is synthesized with the seed `seed + i * per_image + j`.
pub fn training_pairs(
    normal_images: &[RgbImage],
    per_image: usize,
    size: u32,
    config: &SynthConfig,
    seed: u64,
) -> Result<Vec<TrainingPair>, ProsError> {
    if normal_images.is_empty() || per_image == 0 {
        return Err(ProsError::NoPairs);
    }
    let mut pairs = Vec::with_capacity(normal_images.len() * per_image);
    for (i, normal) in normal_images.iter().enumerate() {
        let resized = if normal.dimensions() == (size, size) {
            normal.clone()
        } else {
            image::imageops::resize(normal, size, size, FilterType::Triangle)
        };
        for j in 0..per_image {
            let pair_seed = seed.wrapping_add((i * per_image + j) as u64);
            let pair = synthesize(&resized, config, pair_seed)?;
            pairs.push(TrainingPair {
                image: pair.image,
                mask: pair.mask,
            });
        }
    }
    log::info!(
        "made {} synthetic pairs from {} normal images",
        pairs.len(),
        normal_images.len()
    );
    Ok(pairs)
}
