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
use crate::synth::{SynthConfig, SyntheticPair, synthesize};

/// One synthetic pair at `size` x `size`: the normal image is resized first, then defects
/// are pasted at that scale.
pub fn training_pair(
    normal: &RgbImage,
    size: u32,
    config: &SynthConfig,
    seed: u64,
) -> Result<SyntheticPair, ProsError> {
    let resized = resize_square(normal, size);
    Ok(synthesize(&resized, config, seed)?)
}

fn resize_square(image: &RgbImage, size: u32) -> RgbImage {
    if image.dimensions() == (size, size) {
        image.clone()
    } else {
        image::imageops::resize(image, size, size, FilterType::Triangle)
    }
}

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
        let resized = resize_square(normal, size);
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
