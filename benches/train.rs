//! Training speed: one step (batch 4, 256x256) with K = 1 and K = 12, and an epoch with
//! and without the frozen-prefix cache, on flex (CPU) and wgpu, next to the PyTorch step
//! timed in the same run when `python3` with torch and segment-anything is available.
//!
//! SAM ViT-B has random weights here: speed does not depend on their values.
//!
//! `cargo bench --bench train` (all), or with `-- flex` / `-- wgpu` / `-- torch` to pick.
//! `PROS_BENCH_THREADS` sets PyTorch's threads (2 by default, as this machine has).

// Native only: the benchmark blocks on the device and spawns Python.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::time::Instant;

    use burn::tensor::Device;
    use image::{GrayImage, Luma, Rgb, RgbImage};
    use pcb_pros::pros::adapter::AdapterConfig;
    use pcb_pros::pros::model::ProsModel;
    use pcb_pros::pros::random::SeededRng;
    use pcb_pros::pros::train::{StepOutcome, TrainConfig, Trainer, TrainingPair};
    use pcb_pros::sam::{Sam, SamConfig};

    const SIZE: usize = 256;
    const BATCH: usize = 4;

    /// Random pairs: noise images with a rectangle of defect.
    fn pairs(n: usize) -> Vec<TrainingPair> {
        let mut rng = SeededRng::new(3);
        (0..n)
            .map(|_| {
                let s = SIZE as u32;
                let image = RgbImage::from_fn(s, s, |_, _| {
                    let v = (rng.next_u64() & 0xff) as u8;
                    Rgb([v, v, v])
                });
                let x0 = (rng.next_u64() % 200) as u32;
                let mask = GrayImage::from_fn(s, s, |x, y| {
                    Luma([
                        if (x0..x0 + 40).contains(&x) && (x0..x0 + 20).contains(&y) {
                            255
                        } else {
                            0
                        },
                    ])
                });
                TrainingPair { image, mask }
            })
            .collect()
    }

    fn trainer(
        k: usize,
        pairs: &[TrainingPair],
        epochs: usize,
        cache: bool,
        device: &Device,
    ) -> Trainer {
        let config = SamConfig::vit_b().with_image_size(SIZE);
        let sam = Sam::new(&config, device).expect("ViT-B config");
        let adapter_config = AdapterConfig::last_k(k, config.encoder_depth).expect("K in range");
        let model = ProsModel::new(sam, adapter_config).expect("positions in range");
        let train_config = TrainConfig {
            epochs,
            cache_bytes: if cache { 1 << 30 } else { 0 },
            ..TrainConfig::default()
        };
        Trainer::new(model, pairs, train_config, device).expect("trainer")
    }

    fn step(t: &mut Trainer) -> f64 {
        let start = Instant::now();
        match t.step_blocking().expect("step") {
            StepOutcome::Step { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
        start.elapsed().as_secs_f64()
    }

    fn bench_backend(name: &str, device: &Device) {
        // One step, K = 1 and K = 12 (the second step: the first includes warm-up).
        for k in [1, 12] {
            let p = pairs(2 * BATCH);
            let mut t = trainer(k, &p, 1, false, device);
            let _ = step(&mut t);
            let s = step(&mut t);
            println!("{name:5} step  batch {BATCH} {SIZE}px K={k:2}: {s:.3} s");
        }

        // An epoch of 3 steps, twice: with the cache the second epoch skips the prefix.
        let k = 1;
        for cache in [false, true] {
            let p = pairs(3 * BATCH);
            let mut t = trainer(k, &p, 2, cache, device);
            let mut epochs = [0.0; 2];
            for e in epochs.iter_mut() {
                for _ in 0..t.steps_per_epoch() {
                    *e += step(&mut t);
                }
            }
            println!(
                "{name:5} epoch 12 pairs K={k} cache {:3}: first {:.3} s, second {:.3} s",
                if cache { "on" } else { "off" },
                epochs[0],
                epochs[1]
            );
        }
        // K = 1 puts the first adapter after block 11: the cache saves 11 of 12 blocks.
    }

    fn bench_torch() {
        let threads = std::env::var("PROS_BENCH_THREADS").unwrap_or_else(|_| "2".to_owned());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/reference/make_pros_fixtures.py"
        );
        for k in [1, 12] {
            let out = std::process::Command::new("python3")
                .args([script, "--time-k", &k.to_string(), "--threads", &threads])
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    let s = String::from_utf8_lossy(&o.stdout);
                    println!(
                        "torch step  batch {BATCH} {SIZE}px K={k:2}: {} s ({threads} threads)",
                        s.trim()
                    );
                }
                Ok(o) => {
                    println!(
                        "torch: not timed ({})",
                        String::from_utf8_lossy(&o.stderr)
                            .lines()
                            .last()
                            .unwrap_or("")
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

    pub fn main() {
        let filter: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| f == name);
        if wanted("flex") {
            bench_backend("flex", &Device::flex());
        }
        if wanted("wgpu") {
            match Device::wgpu_options().init() {
                Ok(device) => bench_backend("wgpu", &device),
                Err(e) => println!("wgpu: not timed ({e:?})"),
            }
        }
        if wanted("torch") {
            bench_torch();
        }
    }
}

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    native::main();
}
