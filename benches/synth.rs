//! Synthesizer throughput: pairs per second on one core, at 256x256 and 640x640, from a real
//! DeepPCB board. Prints a table; asserts nothing (a benchmark, not a test).
//!
//! cargo bench --bench synth

use std::time::Instant;

use pcb_pros::image_input::decode;
use pcb_pros::synth::{SynthConfig, synthesize};

fn main() {
    let board = decode(include_bytes!(
        "../tests/fixtures/images/deeppcb-12000001-normal.png"
    ))
    .expect("fixture decodes");
    let colour = decode(include_bytes!("../www/samples/pku-01-normal.jpg")).expect("decodes");
    let board_256 =
        image::imageops::resize(&board, 256, 256, image::imageops::FilterType::Triangle);
    let crop = SynthConfig {
        crop: Some(512),
        ..SynthConfig::default()
    };
    let cases = [
        (
            "DeepPCB board downscaled to 256x256",
            &board_256,
            SynthConfig::default(),
            1000,
        ),
        ("DeepPCB board 640x640", &board, SynthConfig::default(), 300),
        (
            "PKU colour board 1024x535, random 512 crop",
            &colour,
            crop,
            300,
        ),
    ];
    println!("| input | pairs | defects | seconds | pairs/s |");
    println!("|---|---|---|---|---|");
    for (name, image, config, pairs) in cases {
        // Warm up caches and the allocator.
        for seed in 0..5 {
            synthesize(image, &config, seed).expect("valid settings");
        }
        let started = Instant::now();
        let mut defects = 0;
        for seed in 0..pairs {
            defects += synthesize(image, &config, seed)
                .expect("valid settings")
                .defects
                .len();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "| {name} | {pairs} | {defects} | {seconds:.3} | {:.1} |",
            pairs as f64 / seconds
        );
    }
}
