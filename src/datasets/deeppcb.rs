//! The DeepPCB dataset: aligned pairs of a tested image and its defect-free template, with
//! defect boxes.
//!
//! Layout (as in the upstream repository):
//!
//! ```text
//! PCBData/group<G>/<G>/<ID>_test.jpg    tested image, with defects
//! PCBData/group<G>/<G>/<ID>_temp.jpg    defect-free template, aligned to it
//! PCBData/group<G>/<G>_not/<ID>.txt     one defect per line: `x1 y1 x2 y2 type`
//! ```
//!
//! Coordinates are pixels, x = column, y = row, `(x1, y1)` the top-left corner and
//! `(x2, y2)` the bottom-right (exclusive). Types: 1 open, 2 short, 3 mousebite, 4 spur,
//! 5 spurious copper, 6 pin-hole.
//!
//! **Pixel ground truth.** DeepPCB has boxes, not masks. The images are binarised (values
//! near 0 and 255), so a defect pixel is one whose value flips between template and tested
//! image: `|test − template| > `[`DIFFERENCE_THRESHOLD`] (128, the midpoint between black
//! and white). JPEG ringing at edges moves values by far less than that, and a flipped
//! pixel moves by about 255. Outside the boxes most differences are registration noise
//! along edges, so the mask is restricted to the annotated boxes.

use std::path::{Path, PathBuf};

use image::{GrayImage, Luma};
use serde::{Deserialize, Serialize};

use super::{DatasetError, Sample, check_same_size, open_image, sorted_entries};

/// A pixel is defect when `|test − template|` exceeds this, inside an annotated box.
pub const DIFFERENCE_THRESHOLD: u8 = 128;

/// The six DeepPCB defect types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefectType {
    /// Type 1.
    Open,
    /// Type 2.
    Short,
    /// Type 3.
    Mousebite,
    /// Type 4.
    Spur,
    /// Type 5, spurious copper.
    Copper,
    /// Type 6.
    PinHole,
}

impl DefectType {
    /// The type for its DeepPCB number (1 to 6).
    pub fn from_number(n: u32) -> Option<Self> {
        Some(match n {
            1 => Self::Open,
            2 => Self::Short,
            3 => Self::Mousebite,
            4 => Self::Spur,
            5 => Self::Copper,
            6 => Self::PinHole,
            _ => return None,
        })
    }
}

/// One annotated defect box; columns `x1..x2`, rows `y1..y2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefectBox {
    /// Left column.
    pub x1: u32,
    /// Top row.
    pub y1: u32,
    /// One past the right column.
    pub x2: u32,
    /// One past the bottom row.
    pub y2: u32,
    /// The defect type.
    pub kind: DefectType,
}

/// The files of one DeepPCB pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeepPcbPair {
    /// The 8-digit image id.
    pub id: String,
    /// The tested image.
    pub test: PathBuf,
    /// The defect-free template.
    pub template: PathBuf,
    /// The box annotation.
    pub annotation: PathBuf,
}

/// A decoded pair with its boxes and derived mask.
#[derive(Debug, Clone)]
pub struct DeepPcbSample {
    /// The pair's files.
    pub pair: DeepPcbPair,
    /// Tested image, grayscale.
    pub test: GrayImage,
    /// Template, grayscale.
    pub template: GrayImage,
    /// Annotated boxes.
    pub boxes: Vec<DefectBox>,
    /// Derived pixel ground truth (see the module docs): 255 = defect.
    pub mask: GrayImage,
}

impl DeepPcbSample {
    /// The tested image as RGB with its mask, as evaluation takes it.
    pub fn into_sample(self) -> Sample {
        Sample {
            name: self.pair.id,
            image: image::DynamicImage::ImageLuma8(self.test).to_rgb8(),
            mask: self.mask,
        }
    }
}

/// List every pair under `root` (the folder holding `PCBData/`, or `PCBData/` itself),
/// sorted by id. A tested image whose template or annotation is missing is an error.
pub fn list_pairs(root: &Path) -> Result<Vec<DeepPcbPair>, DatasetError> {
    let data = if root.join("PCBData").is_dir() {
        root.join("PCBData")
    } else {
        root.to_owned()
    };
    let layout_error = |reason: String| DatasetError::Layout {
        path: root.to_owned(),
        layout: "DeepPCB",
        reason,
    };

    let mut pairs = Vec::new();
    for group_dir in sorted_entries(&data)? {
        let Some(name) = group_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(group) = name.strip_prefix("group") else {
            continue;
        };
        let images = group_dir.join(group);
        let annotations = group_dir.join(format!("{group}_not"));
        if !images.is_dir() {
            continue;
        }
        for path in sorted_entries(&images)? {
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(id) = file.strip_suffix("_test.jpg") else {
                continue;
            };
            let pair = DeepPcbPair {
                id: id.to_owned(),
                test: path.clone(),
                template: images.join(format!("{id}_temp.jpg")),
                annotation: annotations.join(format!("{id}.txt")),
            };
            for needed in [&pair.template, &pair.annotation] {
                if !needed.is_file() {
                    return Err(layout_error(format!(
                        "{} has no {}",
                        pair.test.display(),
                        needed.display()
                    )));
                }
            }
            pairs.push(pair);
        }
    }
    if pairs.is_empty() {
        return Err(layout_error(
            "found no PCBData/group<G>/<G>/<ID>_test.jpg files".to_owned(),
        ));
    }
    pairs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(pairs)
}

/// Parse an annotation file's text. Blank lines are skipped; anything else must be five
/// space-separated integers with a box inside `width`x`height` and a type from 1 to 6.
pub fn parse_annotation(
    text: &str,
    path: &Path,
    width: u32,
    height: u32,
) -> Result<Vec<DefectBox>, DatasetError> {
    let mut boxes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let error = |reason: String| DatasetError::Annotation {
            path: path.to_owned(),
            line: index + 1,
            reason,
        };
        let values: Vec<u32> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| {
                error(format!(
                    "expected `x1 y1 x2 y2 type` as integers, got `{line}`"
                ))
            })?;
        let [x1, y1, x2, y2, kind] = values[..] else {
            return Err(error(format!(
                "expected 5 values `x1 y1 x2 y2 type`, got {}",
                values.len()
            )));
        };
        if !(x1 < x2 && x2 <= width && y1 < y2 && y2 <= height) {
            return Err(error(format!(
                "box ({x1},{y1})-({x2},{y2}) is empty or outside the {width}x{height} image"
            )));
        }
        let kind = DefectType::from_number(kind)
            .ok_or_else(|| error(format!("defect type {kind} is not one of 1 to 6")))?;
        boxes.push(DefectBox {
            x1,
            y1,
            x2,
            y2,
            kind,
        });
    }
    Ok(boxes)
}

/// The pixel ground truth of a pair: `|test − template| > DIFFERENCE_THRESHOLD` inside the
/// boxes, 255 for defect and 0 elsewhere.
pub fn difference_mask(test: &GrayImage, template: &GrayImage, boxes: &[DefectBox]) -> GrayImage {
    let mut mask = GrayImage::new(test.width(), test.height());
    for b in boxes {
        for y in b.y1..b.y2.min(test.height()) {
            for x in b.x1..b.x2.min(test.width()) {
                let difference = test.get_pixel(x, y)[0].abs_diff(template.get_pixel(x, y)[0]);
                if difference > DIFFERENCE_THRESHOLD {
                    mask.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
    mask
}

/// Decode a pair: both images as grayscale (a few DeepPCB files are stored as 3-channel
/// JPEG with equal channels), the boxes and the derived mask.
pub fn load_pair(pair: &DeepPcbPair) -> Result<DeepPcbSample, DatasetError> {
    let test = open_image(&pair.test)?.to_luma8();
    let template = open_image(&pair.template)?.to_luma8();
    check_same_size(
        &pair.template,
        template.dimensions(),
        &pair.test,
        test.dimensions(),
    )?;

    let text = std::fs::read_to_string(&pair.annotation).map_err(|source| DatasetError::Io {
        path: pair.annotation.clone(),
        source,
    })?;
    let boxes = parse_annotation(&text, &pair.annotation, test.width(), test.height())?;
    let mask = difference_mask(&test, &template, &boxes);

    Ok(DeepPcbSample {
        pair: pair.clone(),
        test,
        template,
        boxes,
        mask,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_space_separated_boxes() {
        let path = Path::new("a.txt");
        let boxes =
            parse_annotation("80 284 114 317 1\n\n291 273 336 304 6\n", path, 640, 640).unwrap();
        assert_eq!(boxes.len(), 2);
        assert_eq!(
            boxes[0],
            DefectBox {
                x1: 80,
                y1: 284,
                x2: 114,
                y2: 317,
                kind: DefectType::Open
            }
        );
        assert_eq!(boxes[1].kind, DefectType::PinHole);
    }

    #[test]
    fn rejects_bad_lines_with_their_line_number() {
        let path = Path::new("a.txt");
        for (text, needle) in [
            ("1,2,3,4,1", "integers"),
            ("1 2 3 4", "5 values"),
            ("10 10 5 20 1", "outside"),
            ("0 0 700 10 1", "outside"),
            ("0 0 10 10 7", "type 7"),
        ] {
            let error = parse_annotation(&format!("0 0 1 1 1\n{text}"), path, 640, 640)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("line 2") && error.contains(needle),
                "{error}"
            );
        }
    }

    #[test]
    fn mask_is_difference_inside_boxes_only() {
        let template = GrayImage::from_pixel(8, 8, Luma([0]));
        let mut test = template.clone();
        for (x, y, v) in [(1, 1, 255), (2, 1, 100), (6, 6, 255)] {
            test.put_pixel(x, y, Luma([v]));
        }
        let boxes = [DefectBox {
            x1: 0,
            y1: 0,
            x2: 4,
            y2: 4,
            kind: DefectType::Short,
        }];
        let mask = difference_mask(&test, &template, &boxes);
        let on: Vec<(u32, u32)> = mask
            .enumerate_pixels()
            .filter(|(_, _, p)| p[0] == 255)
            .map(|(x, y, _)| (x, y))
            .collect();
        // (2,1) differs by only 100; (6,6) is outside every box.
        assert_eq!(on, vec![(1, 1)]);
    }
}
