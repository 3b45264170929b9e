//! The synthesizer's settings, shared by the page, the CLI and the tests.

use serde::{Deserialize, Serialize};

/// A closed range `[min, max]` of values drawn uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub min: f32,
    pub max: f32,
}

impl Span {
    /// The range `[min, max]`.
    pub const fn new(min: f32, max: f32) -> Self {
        Self { min, max }
    }
}

/// Which luminance class of the board is its material (copper, tin, pads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Material {
    /// The class with fewer pixels is material: traces and pads cover less of a board than
    /// its substrate (DeepPCB's black copper on white, tin pads on a green solder mask).
    Auto,
    /// Material is brighter than the substrate (tin pads on green).
    Bright,
    /// Material is darker than the substrate.
    Dark,
}

/// How synthetic defects are drawn and pasted.
///
/// Lengths are fractions of the image's shorter side, so a defect keeps its look whatever the
/// resolution: at 640 px, a line width of `0.004..0.016` is 2.6 to 10 px.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SynthConfig {
    /// Defects per image, drawn uniformly in `[min, max]`.
    pub defects_min: u32,
    /// See `defects_min`.
    pub defects_max: u32,
    /// Relative weights of lines, dots and circles.
    pub kind_weights: [f32; 3],
    /// Probability that a defect adds material (short, spur, spurious copper, speck) rather
    /// than removing it (open, pin-hole, mouse-bite).
    pub extra_material: f32,
    /// Probability that a line is a polyline (2 to 4 segments) rather than straight.
    pub polyline: f32,
    /// Line length, fraction of the shorter side.
    pub line_length: Span,
    /// Line width, fraction of the shorter side.
    pub line_width: Span,
    /// Dot radius, fraction of the shorter side.
    pub dot_radius: Span,
    /// Circle radius, fraction of the shorter side.
    pub circle_radius: Span,
    /// Circle stroke width, fraction of the shorter side.
    pub circle_width: Span,
    /// Probability that a circle is an arc (part of a ring) rather than a full ring.
    pub arc: f32,
    /// Standard deviation of the Gaussian blur of each defect layer, fraction of the shorter side.
    pub blur_sigma: Span,
    /// Opacity with which each blurred defect is pasted (1 = opaque).
    pub opacity: Span,
    /// A pixel belongs to the mask when the defect changed one of its channels by at least this
    /// many 8-bit levels: the mask is exactly the set of pixels the defects visibly changed.
    pub mask_threshold: u8,
    /// Which luminance class is the board's material.
    pub material: Material,
    /// Optional square crop (pixels) taken at a random place before drawing; images smaller
    /// than the crop are used whole.
    pub crop: Option<u32>,
    /// Optional output size (pixels, square) the normal image is resized to before drawing.
    pub resize: Option<u32>,
}

impl Default for SynthConfig {
    /// The defaults follow the paper: lines, dots and circles equally often, both polarities,
    /// blurred and pasted with a random transparency.
    fn default() -> Self {
        Self {
            defects_min: 1,
            defects_max: 4,
            kind_weights: [1.0, 1.0, 1.0],
            extra_material: 0.5,
            polyline: 0.3,
            line_length: Span::new(0.04, 0.2),
            line_width: Span::new(0.004, 0.016),
            dot_radius: Span::new(0.004, 0.02),
            circle_radius: Span::new(0.01, 0.04),
            circle_width: Span::new(0.003, 0.01),
            arc: 0.4,
            blur_sigma: Span::new(0.0005, 0.0025),
            opacity: Span::new(0.6, 1.0),
            mask_threshold: 24,
            material: Material::Auto,
            crop: None,
            resize: None,
        }
    }
}

/// A setting the synthesizer cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    /// A setting is out of its range.
    #[error("synthesizer setting `{name}` is {value}; {expected}")]
    Setting {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The image is too small to draw on.
    #[error("the normal image is {width}x{height}; the synthesizer needs at least 16x16 pixels")]
    TooSmall { width: u32, height: u32 },
}

impl SynthConfig {
    /// Check every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |name, value: String, expected| {
            Err(SynthError::Setting {
                name,
                value,
                expected,
            })
        };
        if self.defects_max < self.defects_min || self.defects_max > 64 {
            return bad(
                "defects_max",
                self.defects_max.to_string(),
                "it must be at least defects_min and at most 64",
            );
        }
        if self
            .kind_weights
            .iter()
            .any(|w| !(w.is_finite() && *w >= 0.0))
            || self.kind_weights.iter().sum::<f32>() <= 0.0
        {
            return bad(
                "kind_weights",
                format!("{:?}", self.kind_weights),
                "weights must be finite, non-negative and not all zero",
            );
        }
        let probabilities = [
            ("extra_material", self.extra_material),
            ("polyline", self.polyline),
            ("arc", self.arc),
        ];
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return bad(name, p.to_string(), "a probability must lie in [0, 1]");
            }
        }
        let spans = [
            ("line_length", self.line_length, 1.0),
            ("line_width", self.line_width, 0.5),
            ("dot_radius", self.dot_radius, 0.5),
            ("circle_radius", self.circle_radius, 0.5),
            ("circle_width", self.circle_width, 0.5),
            ("blur_sigma", self.blur_sigma, 0.05),
            ("opacity", self.opacity, 1.0),
        ];
        for (name, span, max) in spans {
            if !(span.min.is_finite() && span.max.is_finite())
                || span.min < 0.0
                || span.min > span.max
                || span.max > max
            {
                return bad(
                    name,
                    format!("{}..{}", span.min, span.max),
                    "a range needs 0 <= min <= max and max within the documented bound",
                );
            }
        }
        if self.mask_threshold == 0 {
            return bad("mask_threshold", "0".into(), "it must be at least 1 level");
        }
        for (name, size) in [("crop", self.crop), ("resize", self.resize)] {
            if let Some(s) = size
                && !(16..=8192).contains(&s)
            {
                return bad(name, s.to_string(), "a size must lie in 16..=8192 pixels");
            }
        }
        Ok(())
    }
}
