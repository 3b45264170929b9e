//! Reading the SAM weights and adapter files named on the command line.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use clap::{Args, ValueEnum};

use super::CliError;
use crate::pros::adapter::Adapters;
use crate::pros::adapter_file::{self, AdapterMetadata};
use crate::pros::model::ProsModel;
use crate::sam::{Sam, SamConfig};

/// The SAM sizes the CLI knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelSize {
    /// Tell the size from the weights file.
    Auto,
    /// SAM ViT-B (the paper's).
    VitB,
    /// SAM ViT-L.
    VitL,
    /// SAM ViT-H.
    VitH,
    /// The tiny test model (16 wide, 3 blocks, 96 px by default); for tests and demos only.
    Tiny,
}

/// Which SAM to load.
#[derive(Debug, Args)]
pub struct SamArgs {
    /// SAM weights: the official .pth or safetensors.
    #[arg(long)]
    pub sam: PathBuf,
    /// The SAM size of the weights.
    #[arg(long, value_enum, default_value = "auto")]
    pub model: ModelSize,
    /// Side of the square input in pixels (a multiple of 16; the paper uses 256).
    #[arg(long, default_value_t = 256)]
    pub size: usize,
}

impl SamArgs {
    /// The configuration at the chosen size; `None` when it is told from the file.
    pub fn config(&self) -> Option<SamConfig> {
        let config = match self.model {
            ModelSize::Auto => return None,
            ModelSize::VitB => SamConfig::vit_b(),
            ModelSize::VitL => SamConfig::vit_l(),
            ModelSize::VitH => SamConfig::vit_h(),
            ModelSize::Tiny => SamConfig::tiny_padded(),
        };
        Some(config.with_image_size(self.size))
    }
}

/// Read a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Load SAM on `device`; returns it with its configuration and the SHA-256 of the weights
/// file.
pub fn load_sam(args: &SamArgs, device: &Device) -> Result<(Sam, SamConfig, String), CliError> {
    let bytes = read(&args.sam)?;
    let sha = adapter_file::sha256_hex(&bytes);
    let (sam, config) = match args.config() {
        Some(config) => (Sam::from_bytes(&config, &bytes, device)?, config),
        None => Sam::from_bytes_detected(&bytes, args.size, device)?,
    };
    log::info!(
        "loaded SAM {} from {} at {} px",
        config.name,
        args.sam.display(),
        args.size
    );
    Ok((sam, config, sha))
}

/// Load SAM and the adapters trained on it.
pub fn load_model(
    sam_args: &SamArgs,
    adapters_path: &Path,
    device: &Device,
) -> Result<(ProsModel, Adapters, AdapterMetadata), CliError> {
    let (sam, config, sha) = load_sam(sam_args, device)?;
    let bytes = read(adapters_path)?;
    let (adapters, metadata) = adapter_file::from_bytes(&bytes, &config, &sha, None, device)?;
    let model = ProsModel::new(sam, metadata.adapter_config.clone())?;
    log::info!(
        "loaded K = {} adapters ({} epochs) from {}",
        metadata.k,
        metadata.epochs,
        adapters_path.display()
    );
    Ok((model, adapters, metadata))
}
