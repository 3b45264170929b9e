//! Forward times of SAM ViT-B (random weights built in Rust): the image encoder at 256
//! and 1024 and the mask decoder, on flex (CPU) and on wgpu where there is an adapter,
//! beside the reference's PyTorch times on the same machine.
//!
//! `cargo bench --bench sam` (set `SAM_BENCH_SIZES=256` to skip 1024, `SAM_BENCH_WGPU=0`
//! to skip wgpu). The 1024 runs
//! are timed once, without warm-up, to keep the bench affordable on a CPU.

// On wasm only the empty main below is built; the timing code is native.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

use std::process::Command;
use std::time::Instant;

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use pcb_pros::sam::{Sam, SamConfig};

/// Best of `repeat` runs, after one warm-up when `repeat > 1`, in milliseconds; reading
/// the result back makes sure the work is done.
fn time_ms<const D: usize>(repeat: usize, mut f: impl FnMut() -> Tensor<D>) -> f64 {
    if repeat > 1 {
        let _ = f().into_data();
    }
    (0..repeat)
        .map(|_| {
            let start = Instant::now();
            let _ = f().into_data();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

fn bench_device(
    label: &str,
    device: &Device,
    sizes: &[usize],
    rows: &mut Vec<(String, String, usize, f64)>,
) {
    for &size in sizes {
        let config = SamConfig::vit_b().with_image_size(size);
        let sam = Sam::new(&config, device).expect("ViT-B config");
        let x = Tensor::<4>::random([1, 3, size, size], Distribution::Normal(0.0, 1.0), device);
        let repeat = if size <= 512 { 3 } else { 1 };
        let ms = time_ms(repeat, || sam.image_encoder.forward(x.clone()));
        eprintln!("{label} image encoder {size}: {ms:.0} ms");
        rows.push((label.to_string(), "image encoder".to_string(), size, ms));
    }
    let config = SamConfig::vit_b();
    let sam = Sam::new(&config, device).expect("ViT-B config");
    let emb = Tensor::<4>::random([1, 256, 64, 64], Distribution::Normal(0.0, 1.0), device);
    let coords = Tensor::<3>::from_data(TensorData::new(vec![500f32, 300.0], [1, 1, 2]), device);
    let labels = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64], [1, 1]), device);
    let ms = time_ms(5, || {
        let (masks, _) = sam.decode(
            emb.clone(),
            Some((coords.clone(), labels.clone())),
            None,
            None,
            true,
        );
        masks
    });
    eprintln!("{label} mask decoder: {ms:.0} ms");
    rows.push((
        label.to_string(),
        "prompt enc. + mask decoder".to_string(),
        1024,
        ms,
    ));
}

fn torch_rows(sizes: &[usize], rows: &mut Vec<(String, String, usize, f64)>) {
    let sizes: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    let output = Command::new("python3")
        .arg("scripts/reference/bench_torch.py")
        .args(["--threads", "2", "--sizes"])
        .args(&sizes)
        .output();
    let output = match output {
        Ok(o) if o.status.success() => o,
        _ => {
            println!("torch not available");
            return;
        }
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [_, part, size, ms] = parts[..] {
            let part = if part == "image_encoder" {
                "image encoder"
            } else {
                "prompt enc. + mask decoder"
            };
            if let (Ok(size), Ok(ms)) = (size.parse(), ms.parse()) {
                rows.push(("torch (2 threads)".to_string(), part.to_string(), size, ms));
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let sizes: Vec<usize> = std::env::var("SAM_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![256, 1024]);
    let mut rows = Vec::new();
    bench_device("burn flex (CPU)", &Device::flex(), &sizes, &mut rows);

    if std::env::var("SAM_BENCH_WGPU").is_ok_and(|v| v == "0") {
        println!("wgpu: skipped (SAM_BENCH_WGPU=0)");
    } else {
        match Device::wgpu_options().init() {
            Ok(device) => bench_device("burn wgpu", &device, &sizes, &mut rows),
            Err(err) => println!("wgpu: no adapter ({err}), skipped"),
        }
    }
    torch_rows(&sizes, &mut rows);

    println!(
        "\n{:<20} {:<28} {:>6} {:>12}",
        "backend", "part", "input", "forward ms"
    );
    for (backend, part, size, ms) in rows {
        println!("{backend:<20} {part:<28} {size:>6} {ms:>12.1}");
    }
}

// Benchmarks run natively; wgpu is initialised synchronously here, which the web forbids.
#[cfg(target_arch = "wasm32")]
fn main() {}
