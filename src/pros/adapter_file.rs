//! Saving and loading trained adapters as safetensors with metadata.
//!
//! Tensor names and layouts follow PyTorch (`[out, in]` weights), so the file reads the
//! same in Python:
//!
//! ```text
//! encoder.<j>.down.weight [dim/4, dim]   encoder.<j>.down.bias [dim/4]
//! encoder.<j>.up.weight   [dim, dim/4]   encoder.<j>.up.bias   [dim]
//! decoder.<l>.…                          (256-wide, when trained)
//! hypernetwork.<n>.weight [out, in]      hypernetwork.<n>.bias [out]   (when trained)
//! ```
//!
//! The metadata (`__metadata__`, strings) records what the adapters belong to and how
//! they were made: the SAM config (JSON), K, the positions, the SHA-256 of the SAM weights
//! file, the seed, the epochs and the loss history. Loading checks the SAM and K and
//! refuses a mismatch with a message that says what differs.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ProsError;
use super::adapter::{Adapter, AdapterConfig, Adapters, TrainableLinear};
use super::train::LossHistory;
use crate::sam::SamConfig;
use crate::weights::{
    Checkpoint, NamedTensor, StoreDType, WeightsFormat, format_of, looks_like, read_metadata,
    write_safetensors,
};

/// Metadata key under which everything is stored, as one JSON document.
pub const METADATA_KEY: &str = "pros";

/// What an adapter file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterMetadata {
    /// The SAM the adapters were trained on.
    pub sam_config: SamConfig,
    /// Number of image encoder adapters.
    pub k: usize,
    /// Where they go and what else was trained.
    pub adapter_config: AdapterConfig,
    /// Hex SHA-256 of the SAM weights file's bytes.
    pub sam_sha256: String,
    /// The training seed.
    pub seed: u64,
    /// Finished epochs.
    pub epochs: usize,
    /// The losses of the run.
    pub loss_history: LossHistory,
}

/// Hex SHA-256 of some bytes (the SAM weights file).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Named 2-D weights and named 1-D biases.
pub type NamedParameters = (Vec<(String, Tensor<2>)>, Vec<(String, Tensor<1>)>);

/// The raw parameters of `adapters` under their file names, in this crate's layout
/// (weights `[in, out]`): the 2-D weights, then the 1-D biases. The tensors are the
/// parameters themselves, so `tensor.grad(&grads)` reads their gradients.
pub fn parameters(adapters: &Adapters) -> NamedParameters {
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    let mut adapter = |prefix: String, a: &Adapter| {
        weights.push((format!("{prefix}.down.weight"), a.down_weight.val()));
        biases.push((format!("{prefix}.down.bias"), a.down_bias.val()));
        weights.push((format!("{prefix}.up.weight"), a.up_weight.val()));
        biases.push((format!("{prefix}.up.bias"), a.up_bias.val()));
    };
    for (j, a) in adapters.encoder.iter().enumerate() {
        adapter(format!("encoder.{j}"), a);
    }
    for (l, a) in adapters.decoder.iter().enumerate() {
        adapter(format!("decoder.{l}"), a);
    }
    for (n, layer) in adapters.hypernetwork.iter().enumerate() {
        weights.push((format!("hypernetwork.{n}.weight"), layer.weight.val()));
        biases.push((format!("hypernetwork.{n}.bias"), layer.bias.val()));
    }
    (weights, biases)
}

/// A tensor's name, PyTorch shape and the tensor in this crate's layout.
type Entry = (String, Vec<usize>, Tensor<2>, bool);

/// Every tensor of `adapters`, named; 2-D tensors flagged to be transposed.
fn entries(adapters: &Adapters) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut adapter = |prefix: String, a: &Adapter| {
        let [dim, hidden] = a.down_weight.val().dims();
        out.push((
            format!("{prefix}.down.weight"),
            vec![hidden, dim],
            a.down_weight.val(),
            true,
        ));
        out.push((
            format!("{prefix}.down.bias"),
            vec![hidden],
            a.down_bias.val().unsqueeze(),
            false,
        ));
        out.push((
            format!("{prefix}.up.weight"),
            vec![dim, hidden],
            a.up_weight.val(),
            true,
        ));
        out.push((
            format!("{prefix}.up.bias"),
            vec![dim],
            a.up_bias.val().unsqueeze(),
            false,
        ));
    };
    for (j, a) in adapters.encoder.iter().enumerate() {
        adapter(format!("encoder.{j}"), a);
    }
    for (l, a) in adapters.decoder.iter().enumerate() {
        adapter(format!("decoder.{l}"), a);
    }
    for (n, layer) in adapters.hypernetwork.iter().enumerate() {
        let [d_in, d_out] = layer.weight.val().dims();
        out.push((
            format!("hypernetwork.{n}.weight"),
            vec![d_out, d_in],
            layer.weight.val(),
            true,
        ));
        out.push((
            format!("hypernetwork.{n}.bias"),
            vec![d_out],
            layer.bias.val().unsqueeze(),
            false,
        ));
    }
    out
}

/// Serialise from values already read: `(name, PyTorch shape, values in PyTorch order)`.
fn serialise(
    values: &[(String, Vec<usize>, Vec<f32>)],
    metadata: &AdapterMetadata,
) -> Result<Vec<u8>, ProsError> {
    let json =
        serde_json::to_string(metadata).map_err(|e| ProsError::AdapterFile(e.to_string()))?;
    let mut map = BTreeMap::new();
    map.insert(METADATA_KEY.to_owned(), json);
    let tensors = values.iter().map(|(name, shape, values)| NamedTensor {
        name,
        shape,
        values,
    });
    Ok(write_safetensors(tensors, StoreDType::F32, &map))
}

/// Transpose a 2-D entry to PyTorch's layout and flatten it.
fn to_pytorch(tensor: Tensor<2>, transpose: bool) -> Tensor<2> {
    if transpose {
        tensor.transpose()
    } else {
        tensor
    }
}

/// The bytes of an adapter file (native: reads the tensors synchronously).
pub fn to_bytes(adapters: &Adapters, metadata: &AdapterMetadata) -> Result<Vec<u8>, ProsError> {
    let mut values = Vec::new();
    for (name, shape, tensor, transpose) in entries(adapters) {
        let data = to_pytorch(tensor, transpose).into_data();
        let v = data
            .try_to_vec::<f32>()
            .map_err(|e| ProsError::Backend(format!("{e:?}")))?;
        values.push((name, shape, v));
    }
    serialise(&values, metadata)
}

/// The bytes of an adapter file, reading the tensors without blocking (for the web).
pub async fn to_bytes_async(
    adapters: &Adapters,
    metadata: &AdapterMetadata,
) -> Result<Vec<u8>, ProsError> {
    let mut values = Vec::new();
    for (name, shape, tensor, transpose) in entries(adapters) {
        let data = to_pytorch(tensor, transpose)
            .into_data_async()
            .await
            .map_err(|e| ProsError::Backend(format!("{e:?}")))?;
        let v = data
            .try_to_vec::<f32>()
            .map_err(|e| ProsError::Backend(format!("{e:?}")))?;
        values.push((name, shape, v));
    }
    serialise(&values, metadata)
}

/// Read only the metadata of an adapter file.
pub fn read_adapter_metadata(bytes: &[u8]) -> Result<AdapterMetadata, ProsError> {
    // Name what adapter files are before any detail of the weights formats.
    let what = "adapter files are the .safetensors files that `pros train` and the page's \
                Download adapters write";
    match format_of(bytes) {
        Ok(WeightsFormat::Safetensors) => {}
        Ok(WeightsFormat::PyTorch) => {
            return Err(ProsError::AdapterFile(format!(
                "this is a PyTorch checkpoint (SAM weights?), not adapters; {what}"
            )));
        }
        Err(_) => {
            return Err(ProsError::AdapterFile(format!(
                "this is not an adapter file: it is {}; {what}",
                looks_like(bytes)
            )));
        }
    }
    let map = read_metadata(bytes).map_err(|e| ProsError::AdapterFile(e.to_string()))?;
    let json = map.get(METADATA_KEY).ok_or_else(|| {
        ProsError::AdapterFile(format!(
            "the file has no `{METADATA_KEY}` metadata; it is not a PROS adapter file"
        ))
    })?;
    serde_json::from_str(json).map_err(|e| ProsError::AdapterFile(format!("bad metadata: {e}")))
}

/// Load adapters for a given SAM: its config and the SHA-256 of its weights file must
/// match the file's, and so must K when `expected_k` is given.
pub fn from_bytes(
    bytes: &[u8],
    sam_config: &SamConfig,
    sam_sha256: &str,
    expected_k: Option<usize>,
    device: &Device,
) -> Result<(Adapters, AdapterMetadata), ProsError> {
    let metadata = read_adapter_metadata(bytes)?;
    if metadata.sam_config != *sam_config {
        return Err(ProsError::AdapterMismatch(format!(
            "the adapters were trained on SAM {} at {} px; this model is SAM {} at {} px",
            metadata.sam_config.name,
            metadata.sam_config.image_size,
            sam_config.name,
            sam_config.image_size
        )));
    }
    if metadata.sam_sha256 != sam_sha256 {
        return Err(ProsError::AdapterMismatch(format!(
            "the adapters were trained on SAM weights with SHA-256 {}, but these weights have {}; \
             load the weights they were trained on",
            metadata.sam_sha256, sam_sha256
        )));
    }
    if let Some(k) = expected_k
        && k != metadata.k
    {
        return Err(ProsError::AdapterMismatch(format!(
            "the file holds K = {} adapters; K = {k} was asked for",
            metadata.k
        )));
    }

    // The positions come from the file: check them against the model before any use.
    AdapterConfig::at_positions(
        metadata.adapter_config.encoder_positions.clone(),
        sam_config.encoder_depth,
    )?;
    let mut checkpoint =
        Checkpoint::parse(bytes).map_err(|e| ProsError::AdapterFile(e.to_string()))?;
    let adapters = take_adapters(
        &mut checkpoint,
        sam_config,
        &metadata.adapter_config,
        device,
    )?;
    checkpoint
        .finish()
        .map_err(|e| ProsError::AdapterFile(e.to_string()))?;
    Ok((adapters, metadata))
}

/// Take the adapters that `config` describes from a safetensors checkpoint whose tensor
/// names and layouts are those of adapter files (see the module docs). Other tensors are
/// left in the checkpoint.
pub fn take_adapters(
    checkpoint: &mut Checkpoint<'_>,
    sam_config: &SamConfig,
    config: &AdapterConfig,
    device: &Device,
) -> Result<Adapters, ProsError> {
    let mut take = |name: String, shape: &[usize]| -> Result<Vec<f32>, ProsError> {
        let values = checkpoint
            .take(&name, shape)
            .map_err(|e| ProsError::AdapterFile(e.to_string()))?;
        // A diverged training run can save NaN or infinite weights; they would turn every
        // mask into NaN, so they are refused here rather than segmenting nothing silently.
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(ProsError::AdapterFile(format!(
                "tensor {name} holds a non-finite value ({}) at index {bad}: the adapters \
                 diverged while training; train again (a lower learning rate may help) \
                 or load another file",
                values[bad]
            )));
        }
        Ok(values)
    };
    let dim = sam_config.encoder_embed_dim;
    let decoder_dim = sam_config.prompt_embed_dim;

    let mut load = |prefix: String, width: usize| -> Result<Adapter, ProsError> {
        let hidden = width / super::adapter::REDUCTION;
        let dw = take(format!("{prefix}.down.weight"), &[hidden, width])?;
        let db = take(format!("{prefix}.down.bias"), &[hidden])?;
        let uw = take(format!("{prefix}.up.weight"), &[width, hidden])?;
        let ub = take(format!("{prefix}.up.bias"), &[width])?;
        let values = [
            transpose(&dw, hidden, width),
            db,
            transpose(&uw, width, hidden),
            ub,
        ];
        Ok(Adapter::from_values(width, values, device))
    };
    let mut adapters = Adapters {
        encoder: Vec::new(),
        decoder: Vec::new(),
        hypernetwork: Vec::new(),
    };
    for j in 0..config.k() {
        adapters.encoder.push(load(format!("encoder.{j}"), dim)?);
    }
    if config.decoder_adapters {
        for l in 0..sam_config.decoder_depth {
            adapters
                .decoder
                .push(load(format!("decoder.{l}"), decoder_dim)?);
        }
    }
    if config.train_hypernetwork {
        let d = decoder_dim;
        for (n, (d_in, d_out)) in [(d, d), (d, d), (d, d / 8)].into_iter().enumerate() {
            let w = take(format!("hypernetwork.{n}.weight"), &[d_out, d_in])?;
            let b = take(format!("hypernetwork.{n}.bias"), &[d_out])?;
            let w = Tensor::<2>::from_data(
                TensorData::new(transpose(&w, d_out, d_in), [d_in, d_out]),
                device,
            );
            let b = Tensor::<1>::from_data(TensorData::new(b, [d_out]), device);
            adapters.hypernetwork.push(TrainableLinear {
                weight: Param::from_tensor(w),
                bias: Param::from_tensor(b),
            });
        }
    }
    Ok(adapters)
}

/// Transpose a row-major `[rows, cols]` matrix.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;

    fn values(adapters: &Adapters) -> Vec<Vec<f32>> {
        let (w, b) = parameters(adapters);
        let mut out: Vec<Vec<f32>> = w
            .into_iter()
            .map(|(_, t)| t.into_data().try_to_vec::<f32>().unwrap())
            .collect();
        out.extend(
            b.into_iter()
                .map(|(_, t)| t.into_data().try_to_vec::<f32>().unwrap()),
        );
        out
    }

    fn example() -> (SamConfig, Adapters, AdapterMetadata) {
        let device = Device::flex();
        let sam_config = SamConfig::tiny_padded();
        let mut config = AdapterConfig::last_k(2, sam_config.encoder_depth).unwrap();
        config.decoder_adapters = true;
        config.train_hypernetwork = true;
        let d = sam_config.prompt_embed_dim;
        let layer = |i: usize, o: usize| {
            (
                Tensor::<2>::random([i, o], burn::tensor::Distribution::Default, &device),
                Tensor::<1>::random([o], burn::tensor::Distribution::Default, &device),
            )
        };
        let adapters = Adapters::new(&config, sam_config.encoder_embed_dim, d, 2, 9, &device)
            .with_hypernetwork(vec![layer(d, d), layer(d, d), layer(d, d / 8)], &device);
        let metadata = AdapterMetadata {
            sam_config: sam_config.clone(),
            k: 2,
            adapter_config: config,
            sam_sha256: sha256_hex(b"weights"),
            seed: 9,
            epochs: 3,
            loss_history: LossHistory {
                steps: vec![1.0, 0.5],
                epochs: vec![0.75],
            },
        };
        (sam_config, adapters, metadata)
    }

    #[test]
    fn round_trip_keeps_values_and_metadata() {
        let (sam_config, adapters, metadata) = example();
        let bytes = to_bytes(&adapters, &metadata).unwrap();
        let (loaded, read) = from_bytes(
            &bytes,
            &sam_config,
            &metadata.sam_sha256,
            Some(2),
            &Device::flex(),
        )
        .unwrap();
        assert_eq!(read, metadata);
        assert_eq!(values(&loaded), values(&adapters));
        assert_eq!(loaded.num_params(), adapters.num_params());
    }

    #[test]
    fn another_sam_or_k_is_refused_clearly() {
        let (sam_config, adapters, metadata) = example();
        let bytes = to_bytes(&adapters, &metadata).unwrap();
        let device = Device::flex();
        let sha = metadata.sam_sha256.clone();

        let error = from_bytes(&bytes, &sam_config, &sha256_hex(b"other"), None, &device)
            .unwrap_err()
            .to_string();
        assert!(error.contains("SHA-256"), "{error}");

        let error = from_bytes(&bytes, &sam_config, &sha, Some(12), &device)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("K = 2") && error.contains("K = 12"),
            "{error}"
        );

        let other = SamConfig::tiny_unpadded();
        let error = from_bytes(&bytes, &other, &sha, None, &device)
            .unwrap_err()
            .to_string();
        assert!(error.contains("trained on SAM"), "{error}");

        let plain = write_safetensors(
            [NamedTensor {
                name: "x",
                shape: &[1],
                values: &[0.0],
            }],
            StoreDType::F32,
            &BTreeMap::new(),
        );
        let error = from_bytes(&plain, &sam_config, &sha, None, &device)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a PROS adapter file"), "{error}");

        // Files of other kinds are named as such, with what adapter files are.
        let refused = |bytes: &[u8]| {
            from_bytes(bytes, &sam_config, &sha, None, &device)
                .unwrap_err()
                .to_string()
        };
        let error = refused(b"");
        assert!(
            error.contains("not an adapter file: it is empty"),
            "{error}"
        );
        assert!(
            error.contains(".safetensors files that `pros train`"),
            "{error}"
        );
        assert!(!error.contains("sam_vit_b"), "{error}");
        let error = refused(b"\xff\xd8\xff\xe0 a JPEG, not adapters");
        assert!(error.contains("a JPEG image"), "{error}");
        let error = refused(b"PK\x03\x04 a zip as torch.save writes");
        assert!(
            error.contains("PyTorch checkpoint (SAM weights?)"),
            "{error}"
        );
    }

    #[test]
    fn non_finite_values_are_refused_with_the_tensor_named() {
        let (sam_config, mut adapters, metadata) = example();
        let device = Device::flex();
        let dim = sam_config.encoder_embed_dim;
        let hidden = dim / super::super::adapter::REDUCTION;
        let mut up_bias = vec![0.0; dim];
        up_bias[3] = f32::NAN;
        adapters.encoder[0] = Adapter::from_values(
            dim,
            [
                vec![0.0; dim * hidden],
                vec![0.0; hidden],
                vec![0.0; hidden * dim],
                up_bias,
            ],
            &device,
        );
        let bytes = to_bytes(&adapters, &metadata).unwrap();
        let error = from_bytes(&bytes, &sam_config, &metadata.sam_sha256, None, &device)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("encoder.0.up.bias") && error.contains("non-finite"),
            "{error}"
        );
    }

    #[test]
    fn positions_outside_the_model_are_refused_when_read() {
        // A file whose metadata names a block the model does not have (edited or made for
        // another model) is refused on reading, not when it is first used.
        let (sam_config, adapters, mut metadata) = example();
        metadata.adapter_config.encoder_positions = vec![99];
        let bytes = to_bytes(&adapters, &metadata).unwrap();
        let sha = metadata.sam_sha256.clone();
        let error = from_bytes(&bytes, &sam_config, &sha, None, &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(error.contains("[99]"), "{error}");
    }
}
