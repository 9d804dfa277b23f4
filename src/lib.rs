//! aib: look inside large language models by their weights alone.
//!
//! The library is cut into modules with one job each; none of them knows about the command line,
//! which lives in [`cli`].

pub mod classify;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod diff;
pub mod dtype;
pub mod embed;
pub mod engine;
pub mod error;
pub mod format;
pub mod gguf;
pub mod hub;
pub mod layers;
pub mod matrix;
pub mod model;
pub mod observe;
pub mod output;
pub mod plot;
pub mod report;
pub mod spectral;
pub mod stats_table;
pub mod storage;
pub mod sync;
pub mod timestamp;
pub mod vocab;
