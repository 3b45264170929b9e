//! The `pros` command line (native only): parses arguments and calls the library.
//!
//! Every command writes its outputs through [`output::write_new`]: a file that exists is
//! never replaced unless `--overwrite` is given, and a file is written under a temporary
//! name and renamed, so an interrupted run leaves no half-written output.

mod bench;
mod convert;
mod eval;
mod model_files;
mod output;
mod segment;
mod synth;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::Device;
use clap::{Parser, Subcommand, ValueEnum};

use crate::datasets::DatasetError;
use crate::pros::ProsError;
use crate::sam::SamError;
use crate::weights::WeightsError;

/// What went wrong in a command; printed as one line, exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output exists and `--overwrite` was not given.
    #[error("{0} exists; pass --overwrite to replace it")]
    Exists(PathBuf),
    /// Arguments that parse but do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The wgpu device could not be started.
    #[error("cannot start the wgpu backend ({0}); try --backend cpu")]
    Backend(String),
    /// From the datasets.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// From PROS.
    #[error(transparent)]
    Pros(#[from] ProsError),
    /// From SAM.
    #[error(transparent)]
    Sam(#[from] SamError),
    /// From the synthesizer.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// From the weights readers.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A weights file that could not be read, named.
    #[error("{path}: {source}")]
    WeightsFile {
        path: PathBuf,
        #[source]
        source: WeightsError,
    },
}

/// Where tensors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The GPU through wgpu (Vulkan, Metal or DX12).
    Wgpu,
    /// The pure-Rust CPU backend (flex).
    Cpu,
}

impl Backend {
    /// Start the device.
    pub fn device(self) -> Result<Device, CliError> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            Self::Wgpu => Device::wgpu_options()
                .init()
                .map_err(|e| CliError::Backend(format!("{e:?}"))),
        }
    }
}

/// PROS: segment PCB defects with a frozen Segment Anything and small adapters trained on
/// synthetic defects.
#[derive(Debug, Parser)]
#[command(name = "pros", version)]
pub struct Cli {
    /// Where tensors run.
    #[arg(long, value_enum, default_value = "wgpu", global = true)]
    pub backend: Backend,
    /// Replace output files that exist.
    #[arg(long, global = true)]
    pub overwrite: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Paste synthetic defects on normal images: writes <name>_<n>.png and <name>_<n>_mask.png.
    Synth(synth::SynthArgs),
    /// Train adapters on synthetic pairs made from a folder of normal images.
    Train(train::TrainArgs),
    /// Segment images: writes masks, overlays and a defect list (JSON).
    Segment(segment::SegmentArgs),
    /// Evaluate on a labelled dataset: dice and IoU.
    Eval(eval::EvalArgs),
    /// Convert a SAM checkpoint (.pth) to f16 safetensors for serving.
    Convert(convert::ConvertArgs),
    /// Time training steps and epochs (SAM ViT-B, random weights).
    Bench(bench::BenchArgs),
}

/// Entry point of the `pros` binary.
pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Synth(args) => synth::run(args, cli.overwrite),
        Command::Convert(args) => convert::run(args, cli.overwrite),
        Command::Train(args) => cli
            .backend
            .device()
            .and_then(|d| train::run(args, cli.overwrite, &d)),
        Command::Segment(args) => cli
            .backend
            .device()
            .and_then(|d| segment::run(args, cli.overwrite, &d)),
        Command::Eval(args) => cli
            .backend
            .device()
            .and_then(|d| eval::run(args, cli.overwrite, &d)),
        Command::Bench(args) => {
            let name = match cli.backend {
                Backend::Wgpu => "wgpu",
                Backend::Cpu => "flex",
            };
            cli.backend
                .device()
                .and_then(|d| bench::run(args, name, &d))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
