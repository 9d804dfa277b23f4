//! Safetensors files built in memory, for tests. Shared by the integration tests (through
//! `tests/common`) and by the unit tests of `src/format.rs`, which include this file by path.

/// A safetensors image: the 8-byte little-endian length of `header`, then `header` as given
/// (valid or not: tests build broken files too), then `data`.
pub fn safetensors_image(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}
