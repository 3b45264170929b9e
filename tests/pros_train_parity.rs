//! One PROS training step against PyTorch: the fixtures were made by
//! `scripts/reference/make_pros_fixtures.py` with the same SAM weights, images, masks and
//! adapter values. Loss, logits and every adapter gradient must match to 1e-4, and the
//! AdamW update to a small fraction of the learning rate.

// Native only: these read files (and run the binary), which the browser cannot.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;

use burn::tensor::{Device, Tensor};
use image::{GrayImage, RgbImage};
use pcb_pros::pros::adapter::AdapterConfig;
use pcb_pros::pros::adapter_file::{parameters, take_adapters};
use pcb_pros::pros::loss::LossKind;
use pcb_pros::pros::model::ProsModel;
use pcb_pros::pros::train::{
    StepOutcome, TrainConfig, Trainer, TrainingPair, mask_target, normalized_image,
};
use pcb_pros::sam::{Sam, SamConfig};
use pcb_pros::weights::Checkpoint;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pros")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Row-major `[rows, cols]` to `[cols, rows]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

struct Case {
    sam_config: SamConfig,
    adapter_config: AdapterConfig,
    pairs: Vec<TrainingPair>,
}

fn load_case(name: &str) -> Case {
    let meta: serde_json::Value =
        serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap();
    let sam_config = SamConfig::tiny_padded();
    assert_eq!(meta["sam"]["image_size"], sam_config.image_size);
    assert_eq!(meta["sam"]["encoder_depth"], sam_config.encoder_depth);
    assert_eq!(
        meta["sam"]["encoder_embed_dim"],
        sam_config.encoder_embed_dim
    );
    let positions: Vec<usize> = serde_json::from_value(meta["encoder_positions"].clone()).unwrap();
    let mut adapter_config =
        AdapterConfig::at_positions(positions, sam_config.encoder_depth).unwrap();
    adapter_config.decoder_adapters = meta["decoder_adapters"].as_bool().unwrap();
    adapter_config.train_hypernetwork = meta["train_hypernetwork"].as_bool().unwrap();

    let io_bytes = fixture(&format!("{name}.io.safetensors"));
    let mut io = Checkpoint::parse(&io_bytes).unwrap();
    let size = sam_config.image_size;
    let batch = meta["batch"].as_u64().unwrap() as usize;
    let images = io.take("images", &[batch, 3, size, size]).unwrap();
    let masks = io.take("masks", &[batch, 1, size, size]).unwrap();
    let plane = size * size;
    let pairs = (0..batch)
        .map(|b| TrainingPair {
            image: RgbImage::from_fn(size as u32, size as u32, |x, y| {
                let at =
                    |c: usize| images[(b * 3 + c) * plane + y as usize * size + x as usize] as u8;
                image::Rgb([at(0), at(1), at(2)])
            }),
            mask: GrayImage::from_fn(size as u32, size as u32, |x, y| {
                image::Luma([masks[b * plane + y as usize * size + x as usize] as u8])
            }),
        })
        .collect();
    Case {
        sam_config,
        adapter_config,
        pairs,
    }
}

fn check_step(name: &str) {
    let case = load_case(name);
    let device = Device::flex();
    let autodiff = device.clone().autodiff();
    let weights = fixture(&format!("{name}.weights.safetensors"));
    let sam = Sam::from_bytes(&case.sam_config, &weights, &device).unwrap();
    let model = ProsModel::new(sam, case.adapter_config.clone()).unwrap();

    let io_bytes = fixture(&format!("{name}.io.safetensors"));
    let mut io = Checkpoint::parse(&io_bytes).unwrap();
    let adapters =
        take_adapters(&mut io, &case.sam_config, &case.adapter_config, &autodiff).unwrap();

    // Forward and loss through the same path training takes.
    let x = Tensor::cat(
        case.pairs
            .iter()
            .map(|p| normalized_image(&p.image, &device))
            .collect(),
        0,
    );
    let target = Tensor::cat(
        case.pairs
            .iter()
            .map(|p| mask_target(&p.mask, &device))
            .collect(),
        0,
    );
    let logits = model.forward_from_prefix(model.prefix(x), &adapters);
    let [b, _, h, w] = logits.dims();
    let expected_logits = io.take("logits", &[b, 1, h, w]).unwrap();
    let logits_diff = max_abs_diff(&to_vec(logits.clone()), &expected_logits);
    assert!(logits_diff < 1e-4, "{name}: logits differ by {logits_diff}");

    let loss = LossKind::BceDice.compute(logits, target);
    let loss_value = to_vec(loss.clone())[0];
    let expected_loss = io.take("loss", &[1]).unwrap()[0];
    assert!(
        (loss_value - expected_loss).abs() < 1e-4,
        "{name}: loss {loss_value} vs {expected_loss}"
    );

    // Every adapter gradient.
    let grads = loss.backward();
    let (weights2d, biases) = parameters(&adapters);
    let mut checked = 0;
    for (param_name, tensor) in weights2d {
        let [d_in, d_out] = tensor.dims();
        let grad = tensor
            .grad(&grads)
            .unwrap_or_else(|| panic!("{param_name}: no gradient"));
        let expected = io
            .take(&format!("grad.{param_name}"), &[d_out, d_in])
            .unwrap();
        let diff = max_abs_diff(&to_vec(grad), &transpose(&expected, d_out, d_in));
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(
            scale > 1e-6,
            "{param_name}: the reference gradient is zero; the test would be vacuous"
        );
        assert!(
            diff < 1e-4,
            "{name} {param_name}: gradient differs by {diff} (scale {scale})"
        );
        checked += 1;
    }
    for (param_name, tensor) in biases {
        let [n] = tensor.dims();
        let grad = tensor
            .grad(&grads)
            .unwrap_or_else(|| panic!("{param_name}: no gradient"));
        let expected = io.take(&format!("grad.{param_name}"), &[n]).unwrap();
        let diff = max_abs_diff(&to_vec(grad), &expected);
        assert!(
            diff < 1e-4,
            "{name} {param_name}: gradient differs by {diff}"
        );
        checked += 1;
    }
    let k = case.adapter_config.k();
    let expected_count = 4 * k
        + if case.adapter_config.decoder_adapters {
            8
        } else {
            0
        }
        + if case.adapter_config.train_hypernetwork {
            6
        } else {
            0
        };
    assert_eq!(checked, expected_count);

    // One Trainer step from the same adapters: the AdamW update matches PyTorch's.
    let io_bytes = fixture(&format!("{name}.io.safetensors"));
    let mut io = Checkpoint::parse(&io_bytes).unwrap();
    let start = take_adapters(&mut io, &case.sam_config, &case.adapter_config, &autodiff).unwrap();
    let before = parameters(&start);
    let weights = fixture(&format!("{name}.weights.safetensors"));
    let sam = Sam::from_bytes(&case.sam_config, &weights, &device).unwrap();
    let model = ProsModel::new(sam, case.adapter_config.clone()).unwrap();
    let config = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, &case.pairs, config, &device)
        .unwrap()
        .with_adapters(start);
    match trainer.step_blocking().unwrap() {
        StepOutcome::Step {
            loss, epoch_done, ..
        } => {
            assert!((loss - expected_loss).abs() < 1e-4, "trainer loss {loss}");
            assert!(epoch_done);
        }
        other => panic!("{other:?}"),
    }
    let after = parameters(trainer.adapters());
    let lr = 1e-4f32;
    for ((param_name, old), (_, new)) in before.0.into_iter().zip(after.0) {
        let [d_in, d_out] = old.dims();
        let expected = io
            .take(&format!("after.{param_name}"), &[d_out, d_in])
            .unwrap();
        let old = to_vec(old);
        let ours: Vec<f32> = to_vec(new).iter().zip(&old).map(|(n, o)| n - o).collect();
        let theirs: Vec<f32> = transpose(&expected, d_out, d_in)
            .iter()
            .zip(&old)
            .map(|(n, o)| n - o)
            .collect();
        let diff = max_abs_diff(&ours, &theirs);
        // Updates are about lr in size; they must agree to 2% of it.
        assert!(
            diff < 0.02 * lr,
            "{name} {param_name}: update differs by {diff}"
        );
    }
    for ((param_name, old), (_, new)) in before.1.into_iter().zip(after.1) {
        let [n] = old.dims();
        let expected = io.take(&format!("after.{param_name}"), &[n]).unwrap();
        let old = to_vec(old);
        let ours: Vec<f32> = to_vec(new).iter().zip(&old).map(|(n, o)| n - o).collect();
        let theirs: Vec<f32> = expected.iter().zip(&old).map(|(n, o)| n - o).collect();
        let diff = max_abs_diff(&ours, &theirs);
        assert!(
            diff < 0.02 * lr,
            "{name} {param_name}: update differs by {diff}"
        );
    }
}

#[test]
fn one_step_with_k1_matches_pytorch() {
    check_step("step_k1");
}

#[test]
fn one_step_with_every_trainable_part_matches_pytorch() {
    check_step("step_all");
}

#[test]
fn sam_gets_no_gradient() {
    let case = load_case("step_all");
    let device = Device::flex();
    let autodiff = device.clone().autodiff();
    let weights = fixture("step_all.weights.safetensors");
    let sam = Sam::from_bytes(&case.sam_config, &weights, &device).unwrap();
    let model = ProsModel::new(sam, case.adapter_config.clone()).unwrap();
    let io_bytes = fixture("step_all.io.safetensors");
    let mut io = Checkpoint::parse(&io_bytes).unwrap();
    let adapters =
        take_adapters(&mut io, &case.sam_config, &case.adapter_config, &autodiff).unwrap();

    let x = Tensor::cat(
        case.pairs
            .iter()
            .map(|p| normalized_image(&p.image, &device))
            .collect(),
        0,
    );
    let target = Tensor::cat(
        case.pairs
            .iter()
            .map(|p| mask_target(&p.mask, &device))
            .collect(),
        0,
    );
    let loss = LossKind::BceDice.compute(model.forward(x, &adapters), target);
    let grads = loss.backward();

    // SAM's tensors are constants: not tracked, and no gradient for any of them.
    let encoder = &model.sam.image_encoder;
    let frozen: Vec<Tensor<2>> = vec![
        encoder.blocks()[2].attn.qkv.weight.val(),
        encoder.blocks()[0].mlp.lin1.weight.val(),
        model.sam.mask_decoder.transformer.layers[0]
            .self_attn
            .q_proj
            .weight
            .val(),
        model.sam.mask_decoder.output_hypernetworks_mlps[0].layers[0]
            .weight
            .val(),
    ];
    for t in frozen {
        assert!(!t.is_tracked());
        assert!(t.grad(&grads).is_none());
    }
    let pos = encoder.pos_embed.val();
    assert!(!pos.is_tracked() && pos.grad(&grads).is_none());

    // While every adapter tensor has one.
    let (w, b) = parameters(&adapters);
    assert!(w.iter().all(|(_, t)| t.grad(&grads).is_some()));
    assert!(b.iter().all(|(_, t)| t.grad(&grads).is_some()));
}
