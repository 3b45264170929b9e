//! The defect synthesizer.
