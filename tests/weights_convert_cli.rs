//! `pros convert` end to end: the binary reads a torch checkpoint and writes f16
//! safetensors whose values are torch's f16 rounding; a wrong file fails with its reason.

#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;
use std::process::Command;

use pcb_pros::weights::{Checkpoint, read_metadata};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/tests/fixtures/weights/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pcb-pros-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn convert_writes_f16_safetensors_with_torch_rounding() {
    let output = scratch("state_dict.f16.safetensors");
    let status = Command::new(env!("CARGO_BIN_EXE_pros"))
        .arg("convert")
        .arg("--input")
        .arg(fixture("state_dict.pth"))
        .arg("--output")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());

    let written = std::fs::read(&output).unwrap();
    let expected = std::fs::read(fixture("expected_f16.safetensors")).unwrap();
    let mut ours = Checkpoint::parse(&written).unwrap();
    let mut torch = Checkpoint::parse(&expected).unwrap();
    let names: Vec<String> = torch.names().map(str::to_string).collect();
    for name in &names {
        let shape = torch.shape(name).unwrap().to_vec();
        assert_eq!(
            ours.entry(name).unwrap().dtype,
            pcb_pros::weights::DType::F16
        );
        let a: Vec<u32> = ours
            .take(name, &shape)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let b: Vec<u32> = torch
            .take(name, &shape)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(a, b, "{name}");
    }
    ours.finish().unwrap();
    assert_eq!(read_metadata(&written).unwrap()["source_format"], "pytorch");
    std::fs::remove_file(output).unwrap();
}

#[test]
fn convert_of_a_wrong_file_fails_with_the_reason() {
    let output = scratch("never.safetensors");
    let result = Command::new(env!("CARGO_BIN_EXE_pros"))
        .arg("convert")
        .arg("--input")
        .arg(fixture("legacy.pth"))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("legacy.pth") && stderr.contains("before 1.6"),
        "{stderr}"
    );
    assert!(!output.exists());
}
