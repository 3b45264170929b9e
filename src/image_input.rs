//! Decoding user images safely: any PNG or JPEG a user brings becomes an RGB image, or a clear
//! error that says what is wrong. Declared sizes are checked before any pixel is allocated, so
//! a forged header (a 50000x50000 PNG) is refused instead of exhausting memory.
//!
//! Colour types: 8- and 16-bit grayscale and RGB, palette, with or without alpha, and CMYK
//! JPEG are converted to 8-bit RGB. Alpha is dropped (a board photo has no meaningful
//! transparency); 16-bit samples are scaled to 8 bits.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits, RgbImage};

/// Largest width or height accepted, in pixels.
pub const MAX_SIDE: u32 = 12_000;
/// Largest decoder allocation, in bytes.
pub const MAX_ALLOC: u64 = 768 * 1024 * 1024;

/// Why an image could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageInputError {
    /// The file is empty.
    #[error("the file is empty; choose a PNG or JPEG image of a board")]
    Empty,
    /// The bytes are no image format we read.
    #[error("the file is not a PNG or JPEG image ({0}); choose a PNG or JPEG image of a board")]
    UnknownFormat(String),
    /// The declared size is too large.
    #[error(
        "the image declares {width}x{height} pixels; images up to {max}x{max} are accepted: downscale it first"
    )]
    TooLarge { width: u32, height: u32, max: u32 },
    /// The image has no pixels.
    #[error("the image has no pixels ({width}x{height})")]
    ZeroSize { width: u32, height: u32 },
    /// The file is broken or truncated.
    #[error("the {format} file could not be decoded ({detail}); it may be truncated or corrupt")]
    Corrupt { format: String, detail: String },
}

/// Describe the first bytes of a file that is not an image we read.
fn describe(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(16)];
    let text = String::from_utf8_lossy(head).to_lowercase();
    if text.trim_start().starts_with("<!doctype") || text.trim_start().starts_with("<html") {
        "it looks like an HTML page".into()
    } else if head.starts_with(b"PK\x03\x04") {
        "it looks like a zip archive".into()
    } else if head.starts_with(b"GIF8") {
        "it is a GIF".into()
    } else if head.starts_with(b"RIFF") {
        "it is a RIFF file (WebP?)".into()
    } else {
        format!("it starts with bytes {head:02x?}")
    }
}

/// Width and height from a PNG's IHDR chunk, which the format requires to come first.
fn png_header_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let read =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some((read(16), read(20)))
}

/// Decode a PNG or JPEG from bytes into 8-bit RGB.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, ImageInputError> {
    if bytes.is_empty() {
        return Err(ImageInputError::Empty);
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        _ => return Err(ImageInputError::UnknownFormat(describe(bytes))),
    };
    let format_name = format!("{format:?}").to_uppercase();
    let corrupt = |e: image::ImageError| ImageInputError::Corrupt {
        format: format_name.clone(),
        detail: e.to_string(),
    };

    // A PNG's size is read straight from its header: on 32-bit wasm the decoder refuses a
    // forged size with a bare memory error before it can report the size.
    let (width, height) = match png_header_size(bytes) {
        Some(size) => size,
        None => {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
            reader.no_limits();
            reader.into_dimensions().map_err(corrupt)?
        }
    };
    if width == 0 || height == 0 {
        return Err(ImageInputError::ZeroSize { width, height });
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageInputError::TooLarge {
            width,
            height,
            max: MAX_SIDE,
        });
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(corrupt)?;
    Ok(image.to_rgb8())
}

/// Downscale (Triangle filter) so neither side exceeds `max_side`; 0 or a fitting image
/// returns it unchanged.
pub fn fit_within(image: RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    if max_side == 0 || (w <= max_side && h <= max_side) {
        return image;
    }
    let scale = max_side as f32 / w.max(h) as f32;
    let nw = ((w as f32 * scale).round() as u32).clamp(1, max_side);
    let nh = ((h as f32 * scale).round() as u32).clamp(1, max_side);
    image::imageops::resize(&image, nw, nh, image::imageops::FilterType::Triangle)
}
