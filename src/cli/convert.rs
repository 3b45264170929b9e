//! `pros convert`: a SAM checkpoint to f16 safetensors.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use super::output::{check_free, write_new};

/// Arguments of `pros convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The checkpoint (.pth as `torch.save` writes it, or safetensors).
    #[arg(long)]
    pub input: PathBuf,
    /// The safetensors file to write (f16).
    #[arg(long)]
    pub output: PathBuf,
}

/// Run `pros convert`.
pub fn run(args: &ConvertArgs, overwrite: bool) -> Result<(), CliError> {
    check_free(&args.output, overwrite)?;
    let bytes = std::fs::read(&args.input).map_err(|source| CliError::Io {
        path: args.input.clone(),
        source,
    })?;
    let converted = crate::weights::convert_to_safetensors(&bytes, crate::weights::StoreDType::F16)
        .map_err(|source| CliError::WeightsFile {
            path: args.input.clone(),
            source,
        })?;
    write_new(&args.output, &converted, overwrite)?;
    log::info!(
        "{} ({} MB) -> {} ({} MB, f16)",
        args.input.display(),
        bytes.len() / 1_000_000,
        args.output.display(),
        converted.len() / 1_000_000
    );
    Ok(())
}
