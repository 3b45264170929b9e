//! PROS for printed circuit boards: unsupervised defect segmentation with a frozen
//! Segment Anything (SAM) and a few small learnable adapters, trained only on synthetic
//! defects pasted onto images of defect-free boards.
//!
//! One library, three faces: the web page (the [`web`] facade, wasm only), the native CLI
//! `pros` (the [`cli`] module, native only) and the tests. The work itself lives here:
//!
//! - [`synth`]: the defect synthesizer, normal image in, synthetic pair out;
//! - [`image_input`]: decoding user images safely (limits, colour types, clear errors);
//! - [`sam`]: Segment Anything, one file per part, mirroring the reference implementation;
//! - [`weights`]: reading PyTorch checkpoints and safetensors, writing safetensors;
//! - [`pros`]: adapters, training, losses, metrics and segmentation;
//! - [`datasets`]: DeepPCB pairs and MVTec AD / VisA style folders.

pub mod datasets;
pub mod image_input;
pub mod pros;
pub mod sam;
pub mod synth;
pub mod weights;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
#[cfg(target_arch = "wasm32")]
pub mod web;
