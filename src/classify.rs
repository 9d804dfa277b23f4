//! STUB (replaced by the families branch).
use crate::config::ModelConfig;
use std::cmp::Ordering;
/// stub
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockType {
    /// stub
    Other,
    /// stub
    Embedding,
}
impl BlockType {
    /// stub
    pub fn as_str(self) -> &'static str {
        "other"
    }
}
/// stub
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRole {
    /// stub
    pub block_type: BlockType,
    /// stub
    pub layer_index: Option<usize>,
    /// stub
    pub expert_index: Option<usize>,
    /// stub
    pub stacked_experts: bool,
}
/// stub
pub fn classify(_name: &str, _shape: &[usize], _config: Option<&ModelConfig>) -> TensorRole {
    TensorRole {
        block_type: BlockType::Other,
        layer_index: None,
        expert_index: None,
        stacked_experts: false,
    }
}
/// stub
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    a.cmp(b)
}
/// stub
pub fn scale_companion_of(name: &str) -> Option<String> {
    name.strip_suffix("_scale_inv").map(str::to_string)
}
