//! aib: look inside large language models by their weights alone.
//!
//! The library is cut into modules with one job each, in layers that only look down:
//! [`formats`] reads the files (safetensors, GGUF, their element types); [`model`] finds a model's
//! files and names its tensors; [`matrix`] sees a tensor as rows; the analyses ([`engine`] for
//! statistics, [`spectral`], [`cluster`], [`embed`], [`layers`]) compute from those rows; the
//! outputs ([`output`] tables and documents, [`plot`], [`report`]) write what they found; [`hub`]
//! downloads models. None of them knows about the command line, which lives in [`cli`].

pub mod cli;
pub mod cluster;
pub mod diff;
pub mod embed;
pub mod engine;
pub mod error;
pub mod formats;
pub mod hub;
pub mod layers;
pub mod matrix;
pub mod model;
pub mod observe;
pub mod output;
pub mod plot;
pub mod random;
pub mod report;
pub mod spectral;
pub mod sync;
