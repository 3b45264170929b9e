//! `pros bench`: time training steps and epochs on the chosen backend.

use burn::tensor::Device;
use clap::Args;

use super::CliError;
use crate::pros::bench::{self, BenchConfig};

/// Arguments of `pros bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Side of the square input in pixels.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Pairs per step.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// The K values whose training step is timed (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,12")]
    pub k: Vec<usize>,
    /// Skip the epochs with and without the frozen-prefix cache.
    #[arg(long)]
    pub no_epochs: bool,
    /// Also time the PyTorch step of the reference script with this many threads (needs
    /// python3 with torch and segment-anything).
    #[arg(long)]
    pub torch_threads: Option<usize>,
}

/// Run `pros bench`.
pub fn run(args: &BenchArgs, backend: &str, device: &Device) -> Result<(), CliError> {
    if args.size == 0 || !args.size.is_multiple_of(16) || args.batch_size == 0 {
        return Err(CliError::Usage(
            "the size must be a positive multiple of 16 and the batch at least 1".to_owned(),
        ));
    }
    println!("SAM ViT-B with random weights: these figures measure speed, not accuracy");
    let config = BenchConfig {
        size: args.size,
        batch: args.batch_size,
        ks: args.k.clone(),
        epochs: !args.no_epochs,
    };
    bench::run(backend, &config, device)?;
    if let Some(threads) = args.torch_threads {
        bench::run_torch(&args.k, threads);
    }
    Ok(())
}
