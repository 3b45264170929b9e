//! From mask logits to a binary mask and a list of defects.
//!
//! The logits are turned into probabilities by the sigmoid and thresholded (0.5 by default).
//! Defect pixels are grouped into connected components with 8-connectivity (a pixel touches
//! its diagonal neighbours too), found with an explicit stack so a board-sized component
//! cannot overflow the call stack. Each component becomes a [`Defect`].

use serde::{Deserialize, Serialize};

use super::ProsError;

/// How logits become defects.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentConfig {
    /// A pixel is defect when its probability is at least this (0.5 by default).
    pub threshold: f32,
    /// Components smaller than this many pixels are dropped from the mask and the list
    /// (1 by default: keep everything).
    pub min_area: usize,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_area: 1,
        }
    }
}

/// An axis-aligned box in pixels: columns `x0..x1`, rows `y0..y1` (ends exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundingBox {
    /// First column.
    pub x0: u32,
    /// First row.
    pub y0: u32,
    /// One past the last column.
    pub x1: u32,
    /// One past the last row.
    pub y1: u32,
}

/// One connected defect region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defect {
    /// The smallest box holding every pixel of the region.
    pub bbox: BoundingBox,
    /// Number of pixels in the region.
    pub area: usize,
    /// Mean defect probability over the region's pixels.
    pub mean_score: f32,
}

/// The result of segmenting one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segmentation {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Row-major defect mask, `true` = defect.
    #[serde(skip)]
    pub mask: Vec<bool>,
    /// The defects, ordered by their first pixel in row-major order.
    pub defects: Vec<Defect>,
}

impl Segmentation {
    /// Threshold the sigmoid of row-major `logits` and list the connected defects.
    pub fn from_logits(
        logits: &[f32],
        width: u32,
        height: u32,
        config: &SegmentConfig,
    ) -> Result<Self, ProsError> {
        let probabilities: Vec<f32> = logits.iter().map(|&x| sigmoid(x)).collect();
        Self::from_probabilities(&probabilities, width, height, config)
    }

    /// Threshold row-major probabilities and list the connected defects.
    pub fn from_probabilities(
        probabilities: &[f32],
        width: u32,
        height: u32,
        config: &SegmentConfig,
    ) -> Result<Self, ProsError> {
        let (w, h) = (width as usize, height as usize);
        if probabilities.len() != w * h {
            return Err(ProsError::LogitsSize {
                values: probabilities.len(),
                width,
                height,
            });
        }

        let mut mask: Vec<bool> = probabilities
            .iter()
            .map(|&p| p >= config.threshold)
            .collect();
        let mut visited = vec![false; w * h];
        let mut defects = Vec::new();
        let mut stack = Vec::new();
        let mut region = Vec::new();

        for start in 0..w * h {
            if !mask[start] || visited[start] {
                continue;
            }

            // Flood the component from `start` with an explicit stack.
            region.clear();
            visited[start] = true;
            stack.push(start);
            while let Some(index) = stack.pop() {
                region.push(index);
                let (x, y) = (index % w, index / w);
                for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        let neighbour = ny * w + nx;
                        if mask[neighbour] && !visited[neighbour] {
                            visited[neighbour] = true;
                            stack.push(neighbour);
                        }
                    }
                }
            }

            if region.len() < config.min_area {
                for &index in &region {
                    mask[index] = false;
                }
                continue;
            }
            defects.push(describe(&region, probabilities, w));
        }

        Ok(Self {
            width,
            height,
            mask,
            defects,
        })
    }
}

/// The bounding box, area and mean score of one component.
fn describe(region: &[usize], probabilities: &[f32], width: usize) -> Defect {
    let mut bbox = BoundingBox {
        x0: u32::MAX,
        y0: u32::MAX,
        x1: 0,
        y1: 0,
    };
    let mut score = 0.0f64;
    for &index in region {
        let (x, y) = ((index % width) as u32, (index / width) as u32);
        bbox.x0 = bbox.x0.min(x);
        bbox.y0 = bbox.y0.min(y);
        bbox.x1 = bbox.x1.max(x + 1);
        bbox.y1 = bbox.y1.max(y + 1);
        score += f64::from(probabilities[index]);
    }
    Defect {
        bbox,
        area: region.len(),
        mean_score: (score / region.len() as f64) as f32,
    }
}

/// The logistic function, written to avoid overflow for large negative inputs.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probabilities from a picture: '#' = 0.9, '+' = 0.6, '.' = 0.1.
    fn picture(rows: &[&str]) -> (Vec<f32>, u32, u32) {
        let values = rows
            .iter()
            .flat_map(|r| r.chars())
            .map(|c| match c {
                '#' => 0.9,
                '+' => 0.6,
                _ => 0.1,
            })
            .collect();
        (values, rows[0].len() as u32, rows.len() as u32)
    }

    #[test]
    fn diagonal_pixels_join_and_separate_regions_stay_apart() {
        let (p, w, h) = picture(&[
            "#....", //
            ".#...", //
            "...++", //
            "....#",
        ]);
        let s = Segmentation::from_probabilities(&p, w, h, &SegmentConfig::default()).unwrap();
        assert_eq!(s.defects.len(), 2);
        let a = &s.defects[0];
        assert_eq!(
            a.bbox,
            BoundingBox {
                x0: 0,
                y0: 0,
                x1: 2,
                y1: 2
            }
        );
        assert_eq!(a.area, 2);
        assert!((a.mean_score - 0.9).abs() < 1e-6);
        let b = &s.defects[1];
        assert_eq!(
            b.bbox,
            BoundingBox {
                x0: 3,
                y0: 2,
                x1: 5,
                y1: 4
            }
        );
        assert_eq!(b.area, 3);
        assert!((b.mean_score - 0.7).abs() < 1e-6);
        assert_eq!(s.mask.iter().filter(|&&m| m).count(), 5);
    }

    #[test]
    fn threshold_and_min_area() {
        let (p, w, h) = picture(&["#.+", "...", "..+"]);
        let config = SegmentConfig {
            threshold: 0.8,
            min_area: 1,
        };
        let s = Segmentation::from_probabilities(&p, w, h, &config).unwrap();
        assert_eq!(s.defects.len(), 1);

        let config = SegmentConfig {
            threshold: 0.5,
            min_area: 2,
        };
        let s = Segmentation::from_probabilities(&p, w, h, &config).unwrap();
        assert!(s.defects.is_empty());
        assert!(
            s.mask.iter().all(|&m| !m),
            "small regions leave the mask too"
        );
    }

    #[test]
    fn a_board_sized_region_does_not_overflow() {
        let (w, h) = (1024u32, 1024u32);
        let p = vec![0.9f32; (w * h) as usize];
        let s = Segmentation::from_probabilities(&p, w, h, &SegmentConfig::default()).unwrap();
        assert_eq!(s.defects.len(), 1);
        assert_eq!(s.defects[0].area, (w * h) as usize);
    }

    #[test]
    fn logits_go_through_the_sigmoid() {
        let s =
            Segmentation::from_logits(&[0.1, -0.1, 40.0, -40.0], 4, 1, &SegmentConfig::default())
                .unwrap();
        assert_eq!(s.mask, vec![true, false, true, false]);
        assert!((sigmoid(-100.0)).abs() < 1e-30);
        assert!(Segmentation::from_logits(&[0.0; 3], 2, 2, &SegmentConfig::default()).is_err());
    }

    #[test]
    fn defects_serialise_to_json() {
        let (p, w, h) = picture(&["#"]);
        let s = Segmentation::from_probabilities(&p, w, h, &SegmentConfig::default()).unwrap();
        let json = serde_json::to_string(&s.defects).unwrap();
        assert!(
            json.contains("\"bbox\":{\"x0\":0,\"y0\":0,\"x1\":1,\"y1\":1}"),
            "{json}"
        );
        assert!(json.contains("\"area\":1"), "{json}");
    }
}
