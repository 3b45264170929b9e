//! Resampling of position tables for input sizes other than the one the weights were
//! trained at, exactly as PyTorch's `F.interpolate` does (so that our model at 256 equals
//! a reference model at 256 whose weights were resampled in Python).
//!
//! This runs once, on the host, at load time: plain Rust over `f32` slices.

/// The source coordinate of output index `dst` for `align_corners=false`.
fn source_index(scale: f64, dst: usize) -> f64 {
    scale * (dst as f64 + 0.5) - 0.5
}

/// Bicubic resampling of a `[in_h, in_w, channels]` grid (channels last) to
/// `[out_h, out_w, channels]`, as `F.interpolate(mode="bicubic", align_corners=False,
/// antialias=False)`: Keys' kernel with `a = -0.75`, borders replicated.
pub fn bicubic_hwc(
    values: &[f32],
    (in_h, in_w): (usize, usize),
    channels: usize,
    (out_h, out_w): (usize, usize),
) -> Vec<f32> {
    assert_eq!(
        values.len(),
        in_h * in_w * channels,
        "bicubic_hwc: wrong input length"
    );
    let taps = |in_size: usize, out_size: usize, dst: usize| -> ([usize; 4], [f64; 4]) {
        let real = source_index(in_size as f64 / out_size as f64, dst);
        let base = real.floor();
        let t = real - base;
        let base = base as i64;
        let index =
            core::array::from_fn(|k| (base - 1 + k as i64).clamp(0, in_size as i64 - 1) as usize);
        (index, cubic_weights(t))
    };
    let mut out = vec![0f32; out_h * out_w * channels];
    for oy in 0..out_h {
        let (ys, wy) = taps(in_h, out_h, oy);
        for ox in 0..out_w {
            let (xs, wx) = taps(in_w, out_w, ox);
            let o = (oy * out_w + ox) * channels;
            for c in 0..channels {
                let mut acc = 0f64;
                for (y, wy) in ys.iter().zip(wy) {
                    let mut row = 0f64;
                    for (x, wx) in xs.iter().zip(wx) {
                        row += wx * values[(y * in_w + x) * channels + c] as f64;
                    }
                    acc += wy * row;
                }
                out[o + c] = acc as f32;
            }
        }
    }
    out
}

/// The four weights of Keys' cubic convolution (`a = -0.75`) at fraction `t`.
fn cubic_weights(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// Linear resampling of the rows of a `[in_len, channels]` table to `[out_len, channels]`,
/// as `F.interpolate(mode="linear", align_corners=False)` along the rows.
pub fn linear_rows(values: &[f32], in_len: usize, channels: usize, out_len: usize) -> Vec<f32> {
    assert_eq!(
        values.len(),
        in_len * channels,
        "linear_rows: wrong input length"
    );
    let scale = in_len as f64 / out_len as f64;
    let mut out = vec![0f32; out_len * channels];
    for o in 0..out_len {
        let real = source_index(scale, o).max(0.0);
        let i0 = real.floor() as usize;
        let i1 = if i0 + 1 < in_len { i0 + 1 } else { i0 };
        let l1 = real - i0 as f64;
        let l0 = 1.0 - l1;
        for c in 0..channels {
            let v = l0 * values[i0 * channels + c] as f64 + l1 * values[i1 * channels + c] as f64;
            out[o * channels + c] = v as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6,
                "element {i}: got {g}, torch printed {w}"
            );
        }
    }

    const GRID: [f32; 16] = [
        0.0, 1.0, 4.0, 9.0, 2.0, -1.0, 3.0, 0.5, 7.0, 2.5, -2.0, 1.0, 0.25, 6.0, 3.0, -4.0,
    ];

    #[test]
    fn bicubic_down_matches_torch() {
        // torch: F.interpolate(grid.view(1, 1, 4, 4), size=(3, 3), mode="bicubic",
        //        align_corners=False, antialias=False)
        let got = bicubic_hwc(&GRID, (4, 4), 1, (3, 3));
        assert_close(&got, &TORCH_BICUBIC_3X3);
    }

    #[test]
    fn bicubic_up_matches_torch() {
        // torch: the same grid to size=(5, 6)
        let got = bicubic_hwc(&GRID, (4, 4), 1, (5, 6));
        assert_close(&got, &TORCH_BICUBIC_5X6);
    }

    #[test]
    fn bicubic_keeps_channels_apart() {
        // Two channels, the second the negation of the first.
        let two: Vec<f32> = GRID.iter().flat_map(|&v| [v, -v]).collect();
        let got = bicubic_hwc(&two, (4, 4), 2, (3, 3));
        let first: Vec<f32> = got.iter().step_by(2).copied().collect();
        let second: Vec<f32> = got.iter().skip(1).step_by(2).map(|v| -v).collect();
        assert_close(&first, &TORCH_BICUBIC_3X3);
        assert_close(&second, &TORCH_BICUBIC_3X3);
    }

    #[test]
    fn linear_down_and_up_match_torch() {
        // torch: F.interpolate(rows.t().unsqueeze(0), size=n, mode="linear",
        //        align_corners=False)[0].t() for rows = GRID.view(8, 2)
        assert_close(&linear_rows(&GRID, 8, 2, 3), &TORCH_LINEAR_3);
        assert_close(&linear_rows(&GRID, 8, 2, 11), &TORCH_LINEAR_11);
    }

    #[test]
    fn same_size_is_identity() {
        assert_close(&bicubic_hwc(&GRID, (4, 4), 1, (4, 4)), &GRID);
        assert_close(&linear_rows(&GRID, 8, 2, 8), &GRID);
    }

    // Printed by torch 2.x with the calls quoted in each test.
    const TORCH_BICUBIC_3X3: [f32; 9] = [
        0.2079598605632782,
        1.9812287092208862,
        7.279144287109375,
        4.595541477203369,
        -0.436279296875,
        0.3472042381763458,
        1.9743075370788574,
        4.788485050201416,
        -2.5471577644348145,
    ];
    const TORCH_BICUBIC_5X6: [f32; 30] = [
        -0.2293993979692459,
        0.22444535791873932,
        1.5565199851989746,
        3.1869149208068848,
        7.064118385314941,
        9.98995590209961,
        1.0399384498596191,
        -0.40526047348976135,
        -0.29093194007873535,
        3.219895124435425,
        3.7600104808807373,
        2.728364944458008,
        5.761801242828369,
        2.80517578125,
        -0.25812795758247375,
        -0.1502358615398407,
        0.15185546875,
        0.46392130851745605,
        5.824740886688232,
        5.235683441162109,
        2.971198081970215,
        -0.5381970405578613,
        -1.2185579538345337,
        -0.2690085470676422,
        -0.7132474184036255,
        3.298988103866577,
        6.480406761169434,
        4.492237567901611,
        -0.7727069854736328,
        -4.9641218185424805,
    ];
    const TORCH_LINEAR_3: [f32; 6] = [
        3.3333334922790527,
        7.6666669845581055,
        5.0,
        1.5,
        0.70833420753479,
        4.333330154418945,
    ];
    const TORCH_LINEAR_11: [f32; 22] = [
        0.0,
        1.0,
        2.3636364936828613,
        5.727272987365723,
        3.3636362552642822,
        5.818181037902832,
        2.045454502105713,
        -0.9318182468414307,
        2.7727274894714355,
        0.15909123420715332,
        5.0,
        1.5,
        4.954543113708496,
        2.159090518951416,
        -1.590909481048584,
        1.0681817531585693,
        -0.465908408164978,
        4.409092426300049,
        1.375000238418579,
        1.9090900421142578,
        3.0,
        -4.0,
    ];
}
