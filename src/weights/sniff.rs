//! Telling weight formats apart by their first bytes, and describing what a wrong file is.

use super::WeightsError;
use super::safetensors::MAX_HEADER_LEN;

/// The formats a weights file can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// A zip archive as `torch.save` writes it (`.pth`, `.pt`).
    PyTorch,
    /// A `.safetensors` file.
    Safetensors,
}

impl WeightsFormat {
    /// A short name, as recorded in converted files' metadata.
    pub fn name(self) -> &'static str {
        match self {
            WeightsFormat::PyTorch => "pytorch",
            WeightsFormat::Safetensors => "safetensors",
        }
    }
}

const EXPECTED: &str = "expected a PyTorch checkpoint as torch.save writes it (a .pth such as \
                        sam_vit_b_01ec64.pth) or a .safetensors file";

/// Which format the bytes are, or an error saying what they look like instead.
pub(super) fn sniff(bytes: &[u8]) -> Result<WeightsFormat, WeightsError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(WeightsFormat::PyTorch);
    }
    if let (Some(len), Some(b'{')) = (bytes.get(..8), bytes.get(8)) {
        let mut le = [0; 8];
        le.copy_from_slice(len);
        if u64::from_le_bytes(le) <= MAX_HEADER_LEN {
            return Ok(WeightsFormat::Safetensors);
        }
    }
    Err(WeightsError::UnknownFormat(format!(
        "the weights file is {}; {EXPECTED}",
        describe(bytes)
    )))
}

/// What a file that is not weights looks like, judged by its first bytes.
pub(super) fn describe(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_ascii_lowercase();
    let text = text.trim_start();
    let known = if bytes.is_empty() {
        "empty (0 bytes)"
    } else if text.starts_with("<!doctype html") || text.starts_with("<html") {
        "an HTML page, not weights (a failed download or a login page?)"
    } else if text.starts_with("<?xml") || text.starts_with('<') {
        "an XML or HTML document, not weights (a failed download?)"
    } else if text.starts_with("version https://git-lfs") {
        "a Git LFS pointer, not the weights themselves (run `git lfs pull`)"
    } else if bytes.starts_with(b"\x80\x02") || bytes.starts_with(b"\x8a\x0a") {
        "a PyTorch checkpoint in the legacy format of PyTorch before 1.6, which is not \
         supported: re-save it with a newer PyTorch, `torch.save(torch.load(path), new_path)`"
    } else if bytes.starts_with(b"PK") {
        "a zip archive that does not start with a file entry (empty, or a broken archive)"
    } else if bytes.starts_with(b"\x89PNG") {
        "a PNG image"
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        "a JPEG image"
    } else if bytes.starts_with(b"\x1f\x8b") {
        "gzip-compressed: decompress it first"
    } else if bytes.starts_with(b"\x89HDF") {
        "an HDF5 file (Keras?)"
    } else if bytes.starts_with(b"GGUF") {
        "a GGUF file (llama.cpp)"
    } else if text.starts_with('{') || text.starts_with('[') {
        "JSON text, not weights"
    } else {
        ""
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if bytes.len() < 9 {
        format!(
            "too short to be weights ({} bytes: {})",
            bytes.len(),
            head.join(" ")
        )
    } else {
        format!(
            "of an unknown format (it starts with bytes {})",
            head.join(" ")
        )
    }
}
