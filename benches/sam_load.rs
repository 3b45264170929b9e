//! Loading SAM weights as users download them: time and peak memory (natively, Linux).
//!
//! `PROS_SAM_WEIGHTS=path/to/sam_vit_b_01ec64.pth cargo bench --bench sam_load`
//! (a `.pth` or our safetensors; `PROS_SAM_SIZE` sets the input size, default 1024).
//! Peak memory is the process's high-water mark (VmHWM): the loader should hold the file's
//! bytes, one decoded tensor and the model, never a second copy of all weights.

use std::time::Instant;

use burn::tensor::Device;
use pcb_pros::sam::{Sam, SamConfig};

fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let Ok(path) = std::env::var("PROS_SAM_WEIGHTS") else {
        println!("set PROS_SAM_WEIGHTS to a SAM ViT-B checkpoint (.pth or .safetensors)");
        return;
    };
    let size = std::env::var("PROS_SAM_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let before = peak_mib();
    let started = Instant::now();
    let bytes = std::fs::read(&path).expect("read the weights file");
    let read_s = started.elapsed().as_secs_f64();
    let after_read = peak_mib();
    let config = SamConfig::vit_b().with_image_size(size);
    let started = Instant::now();
    let sam = Sam::from_bytes(&config, &bytes, &Device::flex()).expect("load the weights");
    let load_s = started.elapsed().as_secs_f64();
    let after_load = peak_mib();
    drop(bytes);
    println!("| file | MiB | read s | load s | peak MiB before | after read | after load |");
    println!("|---|---|---|---|---|---|---|");
    let mib = std::fs::metadata(&path).map_or(f64::NAN, |m| m.len() as f64 / 1048576.0);
    println!(
        "| {path} (input {size}) | {mib:.0} | {read_s:.2} | {load_s:.2} | {before:.0} | {after_read:.0} | {after_load:.0} |"
    );
    drop(sam);
}
