//! PyTorch checkpoints as `torch.save` writes them since PyTorch 1.6: an uncompressed zip
//! archive holding `<prefix>/data.pkl` (the pickled object), `<prefix>/data/<key>` (one entry
//! per storage, raw little-endian elements) and `<prefix>/byteorder`.
//!
//! Entries are sliced straight out of the input bytes; nothing is copied or inflated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Cursor;

use zip::CompressionMethod;

use super::pickle::{self, Obj, StorageKind, TensorRef, Unpickled, Value};
use super::{TensorEntry, WeightsError, view_span};

/// How deep nested dicts (e.g. `{"model": state_dict}`) are searched for tensors.
const MAX_NESTING: usize = 8;

fn corrupt(what: impl std::fmt::Display) -> WeightsError {
    WeightsError::Corrupt(format!("the PyTorch checkpoint is broken: {what}"))
}

/// Whether the bytes end with a complete zip end-of-central-directory record, as an
/// archive does (22 bytes and a comment, in the last 22 + 65535 bytes).
fn has_end_record(bytes: &[u8]) -> bool {
    let from = bytes.len().saturating_sub(22 + 65_535);
    let Some(at) = bytes[from..].windows(4).rposition(|w| w == b"PK\x05\x06") else {
        return false;
    };
    let at = from + at;
    bytes.get(at + 20..at + 22).is_some_and(|len| {
        let comment = usize::from(u16::from_le_bytes([len[0], len[1]]));
        at + 22 + comment <= bytes.len()
    })
}

/// One stored entry of the archive.
struct Entry {
    start: usize,
    len: usize,
    compression: CompressionMethod,
}

/// The entries of the archive by name, located without reading their contents.
fn entries(bytes: &[u8]) -> Result<HashMap<String, Entry>, WeightsError> {
    if !has_end_record(bytes) {
        return Err(WeightsError::Corrupt(format!(
            "the PyTorch checkpoint looks truncated: it is a zip archive without its final \
             directory ({} bytes; the ViT-B SAM checkpoint is about 375 MB). Was the \
             download cut off? Download it again.",
            bytes.len()
        )));
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| corrupt(format!("its zip directory cannot be read ({e})")))?;

    let mut entries = HashMap::with_capacity(archive.len());
    for index in 0..archive.len() {
        let file = archive
            .by_index_raw(index)
            .map_err(|e| corrupt(format!("zip entry {index} cannot be read ({e})")))?;
        let name = file.name().to_string();
        let start = usize::try_from(file.data_start()).ok();
        let len = usize::try_from(file.compressed_size()).ok();
        let end = start.zip(len).and_then(|(s, l)| s.checked_add(l));
        let (Some(start), Some(len), Some(end)) = (start, len, end) else {
            return Err(corrupt(format!(
                "zip entry `{name}` has an impossible size"
            )));
        };
        if end > bytes.len() {
            return Err(WeightsError::Corrupt(format!(
                "the PyTorch checkpoint looks truncated: zip entry `{name}` ends at byte {end} \
                 but the file has {} bytes. Download it again.",
                bytes.len()
            )));
        }
        let compression = file.compression();
        if compression == CompressionMethod::Stored && file.size() != file.compressed_size() {
            return Err(corrupt(format!(
                "stored zip entry `{name}` has two different sizes"
            )));
        }
        entries.insert(
            name,
            Entry {
                start,
                len,
                compression,
            },
        );
    }
    Ok(entries)
}

/// The bytes of a stored entry.
fn stored<'a>(bytes: &'a [u8], name: &str, entry: &Entry) -> Result<&'a [u8], WeightsError> {
    if entry.compression != CompressionMethod::Stored {
        return Err(WeightsError::Corrupt(format!(
            "zip entry `{name}` of the PyTorch checkpoint is compressed ({:?}); torch.save \
             never compresses, so the file was repacked. Re-save it with torch.save, or \
             re-zip it without compression (zip -0).",
            entry.compression
        )));
    }
    bytes
        .get(entry.start..entry.start + entry.len)
        .ok_or_else(|| corrupt(format!("zip entry `{name}` lies outside the file")))
}

/// The archive's folder name: the `<prefix>` of `<prefix>/data.pkl`.
fn prefix(entries: &HashMap<String, Entry>) -> Result<String, WeightsError> {
    let mut prefixes: Vec<&str> = entries
        .keys()
        .filter_map(|name| name.strip_suffix("/data.pkl"))
        .filter(|p| !p.contains('/'))
        .collect();
    prefixes.sort_unstable();
    match prefixes.first() {
        Some(p) => Ok(p.to_string()),
        None => Err(WeightsError::UnknownFormat(
            "this is a zip archive but not a PyTorch checkpoint (it has no `<name>/data.pkl`); \
             expected a .pth file as torch.save writes it (e.g. sam_vit_b_01ec64.pth) or a \
             .safetensors file"
                .to_string(),
        )),
    }
}

/// Index the tensors of a PyTorch checkpoint.
pub(super) fn parse(bytes: &[u8]) -> Result<BTreeMap<String, TensorEntry<'_>>, WeightsError> {
    let entries = entries(bytes)?;
    let prefix = prefix(&entries)?;

    let byteorder_name = format!("{prefix}/byteorder");
    if let Some(entry) = entries.get(&byteorder_name) {
        match stored(bytes, &byteorder_name, entry)? {
            b"little" => {}
            b"big" => {
                return Err(WeightsError::Corrupt(
                    "the PyTorch checkpoint was saved on a big-endian machine, which is not \
                     supported; load and re-save it on a little-endian one (x86, ARM)"
                        .to_string(),
                ));
            }
            _ => return Err(corrupt("its byteorder entry is neither `little` nor `big`")),
        }
    }

    let pkl_name = format!("{prefix}/data.pkl");
    let pkl = match entries.get(&pkl_name) {
        Some(entry) => stored(bytes, &pkl_name, entry)?,
        None => return Err(corrupt("it has no data.pkl")),
    };
    let unpickled = pickle::unpickle(pkl)?;

    let mut found = Vec::new();
    let mut seen = HashSet::new();
    collect(&unpickled, &unpickled.root, "", 0, &mut seen, &mut found)?;
    if found.is_empty() && !matches!(unpickled.obj(&unpickled.root), Some(Obj::Dict(_))) {
        return Err(WeightsError::Corrupt(
            "the PyTorch checkpoint holds something other than a dict of tensors; save the \
             state dict: torch.save(model.state_dict(), path)"
                .to_string(),
        ));
    }

    let mut tensors = BTreeMap::new();
    for (name, tensor) in found {
        let StorageKind::Float(dtype) = tensor.storage.kind else {
            if let StorageKind::Other(kind) = tensor.storage.kind {
                log::warn!("skipping tensor `{name}`: {kind} values are not model weights");
            }
            continue;
        };
        let entry_name = format!("{prefix}/data/{}", tensor.storage.key);
        let Some(entry) = entries.get(&entry_name) else {
            return Err(corrupt(format!(
                "tensor `{name}` refers to storage `{}`, which is not in the archive",
                tensor.storage.key
            )));
        };
        let storage = stored(bytes, &entry_name, entry)?;
        let size = pickle::element_size(tensor.storage.kind);
        let declared = tensor.storage.numel.checked_mul(size);
        if declared.is_none_or(|d| d > storage.len()) {
            return Err(corrupt(format!(
                "storage `{}` declares {} values but holds {} bytes",
                tensor.storage.key,
                tensor.storage.numel,
                storage.len()
            )));
        }

        let view = view_span(&name, &tensor.shape, &tensor.strides)?;
        let start = tensor
            .offset
            .checked_mul(size)
            .filter(|&s| s <= storage.len());
        let needed = view.checked_mul(size);
        let fits = start
            .zip(needed)
            .and_then(|(s, n)| s.checked_add(n))
            .is_some_and(|end| end <= storage.len());
        let (Some(start), true) = (start, fits) else {
            return Err(corrupt(format!(
                "tensor `{name}` (shape {:?}, strides {:?}, offset {}) reaches past the end of \
                 its storage of {} bytes",
                tensor.shape,
                tensor.strides,
                tensor.offset,
                storage.len()
            )));
        };

        tensors.insert(
            name,
            TensorEntry {
                dtype,
                shape: tensor.shape.clone(),
                strides: tensor.strides.clone(),
                bytes: &storage[start..],
            },
        );
    }
    Ok(tensors)
}

/// Gather the tensors of a dict, descending into nested dicts with dotted names.
fn collect<'u>(
    unpickled: &'u Unpickled,
    value: &Value,
    prefix: &str,
    depth: usize,
    seen: &mut HashSet<usize>,
    found: &mut Vec<(String, &'u TensorRef)>,
) -> Result<(), WeightsError> {
    let Value::Obj(index) = value else {
        return Ok(());
    };
    let Some(Obj::Dict(pairs)) = unpickled.objects.get(*index) else {
        return Ok(());
    };
    if depth > MAX_NESTING || !seen.insert(*index) {
        return Ok(());
    }

    // A key set twice keeps its last value, as in Python.
    let mut last: BTreeMap<&str, &Value> = BTreeMap::new();
    for (key, value) in pairs {
        match key {
            Value::Str(key) => {
                last.insert(key, value);
            }
            _ => log::debug!("skipping a non-string key in the checkpoint"),
        }
    }
    for (key, value) in last {
        let name = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        match unpickled.obj(value) {
            Some(Obj::Tensor(tensor)) => found.push((name, tensor)),
            Some(Obj::Dict(_)) => collect(unpickled, value, &name, depth + 1, seen, found)?,
            _ => log::debug!("skipping `{name}`: not a tensor"),
        }
    }
    Ok(())
}
