//! STUB (replaced by the families branch).
use crate::error::Result;
use std::path::Path;
/// stub
#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    /// stub
    pub tie_word_embeddings: Option<bool>,
}
/// stub
pub fn read(_path: &Path) -> Result<ModelConfig> {
    Ok(ModelConfig::default())
}
