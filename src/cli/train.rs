//! `pros train`: a folder of normal images to an adapter file.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;
use clap::Args;

use super::CliError;
use super::model_files::{SamArgs, load_sam};
use super::output::{check_free, write_new};
use crate::datasets::image_folder::{list_images, load_rgb};
use crate::pros::adapter::AdapterConfig;
use crate::pros::adapter_file::{self, AdapterMetadata};
use crate::pros::model::ProsModel;
use crate::pros::pairs::training_pairs;
use crate::pros::train::{RunEnd, StepOutcome, TrainConfig, Trainer};
use crate::synth::SynthConfig;

/// Arguments of `pros train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Folder of normal images (defect-free boards).
    #[arg(long)]
    pub images: PathBuf,
    /// The adapter file to write (safetensors).
    #[arg(long)]
    pub output: PathBuf,
    /// Which SAM.
    #[command(flatten)]
    pub sam: SamArgs,
    /// Number of adapters, after the last K image encoder blocks.
    #[arg(long, default_value_t = 1)]
    pub k: usize,
    /// Put the adapters after these blocks instead (comma-separated, from 0); K is then
    /// their count.
    #[arg(long, value_delimiter = ',')]
    pub positions: Vec<usize>,
    /// Adapters in the mask decoder's two-way transformer too.
    #[arg(long)]
    pub decoder_adapters: bool,
    /// Train the mask decoder's first hypernetwork MLP too.
    #[arg(long)]
    pub train_hypernetwork: bool,
    /// Passes over the pairs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Pairs per step.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub learning_rate: f64,
    /// The objective: bce, dice, bce-dice or cross-entropy.
    #[arg(long, default_value = "bce-dice")]
    pub loss: String,
    /// Synthetic pairs made from each normal image.
    #[arg(long, default_value_t = 1)]
    pub pairs_per_image: usize,
    /// Seed of the adapters, the batch order and the synthetic defects.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Memory for the frozen-prefix cache, in MiB (0: off).
    #[arg(long, default_value_t = 1024)]
    pub cache_mib: usize,
}

/// Run `pros train`.
pub fn run(args: &TrainArgs, overwrite: bool, device: &Device) -> Result<(), CliError> {
    check_free(&args.output, overwrite)?;
    let config = TrainConfig::chosen(
        args.batch_size,
        args.epochs,
        args.learning_rate,
        &args.loss,
        args.seed,
        args.cache_mib,
    )?;

    let paths = list_images(&args.images)?;
    let normal_images = paths
        .iter()
        .map(|p| load_rgb(p))
        .collect::<Result<Vec<_>, _>>()?;
    let pairs = training_pairs(
        &normal_images,
        args.pairs_per_image,
        args.sam.size as u32,
        &SynthConfig::default(),
        args.seed,
    )?;

    let (sam, sam_config, sha) = load_sam(&args.sam, device)?;
    let adapter_config = AdapterConfig::choose(
        args.k,
        &args.positions,
        args.decoder_adapters,
        args.train_hypernetwork,
        sam_config.encoder_depth,
    )?;
    log::info!(
        "training {} learnable parameters (K = {})",
        adapter_config.learnable_parameters(
            sam_config.encoder_embed_dim,
            sam_config.prompt_embed_dim,
            sam_config.decoder_depth
        ),
        adapter_config.k()
    );
    let model = ProsModel::new(sam, adapter_config.clone())?;
    let mut trainer = Trainer::new(model, &pairs, config, device)?;
    let steps = trainer.steps_per_epoch();
    let end = trainer.run(&AtomicBool::new(false), |outcome| {
        if let StepOutcome::Step {
            epoch, step, loss, ..
        } = outcome
        {
            log::debug!(
                "epoch {} step {}/{steps}: loss {loss:.5}",
                epoch + 1,
                step + 1
            );
        }
    })?;
    if end == RunEnd::NotFinite {
        log::warn!("training stopped at a non-finite loss; saving the last good adapters");
    }

    let epochs = trainer.epochs_done();
    let (_, adapters, history) = trainer.into_parts();
    let metadata = AdapterMetadata {
        sam_config,
        k: adapter_config.k(),
        adapter_config,
        sam_sha256: sha,
        seed: args.seed,
        epochs,
        loss_history: history,
    };
    let bytes = adapter_file::to_bytes(&adapters, &metadata)?;
    write_new(&args.output, &bytes, overwrite)?;
    log::info!("wrote {} ({epochs} epochs)", args.output.display());
    Ok(())
}
