//! Layers dfdx 0.13 lacks on stable Rust, as custom ops on its tape.
