//! Defect geometry and its coverage: each defect is drawn on a layer of its own, a window of
//! the image holding the fraction of each pixel the defect covers, antialiased over one pixel.

use serde::{Deserialize, Serialize};

/// The three defect kinds of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectKind {
    Line,
    Dot,
    Circle,
}

/// The form a defect of a kind takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectForm {
    /// A straight line.
    Straight,
    /// A line of 2 to 4 joined segments.
    Polyline,
    /// A filled disc.
    Disc,
    /// A full ring.
    Ring,
    /// Part of a ring.
    Arc,
}

impl DefectForm {
    /// The kind this form belongs to.
    pub fn kind(self) -> DefectKind {
        match self {
            Self::Straight | Self::Polyline => DefectKind::Line,
            Self::Disc => DefectKind::Dot,
            Self::Ring | Self::Arc => DefectKind::Circle,
        }
    }
}

/// A defect's geometry in image pixel coordinates (pixel centres at `i + 0.5`).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Joined segments through `points`, of stroke `width`.
    Polyline { points: Vec<[f32; 2]>, width: f32 },
    /// A filled disc.
    Disc { centre: [f32; 2], radius: f32 },
    /// A ring of stroke `width`, restricted to the angles `start..start + sweep` (radians)
    /// when `sweep` is below a full turn.
    Ring {
        centre: [f32; 2],
        radius: f32,
        width: f32,
        start: f32,
        sweep: f32,
    },
}

/// A window of coverage values in `[0, 1]`, `width * height`, whose top-left pixel is `(x0, y0)`.
#[derive(Debug, Clone)]
pub struct Layer {
    pub x0: u32,
    pub y0: u32,
    pub width: u32,
    pub height: u32,
    pub coverage: Vec<f32>,
}

impl Shape {
    /// The shape's extent `[xmin, ymin, xmax, ymax]`, stroke included.
    fn extent(&self) -> [f32; 4] {
        match self {
            Self::Polyline { points, width } => {
                let mut e = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
                for p in points {
                    e = [
                        e[0].min(p[0]),
                        e[1].min(p[1]),
                        e[2].max(p[0]),
                        e[3].max(p[1]),
                    ];
                }
                let h = width / 2.0;
                [e[0] - h, e[1] - h, e[2] + h, e[3] + h]
            }
            Self::Disc { centre, radius } => [
                centre[0] - radius,
                centre[1] - radius,
                centre[0] + radius,
                centre[1] + radius,
            ],
            Self::Ring {
                centre,
                radius,
                width,
                ..
            } => {
                let r = radius + width / 2.0;
                [centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r]
            }
        }
    }

    /// Coverage of the pixel whose centre is `p`.
    fn coverage_at(&self, p: [f32; 2]) -> f32 {
        match self {
            Self::Polyline { points, width } => {
                let d = points
                    .windows(2)
                    .map(|s| segment_distance(p, s[0], s[1]))
                    .fold(f32::MAX, f32::min);
                ramp(width / 2.0 - d)
            }
            Self::Disc { centre, radius } => ramp(radius - distance(p, *centre)),
            Self::Ring {
                centre,
                radius,
                width,
                start,
                sweep,
            } => {
                let d = distance(p, *centre);
                let c = ramp(width / 2.0 - (d - radius).abs());
                if c == 0.0 || *sweep >= std::f32::consts::TAU {
                    return c;
                }
                let angle = libm::atan2f(p[1] - centre[1], p[0] - centre[0]);
                let rel = (angle - start).rem_euclid(std::f32::consts::TAU);
                if rel <= *sweep { c } else { 0.0 }
            }
        }
    }

    /// Draw the shape on a layer covering its extent plus `margin` pixels (room for the blur),
    /// clipped to a `width` x `height` image. `None` when nothing of it lies in the image.
    pub fn rasterize(&self, width: u32, height: u32, margin: f32) -> Option<Layer> {
        let e = self.extent();
        let x0 = (e[0] - margin - 1.0).floor().max(0.0);
        let y0 = (e[1] - margin - 1.0).floor().max(0.0);
        let x1 = (e[2] + margin + 1.0).ceil().min(width as f32);
        let y1 = (e[3] + margin + 1.0).ceil().min(height as f32);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let (x0, y0) = (x0 as u32, y0 as u32);
        let (w, h) = (x1 as u32 - x0, y1 as u32 - y0);
        let mut coverage = vec![0.0f32; (w * h) as usize];
        for j in 0..h {
            let py = (y0 + j) as f32 + 0.5;
            for i in 0..w {
                let px = (x0 + i) as f32 + 0.5;
                coverage[(j * w + i) as usize] = self.coverage_at([px, py]);
            }
        }
        Some(Layer {
            x0,
            y0,
            width: w,
            height: h,
            coverage,
        })
    }
}

/// Antialiasing over one pixel: full coverage half a pixel inside the edge, none half outside.
fn ramp(inside: f32) -> f32 {
    (inside + 0.5).clamp(0.0, 1.0)
}

fn distance(a: [f32; 2], b: [f32; 2]) -> f32 {
    let (dx, dy) = (a[0] - b[0], a[1] - b[1]);
    (dx * dx + dy * dy).sqrt()
}

fn segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
    let len2 = abx * abx + aby * aby;
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * abx + (p[1] - a[1]) * aby) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    distance(p, [a[0] + t * abx, a[1] + t * aby])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Coverage at image pixel `(x, y)`; zero outside the layer.
    fn covered(layer: &Layer, x: u32, y: u32) -> f32 {
        let inside = x >= layer.x0
            && y >= layer.y0
            && x < layer.x0 + layer.width
            && y < layer.y0 + layer.height;
        if inside {
            layer.coverage[((y - layer.y0) * layer.width + (x - layer.x0)) as usize]
        } else {
            0.0
        }
    }

    #[test]
    fn disc_covers_its_inside_and_nothing_far_outside() {
        let disc = Shape::Disc {
            centre: [20.0, 20.0],
            radius: 5.0,
        };
        let layer = disc.rasterize(64, 64, 0.0).expect("inside the image");
        assert_eq!(covered(&layer, 19, 19), 1.0);
        assert!(covered(&layer, 19, 24) > 0.5, "edge pixel mostly inside");
        assert_eq!(covered(&layer, 19, 26), 0.0);
        let total: f32 = layer.coverage.iter().sum();
        let area = std::f32::consts::PI * 25.0;
        assert!((total - area).abs() < 0.05 * area, "{total} vs {area}");
    }

    #[test]
    fn line_width_is_respected() {
        let line = Shape::Polyline {
            points: vec![[5.0, 10.0], [40.0, 10.0]],
            width: 4.0,
        };
        let layer = line.rasterize(64, 64, 0.0).expect("inside the image");
        let column: Vec<f32> = (5..16).map(|y| covered(&layer, 20, y)).collect();
        let sum: f32 = column.iter().sum();
        assert!((sum - 4.0).abs() < 1e-4, "{column:?}");
    }

    #[test]
    fn arc_covers_only_its_sweep() {
        let arc = Shape::Ring {
            centre: [32.0, 32.0],
            radius: 10.0,
            width: 3.0,
            start: 0.0,
            sweep: std::f32::consts::FRAC_PI_2,
        };
        let layer = arc.rasterize(64, 64, 0.0).expect("inside the image");
        // y grows downwards: angle 0..pi/2 is the lower-right quarter.
        assert!(covered(&layer, 39, 39) > 0.0);
        assert_eq!(covered(&layer, 24, 24), 0.0);
        assert_eq!(covered(&layer, 32, 32), 0.0);
    }

    #[test]
    fn shapes_outside_are_clipped_or_dropped() {
        let outside = Shape::Disc {
            centre: [-50.0, -50.0],
            radius: 3.0,
        };
        assert!(outside.rasterize(32, 32, 2.0).is_none());
        let edge = Shape::Disc {
            centre: [0.0, 0.0],
            radius: 6.0,
        };
        let layer = edge.rasterize(32, 32, 2.0).expect("partly inside");
        assert_eq!((layer.x0, layer.y0), (0, 0));
        assert!(layer.x0 + layer.width <= 32 && layer.y0 + layer.height <= 32);
    }
}
