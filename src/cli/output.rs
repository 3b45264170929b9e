//! Writing outputs without losing what is there.

use std::path::{Path, PathBuf};

use super::CliError;

/// Write `bytes` to `path` unless it exists (or `overwrite`), through a temporary file in
/// the same folder that is renamed into place.
pub fn write_new(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), CliError> {
    check_free(path, overwrite)?;
    let io = |source| CliError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

/// Fail if `path` exists and `overwrite` is off; call before long work to fail early.
pub fn check_free(path: &Path, overwrite: bool) -> Result<(), CliError> {
    if path.exists() && !overwrite {
        return Err(CliError::Exists(path.to_owned()));
    }
    Ok(())
}

/// PNG bytes of an image.
pub fn png<P, C>(image: &image::ImageBuffer<P, C>) -> Result<Vec<u8>, CliError>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|e| CliError::Usage(format!("cannot encode a PNG: {e}")))?;
    Ok(bytes.into_inner())
}

/// The file stem of a path, for naming outputs.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned())
}
