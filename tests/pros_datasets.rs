//! The dataset readers on the real files in `../shared/data` (read-only).

// Native only: these read files (and run the binary), which the browser cannot.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use pcb_pros::datasets::{DatasetError, anomaly_folder, deeppcb};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// A fresh scratch folder under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("pros-datasets-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn put(&self, relative: &str, from: &Path) -> PathBuf {
        let to = self.0.join(relative);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap();
        to
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn deeppcb_lists_the_300_pairs_of_the_subset() {
    let pairs = deeppcb::list_pairs(&data().join("deeppcb")).unwrap();
    assert_eq!(pairs.len(), 300);

    let subset = std::fs::read_to_string(data().join("deeppcb/subset_test300.txt")).unwrap();
    let mut expected: Vec<String> = subset
        .lines()
        .filter_map(|l| l.split('/').nth(2)?.split('.').next().map(str::to_owned))
        .collect();
    expected.sort();
    let ids: Vec<String> = pairs.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids, expected);
}

#[test]
fn deeppcb_masks_lie_in_boxes_and_find_the_defects() {
    let pairs = deeppcb::list_pairs(&data().join("deeppcb")).unwrap();
    let mut boxes_with_pixels = 0;
    let mut boxes = 0;
    // Every 30th pair: ten pairs across the groups.
    for pair in pairs.iter().step_by(30) {
        let sample = deeppcb::load_pair(pair).unwrap();
        assert_eq!(sample.test.dimensions(), (640, 640));
        assert_eq!(sample.mask.dimensions(), (640, 640));
        assert!((2..=13).contains(&sample.boxes.len()), "{}", pair.id);

        for (x, y, p) in sample.mask.enumerate_pixels() {
            if p[0] == 0 {
                continue;
            }
            assert_eq!(p[0], 255);
            let inside = sample
                .boxes
                .iter()
                .any(|b| (b.x1..b.x2).contains(&x) && (b.y1..b.y2).contains(&y));
            assert!(
                inside,
                "{}: mask pixel ({x},{y}) outside every box",
                pair.id
            );
        }
        for b in &sample.boxes {
            boxes += 1;
            let any =
                (b.y1..b.y2).any(|y| (b.x1..b.x2).any(|x| sample.mask.get_pixel(x, y)[0] == 255));
            boxes_with_pixels += usize::from(any);
        }
        let as_sample = sample.into_sample();
        assert_eq!(as_sample.image.dimensions(), (640, 640));
    }
    // Artificial defects flip pixels, so nearly every box must hold some.
    assert!(
        boxes_with_pixels * 10 >= boxes * 9,
        "{boxes_with_pixels} of {boxes}"
    );
}

#[test]
fn deeppcb_missing_template_is_a_layout_error() {
    let scratch = Scratch::new("deeppcb-missing");
    let source = data().join("deeppcb/PCBData/group12000");
    scratch.put(
        "PCBData/group12000/12000/12000001_test.jpg",
        &source.join("12000/12000001_test.jpg"),
    );
    scratch.put(
        "PCBData/group12000/12000_not/12000001.txt",
        &source.join("12000_not/12000001.txt"),
    );
    let error = deeppcb::list_pairs(&scratch.0).unwrap_err();
    assert!(matches!(error, DatasetError::Layout { .. }), "{error}");
    assert!(error.to_string().contains("12000001_temp.jpg"), "{error}");

    let empty = Scratch::new("deeppcb-empty");
    assert!(deeppcb::list_pairs(&empty.0).is_err());
}

/// An MVTec-style folder built from the two real VisA samples, plus a normal image.
fn visa_folder(name: &str, mask_name: &str) -> Scratch {
    let scratch = Scratch::new(name);
    let visa = data().join("visa_pcb_samples");
    scratch.put("test/bad/000.JPG", &visa.join("pcb1/defective.jpg"));
    scratch.put(
        &format!("ground_truth/bad/{mask_name}"),
        &visa.join("pcb1/ground_truth.jpg"),
    );
    scratch.put("test/good/001.JPG", &visa.join("pcb2/defective.jpg"));
    scratch
}

#[test]
fn anomaly_folder_reads_real_visa_images_and_masks() {
    for mask_name in ["000_mask.jpg", "000.jpg"] {
        let scratch = visa_folder("visa", mask_name);
        let items = anomaly_folder::list_items(&scratch.0).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].name, "bad/000");
        assert!(items[1].mask.is_none());

        let bad = anomaly_folder::load_item(&items[0]).unwrap();
        assert_eq!(bad.image.dimensions(), (1404, 1070));
        let defect = bad.mask.pixels().filter(|p| p[0] == 255).count();
        let other = bad
            .mask
            .pixels()
            .filter(|p| p[0] != 255 && p[0] != 0)
            .count();
        assert_eq!(other, 0);
        assert!(defect > 100 && defect < 1404 * 1070 / 4, "{defect}");

        let good = anomaly_folder::load_item(&items[1]).unwrap();
        assert!(good.mask.pixels().all(|p| p[0] == 0));
    }
}

#[test]
fn anomaly_folder_errors_are_clear() {
    // A defect image without a mask.
    let scratch = Scratch::new("visa-nomask");
    scratch.put(
        "test/bad/000.JPG",
        &data().join("visa_pcb_samples/pcb1/defective.jpg"),
    );
    let error = anomaly_folder::list_items(&scratch.0).unwrap_err();
    assert!(matches!(error, DatasetError::MissingMask { .. }), "{error}");

    // A mask of another size than its image.
    let scratch = Scratch::new("visa-size");
    scratch.put(
        "test/bad/000.JPG",
        &data().join("visa_pcb_samples/pcb1/defective.jpg"),
    );
    let small = scratch.0.join("ground_truth/bad/000_mask.png");
    std::fs::create_dir_all(small.parent().unwrap()).unwrap();
    image::GrayImage::new(64, 64).save(&small).unwrap();
    let items = anomaly_folder::list_items(&scratch.0).unwrap();
    let error = anomaly_folder::load_item(&items[0]).unwrap_err();
    assert!(
        matches!(error, DatasetError::SizeMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("64x64"), "{error}");

    // Not a dataset at all.
    let scratch = Scratch::new("visa-none");
    assert!(matches!(
        anomaly_folder::list_items(&scratch.0),
        Err(DatasetError::Layout { .. })
    ));
}
