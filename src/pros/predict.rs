//! Segmenting images with a trained model: resize, predict, map back, threshold.
//!
//! An image of any size is resized to the model's square input (as the synthetic pairs
//! were for training), its logits are bilinearly resized back to the original size, and
//! [`Segmentation`] turns them into a mask and a defect list.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};
use image::imageops::FilterType;
use image::{GrayImage, Luma, Rgb, RgbImage};

use super::ProsError;
use super::adapter::Adapters;
use super::metrics::{Overlap, SetMetrics};
use super::model::ProsModel;
use super::segment::{SegmentConfig, Segmentation};
use super::train::{TrainingPair, normalized_image};
use crate::sam::config::PATCH_SIZE;

/// An image resized to the model's input, normalised.
///
/// # Shapes
///
/// - output: `[1, 3, image_size, image_size]`
pub fn input_tensor(
    image: &RgbImage,
    image_size: usize,
    device: &Device,
) -> Result<Tensor<4>, ProsError> {
    let (w, h) = image.dimensions();
    if (w as usize) < PATCH_SIZE || (h as usize) < PATCH_SIZE {
        return Err(ProsError::ImageTooSmall {
            width: w,
            height: h,
            min: PATCH_SIZE,
        });
    }
    let size = image_size as u32;
    let resized = if (w, h) == (size, size) {
        image.clone()
    } else {
        image::imageops::resize(image, size, size, FilterType::Triangle)
    };
    Ok(normalized_image(&resized, device))
}

/// Mask logits of one image at its own size.
///
/// # Shapes
///
/// - output: `[1, 1, height, width]` of the image
pub fn logits_at_image_size(
    model: &ProsModel,
    adapters: &Adapters,
    image: &RgbImage,
    device: &Device,
) -> Result<Tensor<4>, ProsError> {
    let x = input_tensor(image, model.image_size(), device)?;
    let logits = model.forward(x, adapters);
    Ok(resize_logits(logits, image.width(), image.height()))
}

/// Logits at the model's input size resized bilinearly to a `width` x `height` image.
///
/// # Shapes
///
/// - logits: `[1, 1, image_size, image_size]`
/// - output: `[1, 1, height, width]`
pub fn resize_logits(logits: Tensor<4>, width: u32, height: u32) -> Tensor<4> {
    let [_, _, h, w] = logits.dims();
    if (w, h) == (width as usize, height as usize) {
        return logits;
    }
    interpolate(
        logits,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([height as usize, width as usize]),
    )
}

/// Segment one image (native: reads the logits synchronously).
pub fn segment_image(
    model: &ProsModel,
    adapters: &Adapters,
    image: &RgbImage,
    config: &SegmentConfig,
    device: &Device,
) -> Result<Segmentation, ProsError> {
    let logits = logits_at_image_size(model, adapters, image, device)?;
    let values = logits
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ProsError::Backend(format!("{e:?}")))?;
    Segmentation::from_logits(&values, image.width(), image.height(), config)
}

/// Segment one image without blocking reads (for the web).
pub async fn segment_image_async(
    model: &ProsModel,
    adapters: &Adapters,
    image: &RgbImage,
    config: &SegmentConfig,
    device: &Device,
) -> Result<Segmentation, ProsError> {
    let logits = logits_at_image_size(model, adapters, image, device)?;
    let values = logits
        .into_data_async()
        .await
        .map_err(|e| ProsError::Backend(format!("{e:?}")))?
        .try_to_vec::<f32>()
        .map_err(|e| ProsError::Backend(format!("{e:?}")))?;
    Segmentation::from_logits(&values, image.width(), image.height(), config)
}

/// The mask as a 0/255 image.
pub fn mask_image(segmentation: &Segmentation) -> GrayImage {
    GrayImage::from_fn(segmentation.width, segmentation.height, |x, y| {
        let i = (y * segmentation.width + x) as usize;
        Luma([if segmentation.mask[i] { 255 } else { 0 }])
    })
}

/// The image with defect pixels tinted red and each defect's box drawn in yellow.
pub fn overlay(image: &RgbImage, segmentation: &Segmentation) -> RgbImage {
    let mut out = image.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        if segmentation.mask[(y * segmentation.width + x) as usize] {
            let [r, g, b] = p.0;
            *p = Rgb([
                ((u16::from(r) + 255) / 2) as u8,
                (u16::from(g) / 2) as u8,
                (u16::from(b) / 2) as u8,
            ]);
        }
    }
    let yellow = Rgb([255, 220, 0]);
    for d in &segmentation.defects {
        let b = d.bbox;
        for x in b.x0..b.x1 {
            out.put_pixel(x, b.y0, yellow);
            out.put_pixel(x, b.y1 - 1, yellow);
        }
        for y in b.y0..b.y1 {
            out.put_pixel(b.x0, y, yellow);
            out.put_pixel(b.x1 - 1, y, yellow);
        }
    }
    out
}

/// The overlap of a segmentation with a 0/255 ground-truth mask of the same size.
pub fn overlap_with(
    segmentation: &Segmentation,
    ground_truth: &GrayImage,
) -> Result<Overlap, ProsError> {
    if ground_truth.dimensions() != (segmentation.width, segmentation.height) {
        return Err(ProsError::MaskSize {
            ground_truth: (ground_truth.width() * ground_truth.height()) as usize,
            prediction: segmentation.mask.len(),
        });
    }
    let truth: Vec<bool> = ground_truth.pixels().map(|p| p[0] >= 128).collect();
    Overlap::of(&truth, &segmentation.mask)
}

/// Dice and IoU of the model with `adapters` on held-out synthetic pairs (at the model's
/// input size), reading the logits without blocking (for the web's per-epoch score);
/// `None` when there are no pairs.
pub async fn score_pairs_async(
    model: &ProsModel,
    adapters: &Adapters,
    pairs: &[TrainingPair],
    config: &SegmentConfig,
    device: &Device,
) -> Result<Option<SetMetrics>, ProsError> {
    let mut overlaps = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let segmentation =
            segment_image_async(model, adapters, &pair.image, config, device).await?;
        overlaps.push(overlap_with(&segmentation, &pair.mask)?);
    }
    Ok(SetMetrics::from_overlaps(&overlaps))
}
