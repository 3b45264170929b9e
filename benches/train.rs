//! Training speed: one step (batch 4, 256x256) with K = 1 and K = 12, and an epoch with
//! and without the frozen-prefix cache, on flex (CPU) and wgpu, next to the PyTorch step
//! timed in the same run when `python3` with torch and segment-anything is available.
//! The work is `pcb_pros::pros::bench`, which `pros bench` runs too.
//!
//! `cargo bench --bench train` (all), or with `-- flex` / `-- wgpu` / `-- torch` to pick.
//! `PROS_BENCH_THREADS` sets PyTorch's threads (2 by default, as this machine has).

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    native();
}

#[cfg(not(target_arch = "wasm32"))]
fn native() {
    use burn::tensor::Device;
    use pcb_pros::pros::bench::{self, BenchConfig};

    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| f == name);
    let config = BenchConfig::default();
    if wanted("flex") {
        bench::run("flex", &config, &Device::flex()).expect("flex benchmark");
    }
    if wanted("wgpu") {
        match Device::wgpu_options().init() {
            Ok(device) => bench::run("wgpu", &config, &device).expect("wgpu benchmark"),
            Err(e) => println!("wgpu: not timed ({e:?})"),
        }
    }
    if wanted("torch") {
        let threads = std::env::var("PROS_BENCH_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(2);
        bench::run_torch(&config.ks, threads);
    }
}
