//! The synthesizer on a real board: each defect kind and polarity, the mask's definition,
//! bounds, and determinism across platforms. Runs natively and in the browser.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use image::RgbImage;
use pcb_pros::image_input::decode;
use pcb_pros::synth::materials::{Materials, luminance};
use pcb_pros::synth::{DefectKind, Material, Polarity, SynthConfig, SynthError, synthesize};

const BOARD_PNG: &[u8] = include_bytes!("fixtures/images/deeppcb-12000001-normal.png");
const COLOUR_JPEG: &[u8] = include_bytes!("../www/samples/pku-01-normal.jpg");

/// The fingerprint of the pair made from the DeepPCB board with the default settings and seed
/// 42. The same value is expected natively and in wasm: pairs are byte-identical everywhere.
const FINGERPRINT_SEED_42: &str =
    "7f15bd2f8e4bf58d736bb1c8cce25a8ae139f63f48ae96d5a9238e4530e65963";

fn board() -> RgbImage {
    decode(BOARD_PNG).expect("fixture decodes")
}

fn only(kind: DefectKind, extra: bool) -> SynthConfig {
    let mut config = SynthConfig {
        defects_min: 3,
        defects_max: 3,
        extra_material: if extra { 1.0 } else { 0.0 },
        ..SynthConfig::default()
    };
    config.kind_weights = match kind {
        DefectKind::Line => [1.0, 0.0, 0.0],
        DefectKind::Dot => [0.0, 1.0, 0.0],
        DefectKind::Circle => [0.0, 0.0, 1.0],
    };
    config
}

#[test]
fn mask_is_exactly_what_changed_for_every_kind_and_polarity() {
    let normal = board();
    for kind in [DefectKind::Line, DefectKind::Dot, DefectKind::Circle] {
        for extra in [true, false] {
            let config = only(kind, extra);
            for seed in 0..4 {
                let pair = synthesize(&normal, &config, seed).expect("valid settings");
                assert_eq!(pair.image.dimensions(), normal.dimensions());
                assert_eq!(pair.mask.dimensions(), normal.dimensions());
                assert!(
                    !pair.defects.is_empty(),
                    "{kind:?} extra={extra} seed {seed}"
                );
                let mut brighter = 0i64;
                let mut masked = 0u32;
                for (x, y, m) in pair.mask.enumerate_pixels() {
                    let a = normal.get_pixel(x, y).0;
                    let b = pair.image.get_pixel(x, y).0;
                    let changed = (0..3).any(|c| a[c].abs_diff(b[c]) >= config.mask_threshold);
                    assert_eq!(m.0[0] == 255, changed, "mask at {x},{y}");
                    assert!(m.0[0] == 0 || m.0[0] == 255);
                    if changed {
                        masked += 1;
                        brighter += (i64::from(luminance(b)) - i64::from(luminance(a))).signum();
                        let inside = pair.defects.iter().any(|d| {
                            x >= d.bbox[0] && y >= d.bbox[1] && x < d.bbox[2] && y < d.bbox[3]
                        });
                        assert!(inside, "masked pixel {x},{y} outside every defect box");
                    }
                }
                assert!(masked > 0);
                // DeepPCB's material is black copper on white (the minority class): extra
                // material darkens, missing material brightens.
                let materials = Materials::of(&normal, Material::Auto);
                assert!(!materials.material_is_bright());
                if !extra {
                    assert_eq!(brighter, i64::from(masked), "{kind:?} seed {seed}");
                } else {
                    assert_eq!(brighter, -i64::from(masked), "{kind:?} seed {seed}");
                }
                for d in &pair.defects {
                    assert_eq!(d.kind, kind);
                    let polarity = if extra {
                        Polarity::Extra
                    } else {
                        Polarity::Missing
                    };
                    assert_eq!(d.polarity, polarity);
                    assert!(d.bbox[0] < d.bbox[2] && d.bbox[2] <= 640);
                    assert!(d.bbox[1] < d.bbox[3] && d.bbox[3] <= 640);
                    assert!(d.area > 0);
                    assert!(d.area <= (d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1]));
                }
            }
        }
    }
}

#[test]
fn colour_board_defects_use_the_boards_own_colours() {
    let normal = decode(COLOUR_JPEG).expect("sample decodes");
    let config = SynthConfig {
        crop: Some(256),
        ..SynthConfig::default()
    };
    let pair = synthesize(&normal, &config, 3).expect("valid settings");
    assert_eq!(pair.image.dimensions(), (256, 256));
    for d in &pair.defects {
        let found = pair.normal.pixels().any(|p| p.0 == d.colour);
        assert!(found, "colour {:?} is not from the board", d.colour);
    }
}

#[test]
fn resize_gives_the_requested_size() {
    let config = SynthConfig {
        resize: Some(256),
        ..SynthConfig::default()
    };
    let pair = synthesize(&board(), &config, 5).expect("valid settings");
    assert_eq!(pair.image.dimensions(), (256, 256));
    assert_eq!(pair.normal.dimensions(), (256, 256));
}

#[test]
fn same_seed_same_pair_other_seed_other_pair() {
    let normal = board();
    let config = SynthConfig::default();
    let a = synthesize(&normal, &config, 42).expect("valid settings");
    let b = synthesize(&normal, &config, 42).expect("valid settings");
    let c = synthesize(&normal, &config, 43).expect("valid settings");
    assert_eq!(a.image.as_raw(), b.image.as_raw());
    assert_eq!(a.mask.as_raw(), b.mask.as_raw());
    assert_eq!(a.defects, b.defects);
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn fingerprint_is_the_same_on_every_platform() {
    let pair = synthesize(&board(), &SynthConfig::default(), 42).expect("valid settings");
    assert_eq!(pair.fingerprint(), FINGERPRINT_SEED_42);
}

#[test]
fn bad_settings_and_tiny_images_are_refused() {
    let config = SynthConfig {
        defects_min: 5,
        defects_max: 2,
        ..SynthConfig::default()
    };
    let err = synthesize(&board(), &config, 0).expect_err("min above max");
    assert!(err.to_string().contains("defects_max"), "{err}");
    let config = SynthConfig {
        opacity: pcb_pros::synth::Span::new(0.5, 2.0),
        ..SynthConfig::default()
    };
    assert!(synthesize(&board(), &config, 0).is_err());
    let tiny = RgbImage::new(8, 40);
    assert!(matches!(
        synthesize(&tiny, &SynthConfig::default(), 0),
        Err(SynthError::TooSmall { .. })
    ));
}

#[test]
fn settings_round_trip_through_json_with_defaults_for_missing_fields() {
    let config: SynthConfig =
        serde_json::from_str(r#"{"defects_max": 7}"#).expect("partial settings parse");
    assert_eq!(config.defects_max, 7);
    assert_eq!(config.opacity, SynthConfig::default().opacity);
    let text = serde_json::to_string(&config).expect("serializes");
    let back: SynthConfig = serde_json::from_str(&text).expect("parses");
    assert_eq!(back, config);
}
