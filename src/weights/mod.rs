//! Reading model weights as users download them and writing them for serving.
//!
//! A [`Checkpoint`] borrows the bytes of a file (a PyTorch checkpoint, zip + pickle, as
//! `torch.save` writes it; or safetensors in f32, f16 or bf16) and indexes its tensors
//! without copying them. The model takes each tensor by name with the shape it expects,
//! so at most one tensor is decoded beyond the file bytes and the model at any time.
//! Whatever the model did not take is reported by [`Checkpoint::finish`].

use std::collections::BTreeMap;

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
    Missing { name: String, hint: String },
    /// A tensor has another shape than the model expects.
    #[error(
        "tensor `{name}` has shape {found:?} in the weights file; the model expects {expected:?}{hint}"
    )]
    Shape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
        hint: String,
    },
    /// Tensors the model did not use.
    #[error(
        "the weights file has {count} tensors the model does not use, e.g. {examples:?}; is it the right model size?"
    )]
    Unexpected { count: usize, examples: Vec<String> },
}

/// Element types found in weight files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
}

/// Where one tensor lives inside the borrowed bytes.
#[derive(Debug, Clone)]
pub struct TensorEntry<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Strides in elements (PyTorch order); safetensors are always contiguous.
    pub strides: Vec<usize>,
    /// The storage the tensor views, starting at its storage offset.
    pub bytes: &'a [u8],
}

/// An index of the tensors in a weights file, borrowing its bytes.
#[derive(Debug)]
pub struct Checkpoint<'a> {
    tensors: BTreeMap<String, TensorEntry<'a>>,
}

impl<'a> Checkpoint<'a> {
    /// Index a PyTorch checkpoint or a safetensors file, told apart by their first bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightsError> {
        let _ = bytes;
        todo!("weights: parse")
    }

    /// The names of the tensors not taken yet.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of a tensor not taken yet.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// Remove a tensor and decode it to contiguous f32 (row-major), checking its shape.
    pub fn take(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let _ = (name, expected);
        todo!("weights: take")
    }

    /// Fail if any tensor was not taken.
    pub fn finish(self) -> Result<(), WeightsError> {
        todo!("weights: finish")
    }
}

/// Element type of a safetensors file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDType {
    F32,
    F16,
}

/// One tensor to write: name, shape and row-major f32 values.
pub struct NamedTensor<'t> {
    pub name: &'t str,
    pub shape: &'t [usize],
    pub values: &'t [f32],
}

/// Serialize tensors as safetensors, converting to `dtype`, with string metadata
/// (stored under `__metadata__`).
pub fn write_safetensors<'t>(
    tensors: impl IntoIterator<Item = NamedTensor<'t>>,
    dtype: StoreDType,
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let _ = (tensors.into_iter().count(), dtype, metadata);
    todo!("weights: write_safetensors")
}

/// Read the `__metadata__` of a safetensors file (empty for a PyTorch checkpoint).
pub fn read_metadata(bytes: &[u8]) -> Result<BTreeMap<String, String>, WeightsError> {
    let _ = bytes;
    todo!("weights: read_metadata")
}
