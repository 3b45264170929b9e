//! Decoding the fixtures written by `scripts/reference/make_weights_fixtures.py` (torch and
//! the python `safetensors` package) and comparing with the values torch itself produced.

use std::collections::BTreeMap;

use pcb_pros::weights::{
    Checkpoint, DType, NamedTensor, StoreDType, WeightsError, WeightsFormat,
    convert_to_safetensors, format_of, read_metadata, write_safetensors,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/weights/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The expected tensors: shape and values, bit patterns as f32.
type Expected = BTreeMap<String, (Vec<usize>, Vec<u32>)>;

/// Read a safetensors file written by the python package, independently of the library's
/// reader: header JSON and little-endian F32 or F16 values.
fn reference_values(bytes: &[u8]) -> Expected {
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let data = &bytes[8 + len..];
    let mut out = Expected::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone()).unwrap();
        let [begin, end]: [usize; 2] =
            serde_json::from_value(info["data_offsets"].clone()).unwrap();
        let raw = &data[begin..end];
        let values: Vec<u32> = match info["dtype"].as_str().unwrap() {
            "F32" => raw
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            "F16" => raw
                .chunks_exact(2)
                .map(|b| {
                    half::f16::from_le_bytes(b.try_into().unwrap())
                        .to_f32()
                        .to_bits()
                })
                .collect(),
            other => panic!("unexpected dtype {other} in a reference file"),
        };
        out.insert(name, (shape, values));
    }
    out
}

/// Take every expected tensor from `bytes` and compare bit for bit.
fn assert_decodes_to(bytes: &[u8], expected: &Expected) {
    let mut checkpoint = Checkpoint::parse(bytes).unwrap();
    let names: Vec<&str> = checkpoint.names().collect();
    let expected_names: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(names, expected_names);

    for (name, (shape, bits)) in expected {
        assert_eq!(checkpoint.shape(name), Some(shape.as_slice()), "{name}");
        let values = checkpoint.take(name, shape).unwrap();
        let got: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(&got, bits, "values of `{name}` differ from torch's");
    }
    checkpoint.finish().unwrap();
}

#[test]
fn pytorch_checkpoint_matches_torch_values() {
    let expected = reference_values(&fixture("expected.safetensors"));
    assert_eq!(expected.len(), 11);
    assert_decodes_to(&fixture("state_dict.pth"), &expected);
}

#[test]
fn safetensors_matches_torch_values() {
    let expected = reference_values(&fixture("expected.safetensors"));
    assert_decodes_to(&fixture("state_dict.safetensors"), &expected);
}

#[test]
fn pytorch_views_keep_dtype_strides_and_shared_storage() {
    let bytes = fixture("state_dict.pth");
    let checkpoint = Checkpoint::parse(&bytes).unwrap();
    assert_eq!(checkpoint.format(), WeightsFormat::PyTorch);

    let dtype = |n: &str| checkpoint.entry(n).unwrap().dtype;
    assert_eq!(dtype("plain.f32"), DType::F32);
    assert_eq!(dtype("plain.f16"), DType::F16);
    assert_eq!(dtype("plain.bf16"), DType::BF16);
    assert_eq!(dtype("plain.f64"), DType::F64);

    let transposed = checkpoint.entry("view.transposed").unwrap();
    assert_eq!(transposed.shape, [6, 4]);
    assert_eq!(transposed.strides, [1, 6]);

    // `view.offset` starts 6 elements (24 bytes) into a storage of 30 f32.
    assert_eq!(
        checkpoint.entry("view.offset").unwrap().bytes.len(),
        (30 - 6) * 4
    );

    // `shared.b` starts 10 elements into the storage `shared.a` starts at.
    let a = checkpoint.entry("shared.a").unwrap().bytes;
    let b = checkpoint.entry("shared.b").unwrap().bytes;
    assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, 40);
    assert_eq!(a.len(), 80);

    // Entries borrow the input: nothing was copied.
    let range = bytes.as_ptr_range();
    assert!(range.contains(&a.as_ptr()));
}

#[test]
fn metadata_is_read_from_safetensors_and_empty_for_pytorch() {
    let meta = read_metadata(&fixture("state_dict.safetensors")).unwrap();
    assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
    assert_eq!(meta.len(), 1);
    assert!(
        read_metadata(&fixture("state_dict.pth"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn pth_to_f16_safetensors_equals_torch_f16_rounding() {
    let converted = convert_to_safetensors(&fixture("state_dict.pth"), StoreDType::F16).unwrap();
    let expected = reference_values(&fixture("expected_f16.safetensors"));

    // The written file itself, read independently, holds torch's f16 values.
    assert_eq!(reference_values(&converted), expected);
    // And the library reads it back to the same values.
    assert_decodes_to(&converted, &expected);

    let meta = read_metadata(&converted).unwrap();
    assert_eq!(
        meta.get("source_format").map(String::as_str),
        Some("pytorch")
    );
    assert_eq!(meta.get("dtype").map(String::as_str), Some("f16"));
}

#[test]
fn f32_conversion_is_lossless_and_keeps_metadata() {
    let source = fixture("state_dict.safetensors");
    let converted = convert_to_safetensors(&source, StoreDType::F32).unwrap();
    let expected = reference_values(&fixture("expected.safetensors"));
    assert_eq!(reference_values(&converted), expected);

    let meta = read_metadata(&converted).unwrap();
    assert_eq!(
        meta.get("source_format").map(String::as_str),
        Some("safetensors")
    );
    assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
}

#[test]
fn written_safetensors_are_aligned_and_in_name_order() {
    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [0.1f32];
    let mut meta = BTreeMap::new();
    meta.insert("adapter".to_string(), "test".to_string());
    let bytes = write_safetensors(
        [
            NamedTensor {
                name: "z.last",
                shape: &[2, 3],
                values: &a,
            },
            NamedTensor {
                name: "a.first",
                shape: &[1],
                values: &b,
            },
        ],
        StoreDType::F32,
        &meta,
    );

    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + header_len) % 8, 0);
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(header["a.first"]["data_offsets"], serde_json::json!([0, 4]));
    assert_eq!(header["z.last"]["data_offsets"], serde_json::json!([4, 28]));
    assert_eq!(read_metadata(&bytes).unwrap(), meta);

    let mut checkpoint = Checkpoint::parse(&bytes).unwrap();
    assert_eq!(checkpoint.take("z.last", &[2, 3]).unwrap(), a);
    assert_eq!(checkpoint.take("a.first", &[1]).unwrap(), b);
    checkpoint.finish().unwrap();
}

#[test]
fn f16_writing_rounds_to_nearest_even_and_saturates_to_infinity() {
    // 1 + 2^-11 lies halfway between two f16 values: ties go to the even one (1.0);
    // 1 + 3 * 2^-11 goes up to 1 + 2^-9.
    let values = [
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        70000.0,
        -1e-8,
    ];
    let bytes = write_safetensors(
        [NamedTensor {
            name: "t",
            shape: &[4],
            values: &values,
        }],
        StoreDType::F16,
        &BTreeMap::new(),
    );
    let got = Checkpoint::parse(&bytes).unwrap().take("t", &[4]).unwrap();
    assert_eq!(got[0], 1.0);
    assert_eq!(got[1], 1.0 + 2f32.powi(-9));
    assert_eq!(got[2], f32::INFINITY);
    assert_eq!(got[3].to_bits(), (-0.0f32).to_bits());
}

fn message(result: Result<impl std::fmt::Debug, WeightsError>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn take_and_finish_explain_mismatches() {
    let bytes = fixture("state_dict.safetensors");
    let mut checkpoint = Checkpoint::parse(&bytes).unwrap();

    let shape = message(checkpoint.take("plain.f32", &[4, 3]));
    assert!(
        shape.contains("[3, 4]") && shape.contains("[4, 3]"),
        "{shape}"
    );
    assert!(shape.contains("another layout"), "{shape}");
    let shape = message(checkpoint.take("plain.f32", &[5]));
    assert!(shape.contains("another model"), "{shape}");

    let missing = message(checkpoint.take("image_encoder.plain.f32", &[3, 4]));
    assert!(missing.contains("has `plain.f32`"), "{missing}");
    let missing = message(checkpoint.take("f32", &[3, 4]));
    assert!(
        missing.contains("no tensor `f32`") && missing.contains("has `plain.f32`"),
        "{missing}"
    );
    let missing = message(checkpoint.take("mask_decoder.iou_token.weight", &[1, 256]));
    assert!(missing.contains("unread tensors include"), "{missing}");

    checkpoint.take("plain.f32", &[3, 4]).unwrap();
    let twice = message(checkpoint.take("plain.f32", &[3, 4]));
    assert!(twice.contains("read already"), "{twice}");

    match checkpoint.finish() {
        Err(WeightsError::Unexpected { count, examples }) => {
            assert_eq!(count, 10);
            assert_eq!(examples.len(), 5);
        }
        other => panic!("expected Unexpected, got {other:?}"),
    }
}

#[test]
fn wrong_files_say_what_they_look_like() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "empty"),
        (
            b"\n  <!DOCTYPE html><html><body>Sign in</body></html>",
            "HTML page",
        ),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "PNG image"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF\0", "JPEG image"),
        (b"version https://git-lfs.github.com/spec/v1\n", "Git LFS"),
        (b"\x1f\x8b\x08\0\0\0\0\0\0\x03", "gzip"),
        (
            b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09",
            "starts with bytes 00 01 02",
        ),
    ];
    for (bytes, expected) in cases {
        let err = Checkpoint::parse(bytes).expect_err("not weights");
        assert!(matches!(err, WeightsError::UnknownFormat(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(
            text.contains(".safetensors"),
            "the message says what is expected: {text}"
        );
    }
}

#[test]
fn the_first_64_bytes_tell_the_format_before_the_rest_is_read() {
    // The page checks a picked file's first 64 bytes before copying all of it.
    for (name, format) in [
        ("state_dict.pth", WeightsFormat::PyTorch),
        ("state_dict.safetensors", WeightsFormat::Safetensors),
    ] {
        let bytes = fixture(name);
        assert_eq!(format_of(&bytes[..64]).unwrap(), format, "{name}");
    }
    let text = format_of(&fixture("legacy.pth")[..64])
        .unwrap_err()
        .to_string();
    assert!(text.contains("legacy format"), "{text}");
    let text = format_of(b"<!DOCTYPE html><html><head><title>404</title>")
        .unwrap_err()
        .to_string();
    assert!(text.contains("HTML page"), "{text}");
}

#[test]
fn unsupported_pytorch_variants_are_refused_clearly() {
    let legacy = message(Checkpoint::parse(&fixture("legacy.pth")));
    assert!(
        legacy.contains("before 1.6") && legacy.contains("torch.save"),
        "{legacy}"
    );

    let module = message(Checkpoint::parse(&fixture("module.pth")));
    assert!(
        module.contains("torch.nn.modules.linear.Linear"),
        "{module}"
    );
    assert!(module.contains("state_dict()"), "{module}");

    let deflated = message(Checkpoint::parse(&fixture("deflated.pth")));
    assert!(
        deflated.contains("compressed") && deflated.contains("Deflated"),
        "{deflated}"
    );

    let big = message(Checkpoint::parse(&fixture("big_endian.pth")));
    assert!(big.contains("big-endian"), "{big}");
}

#[test]
fn a_cut_off_download_says_it_looks_truncated() {
    for name in ["state_dict.pth", "state_dict.safetensors"] {
        let bytes = fixture(name);
        let half = message(Checkpoint::parse(&bytes[..bytes.len() / 2]));
        assert!(half.contains("looks truncated"), "{name}: {half}");
        let last = message(Checkpoint::parse(&bytes[..bytes.len() - 1]));
        assert!(last.contains("looks truncated"), "{name}: {last}");
    }
}
