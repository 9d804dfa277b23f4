//! The Hugging Face Hub: its local cache layout, and downloads into it.

pub mod api;
pub mod blob;
pub mod cache;
pub mod chunked;
pub mod fetch;
pub mod glob;
pub mod http;
