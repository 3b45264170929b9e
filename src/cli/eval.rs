//! `pros eval`: dice and IoU on a labelled dataset.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::CliError;
use super::model_files::{SamArgs, load_model};
use super::output::write_new;
use crate::datasets::{Sample, anomaly_folder, deeppcb};
use crate::pros::metrics::{Overlap, SetMetrics};
use crate::pros::predict::{overlap_with, segment_image};
use crate::pros::segment::SegmentConfig;

/// The dataset layouts `pros eval` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// DeepPCB pairs (mask from |test - template| in the boxes).
    Deeppcb,
    /// MVTec AD / VisA category folder (test/<defect>, ground_truth/<defect>).
    Folder,
}

/// Arguments of `pros eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The dataset folder.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Its layout.
    #[arg(long, value_enum)]
    pub layout: Layout,
    /// The adapter file.
    #[arg(long)]
    pub adapters: PathBuf,
    /// Which SAM (the one the adapters were trained on).
    #[command(flatten)]
    pub sam: SamArgs,
    /// Evaluate only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Defect probability threshold.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Write per-image scores and the summary here (JSON).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct ImageScore {
    name: String,
    dice: f64,
    iou: f64,
    overlap: Overlap,
}

#[derive(Debug, Serialize)]
struct Report {
    images: Vec<ImageScore>,
    summary: SetMetrics,
}

/// Run `pros eval`.
pub fn run(args: &EvalArgs, overwrite: bool, device: &Device) -> Result<(), CliError> {
    if let Some(report) = &args.report {
        super::output::check_free(report, overwrite)?;
    }
    let (model, adapters, _) = load_model(&args.sam, &args.adapters, device)?;
    let config = SegmentConfig {
        threshold: args.threshold,
        min_area: 1,
    };
    let limit = args.limit.unwrap_or(usize::MAX);
    let samples: Vec<Box<dyn Fn() -> Result<Sample, CliError>>> = match args.layout {
        Layout::Deeppcb => deeppcb::list_pairs(&args.dataset)?
            .into_iter()
            .take(limit)
            .map(|pair| {
                Box::new(move || Ok(deeppcb::load_pair(&pair)?.into_sample()))
                    as Box<dyn Fn() -> Result<Sample, CliError>>
            })
            .collect(),
        Layout::Folder => anomaly_folder::list_items(&args.dataset)?
            .into_iter()
            .take(limit)
            .map(|item| {
                Box::new(move || Ok(anomaly_folder::load_item(&item)?))
                    as Box<dyn Fn() -> Result<Sample, CliError>>
            })
            .collect(),
    };

    let mut scores = Vec::new();
    for load in &samples {
        let sample = load()?;
        let segmentation = segment_image(&model, &adapters, &sample.image, &config, device)?;
        let overlap = overlap_with(&segmentation, &sample.mask)?;
        log::debug!(
            "{}: dice {:.4}, IoU {:.4}",
            sample.name,
            overlap.dice(),
            overlap.iou()
        );
        scores.push(ImageScore {
            name: sample.name,
            dice: overlap.dice(),
            iou: overlap.iou(),
            overlap,
        });
    }
    let overlaps: Vec<Overlap> = scores.iter().map(|s| s.overlap).collect();
    let summary = SetMetrics::from_overlaps(&overlaps)
        .ok_or_else(|| CliError::Usage("the dataset has no images to evaluate".to_owned()))?;

    // The table goes to stdout: it is the command's result.
    let table = format!(
        "images  mean dice  mean IoU  pooled dice  pooled IoU\n\
         {:>6}  {:>9.4}  {:>8.4}  {:>11.4}  {:>10.4}\n",
        summary.images,
        summary.mean_dice,
        summary.mean_iou,
        summary.pooled_dice,
        summary.pooled_iou
    );
    std::io::Write::write_all(&mut std::io::stdout().lock(), table.as_bytes()).map_err(
        |source| CliError::Io {
            path: PathBuf::from("<stdout>"),
            source,
        },
    )?;
    if let Some(path) = &args.report {
        let report = Report {
            images: scores,
            summary,
        };
        let json =
            serde_json::to_vec_pretty(&report).map_err(|e| CliError::Usage(e.to_string()))?;
        write_new(path, &json, overwrite)?;
    }
    Ok(())
}
