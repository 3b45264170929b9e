//! Reading model weights as users download them and writing them for serving.
//!
//! A [`Checkpoint`] borrows the bytes of a file (a PyTorch checkpoint, zip + pickle, as
//! `torch.save` writes it; or safetensors in f32, f16, bf16 or f64) and indexes its tensors
//! without copying them. The model takes each tensor by name with the shape it expects,
//! so at most one tensor is decoded beyond the file bytes and the model at any time.
//! Whatever the model did not take is reported by [`Checkpoint::finish`].
//!
//! Everything works from bytes in memory (no paths, no mmap), so the same code runs in the
//! browser. Peak memory while loading is the file itself plus one decoded tensor: parsing
//! only slices the input (zip entries are stored uncompressed, safetensors data is raw),
//! and [`Checkpoint::take`] allocates the f32 values of one tensor. Every size a file
//! declares is checked against the bytes it has before anything is allocated, so a broken
//! or hostile file gives an error, never a panic, a hang or a huge allocation.
//!
//! The parts: `pytorch.rs` reads the zip archive and runs its `data.pkl` through the strict
//! pickle reader of `pickle.rs`, which only rebuilds tensors, storages and dicts;
//! `safetensors.rs` reads and writes safetensors; `sniff.rs` tells the formats apart and
//! names what a wrong file looks like; [`convert_to_safetensors`] turns any checkpoint into
//! f16 or f32 safetensors for serving.

mod convert;
mod pickle;
mod pytorch;
mod safetensors;
mod sniff;

use std::collections::{BTreeMap, BTreeSet};

pub use convert::convert_to_safetensors;
pub use sniff::WeightsFormat;

/// What went wrong reading weights; every message says what differs and what to do.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The bytes are neither a PyTorch zip checkpoint nor safetensors.
    #[error("{0}")]
    UnknownFormat(String),
    /// The file is a known format but broken (truncated, corrupt, unsupported content).
    #[error("{0}")]
    Corrupt(String),
    /// The model expects a tensor the file does not have.
    #[error("the weights file has no tensor `{name}`; {hint}")]
    Missing {
        /// The tensor asked for.
        name: String,
        /// What the file has instead.
        hint: String,
    },
    /// A tensor has another shape than the model expects.
    #[error(
        "tensor `{name}` has shape {found:?} in the weights file; the model expects {expected:?}{hint}"
    )]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape in the file.
        found: Vec<usize>,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// A likely cause, starting with its separator (empty if none).
        hint: String,
    },
    /// Tensors the model did not use.
    #[error(
        "the weights file has {count} tensors the model does not use, e.g. {examples:?}; is it the right model size?"
    )]
    Unexpected {
        /// How many tensors were left.
        count: usize,
        /// The first few of their names.
        examples: Vec<String>,
    },
}

/// Element types found in weight files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16: the top half of an f32.
    BF16,
    /// IEEE double precision (rounded to f32 when taken).
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::F64 => 8,
        }
    }
}

/// Where one tensor lives inside the borrowed bytes.
#[derive(Debug, Clone)]
pub struct TensorEntry<'a> {
    /// Element type as stored.
    pub dtype: DType,
    /// Size of each dimension, outermost first.
    pub shape: Vec<usize>,
    /// Strides in elements (PyTorch order); safetensors are always contiguous.
    pub strides: Vec<usize>,
    /// The storage the tensor views, starting at its storage offset.
    pub bytes: &'a [u8],
}

/// The format of a weights file judged by its first bytes (64 are enough), or an error
/// that says what the file looks like instead: a caller can refuse a wrong file before
/// reading all of it.
pub fn format_of(first_bytes: &[u8]) -> Result<WeightsFormat, WeightsError> {
    sniff::sniff(first_bytes)
}

/// What a file that is no weights file looks like, judged by its first bytes ("a JPEG
/// image", "empty (0 bytes)", ...), for messages about other files of the same formats.
pub fn looks_like(first_bytes: &[u8]) -> String {
    sniff::describe(first_bytes)
}

/// An index of the tensors in a weights file, borrowing its bytes.
#[derive(Debug)]
pub struct Checkpoint<'a> {
    tensors: BTreeMap<String, TensorEntry<'a>>,
    format: WeightsFormat,
    taken: BTreeSet<String>,
}

impl<'a> Checkpoint<'a> {
    /// Index a PyTorch checkpoint or a safetensors file, told apart by their first bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightsError> {
        let format = sniff::sniff(bytes)?;
        let tensors = match format {
            WeightsFormat::PyTorch => pytorch::parse(bytes)?,
            WeightsFormat::Safetensors => safetensors::parse(bytes)?,
        };
        log::debug!(
            "indexed {} tensors in a {} weights file of {} bytes",
            tensors.len(),
            format.name(),
            bytes.len()
        );
        Ok(Checkpoint {
            tensors,
            format,
            taken: BTreeSet::new(),
        })
    }

    /// The format the file turned out to have.
    pub fn format(&self) -> WeightsFormat {
        self.format
    }

    /// The names of the tensors not taken yet.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of a tensor not taken yet.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// Where a tensor not taken yet lives, with its element type.
    pub fn entry(&self, name: &str) -> Option<&TensorEntry<'a>> {
        self.tensors.get(name)
    }

    /// Remove a tensor and decode it to contiguous f32 (row-major), checking its shape.
    ///
    /// f16 and bf16 convert exactly; f64 rounds to the nearest f32.
    pub fn take(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let Some(entry) = self.tensors.get(name) else {
            return Err(WeightsError::Missing {
                name: name.to_string(),
                hint: self.missing_hint(name),
            });
        };
        if entry.shape != expected {
            let found_count = entry
                .shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d));
            let expected_count = expected.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let hint = if found_count == expected_count {
                " (the same number of values in another layout: was it exported reshaped or \
                 transposed?)"
            } else {
                "; is the weights file for another model or model size?"
            };
            return Err(WeightsError::Shape {
                name: name.to_string(),
                found: entry.shape.clone(),
                expected: expected.to_vec(),
                hint: hint.to_string(),
            });
        }

        let values = decode(name, entry)?;
        self.tensors.remove(name);
        self.taken.insert(name.to_string());
        Ok(values)
    }

    /// Fail if any tensor was not taken.
    pub fn finish(self) -> Result<(), WeightsError> {
        if self.tensors.is_empty() {
            return Ok(());
        }
        Err(WeightsError::Unexpected {
            count: self.tensors.len(),
            examples: self.tensors.into_keys().take(5).collect(),
        })
    }

    /// Why a tensor the model asks for is not there, and what the file has instead.
    fn missing_hint(&self, name: &str) -> String {
        if self.taken.contains(name) {
            return "it was read already (each tensor is taken once)".to_string();
        }
        let suffix = format!(".{name}");
        let renamed = self
            .tensors
            .keys()
            .find(|k| k.ends_with(&suffix) || name.ends_with(&format!(".{k}")));
        if let Some(other) = renamed {
            return format!(
                "it has `{other}`: the names carry another prefix (saved from a wrapper such \
                 as DataParallel, or from another model?)"
            );
        }
        if self.tensors.is_empty() {
            return "it has no tensors left to read".to_string();
        }
        let examples: Vec<&str> = self.names().take(3).collect();
        format!(
            "its {} unread tensors include {examples:?}; is it the right weights file?",
            self.tensors.len()
        )
    }
}

/// Row-major (contiguous) strides of a shape, in elements.
pub(crate) fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1].saturating_mul(shape[d + 1]);
    }
    strides
}

/// The number of storage elements a view spans, from its first element to its last
/// (0 for a view without values).
///
/// Views that would read some elements twice (expanded, broadcast) are refused, so that
/// the values a view yields never outnumber the bytes behind it.
// Limitation: expanded tensors (stride 0) are refused rather than materialized; torch.save
// keeps them as views, but model weights never are. Saving `t.contiguous()` avoids it.
pub(crate) fn view_span(
    name: &str,
    shape: &[usize],
    strides: &[usize],
) -> Result<usize, WeightsError> {
    let too_large = || {
        WeightsError::Corrupt(format!(
            "tensor `{name}` has an impossibly large shape {shape:?}"
        ))
    };
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(too_large)?;
    if count == 0 {
        return Ok(0);
    }
    let last = shape
        .iter()
        .zip(strides)
        .try_fold(0usize, |a, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| a.checked_add(x))
        })
        .ok_or_else(too_large)?;
    let span = last.checked_add(1).ok_or_else(too_large)?;
    if span < count {
        return Err(WeightsError::Corrupt(format!(
            "tensor `{name}` (shape {shape:?}, strides {strides:?}) reads some values more than \
             once (an expanded view); save it contiguous: t.contiguous()"
        )));
    }
    Ok(span)
}

/// Decode one element of a dtype from its little-endian bytes.
fn element_reader(dtype: DType) -> fn(&[u8]) -> f32 {
    match dtype {
        DType::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        DType::F16 => |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
        DType::BF16 => |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        DType::F64 => {
            |b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }
    }
}

/// Decode a tensor view to contiguous row-major f32, honouring its strides.
fn decode(name: &str, entry: &TensorEntry<'_>) -> Result<Vec<f32>, WeightsError> {
    let size = entry.dtype.size();
    let span = view_span(name, &entry.shape, &entry.strides)?;
    if span.checked_mul(size).is_none_or(|n| n > entry.bytes.len())
        || entry.shape.len() != entry.strides.len()
    {
        return Err(WeightsError::Corrupt(format!(
            "tensor `{name}` reaches past the end of its data"
        )));
    }
    let read = element_reader(entry.dtype);
    let count: usize = entry.shape.iter().product();
    if count == 0 {
        return Ok(Vec::new());
    }

    // Contiguous views (all of SAM's) are one pass over the bytes.
    let contiguous = entry
        .shape
        .iter()
        .zip(entry.strides.iter().zip(row_major_strides(&entry.shape)))
        .all(|(&d, (&s, r))| d <= 1 || s == r);
    if contiguous {
        return Ok(entry.bytes[..count * size]
            .chunks_exact(size)
            .map(read)
            .collect());
    }

    // Otherwise walk the index like an odometer, last dimension fastest.
    let mut values = Vec::with_capacity(count);
    let rank = entry.shape.len();
    let mut index = vec![0usize; rank];
    let mut offset = 0usize;
    loop {
        values.push(read(&entry.bytes[offset * size..(offset + 1) * size]));
        let mut d = rank;
        loop {
            if d == 0 {
                return Ok(values);
            }
            d -= 1;
            index[d] += 1;
            offset += entry.strides[d];
            if index[d] < entry.shape[d] {
                break;
            }
            offset -= entry.strides[d] * entry.shape[d];
            index[d] = 0;
        }
    }
}

/// Element type of a safetensors file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDType {
    /// Every bit of the f32 values.
    F32,
    /// Half the size, rounded to nearest even.
    F16,
}

/// One tensor to write: name, shape and row-major f32 values.
pub struct NamedTensor<'t> {
    /// The name it is stored under.
    pub name: &'t str,
    /// Size of each dimension, outermost first.
    pub shape: &'t [usize],
    /// Row-major values; as many as the shape holds.
    pub values: &'t [f32],
}

/// Serialize tensors as safetensors, converting to `dtype`, with string metadata
/// (stored under `__metadata__`).
///
/// Tensors are written in name order behind a header padded to 8 bytes; f16 rounds to
/// nearest, ties to even.
///
/// # Panics
/// If two tensors have the same name or a tensor's values do not fill its shape (both are
/// mistakes of the caller, not of a file).
pub fn write_safetensors<'t>(
    tensors: impl IntoIterator<Item = NamedTensor<'t>>,
    dtype: StoreDType,
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut tensors: Vec<NamedTensor<'t>> = tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.name.cmp(b.name));
    let layout: Vec<(String, Vec<usize>)> = tensors
        .iter()
        .map(|t| (t.name.to_string(), t.shape.to_vec()))
        .collect();

    let mut writer = safetensors::Writer::new(&layout, dtype, metadata);
    for tensor in &tensors {
        writer.push(tensor.values);
    }
    writer.finish()
}

/// Read the `__metadata__` of a safetensors file (empty for a PyTorch checkpoint).
pub fn read_metadata(bytes: &[u8]) -> Result<BTreeMap<String, String>, WeightsError> {
    match sniff::sniff(bytes)? {
        WeightsFormat::PyTorch => Ok(BTreeMap::new()),
        WeightsFormat::Safetensors => safetensors::metadata(bytes),
    }
}
