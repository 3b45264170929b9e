//! Parity of the burn SAM with the reference implementation (`segment-anything` 1.0).
//!
//! The fixtures under tests/fixtures/sam/ were written by
//! scripts/reference/make_sam_fixtures.py: reference modules with a fixed seed and every
//! constant-initialised tensor perturbed, their state dict, inputs and outputs. They are
//! embedded with `include_bytes!` so that this file can also run in wasm.

#[macro_use]
mod sam_support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use burn::tensor::{Device, Tensor};
use pcb_pros::sam::preprocess::{normalize_and_pad, postprocess_masks};
use pcb_pros::sam::{Sam, SamConfig, SamError};
use sam_support::{SafeTensors, config_from_json, max_abs_err};

/// Largest absolute error allowed against the reference (f32).
const TOLERANCE: f32 = 1e-4;

struct Fixture {
    name: &'static str,
    json: &'static str,
    weights: &'static [u8],
    io: &'static [u8],
}

const TINY_PAD: Fixture = Fixture {
    name: "tiny_pad",
    json: include_str!("fixtures/sam/tiny_pad.json"),
    weights: include_bytes!("fixtures/sam/tiny_pad.weights.safetensors"),
    io: include_bytes!("fixtures/sam/tiny_pad.io.safetensors"),
};

const TINY_NOPAD: Fixture = Fixture {
    name: "tiny_nopad",
    json: include_str!("fixtures/sam/tiny_nopad.json"),
    weights: include_bytes!("fixtures/sam/tiny_nopad.weights.safetensors"),
    io: include_bytes!("fixtures/sam/tiny_nopad.io.safetensors"),
};

/// Weights made at 128 (8x8 tokens), reference run at 80 (5x5 tokens) after
/// `F.interpolate` of pos_embed and the global rel_pos.
const TINY_RESAMPLE: Fixture = Fixture {
    name: "tiny_resample",
    json: include_str!("fixtures/sam/tiny_resample.json"),
    weights: include_bytes!("fixtures/sam/tiny_resample.weights.safetensors"),
    io: include_bytes!("fixtures/sam/tiny_resample.io.safetensors"),
};

fn load(fixture: &Fixture, device: &Device) -> (Sam, SafeTensors) {
    let config = config_from_json(fixture.name, fixture.json);
    let mut weights = SafeTensors::parse(fixture.weights);
    let sam = Sam::load(&config, &mut weights, device).expect("fixture weights load");
    assert!(
        weights.names().is_empty(),
        "weights left unused: {:?}",
        weights.names()
    );
    (sam, SafeTensors::parse(fixture.io))
}

/// Compare every output of a fixture; returns (name, max abs error) for each.
async fn compare(fixture: &Fixture, device: &Device) -> Vec<(String, f32)> {
    let (sam, io) = load(fixture, device);
    let mut errors = Vec::new();
    let mut check = |name: String, err: f32| {
        log::info!("{}: {name}: max abs error {err:e}", fixture.name);
        errors.push((name, err));
    };

    // The image encoder, whole and in the pieces adapters use.
    let image: Tensor<4> = io.tensor("image", device);
    let tokens = sam.image_encoder.patch_embed(image.clone());
    check(
        "patch_embed".into(),
        max_abs_err(tokens.clone(), io.get("patch_embed")).await,
    );
    check(
        "block0".into(),
        max_abs_err(sam.image_encoder.block_forward(0, tokens), io.get("block0")).await,
    );
    let embedding = sam.image_encoder.forward(image);
    check(
        "embedding".into(),
        max_abs_err(embedding.clone(), io.get("embedding")).await,
    );

    let dense_pe = sam.prompt_encoder.get_dense_pe();
    check(
        "dense_pe".into(),
        max_abs_err(dense_pe.clone(), io.get("dense_pe")).await,
    );

    // The decoder starts from the reference embedding so each part is checked alone.
    let reference_embedding: Tensor<4> = io.tensor("embedding", device);
    for case in ["none", "points", "boxes", "points_boxes", "mask"] {
        let points = io.has(&format!("{case}.point_coords")).then(|| {
            (
                io.tensor::<3>(&format!("{case}.point_coords"), device),
                io.int_tensor::<2>(&format!("{case}.point_labels"), device),
            )
        });
        let boxes = io
            .has(&format!("{case}.boxes"))
            .then(|| io.tensor::<2>(&format!("{case}.boxes"), device));
        let masks = io
            .has(&format!("{case}.masks"))
            .then(|| io.tensor::<4>(&format!("{case}.masks"), device));
        let (sparse, dense) = sam.prompt_encoder.forward(points, boxes, masks);
        match sparse.clone() {
            Some(sparse) => check(
                format!("{case}.sparse"),
                max_abs_err(sparse, io.get(&format!("{case}.sparse"))).await,
            ),
            None => assert_eq!(
                io.get(&format!("{case}.sparse")).0[1],
                0,
                "{case}: the reference has prompt tokens"
            ),
        }
        check(
            format!("{case}.dense"),
            max_abs_err(dense.clone(), io.get(&format!("{case}.dense"))).await,
        );

        let index = io.scalar(&format!("{case}.image_index"));
        let image_embedding = if index < 0.0 {
            reference_embedding.clone()
        } else {
            let [_, c, h, w] = reference_embedding.dims();
            let i = index as usize;
            reference_embedding
                .clone()
                .slice([i..i + 1, 0..c, 0..h, 0..w])
        };
        for (tag, multi) in [("single", false), ("multi", true)] {
            let (masks, iou) = sam.mask_decoder.forward(
                image_embedding.clone(),
                dense_pe.clone(),
                sparse.clone(),
                dense.clone(),
                multi,
            );
            check(
                format!("{case}.{tag}.low_res_masks"),
                max_abs_err(masks, io.get(&format!("{case}.{tag}.low_res_masks"))).await,
            );
            check(
                format!("{case}.{tag}.iou_predictions"),
                max_abs_err(iou, io.get(&format!("{case}.{tag}.iou_predictions"))).await,
            );
        }
    }

    // Preprocessing and postprocessing, where the fixture has them.
    if io.has("pre.pixels") {
        let pixels: Tensor<3> = io.tensor("pre.pixels", device);
        let input = normalize_and_pad(pixels.unsqueeze_dim(0), sam.image_size());
        check(
            "pre.input".into(),
            max_abs_err(input.squeeze_dim::<3>(0), io.get("pre.input")).await,
        );
        let sizes = &io.get("post.sizes").1;
        let [h, w, nh, nw] = [0, 1, 2, 3].map(|i| sizes[i] as usize);
        let logits = postprocess_masks(
            io.tensor("post.low_res_masks", device),
            sam.image_size(),
            (nh, nw),
            (h, w),
        );
        check(
            "post.masks".into(),
            max_abs_err(logits, io.get("post.masks")).await,
        );
    }
    errors
}

async fn assert_parity(fixture: &Fixture, device: &Device) {
    let errors = compare(fixture, device).await;
    let worst = errors
        .iter()
        .cloned()
        .fold((String::new(), 0f32), |a, b| if b.1 > a.1 { b } else { a });
    let failed: Vec<_> = errors
        .iter()
        .filter(|(_, e)| e.is_nan() || *e > TOLERANCE)
        .collect();
    assert!(
        failed.is_empty(),
        "{}: outputs differ from the reference: {failed:?}",
        fixture.name
    );
    eprintln!(
        "{}: {} outputs within {TOLERANCE:e}; worst {} at {:e}",
        fixture.name,
        errors.len(),
        worst.0,
        worst.1
    );
}

async_test! {
    fn flex_padded_windows_equal_the_reference() {
        assert_parity(&TINY_PAD, &Device::flex()).await;
    }
}

async_test! {
    fn flex_unpadded_windows_equal_the_reference() {
        assert_parity(&TINY_NOPAD, &Device::flex()).await;
    }
}

async_test! {
    fn flex_resampled_weights_equal_the_reference() {
        assert_parity(&TINY_RESAMPLE, &Device::flex()).await;
    }
}

/// The same on wgpu when an adapter is there (skipped with a message when not).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn wgpu_equals_the_reference() {
    let device = match Device::wgpu_options().init() {
        Ok(device) => device,
        Err(err) => {
            eprintln!("no wgpu adapter ({err}): skipping the wgpu parity test");
            return;
        }
    };
    for fixture in [&TINY_PAD, &TINY_NOPAD, &TINY_RESAMPLE] {
        sam_support::block_on(assert_parity(fixture, &device));
    }
}

/// The same on WebGPU in the browser (SwiftShader in headless Chromium).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn webgpu_equals_the_reference() {
    let device = sam_support::webgpu_device().await;
    for fixture in [&TINY_PAD, &TINY_NOPAD, &TINY_RESAMPLE] {
        assert_parity(fixture, &device).await;
    }
}

#[test]
fn padded_weights_in_the_unpadded_config_fail_naming_the_blocks() {
    let config = SamConfig::tiny_unpadded();
    let mut weights = SafeTensors::parse(TINY_PAD.weights);
    let err = Sam::load(&config, &mut weights, &Device::flex()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            SamError::Depth {
                found: 3,
                expected: 2,
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("3 image encoder blocks") && message.contains("has 2"),
        "{message}"
    );
}

#[test]
fn a_wider_checkpoint_fails_naming_the_tensor() {
    let config = SamConfig {
        encoder_embed_dim: 32,
        ..SamConfig::tiny_padded()
    };
    let mut weights = SafeTensors::parse(TINY_PAD.weights);
    let err = Sam::load(&config, &mut weights, &Device::flex()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`image_encoder.patch_embed.proj.weight` has shape [16, 3, 16, 16]"),
        "{message}"
    );
    assert!(message.contains("expects [32, 3, 16, 16]"), "{message}");
}

#[test]
fn a_windowed_rel_pos_of_another_window_fails_naming_the_tensor() {
    let config = SamConfig {
        window_size: 3,
        ..SamConfig::tiny_padded()
    };
    let mut weights = SafeTensors::parse(TINY_PAD.weights);
    let err = Sam::load(&config, &mut weights, &Device::flex()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`image_encoder.blocks.0.attn.rel_pos_h` has shape [7, 8]"),
        "{message}"
    );
}

#[test]
fn the_tiny_configs_match_the_fixtures() {
    for (fixture, config) in [
        (&TINY_PAD, SamConfig::tiny_padded()),
        (&TINY_NOPAD, SamConfig::tiny_unpadded()),
    ] {
        let from_json = config_from_json(&config.name, fixture.json);
        assert_eq!(from_json, config, "{}", fixture.name);
    }
}

async_test! {
/// The `.pth` the reference wrote with `torch.save`, read by the crate's `Checkpoint`,
/// gives the same model as the safetensors copy.
fn pth_checkpoint_equals_the_reference() {
    let device = Device::flex();
    let config = config_from_json(TINY_PAD.name, TINY_PAD.json);
    let bytes = include_bytes!("fixtures/sam/tiny_pad.pth");
    let sam = Sam::from_bytes(&config, bytes, &device).expect("load the .pth");
    let io = SafeTensors::parse(TINY_PAD.io);

    let embedding = sam.image_encoder.forward(io.tensor("image", &device));
    let err = max_abs_err(embedding.clone(), io.get("embedding")).await;
    assert!(err <= TOLERANCE, "embedding: {err:e}");

    let (masks, iou) = sam.decode(embedding, None, None, None, true);
    let err = max_abs_err(masks, io.get("none.multi.low_res_masks")).await;
    assert!(err <= TOLERANCE, "masks: {err:e}");
    let err = max_abs_err(iou, io.get("none.multi.iou_predictions")).await;
    assert!(err <= TOLERANCE, "iou: {err:e}");
}
}

/// A ViT-H checkpoint given to ViT-B names the tensor, both shapes and the model it is.
#[test]
fn a_vit_h_checkpoint_loaded_as_vit_b_says_so() {
    use pcb_pros::weights::{NamedTensor, StoreDType, write_safetensors};
    let shape = [1280, 3, 16, 16];
    let values = vec![0f32; shape.iter().product()];
    let bytes = write_safetensors(
        [NamedTensor {
            name: "image_encoder.patch_embed.proj.weight",
            shape: &shape,
            values: &values,
        }],
        StoreDType::F32,
        &Default::default(),
    );
    let err = Sam::from_bytes(&SamConfig::vit_b(), &bytes, &Device::flex()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor `image_encoder.patch_embed.proj.weight` has shape [1280, 3, 16, 16]; \
         SAM ViT-B expects [768, 3, 16, 16]: this looks like a ViT-H checkpoint"
    );
}
