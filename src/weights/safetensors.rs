//! safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's
//! dtype, shape and byte range, then the raw little-endian data.
//!
//! Reading checks the header as the reference implementation does (bounded length, UTF-8
//! JSON, ranges that tile the data exactly, sizes that match the shapes); writing puts the
//! tensors in name order behind a header padded to 8 bytes.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{DType, StoreDType, TensorEntry, WeightsError, row_major_strides};

/// The largest header we read; real headers are a few hundred kilobytes at most.
pub(super) const MAX_HEADER_LEN: u64 = 100_000_000;

fn corrupt(what: impl std::fmt::Display) -> WeightsError {
    WeightsError::Corrupt(format!("the safetensors file is broken: {what}"))
}

/// One tensor as the header describes it.
#[derive(Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// Element type and size of a safetensors dtype name; `None` for one we do not decode.
fn dtype_of(name: &str) -> Option<(Option<DType>, usize)> {
    let known = match name {
        "F64" => (Some(DType::F64), 8),
        "F32" => (Some(DType::F32), 4),
        "F16" => (Some(DType::F16), 2),
        "BF16" => (Some(DType::BF16), 2),
        "I64" | "U64" => (None, 8),
        "I32" | "U32" => (None, 4),
        "I16" | "U16" => (None, 2),
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => (None, 1),
        _ => return None,
    };
    Some(known)
}

/// The header's JSON text and where the data begins.
fn header(bytes: &[u8]) -> Result<(&str, usize), WeightsError> {
    let Some(len) = bytes.get(..8) else {
        return Err(corrupt("it is shorter than its 8-byte header length"));
    };
    let mut le = [0; 8];
    le.copy_from_slice(len);
    let len = u64::from_le_bytes(le);
    if len > MAX_HEADER_LEN {
        return Err(corrupt(format!(
            "its header claims {len} bytes, more than the {MAX_HEADER_LEN} a safetensors \
             header may have"
        )));
    }
    let len = len as usize;
    let Some(text) = bytes.get(8..8 + len) else {
        return Err(WeightsError::Corrupt(format!(
            "the safetensors file looks truncated: its header needs {} bytes, the file has {}. \
             Was the download cut off? Download it again.",
            8 + len,
            bytes.len()
        )));
    };
    let text = std::str::from_utf8(text).map_err(|_| corrupt("its header is not valid UTF-8"))?;
    Ok((text, 8 + len))
}

/// The parsed header as JSON values by name.
fn header_json(bytes: &[u8]) -> Result<(BTreeMap<String, serde_json::Value>, usize), WeightsError> {
    let (text, data_start) = header(bytes)?;
    let json: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("its header is not a JSON object ({e})")))?;
    Ok((json, data_start))
}

/// The `__metadata__` string map of a safetensors file.
pub(super) fn metadata(bytes: &[u8]) -> Result<BTreeMap<String, String>, WeightsError> {
    let (mut json, _) = header_json(bytes)?;
    match json.remove("__metadata__") {
        None => Ok(BTreeMap::new()),
        Some(value) => serde_json::from_value(value)
            .map_err(|e| corrupt(format!("its __metadata__ is not a map of strings ({e})"))),
    }
}

/// Index the tensors of a safetensors file.
pub(super) fn parse(bytes: &[u8]) -> Result<BTreeMap<String, TensorEntry<'_>>, WeightsError> {
    let (json, data_start) = header_json(bytes)?;
    let data = &bytes[data_start..];

    let mut ranges = Vec::with_capacity(json.len());
    let mut tensors = BTreeMap::new();
    for (name, value) in json {
        if name == "__metadata__" {
            continue;
        }
        let entry: HeaderEntry = serde_json::from_value(value)
            .map_err(|e| corrupt(format!("the header entry of `{name}` is malformed ({e})")))?;
        let Some((dtype, size)) = dtype_of(&entry.dtype) else {
            return Err(corrupt(format!(
                "tensor `{name}` has unknown dtype `{}`",
                entry.dtype
            )));
        };
        let (begin, end) = entry.data_offsets;
        let expected = entry
            .shape
            .iter()
            .try_fold(size, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| corrupt(format!("tensor `{name}` has an impossibly large shape")))?;
        if end < begin || end - begin != expected {
            return Err(corrupt(format!(
                "tensor `{name}` ({} {:?}) needs {expected} bytes but its offsets [{begin}, {end}] \
                 span {}",
                entry.dtype,
                entry.shape,
                end.wrapping_sub(begin)
            )));
        }
        ranges.push((begin, end, name.clone()));

        let Some(dtype) = dtype else {
            log::warn!(
                "skipping tensor `{name}`: {} values are not model weights",
                entry.dtype
            );
            continue;
        };
        let Some(slice) = data.get(begin..end) else {
            continue; // Reported below, with the layout check.
        };
        let strides = row_major_strides(&entry.shape);
        tensors.insert(
            name,
            TensorEntry {
                dtype,
                shape: entry.shape,
                strides,
                bytes: slice,
            },
        );
    }

    // The ranges must tile the data exactly: no gap, no overlap, nothing after.
    ranges.sort_unstable();
    let mut at = 0;
    for (begin, end, name) in &ranges {
        if *begin != at {
            let what = if *begin < at {
                "overlaps the tensor before it"
            } else {
                "leaves a gap"
            };
            return Err(corrupt(format!("tensor `{name}` at byte {begin} {what}")));
        }
        at = *end;
    }
    if at > data.len() {
        return Err(WeightsError::Corrupt(format!(
            "the safetensors file looks truncated: its header describes {at} bytes of data, \
             the file has {}. Was the download cut off? Download it again.",
            data.len()
        )));
    }
    if at < data.len() {
        return Err(corrupt(format!(
            "it has {} bytes after the last tensor",
            data.len() - at
        )));
    }
    Ok(tensors)
}

/// The bytes a stored element takes.
fn store_size(dtype: StoreDType) -> usize {
    match dtype {
        StoreDType::F32 => 4,
        StoreDType::F16 => 2,
    }
}

/// Writes a safetensors file tensor by tensor, so only one tensor need be held in f32.
pub(super) struct Writer {
    out: Vec<u8>,
    dtype: StoreDType,
    /// Names and value counts still to be pushed, in order.
    pending: std::vec::IntoIter<(String, usize)>,
}

impl Writer {
    /// Start a file holding `tensors` (name and shape, in name order) as `dtype`.
    ///
    /// # Panics
    /// If the names are not strictly increasing (the caller sorts them).
    pub fn new(
        tensors: &[(String, Vec<usize>)],
        dtype: StoreDType,
        metadata: &BTreeMap<String, String>,
    ) -> Self {
        assert!(
            tensors.windows(2).all(|w| w[0].0 < w[1].0),
            "safetensors tensors must be unique and in name order"
        );
        let size = store_size(dtype);
        let dtype_name = match dtype {
            StoreDType::F32 => "F32",
            StoreDType::F16 => "F16",
        };

        let mut json = serde_json::Map::new();
        if !metadata.is_empty() {
            json.insert("__metadata__".to_string(), serde_json::json!(metadata));
        }
        let mut offset = 0;
        let mut pending = Vec::with_capacity(tensors.len());
        for (name, shape) in tensors {
            let count: usize = shape.iter().product();
            let end = offset + count * size;
            json.insert(
                name.clone(),
                serde_json::json!({ "dtype": dtype_name, "shape": shape, "data_offsets": [offset, end] }),
            );
            pending.push((name.clone(), count));
            offset = end;
        }

        // Pad the header with spaces so the data starts 8-byte aligned.
        let mut header = serde_json::Value::Object(json).to_string().into_bytes();
        header.resize(header.len().div_ceil(8) * 8, b' ');
        let mut out = Vec::with_capacity(8 + header.len() + offset);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        Writer {
            out,
            dtype,
            pending: pending.into_iter(),
        }
    }

    /// Append the values of the next tensor.
    ///
    /// # Panics
    /// If every tensor was pushed already or `values` does not match the next shape.
    pub fn push(&mut self, values: &[f32]) {
        let (name, count) = self
            .pending
            .next()
            .expect("more tensors pushed than declared");
        assert_eq!(
            values.len(),
            count,
            "tensor `{name}` has the wrong number of values"
        );
        match self.dtype {
            StoreDType::F32 => {
                for v in values {
                    self.out.extend_from_slice(&v.to_le_bytes());
                }
            }
            StoreDType::F16 => {
                for v in values {
                    self.out
                        .extend_from_slice(&half::f16::from_f32(*v).to_le_bytes());
                }
            }
        }
    }

    /// The finished file.
    ///
    /// # Panics
    /// If some declared tensor was not pushed.
    pub fn finish(mut self) -> Vec<u8> {
        assert!(
            self.pending.next().is_none(),
            "fewer tensors pushed than declared"
        );
        self.out
    }
}
