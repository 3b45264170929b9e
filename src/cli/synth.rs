//! `pros synth`: normal images to synthetic pairs as PNG.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use super::output::{png, stem, write_new};
use crate::datasets::image_folder::{list_images, load_rgb};
use crate::synth::{SynthConfig, synthesize};

/// Arguments of `pros synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Folder of normal images (PNG or JPEG).
    #[arg(long)]
    pub input: PathBuf,
    /// Folder for the pairs.
    #[arg(long)]
    pub output: PathBuf,
    /// Pairs per normal image.
    #[arg(long, default_value_t = 1)]
    pub per_image: usize,
    /// Seed of the first pair; pair j of image i uses seed + i * per_image + j.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Run `pros synth`.
pub fn run(args: &SynthArgs, overwrite: bool) -> Result<(), CliError> {
    let images = list_images(&args.input)?;
    let config = SynthConfig::default();
    for (i, path) in images.iter().enumerate() {
        let normal = load_rgb(path)?;
        for j in 0..args.per_image {
            let seed = args.seed.wrapping_add((i * args.per_image + j) as u64);
            let pair = synthesize(&normal, &config, seed)?;
            let name = format!("{}_{j}", stem(path));
            write_new(
                &args.output.join(format!("{name}.png")),
                &png(&pair.image)?,
                overwrite,
            )?;
            write_new(
                &args.output.join(format!("{name}_mask.png")),
                &png(&pair.mask)?,
                overwrite,
            )?;
        }
        log::info!("{}: {} pairs", path.display(), args.per_image);
    }
    Ok(())
}
