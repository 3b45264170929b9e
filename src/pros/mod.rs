//! PROS: small learnable adapters on a frozen Segment Anything, trained on synthetic pairs.
//!
//! - [`loss`]: the training objectives (BCE, soft dice, their sum, two-class cross-entropy);
//! - [`metrics`]: dice and IoU per image and over a set;
//! - [`segment`]: from logits to a mask and a list of defects;
//! - [`adapter`]: the bottleneck adapters and where they go;
//! - [`adapter_file`]: saving and loading adapters (safetensors with metadata);
//! - `bench` (native): training speed for `pros bench` and `cargo bench`;
//! - [`model`]: SAM with adapters, decoded without prompts;
//! - [`train`]: the training loop over synthetic pairs;
//! - [`pairs`]: synthetic pairs made from normal images;
//! - [`upsample`]: bilinear resizing with a backward pass on every backend;
//! - [`predict`]: segmenting images of any size, overlays, scores against ground truth;
//! - [`optimizer`]: AdamW with PyTorch's defaults;
//! - [`random`]: the seeded generator behind initialisation and batch order.

pub mod adapter;
pub mod adapter_file;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optimizer;
pub mod pairs;
pub mod predict;
pub mod random;
pub mod segment;
pub mod train;
pub mod upsample;

/// What went wrong in PROS training, segmentation or evaluation.
#[derive(Debug, thiserror::Error)]
pub enum ProsError {
    /// Two masks that should cover the same image have different pixel counts.
    #[error(
        "the ground-truth mask has {ground_truth} pixels but the prediction has {prediction}; \
         both must come from the same image size"
    )]
    MaskSize {
        ground_truth: usize,
        prediction: usize,
    },
    /// A logit or probability map does not match the image size it claims.
    #[error("got {values} mask values for a {width}x{height} image; expected one per pixel")]
    LogitsSize {
        values: usize,
        width: u32,
        height: u32,
    },
    /// K is zero or larger than the image encoder.
    #[error(
        "cannot place {k} adapters in an image encoder of {depth} blocks; choose K from 1 to {depth}"
    )]
    AdapterCount { k: usize, depth: usize },
    /// Adapter positions outside the image encoder.
    #[error("adapter positions {positions:?} must be a non-empty list of blocks below {depth}")]
    AdapterPositions { positions: Vec<usize>, depth: usize },
    /// Training was given no synthetic pairs.
    #[error("there are no synthetic pairs to train on; give at least one normal image")]
    NoPairs,
    /// A training setting is out of range.
    #[error("invalid training settings: {0}")]
    TrainConfig(String),
    /// A synthetic pair does not have the model's input size.
    #[error(
        "synthetic pair {index} has a {}x{} image and a {}x{} mask; the model takes \
         {size}x{size} (resize the pairs first)",
        image.0, image.1, mask.0, mask.1
    )]
    PairSize {
        index: usize,
        image: (u32, u32),
        mask: (u32, u32),
        size: usize,
    },
    /// The tensor backend failed (reading a tensor back, for instance).
    #[error("the tensor backend failed: {0}")]
    Backend(String),
    /// An adapter file is unreadable or incomplete.
    #[error("cannot read the adapter file: {0}")]
    AdapterFile(String),
    /// An image is smaller than one patch of the image encoder.
    #[error("the image is {width}x{height}; it must be at least {min}x{min} pixels")]
    ImageTooSmall { width: u32, height: u32, min: usize },
    /// The synthesizer failed.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// An adapter file belongs to another model or another K.
    #[error("these adapters do not fit: {0}")]
    AdapterMismatch(String),
}
