//! Gaussian blur of a defect layer, separable, with the kernel cut at three sigma.

use super::shapes::Layer;

/// The blur's reach in pixels for `sigma`: the kernel's radius.
pub fn radius(sigma: f32) -> usize {
    if sigma < 0.25 {
        0
    } else {
        (3.0 * sigma).ceil() as usize
    }
}

/// Normalised Gaussian weights for offsets `-radius..=radius`.
fn kernel(sigma: f32) -> Vec<f32> {
    let r = radius(sigma) as i32;
    let weights: Vec<f32> = (-r..=r)
        .map(|i| libm::expf(-((i * i) as f32) / (2.0 * sigma * sigma)))
        .collect();
    let sum: f32 = weights.iter().sum();
    weights.into_iter().map(|w| w / sum).collect()
}

/// Blur the layer in place (zero outside it). Sigmas below a quarter pixel leave it unchanged.
pub fn gaussian(layer: &mut Layer, sigma: f32) {
    let r = radius(sigma);
    if r == 0 {
        return;
    }
    let k = kernel(sigma);
    let (w, h) = (layer.width as usize, layer.height as usize);
    let mut tmp = vec![0.0f32; w * h];

    for y in 0..h {
        let row = &layer.coverage[y * w..(y + 1) * w];
        for x in 0..w {
            let lo = x.saturating_sub(r);
            let hi = (x + r).min(w - 1);
            let mut acc = 0.0f32;
            for (xx, v) in row.iter().enumerate().take(hi + 1).skip(lo) {
                acc += v * k[xx + r - x];
            }
            tmp[y * w + x] = acc;
        }
    }

    for x in 0..w {
        for y in 0..h {
            let lo = y.saturating_sub(r);
            let hi = (y + r).min(h - 1);
            let mut acc = 0.0f32;
            for yy in lo..=hi {
                acc += tmp[yy * w + x] * k[yy + r - y];
            }
            layer.coverage[y * w + x] = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_mass_away_from_borders_and_spreads_it() {
        let mut layer = Layer {
            x0: 0,
            y0: 0,
            width: 21,
            height: 21,
            coverage: vec![0.0; 21 * 21],
        };
        layer.coverage[10 * 21 + 10] = 1.0;
        gaussian(&mut layer, 1.5);
        let total: f32 = layer.coverage.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        assert!(layer.coverage[10 * 21 + 10] < 0.1);
        assert!(layer.coverage[10 * 21 + 11] > 0.0);
        assert_eq!(layer.coverage[0], 0.0);
    }
}
