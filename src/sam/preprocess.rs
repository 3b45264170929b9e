//! Image to model input and low-res mask logits to masks, as the reference's
//! `ResizeLongestSide` (`utils/transforms.py`) and `Sam.preprocess` /
//! `Sam.postprocess_masks` (`modeling/sam.py`).

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, PadMode};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use image::RgbImage;
use image::imageops::{FilterType, resize};

use super::{PIXEL_MEAN, PIXEL_STD};

/// The size `(height, width)` an image of `(old_h, old_w)` is resized to so that its
/// longest side is `long_side`, with the reference's rounding (`int(x + 0.5)`).
pub fn get_preprocess_shape(old_h: usize, old_w: usize, long_side: usize) -> (usize, usize) {
    let scale = long_side as f64 / old_h.max(old_w) as f64;
    let new_h = (old_h as f64 * scale + 0.5) as usize;
    let new_w = (old_w as f64 * scale + 0.5) as usize;
    (new_h, new_w)
}

/// Map `(x, y)` pixel coordinates of the original image to the resized one.
pub fn apply_coords(
    coords: &[[f32; 2]],
    (old_h, old_w): (usize, usize),
    long_side: usize,
) -> Vec<[f32; 2]> {
    let (new_h, new_w) = get_preprocess_shape(old_h, old_w, long_side);
    let (sx, sy) = (new_w as f64 / old_w as f64, new_h as f64 / old_h as f64);
    coords
        .iter()
        .map(|&[x, y]| [(x as f64 * sx) as f32, (y as f64 * sy) as f32])
        .collect()
}

/// Map boxes `(x0, y0, x1, y1)` of the original image to the resized one.
pub fn apply_boxes(
    boxes: &[[f32; 4]],
    original: (usize, usize),
    long_side: usize,
) -> Vec<[f32; 4]> {
    boxes
        .iter()
        .map(|&[x0, y0, x1, y1]| {
            let c = apply_coords(&[[x0, y0], [x1, y1]], original, long_side);
            [c[0][0], c[0][1], c[1][0], c[1][1]]
        })
        .collect()
}

/// Resize an RGB image so that its longest side is `long_side`.
///
/// The reference resizes with PIL's bilinear filter on 8-bit pixels (torchvision's
/// `resize` of a PIL image), which widens its triangle kernel when shrinking; we use
/// the `image` crate's triangle filter, which does the same.
// Limitation: PIL rounds its fixed-point kernel sums differently from the `image`
// crate, so a resized pixel may differ from the reference's by one level out of 255.
// The model's parity is therefore tested from the normalised tensor onward; matching
// PIL bit for bit would take a port of PIL's `ImagingResample`.
pub fn resize_longest_side(image: &RgbImage, long_side: usize) -> RgbImage {
    let (h, w) = (image.height() as usize, image.width() as usize);
    let (new_h, new_w) = get_preprocess_shape(h, w, long_side);
    resize(image, new_w as u32, new_h as u32, FilterType::Triangle)
}

/// An RGB image as a float tensor of its 0-255 values.
///
/// # Shapes
/// - output: `[1, 3, height, width]`
pub fn image_to_tensor(image: &RgbImage, device: &Device) -> Tensor<4> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut planes = vec![0f32; 3 * h * w];
    for (x, y, p) in image.enumerate_pixels() {
        for c in 0..3 {
            planes[c * h * w + y as usize * w + x as usize] = p.0[c] as f32;
        }
    }
    Tensor::from_data(TensorData::new(planes, [1, 3, h, w]), device)
}

/// Normalise with SAM's pixel mean and std, then zero-pad bottom and right to the
/// square input, as `Sam.preprocess`.
///
/// # Shapes
/// - pixels: `[batch, 3, height, width]`, RGB values in 0-255, `height, width <= image_size`
/// - output: `[batch, 3, image_size, image_size]`
pub fn normalize_and_pad(pixels: Tensor<4>, image_size: usize) -> Tensor<4> {
    let device = pixels.device();
    let [_, _, h, w] = pixels.dims();
    let mean = Tensor::<4>::from_data(TensorData::new(PIXEL_MEAN.to_vec(), [1, 3, 1, 1]), &device);
    let std = Tensor::<4>::from_data(TensorData::new(PIXEL_STD.to_vec(), [1, 3, 1, 1]), &device);
    let x = (pixels - mean) / std;
    x.pad(
        [(0, image_size - h), (0, image_size - w)],
        PadMode::Constant(0.0),
    )
}

/// Resize, normalise and pad an RGB image for the image encoder.
///
/// Returns the input tensor and the resized size `(height, width)` (needed by
/// [`postprocess_masks`]).
///
/// # Shapes
/// - output: `[1, 3, image_size, image_size]`
pub fn preprocess_image(
    image: &RgbImage,
    image_size: usize,
    device: &Device,
) -> (Tensor<4>, (usize, usize)) {
    let resized = resize_longest_side(image, image_size);
    let input_size = (resized.height() as usize, resized.width() as usize);
    let x = normalize_and_pad(image_to_tensor(&resized, device), image_size);
    (x, input_size)
}

fn bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size(size),
    )
}

/// Low-res mask logits to logits at the original image size: bilinear to the square
/// input, crop the padding, bilinear to the original size, as `Sam.postprocess_masks`.
///
/// # Shapes
/// - masks: `[batch, masks, 4 * grid, 4 * grid]`
/// - output: `[batch, masks, original_h, original_w]`
pub fn postprocess_masks(
    masks: Tensor<4>,
    image_size: usize,
    (input_h, input_w): (usize, usize),
    (original_h, original_w): (usize, usize),
) -> Tensor<4> {
    let [b, m, _, _] = masks.dims();
    let masks = bilinear(masks, [image_size, image_size]);
    let masks = masks.slice([0..b, 0..m, 0..input_h, 0..input_w]);
    bilinear(masks, [original_h, original_w])
}

/// Binary masks from logits: `logits > 0`, SAM's mask threshold.
///
/// # Shapes
/// - logits: `[batch, masks, height, width]`
/// - output: `[batch, masks, height, width]`
pub fn threshold_masks(logits: Tensor<4>) -> Tensor<4, Bool> {
    logits.greater_elem(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_shape_rounds_as_the_reference() {
        // ResizeLongestSide.get_preprocess_shape
        assert_eq!(get_preprocess_shape(37, 50, 96), (71, 96));
        assert_eq!(get_preprocess_shape(480, 640, 1024), (768, 1024));
        assert_eq!(get_preprocess_shape(333, 500, 256), (170, 256));
        assert_eq!(get_preprocess_shape(1000, 10, 1024), (1024, 10));
        assert_eq!(get_preprocess_shape(256, 256, 256), (256, 256));
    }

    #[test]
    fn coords_and_boxes_scale_with_the_image() {
        let c = apply_coords(&[[50.0, 37.0], [10.0, 5.0]], (37, 50), 96);
        assert_eq!(c[0], [96.0, 71.0]);
        assert!((c[1][0] - 19.2).abs() < 1e-5 && (c[1][1] - 5.0 * 71.0 / 37.0).abs() < 1e-5);
        let b = apply_boxes(&[[0.0, 0.0, 50.0, 37.0]], (37, 50), 96);
        assert_eq!(b[0], [0.0, 0.0, 96.0, 71.0]);
    }
}
