//! What the SAM tests share: a minimal safetensors reader (f32 only) for the fixtures,
//! usable as a weights source, and comparison of tensors with reference outputs.
//!
//! The fixtures' weights also come as safetensors, read here without the crate's
//! `Checkpoint`, so that a fault in the loader and one in the checkpoint reader show
//! apart; `sam_parity::pth_checkpoint_equals_the_reference` covers the `.pth` path.

#![allow(dead_code, unused_macros)]

/// A test whose body is a future: natively it is blocked on, in the browser awaited.
macro_rules! async_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            $crate::sam_support::block_on(async $body)
        }

        $(#[$meta])*
        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() {
            $crate::sam_support::before_wasm_test();
            $body
        }
    };
}

/// In the browser, run the library's static constructors (the GPU backend's kernel compiler
/// registers its types there); the test harness does not run the library's start function.
#[cfg(target_arch = "wasm32")]
pub fn before_wasm_test() {
    pcb_pros::web::run_static_constructors();
}

/// The WebGPU device of a browser test. The test run starts Chromium with WebGPU enabled,
/// so a missing adapter is a failure.
#[cfg(target_arch = "wasm32")]
pub async fn webgpu_device() -> burn::tensor::Device {
    before_wasm_test();
    burn::tensor::Device::wgpu_options()
        .init_async()
        .await
        .expect("a WebGPU adapter")
}

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor, TensorData};
use pcb_pros::sam::SamConfig;
use pcb_pros::sam::load::WeightSource;
use pcb_pros::weights::WeightsError;

/// The tensors of a safetensors file with f32 data.
pub struct SafeTensors {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl SafeTensors {
    pub fn parse(bytes: &[u8]) -> Self {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let data = &bytes[8 + n..];
        let mut tensors = BTreeMap::new();
        for (name, entry) in header.as_object().unwrap() {
            if name == "__metadata__" {
                continue;
            }
            assert_eq!(entry["dtype"], "F32", "{name}: the fixtures are f32");
            let shape: Vec<usize> = entry["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            let off = entry["data_offsets"].as_array().unwrap();
            let (a, b) = (
                off[0].as_u64().unwrap() as usize,
                off[1].as_u64().unwrap() as usize,
            );
            let values = data[a..b]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            tensors.insert(name.clone(), (shape, values));
        }
        Self { tensors }
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn get(&self, name: &str) -> &(Vec<usize>, Vec<f32>) {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no tensor `{name}`"))
    }

    pub fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D> {
        let (shape, values) = self.get(name);
        let shape: [usize; D] = shape.clone().try_into().unwrap();
        Tensor::from_data(TensorData::new(values.clone(), shape), device)
    }

    pub fn int_tensor<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D, Int> {
        let (shape, values) = self.get(name);
        let shape: [usize; D] = shape.clone().try_into().unwrap();
        let ints: Vec<i64> = values.iter().map(|&v| v as i64).collect();
        Tensor::from_data(TensorData::new(ints, shape), device)
    }

    pub fn scalar(&self, name: &str) -> f32 {
        self.get(name).1[0]
    }

    /// Names left over after loading.
    pub fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
}

impl WeightSource for SafeTensors {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|(s, _)| s.clone())
    }

    fn take(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let (shape, values) = self
            .tensors
            .remove(name)
            .ok_or_else(|| WeightsError::Missing {
                name: name.to_string(),
                hint: "the fixture lacks it".to_string(),
            })?;
        if shape != expected {
            return Err(WeightsError::Shape {
                name: name.to_string(),
                found: shape,
                expected: expected.to_vec(),
                hint: String::new(),
            });
        }
        Ok(values)
    }
}

/// The configuration the fixture script wrote beside the tensors.
pub fn config_from_json(name: &str, json: &str) -> SamConfig {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["name"] = serde_json::Value::String(name.to_string());
    serde_json::from_value(v).unwrap()
}

/// Read a tensor back, asynchronously as the web requires.
pub async fn values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    let dims = t.dims().to_vec();
    let data = t.into_data_async().await.unwrap().convert::<f32>();
    (dims, data.try_to_vec::<f32>().unwrap())
}

/// Run a future to completion natively (the browser runs the tests' futures itself).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

/// Max absolute difference between our tensor and the reference's (NaN if any is NaN).
pub async fn max_abs_err<const D: usize>(
    ours: Tensor<D>,
    reference: &(Vec<usize>, Vec<f32>),
) -> f32 {
    let (dims, got) = values(ours).await;
    assert_eq!(dims, reference.0, "shape differs from the reference");
    // NaN anywhere makes the error NaN (f32::max would skip it).
    got.iter()
        .zip(&reference.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, |m, d| {
            if d.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        })
}
