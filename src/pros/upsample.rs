//! Bilinear resizing of mask logits written as two matrix products, so it has a backward
//! pass on every backend.
//!
//! burn's `interpolate` has no bilinear backward on the wgpu / WebGPU backend (the JIT
//! kernels refuse it), and training needs the gradient through the upsampling of the
//! low-res logits. Bilinear interpolation is separable: `out = R_h · x · R_wᵀ`, where each
//! row of `R` holds the two weights PyTorch's `F.interpolate(mode="bilinear",
//! align_corners=False)` gives one output row (or column).

use burn::tensor::{Device, Tensor, TensorData};

/// The `[output, input]` matrix of 1-D bilinear weights, as PyTorch computes them with
/// `align_corners=False` and no antialiasing: source coordinate
/// `(i + 0.5) * input / output - 0.5`, clamped at 0, between its two neighbours.
pub fn bilinear_weights(input: usize, output: usize) -> Vec<f32> {
    let mut weights = vec![0f32; output * input];
    let scale = input as f64 / output as f64;
    for i in 0..output {
        let source = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let low = (source.floor() as usize).min(input - 1);
        let high = (low + 1).min(input - 1);
        let fraction = (source - low as f64) as f32;
        weights[i * input + low] += 1.0 - fraction;
        weights[i * input + high] += fraction;
    }
    weights
}

/// Resize `[batch, channels, height, width]` to `[batch, channels, out_h, out_w]`
/// bilinearly (PyTorch's `align_corners=False`).
///
/// # Shapes
///
/// - x: `[batch, channels, height, width]`
/// - output: `[batch, channels, out_h, out_w]`
pub fn bilinear(x: Tensor<4>, [out_h, out_w]: [usize; 2], device: &Device) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let rows = Tensor::<2>::from_data(
        TensorData::new(bilinear_weights(h, out_h), [out_h, h]),
        device,
    );
    let columns = Tensor::<2>::from_data(
        TensorData::new(bilinear_weights(w, out_w), [out_w, w]),
        device,
    );

    // [b * c, h, w] -> [b * c, out_h, w] -> [b * c, out_h, out_w]
    let x = x.reshape([b * c, h, w]);
    let x = rows.unsqueeze::<3>().matmul(x);
    let x = x.matmul(columns.transpose().unsqueeze::<3>());
    x.reshape([b, c, out_h, out_w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

    #[test]
    fn equals_burns_bilinear_interpolation() {
        let device = Device::flex();
        for (input, output) in [
            ([4, 6], [16, 24]),
            ([24, 24], [96, 96]),
            ([5, 7], [5, 7]),
            ([8, 8], [3, 5]),
        ] {
            let x = Tensor::<4>::random([2, 1, input[0], input[1]], Distribution::Default, &device);
            let ours = bilinear(x.clone(), output, &device);
            let theirs = interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size(output),
            );
            let diff: f32 = (ours - theirs).abs().max().into_scalar();
            assert!(diff < 1e-5, "{input:?} -> {output:?}: {diff}");
        }
    }

    #[test]
    fn rows_sum_to_one() {
        let w = bilinear_weights(3, 7);
        for row in w.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }
}
