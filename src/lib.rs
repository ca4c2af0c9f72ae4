//! metalab: a meta-learning workbench on dfdx.
//!
//! Data flows one way: experiment file → engine → typed messages → (TUI | headless | tests).
//! The engine knows nothing of the UI.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod algo;
pub mod bench;
pub mod device;
pub mod engine;
pub mod experiment;
pub mod export;
pub mod gpu;
pub mod metrics;
pub mod model;
pub mod palette;
pub mod pool;
pub mod runs;
pub mod saved;
pub mod signals;
pub mod stats;
pub mod sweep;
pub mod tasks;
pub mod transfer;
pub mod tui;
