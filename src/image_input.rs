//! Decoding user images safely.
