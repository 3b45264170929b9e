//! MVTec AD / VisA style folders: test images grouped by defect, with pixel masks.
//!
//! Accepted layout, for one category folder `<root>`:
//!
//! ```text
//! <root>/test/good/<name>.<ext>                 normal images: no mask, ground truth all 0
//! <root>/test/<defect>/<name>.<ext>             defect images
//! <root>/ground_truth/<defect>/<name>_mask.<ext>   MVTec AD mask naming
//! <root>/ground_truth/<defect>/<name>.<ext>        VisA masks after its MVTec-style split
//! ```
//!
//! `<ext>` is `png`, `jpg` or `jpeg` in any case (VisA images are `.JPG`). A PNG mask marks
//! a defect with any nonzero value (MVTec AD uses 255; VisA's original masks use small
//! class values). A JPEG mask carries compression noise at edges, so there a defect is a
//! value of 128 or more. Other folders at the root (`train/`, `license.txt`, ...) are
//! ignored. A defect image without a mask, or with a mask of another size, is an error.

use std::path::{Path, PathBuf};

use image::{GrayImage, Luma};

use super::{DatasetError, Sample, check_same_size, is_image_file, open_image, sorted_entries};

/// The folder name of normal test images.
pub const GOOD: &str = "good";

/// One test image and where its mask is (none for `test/good/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyItem {
    /// `<defect>/<name>`, unique within the folder.
    pub name: String,
    /// The defect folder name (`good` for normal images).
    pub defect: String,
    /// The image file.
    pub image: PathBuf,
    /// The mask file; `None` for normal images.
    pub mask: Option<PathBuf>,
}

/// List the test images of an MVTec AD / VisA style category folder, sorted by name.
pub fn list_items(root: &Path) -> Result<Vec<AnomalyItem>, DatasetError> {
    let layout_error = |reason: String| DatasetError::Layout {
        path: root.to_owned(),
        layout: "MVTec AD / VisA",
        reason,
    };
    let test = root.join("test");
    if !test.is_dir() {
        return Err(layout_error(
            "it has no test/ folder (expected test/<defect>/<image> and \
             ground_truth/<defect>/<image>_mask.png)"
                .to_owned(),
        ));
    }

    let mut items = Vec::new();
    for defect_dir in sorted_entries(&test)? {
        if !defect_dir.is_dir() {
            continue;
        }
        let Some(defect) = defect_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        for image in sorted_entries(&defect_dir)?
            .into_iter()
            .filter(|p| is_image_file(p))
        {
            let Some(stem) = image.file_stem().and_then(|n| n.to_str()) else {
                continue;
            };
            let mask = if defect == GOOD {
                None
            } else {
                Some(find_mask(root, defect, stem, &image)?)
            };
            items.push(AnomalyItem {
                name: format!("{defect}/{stem}"),
                defect: defect.to_owned(),
                image,
                mask,
            });
        }
    }
    if items.is_empty() {
        return Err(layout_error("test/ holds no PNG or JPEG images".to_owned()));
    }
    Ok(items)
}

/// The mask of `test/<defect>/<stem>.*`, under either naming.
fn find_mask(root: &Path, defect: &str, stem: &str, image: &Path) -> Result<PathBuf, DatasetError> {
    let folder = root.join("ground_truth").join(defect);
    let candidates = [format!("{stem}_mask"), stem.to_owned()];
    if folder.is_dir() {
        for path in sorted_entries(&folder)?
            .into_iter()
            .filter(|p| is_image_file(p))
        {
            let file_stem = path.file_stem().and_then(|n| n.to_str());
            if file_stem.is_some_and(|s| candidates.iter().any(|c| c == s)) {
                return Ok(path);
            }
        }
    }
    Err(DatasetError::MissingMask {
        image: image.to_owned(),
        looked_for: format!("{}/{stem}_mask.png or {stem}.png", folder.display()),
    })
}

/// Whether a mask file is a JPEG (thresholded at 128) rather than a PNG (any nonzero).
fn is_jpeg(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg"))
}

/// Decode an item: the image as RGB and its mask as 0/255 (all 0 for normal images).
pub fn load_item(item: &AnomalyItem) -> Result<Sample, DatasetError> {
    let image = open_image(&item.image)?.to_rgb8();
    let mask = match &item.mask {
        None => GrayImage::new(image.width(), image.height()),
        Some(path) => {
            let raw = open_image(path)?.to_luma8();
            check_same_size(path, raw.dimensions(), &item.image, image.dimensions())?;
            let cut = if is_jpeg(path) { 128 } else { 1 };
            GrayImage::from_fn(raw.width(), raw.height(), |x, y| {
                Luma([if raw.get_pixel(x, y)[0] >= cut {
                    255
                } else {
                    0
                }])
            })
        }
    };
    Ok(Sample {
        name: item.name.clone(),
        image,
        mask,
    })
}
