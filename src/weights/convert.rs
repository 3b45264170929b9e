//! Converting any checkpoint to safetensors for serving beside the web page.

use super::{Checkpoint, StoreDType, WeightsError, read_metadata, safetensors::Writer};

/// Convert every tensor of a PyTorch checkpoint or safetensors file to a safetensors file
/// of `dtype`, keeping the names.
///
/// The metadata keeps what a safetensors source had and records the source format
/// (`source_format`), the stored dtype and the converter. Tensors are decoded one at a
/// time, so memory peaks at the input, the output and one f32 tensor.
pub fn convert_to_safetensors(bytes: &[u8], dtype: StoreDType) -> Result<Vec<u8>, WeightsError> {
    let mut metadata = read_metadata(bytes)?;
    let mut checkpoint = Checkpoint::parse(bytes)?;

    metadata.insert("format".to_string(), "pt".to_string());
    let source = checkpoint.format().name();
    metadata.insert("source_format".to_string(), source.to_string());
    let dtype_name = match dtype {
        StoreDType::F32 => "f32",
        StoreDType::F16 => "f16",
    };
    metadata.insert("dtype".to_string(), dtype_name.to_string());
    metadata.insert(
        "converted_by".to_string(),
        format!("pcb-pros {}", env!("CARGO_PKG_VERSION")),
    );

    let layout: Vec<(String, Vec<usize>)> = checkpoint
        .tensors
        .iter()
        .map(|(name, entry)| (name.clone(), entry.shape.clone()))
        .collect();
    let mut writer = Writer::new(&layout, dtype, &metadata);
    for (name, shape) in &layout {
        let values = checkpoint.take(name, shape)?;
        writer.push(&values);
    }
    checkpoint.finish()?;

    let out = writer.finish();
    log::info!(
        "converted {} tensors from {source} to {dtype_name} safetensors ({} bytes)",
        layout.len(),
        out.len()
    );
    Ok(out)
}
