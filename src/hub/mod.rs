//! The Hugging Face Hub: its local cache layout, and (later) downloads into it.

pub mod cache;
