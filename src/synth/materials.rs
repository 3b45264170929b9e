//! The board's own materials: pixels split into material and substrate by luminance, so that
//! a defect is painted with colours taken from the image itself.

use image::RgbImage;

use super::config::Material;
use super::rng::Rng;

/// Luminance in 8-bit levels (ITU-R BT.601 weights, integer arithmetic).
pub fn luminance(p: [u8; 3]) -> u8 {
    ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500) / 1000) as u8
}

/// Otsu's threshold of a 256-bin histogram: levels above it form the bright class.
pub fn otsu(histogram: &[u64; 256]) -> u8 {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return 127;
    }
    let sum_all: f64 = histogram
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut weight_low, mut sum_low) = (0u64, 0f64);
    let (mut best, mut best_score) = (127u8, -1f64);
    for (t, &count) in histogram.iter().enumerate().take(255) {
        weight_low += count;
        sum_low += t as f64 * count as f64;
        let weight_high = total - weight_low;
        if weight_low == 0 || weight_high == 0 {
            continue;
        }
        let mean_low = sum_low / weight_low as f64;
        let mean_high = (sum_all - sum_low) / weight_high as f64;
        let score = weight_low as f64 * weight_high as f64 * (mean_low - mean_high).powi(2);
        if score > best_score {
            best_score = score;
            best = t as u8;
        }
    }
    best
}

/// Material and substrate of one normal image.
#[derive(Debug, Clone)]
pub struct Materials {
    threshold: u8,
    /// Whether material is the bright class.
    bright_material: bool,
    has_material: bool,
    has_substrate: bool,
}

impl Materials {
    /// Split the image's pixels by Otsu's threshold on luminance.
    pub fn of(image: &RgbImage, material: Material) -> Self {
        let mut histogram = [0u64; 256];
        for p in image.pixels() {
            histogram[luminance(p.0) as usize] += 1;
        }
        let threshold = otsu(&histogram);
        let bright: u64 = histogram[threshold as usize + 1..].iter().sum();
        let dark: u64 = histogram[..=threshold as usize].iter().sum();
        let bright_material = match material {
            Material::Auto => bright <= dark,
            Material::Bright => true,
            Material::Dark => false,
        };
        let (materials, substrate) = if bright_material {
            (bright, dark)
        } else {
            (dark, bright)
        };
        Self {
            threshold,
            bright_material,
            has_material: materials > 0,
            has_substrate: substrate > 0,
        }
    }

    /// Whether the pixel `p` is of the material class.
    pub fn is_material(&self, p: [u8; 3]) -> bool {
        let bright = luminance(p) > self.threshold;
        bright == self.bright_material
    }

    /// Whether material is the brighter class.
    pub fn material_is_bright(&self) -> bool {
        self.bright_material
    }

    /// A random pixel position of the wanted class (`material` or substrate), found by a
    /// bounded number of draws; any position when the class is absent or rare.
    pub fn position(&self, image: &RgbImage, rng: &mut Rng, material: bool) -> (u32, u32) {
        let present = if material {
            self.has_material
        } else {
            self.has_substrate
        };
        let mut pos = (0, 0);
        for _ in 0..64 {
            pos = (
                rng.index(image.width() as usize) as u32,
                rng.index(image.height() as usize) as u32,
            );
            if !present || self.is_material(image.get_pixel(pos.0, pos.1).0) == material {
                break;
            }
        }
        pos
    }

    /// A colour of the wanted class taken from a random pixel of the image; when the image has
    /// none of that class, the luminance mirror of a pixel of the other class.
    pub fn colour(&self, image: &RgbImage, rng: &mut Rng, material: bool) -> [u8; 3] {
        let (x, y) = self.position(image, rng, material);
        let p = image.get_pixel(x, y).0;
        let present = if material {
            self.has_material
        } else {
            self.has_substrate
        };
        if present {
            p
        } else {
            [255 - p[0], 255 - p[1], 255 - p[2]]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_separates_two_levels() {
        let mut h = [0u64; 256];
        h[20] = 500;
        h[230] = 300;
        let t = otsu(&h);
        assert!((20..230).contains(&t), "{t}");
    }

    #[test]
    fn colours_come_from_the_right_class() {
        let image = RgbImage::from_fn(32, 32, |x, _| {
            if x < 8 {
                image::Rgb([200, 180, 40])
            } else {
                image::Rgb([10, 60, 20])
            }
        });
        let m = Materials::of(&image, Material::Bright);
        let mut rng = Rng::new(1);
        for _ in 0..20 {
            assert_eq!(m.colour(&image, &mut rng, true), [200, 180, 40]);
            assert_eq!(m.colour(&image, &mut rng, false), [10, 60, 20]);
        }
    }
}
