//! Training speed, as `pros bench` and `cargo bench --bench train` print it (native only).
//!
//! One training step (batch 4 at 256x256 by default) for each K asked, and an epoch of
//! three steps twice with and without the frozen-prefix cache, on SAM ViT-B with random
//! weights (speed does not depend on their values), next to the PyTorch step timed by the
//! reference script when `python3` with torch and segment-anything is there.

use std::time::Instant;

use burn::tensor::Device;
use image::{GrayImage, Luma, Rgb, RgbImage};

use super::ProsError;
use super::adapter::AdapterConfig;
use super::model::ProsModel;
use super::random::SeededRng;
use super::train::{StepOutcome, TrainConfig, Trainer, TrainingPair};
use crate::sam::{Sam, SamConfig};

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Side of the input (256 in the paper).
    pub size: usize,
    /// Pairs per step (4).
    pub batch: usize,
    /// The K values whose step is timed.
    pub ks: Vec<usize>,
    /// Also time two epochs with and without the prefix cache (K = 1).
    pub epochs: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            size: 256,
            batch: 4,
            ks: vec![1, 12],
            epochs: true,
        }
    }
}

/// Noise images with a rectangle of defect: speed does not depend on the content.
pub fn random_pairs(n: usize, size: usize) -> Vec<TrainingPair> {
    let mut rng = SeededRng::new(3);
    let s = size as u32;
    (0..n)
        .map(|_| {
            let image = RgbImage::from_fn(s, s, |_, _| {
                let v = (rng.next_u64() & 0xff) as u8;
                Rgb([v, v, v])
            });
            let x0 = (rng.next_u64() % u64::from(s / 2)) as u32;
            let mask = GrayImage::from_fn(s, s, |x, y| {
                let inside = (x0..x0 + s / 6).contains(&x) && (x0..x0 + s / 12).contains(&y);
                Luma([if inside { 255 } else { 0 }])
            });
            TrainingPair { image, mask }
        })
        .collect()
}

fn trainer(
    k: usize,
    pairs: &[TrainingPair],
    config: &BenchConfig,
    epochs: usize,
    cache: bool,
    device: &Device,
) -> Result<Trainer, ProsError> {
    let sam_config = SamConfig::vit_b().with_image_size(config.size);
    let sam = Sam::new(&sam_config, device).map_err(|e| ProsError::Backend(e.to_string()))?;
    let adapter_config = AdapterConfig::last_k(k, sam_config.encoder_depth)?;
    let model = ProsModel::new(sam, adapter_config)?;
    let train_config = TrainConfig {
        batch_size: config.batch,
        epochs,
        cache_bytes: if cache { 1 << 30 } else { 0 },
        ..TrainConfig::default()
    };
    Trainer::new(model, pairs, train_config, device)
}

fn timed_step(trainer: &mut Trainer) -> Result<f64, ProsError> {
    let start = Instant::now();
    match trainer.step_blocking()? {
        StepOutcome::Step { .. } => Ok(start.elapsed().as_secs_f64()),
        other => Err(ProsError::Backend(format!(
            "the benchmark expected a step, got {other:?}"
        ))),
    }
}

/// Time the steps and epochs on `device`, printing one line per figure with `backend`'s
/// name in front.
pub fn run(backend: &str, config: &BenchConfig, device: &Device) -> Result<(), ProsError> {
    let (size, batch) = (config.size, config.batch);
    for &k in &config.ks {
        // As the reference script: the fastest of two steps after one of warm-up (kernel
        // compilation on wgpu, first allocations everywhere).
        let pairs = random_pairs(3 * batch, size);
        let mut t = trainer(k, &pairs, config, 1, false, device)?;
        timed_step(&mut t)?;
        let s = timed_step(&mut t)?.min(timed_step(&mut t)?);
        println!("{backend:5} step  batch {batch} {size}px K={k:2}: {s:.3} s");
    }
    if config.epochs {
        // K = 1 puts the first adapter after block 11: the cache saves 11 of 12 blocks.
        for cache in [false, true] {
            let pairs = random_pairs(3 * batch, size);
            let mut t = trainer(1, &pairs, config, 2, cache, device)?;
            let mut epochs = [0.0; 2];
            for e in epochs.iter_mut() {
                for _ in 0..t.steps_per_epoch() {
                    *e += timed_step(&mut t)?;
                }
            }
            println!(
                "{backend:5} epoch {} pairs K=1 cache {:3}: first {:.3} s, second {:.3} s ({:.1}x)",
                3 * batch,
                if cache { "on" } else { "off" },
                epochs[0],
                epochs[1],
                epochs[0] / epochs[1]
            );
        }
    }
    Ok(())
}

/// Time the PyTorch step of the reference script (batch 4, 256 px) for each K with
/// `threads` threads, printing one line each; says why when it cannot.
pub fn run_torch(ks: &[usize], threads: usize) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/reference/make_pros_fixtures.py"
    );
    for &k in ks {
        let out = std::process::Command::new("python3")
            .args([
                script,
                "--time-k",
                &k.to_string(),
                "--threads",
                &threads.to_string(),
            ])
            .output();
        match out {
            Ok(o) if o.status.success() => println!(
                "torch step  batch 4 256px K={k:2}: {} s ({threads} threads)",
                String::from_utf8_lossy(&o.stdout).trim()
            ),
            Ok(o) => {
                let stderr = String::from_utf8_lossy(&o.stderr);
                println!(
                    "torch: not timed ({})",
                    stderr.lines().last().unwrap_or("no message")
                );
                return;
            }
            Err(e) => {
                println!("torch: not timed (python3: {e})");
                return;
            }
        }
    }
}
