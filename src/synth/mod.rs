//! The defect synthesizer, the paper's first half: a normal image (a defect-free board) in,
//! a synthetic pair out.
//!
//! Each defect (a line, a dot or a circle) is drawn on a layer of its own
//! ([`shapes`]), blurred with a Gaussian of random sigma ([`blur`]) and pasted with a random
//! opacity in a colour taken from the board itself ([`materials`]): material-coloured for extra
//! material (shorts, spurs, spurious copper, specks), substrate-coloured for missing material
//! (opens, pin-holes, mouse-bites). Extra material is centred on substrate, missing material on
//! material, so that it shows.
//!
//! The mask is exactly the set of pixels whose value the defects changed, in any channel, by at
//! least [`SynthConfig::mask_threshold`] 8-bit levels between the normal image and the defect
//! image. A drawn defect that changes no pixel that much is taken back and drawn anew (a few
//! tries), so every record describes a visible defect.
//!
//! Everything is deterministic: the same image, settings and seed give byte-identical pairs on
//! every platform (own random generator, `libm` for transcendental functions).

pub mod blur;
pub mod config;
pub mod materials;
pub mod rng;
pub mod shapes;

use image::{GrayImage, RgbImage, imageops};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use config::{Material, Span, SynthConfig, SynthError};
pub use shapes::{DefectForm, DefectKind};

use materials::Materials;
use rng::Rng;
use shapes::{Layer, Shape};

/// Whether a defect adds or removes material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// Extra material: shorts, spurs, spurious copper, specks.
    Extra,
    /// Missing material: opens, pin-holes, mouse-bites.
    Missing,
}

/// One pasted defect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefectRecord {
    pub kind: DefectKind,
    pub form: DefectForm,
    pub polarity: Polarity,
    /// Bounding box `[x0, y0, x1, y1]` of the pixels this defect visibly changed, `x1`, `y1`
    /// exclusive.
    pub bbox: [u32; 4],
    /// How many pixels this defect visibly changed when it was pasted.
    pub area: u32,
    /// The colour it was painted with.
    pub colour: [u8; 3],
    /// Its opacity.
    pub opacity: f32,
    /// Its blur sigma in pixels.
    pub sigma: f32,
}

/// A normal image with synthetic defects, its mask and what was drawn.
#[derive(Debug, Clone)]
pub struct SyntheticPair {
    /// The normal image as drawn on (after the optional crop and resize).
    pub normal: RgbImage,
    /// The defect image.
    pub image: RgbImage,
    /// 255 where the defects visibly changed the image, 0 elsewhere.
    pub mask: GrayImage,
    /// One record per defect, in drawing order.
    pub defects: Vec<DefectRecord>,
}

impl SyntheticPair {
    /// SHA-256 of the defect image's and the mask's raw bytes, hex: a fingerprint to compare
    /// pairs across platforms.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.image.as_raw());
        hasher.update(self.mask.as_raw());
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// How many times a defect that changed nothing visible is drawn anew.
const TRIES_PER_DEFECT: usize = 8;

/// Make one synthetic pair from a normal image.
pub fn synthesize(
    normal: &RgbImage,
    config: &SynthConfig,
    seed: u64,
) -> Result<SyntheticPair, SynthError> {
    config.validate()?;
    if normal.width() < 16 || normal.height() < 16 {
        return Err(SynthError::TooSmall {
            width: normal.width(),
            height: normal.height(),
        });
    }
    let mut rng = Rng::new(seed);
    let normal = prepare(normal, config, &mut rng);
    let materials = Materials::of(&normal, config.material);
    let mut image = normal.clone();
    let short_side = normal.width().min(normal.height()) as f32;

    let count = rng.range_int(config.defects_min, config.defects_max);
    let mut defects = Vec::with_capacity(count as usize);
    for _ in 0..count {
        for _ in 0..TRIES_PER_DEFECT {
            if let Some(record) = paste_one(&mut image, &materials, config, short_side, &mut rng) {
                defects.push(record);
                break;
            }
        }
    }

    let threshold = config.mask_threshold;
    let mask = GrayImage::from_fn(normal.width(), normal.height(), |x, y| {
        let changed = visibly_changed(normal.get_pixel(x, y).0, image.get_pixel(x, y).0, threshold);
        image::Luma([if changed { 255 } else { 0 }])
    });
    log::debug!("synthesized {} defects with seed {seed}", defects.len());
    Ok(SyntheticPair {
        normal,
        image,
        mask,
        defects,
    })
}

/// Apply the optional random crop and resize.
fn prepare(normal: &RgbImage, config: &SynthConfig, rng: &mut Rng) -> RgbImage {
    let mut image = match config.crop {
        Some(c) if c < normal.width() || c < normal.height() => {
            let (cw, ch) = (c.min(normal.width()), c.min(normal.height()));
            let x = rng.range_int(0, normal.width() - cw);
            let y = rng.range_int(0, normal.height() - ch);
            imageops::crop_imm(normal, x, y, cw, ch).to_image()
        }
        _ => normal.clone(),
    };
    if let Some(s) = config.resize
        && (image.width(), image.height()) != (s, s)
    {
        image = imageops::resize(&image, s, s, imageops::FilterType::Triangle);
    }
    image
}

fn visibly_changed(a: [u8; 3], b: [u8; 3], threshold: u8) -> bool {
    (0..3).any(|c| a[c].abs_diff(b[c]) >= threshold)
}

/// Draw, blur and paste one random defect. Returns `None` (and leaves the image as it was)
/// when the defect changed no pixel visibly.
fn paste_one(
    image: &mut RgbImage,
    materials: &Materials,
    config: &SynthConfig,
    short_side: f32,
    rng: &mut Rng,
) -> Option<DefectRecord> {
    let extra = rng.chance(config.extra_material);
    let polarity = if extra {
        Polarity::Extra
    } else {
        Polarity::Missing
    };
    // Extra material lands on substrate, missing material on material.
    let (cx, cy) = materials.position(image, rng, !extra);
    let centre = [cx as f32 + 0.5, cy as f32 + 0.5];
    let colour = materials.colour(image, rng, extra);
    let (form, shape) = random_shape(config, short_side, centre, rng);
    let sigma = rng.range(config.blur_sigma.min, config.blur_sigma.max) * short_side;
    let opacity = rng.range(config.opacity.min, config.opacity.max);

    let margin = blur::radius(sigma) as f32;
    let mut layer = shape.rasterize(image.width(), image.height(), margin)?;
    blur::gaussian(&mut layer, sigma);
    let (bbox, area) = composite(image, &layer, colour, opacity, config.mask_threshold)?;
    Some(DefectRecord {
        kind: form.kind(),
        form,
        polarity,
        bbox,
        area,
        colour,
        opacity,
        sigma,
    })
}

fn random_shape(
    config: &SynthConfig,
    short_side: f32,
    centre: [f32; 2],
    rng: &mut Rng,
) -> (DefectForm, Shape) {
    let sample = |rng: &mut Rng, span: Span| rng.range(span.min, span.max) * short_side;
    let weights = config.kind_weights;
    let pick = rng.unit() * weights.iter().sum::<f32>();
    if pick < weights[0] {
        let width = sample(rng, config.line_width).max(1.0);
        let polyline = rng.chance(config.polyline);
        let segments = if polyline { rng.range_int(2, 4) } else { 1 };
        let length = sample(rng, config.line_length).max(2.0) / segments as f32;
        let mut angle = rng.range(0.0, std::f32::consts::TAU);
        // Start half a line away so the centre lies on the line.
        let half = length * segments as f32 / 2.0;
        let mut p = [
            centre[0] - half * libm::cosf(angle),
            centre[1] - half * libm::sinf(angle),
        ];
        let mut points = vec![p];
        for _ in 0..segments {
            p = [
                p[0] + length * libm::cosf(angle),
                p[1] + length * libm::sinf(angle),
            ];
            points.push(p);
            angle += rng.range(-1.2, 1.2);
        }
        let form = if polyline {
            DefectForm::Polyline
        } else {
            DefectForm::Straight
        };
        (form, Shape::Polyline { points, width })
    } else if pick < weights[0] + weights[1] {
        let radius = sample(rng, config.dot_radius).max(1.0);
        (DefectForm::Disc, Shape::Disc { centre, radius })
    } else {
        let radius = sample(rng, config.circle_radius).max(2.0);
        let width = sample(rng, config.circle_width).max(1.0);
        let arc = rng.chance(config.arc);
        let start = rng.range(0.0, std::f32::consts::TAU);
        let sweep = if arc {
            rng.range(0.8, 4.5)
        } else {
            std::f32::consts::TAU
        };
        let form = if arc {
            DefectForm::Arc
        } else {
            DefectForm::Ring
        };
        let shape = Shape::Ring {
            centre,
            radius,
            width,
            start,
            sweep,
        };
        (form, shape)
    }
}

/// Paste `colour` through the layer's coverage times `opacity`. Returns the bounding box and
/// area of the pixels visibly changed, or `None` after restoring the image if there are none.
fn composite(
    image: &mut RgbImage,
    layer: &Layer,
    colour: [u8; 3],
    opacity: f32,
    threshold: u8,
) -> Option<([u32; 4], u32)> {
    let mut before = Vec::with_capacity(layer.coverage.len());
    let mut bbox = [u32::MAX, u32::MAX, 0, 0];
    let mut area = 0u32;
    for j in 0..layer.height {
        for i in 0..layer.width {
            let a = opacity * layer.coverage[(j * layer.width + i) as usize];
            let (x, y) = (layer.x0 + i, layer.y0 + j);
            let pixel = image.get_pixel_mut(x, y);
            let old = pixel.0;
            before.push(old);
            if a <= 0.0 {
                continue;
            }
            for c in 0..3 {
                let v = f32::from(old[c]) * (1.0 - a) + f32::from(colour[c]) * a;
                pixel.0[c] = (v + 0.5).clamp(0.0, 255.0) as u8;
            }
            if visibly_changed(old, pixel.0, threshold) {
                area += 1;
                bbox = [
                    bbox[0].min(x),
                    bbox[1].min(y),
                    bbox[2].max(x + 1),
                    bbox[3].max(y + 1),
                ];
            }
        }
    }
    if area > 0 {
        return Some((bbox, area));
    }
    for j in 0..layer.height {
        for i in 0..layer.width {
            let old = before[(j * layer.width + i) as usize];
            image.put_pixel(layer.x0 + i, layer.y0 + j, image::Rgb(old));
        }
    }
    None
}

/// The image with the mask's pixels tinted red at half opacity, for previews.
pub fn overlay(image: &RgbImage, mask: &GrayImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let p = image.get_pixel(x, y).0;
        if mask.get_pixel(x, y).0[0] > 0 {
            image::Rgb([((u16::from(p[0]) + 255) / 2) as u8, p[1] / 2, p[2] / 2])
        } else {
            image::Rgb(p)
        }
    })
}
