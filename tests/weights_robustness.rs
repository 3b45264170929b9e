//! Broken and hostile inputs: every truncation and many random byte flips of small valid
//! files must give an error or valid tensors, never a panic or a hang.

use pcb_pros::weights::{Checkpoint, StoreDType, convert_to_safetensors, read_metadata};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/weights/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Parse, then take every tensor with its own shape; errors are fine, panics are not.
fn exercise(bytes: &[u8]) -> bool {
    let _ = read_metadata(bytes);
    let Ok(mut checkpoint) = Checkpoint::parse(bytes) else {
        return false;
    };
    let names: Vec<(String, Vec<usize>)> = checkpoint
        .names()
        .map(|n| {
            (
                n.to_string(),
                checkpoint.shape(n).unwrap_or_default().to_vec(),
            )
        })
        .collect();
    for (name, shape) in &names {
        if let Ok(values) = checkpoint.take(name, shape) {
            assert_eq!(values.len(), shape.iter().product::<usize>());
        }
    }
    let _ = checkpoint.finish();
    let _ = convert_to_safetensors(bytes, StoreDType::F16);
    true
}

#[test]
fn every_truncation_is_an_error() {
    for name in ["state_dict.pth", "state_dict.safetensors"] {
        let bytes = fixture(name);
        assert!(exercise(&bytes), "{name} itself parses");
        for len in 0..bytes.len() {
            assert!(
                Checkpoint::parse(&bytes[..len]).is_err(),
                "{name} cut to {len} of {} bytes parsed",
                bytes.len()
            );
            exercise(&bytes[..len]);
        }
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for name in ["state_dict.pth", "state_dict.safetensors", "module.pth"] {
        let original = fixture(name);
        let mut parsed = 0;
        for _ in 0..3000 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                // Half the flips set a random byte, half flip one bit.
                if rng.below(2) == 0 {
                    bytes[at] = rng.next() as u8;
                } else {
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
            if exercise(&bytes) {
                parsed += 1;
            }
        }
        // Most flips land in tensor data and still parse; the rest must have been errors.
        eprintln!("{name}: {parsed} of 3000 flipped files parsed");
    }
}

#[test]
fn random_changes_to_the_pickle_never_panic() {
    // Aim at the pickle program inside the archive: flips there reach the pickle reader
    // rather than the tensor data.
    let original = fixture("state_dict.pth");
    let start = original
        .windows(3)
        .position(|w| w == b"\x80\x02c")
        .expect("a pickle");
    let len = 1040;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut parsed = 0;
    for _ in 0..5000 {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(3) {
            let at = start + rng.below(len);
            bytes[at] = rng.next() as u8;
        }
        if exercise(&bytes) {
            parsed += 1;
        }
    }
    eprintln!("pickle flips: {parsed} of 5000 parsed");
}

#[test]
fn hostile_sizes_are_refused_before_allocating() {
    // A safetensors header claiming an enormous tensor.
    let header =
        br#"{"t":{"dtype":"F32","shape":[1000000000000,1000000000000],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 4]);
    assert!(Checkpoint::parse(&bytes).is_err());

    // A header length just under the limit, on a tiny file.
    let mut bytes = 99_000_000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let err = Checkpoint::parse(&bytes).unwrap_err().to_string();
    assert!(err.contains("looks truncated"), "{err}");

    // A header length over the limit is not taken for safetensors at all.
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert!(Checkpoint::parse(&bytes).is_err());
}
