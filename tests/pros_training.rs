//! Training steps on every backend: natively on flex and wgpu, in the browser on flex
//! (wasm) and WebGPU (SwiftShader in headless Chromium). Each run loads the reference's
//! tiny SAM from its `.pth`, synthesizes pairs from a real DeepPCB board, trains with the
//! async step the page uses, and must see its loss fall.

#[macro_use]
mod sam_support;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use burn::tensor::Device;
use pcb_pros::image_input;
use pcb_pros::pros::adapter::AdapterConfig;
use pcb_pros::pros::model::ProsModel;
use pcb_pros::pros::pairs::training_pairs;
use pcb_pros::pros::train::{StepOutcome, TrainConfig, Trainer};
use pcb_pros::sam::{Sam, SamConfig, SamError};
use pcb_pros::synth::SynthConfig;

const WEIGHTS: &[u8] = include_bytes!("fixtures/sam/tiny_pad.pth");
const BOARD: &[u8] = include_bytes!("fixtures/images/deeppcb-12000001-normal.png");
const STEPS: usize = 8;

/// Train K = 1 encoder adapter plus the decoder adapters for `STEPS` steps over one
/// batch of two pairs, and return the step losses.
async fn step_losses(device: &Device) -> Vec<f32> {
    let (sam, config) = Sam::from_bytes_detected(WEIGHTS, 96, device).unwrap();
    assert_eq!(
        config,
        SamConfig::tiny_padded(),
        "the tiny model is told from its file"
    );
    let board = image_input::decode(BOARD).unwrap();
    let pairs = training_pairs(&[board], 2, 96, &SynthConfig::default(), 7).unwrap();
    let adapters = AdapterConfig::choose(1, &[], true, false, config.encoder_depth).unwrap();
    let model = ProsModel::new(sam, adapters).unwrap();
    let train = TrainConfig {
        batch_size: 2,
        epochs: STEPS,
        learning_rate: 1e-3,
        seed: 3,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, &pairs, train, device).unwrap();
    loop {
        match trainer.step().await.unwrap() {
            StepOutcome::Step { .. } => {}
            StepOutcome::Finished => break,
            StepOutcome::NotFinite { epoch, loss } => panic!("loss {loss} in epoch {epoch}"),
        }
    }
    trainer.history().steps.clone()
}

/// Every step trains on the same batch (both pairs), so on random tiny weights the loss
/// falls slowly but at every step.
fn assert_falls(losses: &[f32], backend: &str) {
    assert_eq!(losses.len(), STEPS);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "{backend}: the loss did not fall at every step: {losses:?}"
    );
    eprintln!(
        "{backend}: loss {:.6} -> {:.6} over {STEPS} steps",
        losses[0],
        losses[STEPS - 1]
    );
}

async_test! {
    fn flex_training_lowers_the_loss() {
        assert_falls(&step_losses(&Device::flex()).await, "flex");
    }
}

/// Natively on wgpu when an adapter is there (Mesa lavapipe in CI).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn wgpu_training_lowers_the_loss() {
    let device = match Device::wgpu_options().init() {
        Ok(device) => device,
        Err(err) => {
            eprintln!("no wgpu adapter ({err}): skipping the wgpu training test");
            return;
        }
    };
    let losses = sam_support::block_on(step_losses(&device));
    assert_falls(&losses, "wgpu");
}

/// In the browser on WebGPU (SwiftShader in headless Chromium).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn webgpu_training_lowers_the_loss() {
    let device = sam_support::webgpu_device().await;
    assert_falls(&step_losses(&device).await, "webgpu");
}

async_test! {
    fn weights_of_no_known_model_are_named() {
        // A PyTorch state dict that is not SAM at all.
        let bytes = include_bytes!("fixtures/weights/state_dict.pth");
        let err = Sam::from_bytes_detected(bytes, 256, &Device::flex()).unwrap_err();
        assert!(
            matches!(err, SamError::UnknownModel { width: 0, depth: 0 }),
            "{err}"
        );
        assert!(err.to_string().contains("not SAM ViT-B"), "{err}");
    }
}
