//! `pros convert`: any checkpoint in, safetensors out (f16 by default, about 190 MB for
//! SAM ViT-B), to serve beside the web page.

use std::path::PathBuf;

use crate::weights::{StoreDType, WeightsError, convert_to_safetensors};

/// Arguments of `pros convert`.
#[derive(clap::Args)]
pub struct ConvertArgs {
    /// The weights to read: a PyTorch checkpoint (e.g. sam_vit_b_01ec64.pth) or safetensors.
    input: PathBuf,
    /// Where to write the safetensors file.
    output: PathBuf,
    /// Element type to store: f16 halves the size for serving; f32 keeps every bit.
    #[arg(long, value_enum, default_value_t = StoreArg::F16)]
    dtype: StoreArg,
}

/// The element types `pros convert` can store.
#[derive(Clone, Copy, clap::ValueEnum)]
enum StoreArg {
    F16,
    F32,
}

/// What went wrong converting weights.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The output could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The input is not usable weights.
    #[error("{path}: {source}")]
    Weights { path: PathBuf, source: WeightsError },
}

/// Read, convert and write.
pub fn run(args: &ConvertArgs) -> Result<(), ConvertError> {
    let bytes = std::fs::read(&args.input).map_err(|source| ConvertError::Read {
        path: args.input.clone(),
        source,
    })?;
    let dtype = match args.dtype {
        StoreArg::F16 => StoreDType::F16,
        StoreArg::F32 => StoreDType::F32,
    };
    let out = convert_to_safetensors(&bytes, dtype).map_err(|source| ConvertError::Weights {
        path: args.input.clone(),
        source,
    })?;
    std::fs::write(&args.output, &out).map_err(|source| ConvertError::Write {
        path: args.output.clone(),
        source,
    })?;
    log::info!("wrote {} ({} bytes)", args.output.display(), out.len());
    Ok(())
}
