//! The streaming engine: tensors and tiles straight from the memory map, reduced in parallel.

pub mod moments;
