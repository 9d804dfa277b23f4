//! Opening every shard of a model and checking them against each other and the index.

use std::collections::BTreeMap;

use crate::config::{self, ModelConfig};
use crate::error::{Error, Result};
use crate::format::{SafetensorsFile, TensorInfo};
use crate::model::ModelSource;

/// All shards of a model, mapped and validated, with its config.
#[derive(Debug)]
pub struct OpenModel {
    /// The shards, in the order of `ModelSource::shards`.
    pub files: Vec<SafetensorsFile>,
    /// `config.json`, when present.
    pub config: Option<ModelConfig>,
    /// Tensor name → (file index, tensor index in that file).
    index: BTreeMap<String, (usize, usize)>,
}

impl OpenModel {
    /// Maps every shard and checks that tensor names are unique and agree with the index.
    pub fn open(source: &ModelSource) -> Result<OpenModel> {
        let files = source
            .shards
            .iter()
            .map(|path| SafetensorsFile::open(path))
            .collect::<Result<Vec<_>>>()?;
        let mut index = BTreeMap::new();
        for (file_index, file) in files.iter().enumerate() {
            for (tensor_index, tensor) in file.tensors().iter().enumerate() {
                if let Some((other, _)) =
                    index.insert(tensor.name.clone(), (file_index, tensor_index))
                {
                    return Err(Error::input(format!(
                        "tensor {:?} is stored twice: in {} and in {}",
                        tensor.name,
                        files[other].path().display(),
                        file.path().display()
                    )));
                }
            }
        }
        if let Some(weight_map) = &source.weight_map {
            check_index(weight_map, &files, &index)?;
        }
        let config = source.config.as_deref().map(config::read).transpose()?;
        Ok(OpenModel {
            files,
            config,
            index,
        })
    }

    /// The file and entry of the tensor called `name`.
    pub fn find(&self, name: &str) -> Option<(&SafetensorsFile, &TensorInfo)> {
        let &(file, tensor) = self.index.get(name)?;
        Some((&self.files[file], &self.files[file].tensors()[tensor]))
    }
}

/// Every tensor the index names must be in the shard it names.
fn check_index(
    weight_map: &BTreeMap<String, String>,
    files: &[SafetensorsFile],
    index: &BTreeMap<String, (usize, usize)>,
) -> Result<()> {
    for (name, shard) in weight_map {
        let found = index.get(name).map(|&(file, _)| &files[file]);
        let in_named_shard =
            found.is_some_and(|file| file.path().file_name().is_some_and(|f| f == shard.as_str()));
        if !in_named_shard {
            let actual = found.map_or("no shard".to_string(), |file| {
                file.path().display().to_string()
            });
            return Err(Error::input(format!(
                "the index puts tensor {name:?} in {shard}, but it is in {actual}"
            )));
        }
    }
    Ok(())
}
