//! `pros segment`: images to masks, overlays and a defect list.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::Args;
use serde::Serialize;

use super::CliError;
use super::model_files::{SamArgs, load_model};
use super::output::{png, stem, write_new};
use crate::datasets::image_folder::load_rgb;
use crate::pros::predict::{mask_image, overlay, segment_image};
use crate::pros::segment::{Defect, SegmentConfig};

/// Arguments of `pros segment`.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// The images to segment.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// The adapter file.
    #[arg(long)]
    pub adapters: PathBuf,
    /// Which SAM (the one the adapters were trained on).
    #[command(flatten)]
    pub sam: SamArgs,
    /// Folder for <name>_mask.png, <name>_overlay.png and defects.json.
    #[arg(long)]
    pub output: PathBuf,
    /// Defect probability threshold.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Drop defects smaller than this many pixels.
    #[arg(long, default_value_t = 1)]
    pub min_area: usize,
}

/// One image's entry in defects.json.
#[derive(Debug, Serialize)]
struct ImageDefects {
    image: String,
    width: u32,
    height: u32,
    defects: Vec<Defect>,
}

/// Run `pros segment`.
pub fn run(args: &SegmentArgs, overwrite: bool, device: &Device) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&args.threshold) {
        return Err(CliError::Usage(format!(
            "the threshold {} is not a probability between 0 and 1",
            args.threshold
        )));
    }
    let (model, adapters, _) = load_model(&args.sam, &args.adapters, device)?;
    let config = SegmentConfig {
        threshold: args.threshold,
        min_area: args.min_area,
    };
    let mut report = Vec::new();
    for path in &args.images {
        let image = load_rgb(path)?;
        let segmentation = segment_image(&model, &adapters, &image, &config, device)?;
        let name = stem(path);
        write_new(
            &args.output.join(format!("{name}_mask.png")),
            &png(&mask_image(&segmentation))?,
            overwrite,
        )?;
        write_new(
            &args.output.join(format!("{name}_overlay.png")),
            &png(&overlay(&image, &segmentation))?,
            overwrite,
        )?;
        log::info!("{}: {} defects", path.display(), segmentation.defects.len());
        report.push(ImageDefects {
            image: path.display().to_string(),
            width: segmentation.width,
            height: segmentation.height,
            defects: segmentation.defects,
        });
    }
    let json = serde_json::to_vec_pretty(&report).map_err(|e| CliError::Usage(e.to_string()))?;
    write_new(&args.output.join("defects.json"), &json, overwrite)
}
