//! The `pros` binary end to end on the tiny test SAM: train, segment, eval, and the
//! errors a user meets (empty folder, tiny image, mask of the wrong size, existing output).

// Native only: these read files (and run the binary), which the browser cannot.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("pros-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pros(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pros"))
        .args(["--backend", "cpu"])
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const SAM: [&str; 6] = [
    "--sam",
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pros/step_k1.weights.safetensors"
    ),
    "--model",
    "tiny",
    "--size",
    "96",
];

fn with_sam<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(SAM);
    all
}

fn normal_images(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let group = root().join("../shared/data/deeppcb/PCBData/group12000/12000");
    for id in ["12000001", "12000038"] {
        std::fs::copy(
            group.join(format!("{id}_temp.jpg")),
            dir.join(format!("{id}.jpg")),
        )
        .unwrap();
    }
}

/// `pros train` with the tiny model on two DeepPCB templates copied into `dir/normal`,
/// writing `dir/a.safetensors`, with `extra` arguments: the adapters' path and the output.
fn train_tiny(dir: &Path, extra: &[&str]) -> (PathBuf, Output) {
    let normal = dir.join("normal");
    normal_images(&normal);
    let adapters = dir.join("a.safetensors");
    let mut args = vec![
        "train",
        "--images",
        normal.to_str().unwrap(),
        "--output",
        adapters.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = pros(&with_sam(&args));
    (adapters, out)
}

#[test]
fn train_segment_and_eval_end_to_end() {
    let s = Scratch::new("e2e");
    let normal = s.0.join("normal");
    let (adapters, out) = train_tiny(
        &s.0,
        &[
            "--epochs",
            "2",
            "--batch-size",
            "2",
            "--pairs-per-image",
            "2",
        ],
    );
    let a = adapters.to_str().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("epoch 2 of 2"), "{}", stderr(&out));
    let bytes = std::fs::read(&adapters).unwrap();
    let meta = pcb_pros::pros::adapter_file::read_adapter_metadata(&bytes).unwrap();
    assert_eq!(
        (meta.k, meta.epochs, meta.loss_history.epochs.len()),
        (1, 2, 2)
    );

    // Training again onto the same file is refused and leaves it alone.
    let out = pros(&with_sam(&[
        "train",
        "--images",
        normal.to_str().unwrap(),
        "--output",
        a,
    ]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--overwrite"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&adapters).unwrap(), bytes);

    let seg = s.0.join("seg");
    let image = normal.join("12000001.jpg");
    let out = pros(&with_sam(&[
        "segment",
        image.to_str().unwrap(),
        "--adapters",
        a,
        "--output",
        seg.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let mask = image::open(seg.join("12000001_mask.png")).unwrap();
    assert_eq!((mask.width(), mask.height()), (640, 640));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(seg.join("defects.json")).unwrap()).unwrap();
    assert!(json[0]["defects"].is_array());
    assert!(seg.join("12000001_overlay.png").is_file());

    let report = s.0.join("report.json");
    let out = pros(&with_sam(&[
        "eval",
        "--dataset",
        root().join("../shared/data/deeppcb").to_str().unwrap(),
        "--layout",
        "deeppcb",
        "--adapters",
        a,
        "--limit",
        "2",
        "--report",
        report.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("mean dice") && table.contains("pooled IoU"),
        "{table}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["summary"]["images"], 2);
}

#[test]
fn an_empty_folder_is_a_clear_error() {
    let s = Scratch::new("empty");
    let out = pros(&with_sam(&[
        "train",
        "--images",
        s.0.to_str().unwrap(),
        "--output",
        s.0.join("a.safetensors").to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("holds no PNG or JPEG images"),
        "{}",
        stderr(&out)
    );
    assert!(!s.0.join("a.safetensors").exists());
}

#[test]
fn a_too_small_image_is_a_clear_error() {
    let s = Scratch::new("small");
    let (a, out) = train_tiny(&s.0, &["--epochs", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let tiny = s.0.join("tiny.png");
    image::RgbImage::new(8, 12).save(&tiny).unwrap();
    let out = pros(&with_sam(&[
        "segment",
        tiny.to_str().unwrap(),
        "--adapters",
        a.to_str().unwrap(),
        "--output",
        s.0.join("seg").to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("8x12"), "{}", stderr(&out));
}

#[test]
fn a_mask_of_the_wrong_size_is_a_clear_error() {
    let s = Scratch::new("mask");
    let (a, out) = train_tiny(&s.0, &["--epochs", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let dataset = s.0.join("category");
    std::fs::create_dir_all(dataset.join("test/bad")).unwrap();
    std::fs::create_dir_all(dataset.join("ground_truth/bad")).unwrap();
    image::RgbImage::new(64, 64)
        .save(dataset.join("test/bad/000.png"))
        .unwrap();
    image::GrayImage::new(32, 64)
        .save(dataset.join("ground_truth/bad/000_mask.png"))
        .unwrap();
    let out = pros(&with_sam(&[
        "eval",
        "--dataset",
        dataset.to_str().unwrap(),
        "--layout",
        "folder",
        "--adapters",
        a.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("32x64") && message.contains("64x64"),
        "{message}"
    );
}

#[test]
fn positions_choose_the_blocks_and_bad_ones_are_refused() {
    let s = Scratch::new("positions");
    let (_, out) = train_tiny(&s.0, &["--epochs", "1", "--positions", "3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("below 3"), "{}", stderr(&out));

    let (a, out) = train_tiny(&s.0, &["--epochs", "1", "--positions", "2,0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let meta =
        pcb_pros::pros::adapter_file::read_adapter_metadata(&std::fs::read(&a).unwrap()).unwrap();
    assert_eq!(meta.k, 2);
    assert_eq!(meta.adapter_config.encoder_positions, vec![0, 2]);
}

#[test]
fn convert_writes_f16_safetensors_that_load() {
    let s = Scratch::new("convert");
    let out = s.0.join("tiny.safetensors");
    let pth = root().join("tests/fixtures/sam/tiny_pad.pth");
    let args = [
        "convert",
        "--input",
        pth.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    let run = pros(&args);
    assert!(run.status.success(), "{}", stderr(&run));

    let bytes = std::fs::read(&out).unwrap();
    let checkpoint = pcb_pros::weights::Checkpoint::parse(&bytes).unwrap();
    let name = "image_encoder.pos_embed";
    assert_eq!(
        checkpoint.entry(name).unwrap().dtype,
        pcb_pros::weights::DType::F16
    );
    let device = burn::tensor::Device::flex();
    let config = pcb_pros::sam::SamConfig::tiny_padded();
    assert!(pcb_pros::sam::Sam::from_bytes(&config, &bytes, &device).is_ok());

    // A second run does not replace the file.
    let again = pros(&args);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}

#[test]
fn synth_writes_pairs_with_masks() {
    let s = Scratch::new("synth");
    let normal = s.0.join("normal");
    normal_images(&normal);
    let out_dir = s.0.join("pairs");
    let run = pros(&[
        "synth",
        "--input",
        normal.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
        "--per-image",
        "2",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let image = image::open(out_dir.join("12000001_1.png"))
        .unwrap()
        .to_rgb8();
    let mask = image::open(out_dir.join("12000001_1_mask.png"))
        .unwrap()
        .to_luma8();
    assert_eq!(image.dimensions(), mask.dimensions());
    assert!(mask.pixels().all(|p| p[0] == 0 || p[0] == 255));
    assert!(
        mask.pixels().any(|p| p[0] == 255),
        "a pair has at least one defect"
    );
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 8);
}

#[test]
fn bench_refuses_a_size_that_is_no_multiple_of_the_patch() {
    let out = pros(&["bench", "--size", "100", "--no-epochs"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("positive multiple of 16"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_model_size_is_told_from_the_weights_file() {
    // No --model: the tiny test model is recognised from its tensors.
    let scratch = Scratch::new("auto");
    normal_images(&scratch.0.join("normal"));
    let sam = root().join("tests/fixtures/sam/tiny_pad.pth");
    let out_file = scratch.0.join("adapters.safetensors");
    let out = pros(&[
        "train",
        "--images",
        scratch.0.join("normal").to_str().unwrap(),
        "--sam",
        sam.to_str().unwrap(),
        "--size",
        "96",
        "--epochs",
        "1",
        "--output",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("loaded SAM tiny"), "{}", stderr(&out));
    assert!(out_file.exists());
}
