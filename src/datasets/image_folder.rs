//! A folder of images (normal images for training, images to segment).

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::{DatasetError, is_image_file, sorted_entries};

/// The PNG and JPEG files directly inside `dir`, sorted by name. An empty folder is an
/// error, since every caller needs at least one image.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::Layout {
            path: dir.to_owned(),
            layout: "image folder",
            reason: "it is not a folder".to_owned(),
        });
    }
    let images: Vec<PathBuf> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| is_image_file(p))
        .collect();
    if images.is_empty() {
        return Err(DatasetError::Layout {
            path: dir.to_owned(),
            layout: "image folder",
            reason: "it holds no PNG or JPEG images".to_owned(),
        });
    }
    Ok(images)
}

/// Decode an image file as RGB through [`crate::image_input::decode`], with its size
/// limits and colour-type handling.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    crate::image_input::decode(&bytes).map_err(|e| DatasetError::Decode {
        path: path.to_owned(),
        message: e.to_string(),
    })
}
