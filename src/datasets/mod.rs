//! Labelled PCB images for evaluation: DeepPCB pairs and MVTec AD / VisA style folders.
//!
//! Both readers list their samples first (paths only) and decode one [`Sample`] at a time,
//! so a dataset of any size costs one image of memory.

pub mod anomaly_folder;
pub mod deeppcb;
pub mod image_folder;

use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage};

/// What went wrong reading a dataset; every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An image file could not be decoded.
    #[error("cannot decode the image {path}: {message}")]
    Decode { path: PathBuf, message: String },
    /// The folder does not have the layout the reader expects.
    #[error("{path} is not a {layout} dataset: {reason}")]
    Layout {
        path: PathBuf,
        layout: &'static str,
        reason: String,
    },
    /// A folder that should hold images holds none.
    #[error("{0} holds no PNG or JPEG images")]
    NoImages(PathBuf),
    /// A line of an annotation file is malformed.
    #[error("{path}, line {line}: {reason}")]
    Annotation {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A mask (or template) has another size than the image it belongs to.
    #[error(
        "{mask} is {mask_width}x{mask_height} but its image {image} is \
         {image_width}x{image_height}; a mask must have its image's size"
    )]
    SizeMismatch {
        mask: PathBuf,
        mask_width: u32,
        mask_height: u32,
        image: PathBuf,
        image_width: u32,
        image_height: u32,
    },
    /// A defect image has no ground-truth mask.
    #[error("{image} has no ground-truth mask; looked for {looked_for}")]
    MissingMask { image: PathBuf, looked_for: String },
}

/// One labelled image, decoded.
#[derive(Debug, Clone)]
pub struct Sample {
    /// A name that is unique within the dataset (used for output files).
    pub name: String,
    /// The image to segment.
    pub image: RgbImage,
    /// Ground truth, same size as `image`: 255 = defect, 0 = normal.
    pub mask: GrayImage,
}

/// Read an image file, mapping failures to [`DatasetError`].
pub(crate) fn open_image(path: &Path) -> Result<image::DynamicImage, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    image::load_from_memory(&bytes).map_err(|e| DatasetError::Decode {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Fail with [`DatasetError::SizeMismatch`] unless `mask` has `image`'s size.
pub(crate) fn check_same_size(
    mask_path: &Path,
    mask: (u32, u32),
    image_path: &Path,
    image: (u32, u32),
) -> Result<(), DatasetError> {
    if mask == image {
        return Ok(());
    }
    Err(DatasetError::SizeMismatch {
        mask: mask_path.to_owned(),
        mask_width: mask.0,
        mask_height: mask.1,
        image: image_path.to_owned(),
        image_width: image.0,
        image_height: image.1,
    })
}

/// The entries of a folder, sorted by name so every listing is reproducible.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let io = |source| DatasetError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        entries.push(entry.map_err(io)?.path());
    }
    entries.sort();
    Ok(entries)
}

/// Whether a path names an image file we decode (PNG or JPEG; case-insensitive).
pub(crate) fn is_image_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
            .unwrap_or(false)
}
