//! Bad and unusual images: converted correctly or refused with a clear error, never a panic.
//! Runs natively and in the browser (wasm-pack test).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use pcb_pros::image_input::{ImageInputError, decode};

const BOARD_PNG: &[u8] = include_bytes!("fixtures/images/deeppcb-12000001-normal.png");
const BOARD_JPEG: &[u8] = include_bytes!("../www/samples/deeppcb-12000001-normal.jpg");
const RGB16: &[u8] = include_bytes!("fixtures/images/rgb16.png");
const PALETTE: &[u8] = include_bytes!("fixtures/images/palette.png");
const GRAY_ALPHA: &[u8] = include_bytes!("fixtures/images/gray-alpha.png");
const CMYK: &[u8] = include_bytes!("fixtures/images/cmyk.jpg");
const HUGE: &[u8] = include_bytes!("fixtures/images/huge-header.png");
const ZERO: &[u8] = include_bytes!("fixtures/images/zero-width.png");

#[test]
fn grayscale_board_becomes_rgb() {
    let image = decode(BOARD_PNG).expect("a valid PNG");
    assert_eq!(image.dimensions(), (640, 640));
    assert!(image.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
    let jpeg = decode(BOARD_JPEG).expect("a valid JPEG");
    assert_eq!(jpeg.dimensions(), (640, 640));
}

#[test]
fn sixteen_bit_is_scaled_to_eight() {
    let image = decode(RGB16).expect("a valid 16-bit PNG");
    assert_eq!(image.dimensions(), (48, 32));
    for (x, y, p) in image.enumerate_pixels() {
        let v = ((y * 48 + x) % 256) as u8;
        assert_eq!(p.0, [v, 255 - v, v.wrapping_mul(7)], "at {x},{y}");
    }
}

#[test]
fn palette_is_expanded() {
    let image = decode(PALETTE).expect("a valid palette PNG");
    assert_eq!(image.get_pixel(2, 5).0, [255, 0, 0]);
    assert_eq!(image.get_pixel(15, 5).0, [0, 255, 0]);
    assert_eq!(image.get_pixel(25, 5).0, [0, 0, 255]);
    assert_eq!(image.get_pixel(35, 5).0, [250, 250, 250]);
}

#[test]
fn gray_alpha_drops_alpha() {
    let image = decode(GRAY_ALPHA).expect("a valid LA PNG");
    assert_eq!(image.get_pixel(10, 3).0, [50, 50, 50]);
    assert_eq!(image.get_pixel(49, 24).0, [245, 245, 245]);
}

#[test]
fn cmyk_jpeg_keeps_its_colour() {
    // C=0, M=255, Y=255, K=0 is red.
    let image = decode(CMYK).expect("a valid CMYK JPEG");
    let p = image.get_pixel(16, 16).0;
    assert!(p[0] > 200 && p[1] < 60 && p[2] < 60, "{p:?}");
}

#[test]
fn absurd_declared_size_is_refused_before_decoding() {
    match decode(HUGE) {
        Err(ImageInputError::TooLarge { width, height, .. }) => {
            assert_eq!((width, height), (50000, 50000));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn zero_size_and_empty_are_refused() {
    assert!(matches!(decode(&[]), Err(ImageInputError::Empty)));
    let err = decode(ZERO).expect_err("zero width");
    assert!(
        matches!(
            err,
            ImageInputError::ZeroSize { .. } | ImageInputError::Corrupt { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn other_files_are_named() {
    let err = decode(b"<!DOCTYPE html><html>404</html>").expect_err("not an image");
    assert!(err.to_string().contains("HTML"), "{err}");
    let err = decode(b"GIF89a....").expect_err("a GIF");
    assert!(err.to_string().contains("GIF"), "{err}");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for source in [BOARD_PNG, RGB16, PALETTE, CMYK] {
        let step = (source.len() / 97).max(1);
        for len in (0..source.len()).step_by(step) {
            // A truncated JPEG may still decode (decoders fill the rest); it must not panic.
            let result = decode(&source[..len]);
            // A PNG cut only inside its 12-byte IEND chunk has all its pixels.
            if source.starts_with(b"\x89PNG") && len < source.len() - 12 {
                assert!(result.is_err(), "PNG truncated to {len} bytes decoded");
            }
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let mut state = 0x1234_5678u32;
    for _ in 0..200 {
        let mut bytes = BOARD_PNG.to_vec();
        for _ in 0..8 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let i = state as usize % bytes.len();
            bytes[i] ^= (state >> 24) as u8 | 1;
        }
        let _ = decode(&bytes);
    }
}
