//! The file formats aib reads: safetensors, GGUF, and how their values are stored and decoded.

pub mod dtype;
pub mod gguf;
pub mod safetensors;
pub mod storage;
