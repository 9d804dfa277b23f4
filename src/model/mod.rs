//! A model: located (a folder, one `.safetensors` file, an index file, or a Hub id in the local
//! cache), every shard mapped and checked against the others and the index, with the files beside
//! the weights that the commands use (`config.json`, `tokenizer.json` or `vocab.txt`).

mod locate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::classify;
use crate::config::{self, ModelConfig};
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::format::{SafetensorsFile, TensorInfo};
use crate::matrix::view::{BlockScale, MatrixView};
pub use locate::INDEX_FILE;

/// An open model: its identity, its mapped shards and the files beside them.
#[derive(Debug)]
pub struct Model {
    /// What the user passed, verbatim (the seed's `model_path` column).
    pub model_path: String,
    /// A Hub-style id: the repo id for cached models, else the folder's last two path components.
    pub model_id: String,
    /// The commit of a Hub snapshot, or the revision the user named; `None` when unknown.
    pub revision: Option<String>,
    /// The folder holding the weights.
    pub folder: PathBuf,
    /// The shards, mapped and validated, sorted by file name.
    pub files: Vec<SafetensorsFile>,
    /// `config.json`, when present.
    pub config: Option<ModelConfig>,
    /// The vocabulary file beside the weights: `tokenizer.json`, else `vocab.txt`.
    pub tokenizer: Option<PathBuf>,
    /// Tensor name → (file index, tensor index in that file).
    index: BTreeMap<String, (usize, usize)>,
}

/// How a stored tensor is to be read as a matrix.
#[derive(Debug, Clone)]
pub struct TensorMatrix<'a> {
    /// The rows × cols view of its data, with its dequantisation scale when it has one.
    pub view: MatrixView<'a>,
    /// Remarks on how the values were obtained (fp8 dequantisation, or why it was not done).
    pub note: Option<String>,
}

impl Model {
    /// Locates the model named by `spec` (`revision` picks a Hub snapshot), maps every shard and
    /// checks that tensor names are unique and agree with the index.
    pub fn open(spec: &str, revision: Option<&str>) -> Result<Model> {
        let location = locate::locate(spec, revision)?;
        let files = location
            .shards
            .iter()
            .map(|path| SafetensorsFile::open(path))
            .collect::<Result<Vec<_>>>()?;
        let index = index_tensors(&files)?;
        if let Some(weight_map) = &location.weight_map {
            check_index(weight_map, &files, &index)?;
        }
        let beside = |name: &str| Some(location.folder.join(name)).filter(|path| path.is_file());
        let config = beside("config.json")
            .as_deref()
            .map(config::read)
            .transpose()?;
        let tokenizer = beside("tokenizer.json").or_else(|| beside("vocab.txt"));
        Ok(Model {
            model_path: spec.to_string(),
            model_id: location.model_id,
            revision: location.revision,
            folder: location.folder,
            files,
            config,
            tokenizer,
            index,
        })
    }

    /// The file and entry of the tensor called `name`.
    pub fn find(&self, name: &str) -> Option<(&SafetensorsFile, &TensorInfo)> {
        let &(file, tensor) = self.index.get(name)?;
        Some((&self.files[file], &self.files[file].tensors()[tensor]))
    }

    /// `tensor` of `file` as a `rows × cols` matrix (see [`matrix_shape`]), dequantised when it is
    /// an fp8 weight with a `weight_scale_inv` companion whose shape fits a block size.
    pub fn matrix<'a>(
        &'a self,
        file: &'a SafetensorsFile,
        tensor: &TensorInfo,
    ) -> TensorMatrix<'a> {
        let (rows, cols) = matrix_shape(&tensor.shape);
        let mut view = MatrixView::new(file.map(), tensor.bytes.clone(), tensor.dtype, rows, cols);
        let is_fp8 = matches!(tensor.dtype, Dtype::F8E4M3 | Dtype::F8E5M2);
        if !is_fp8 || tensor.shape.len() != 2 {
            return TensorMatrix { view, note: None };
        }
        let scale_name = classify::scale_name_of(&tensor.name);
        let Some((scale_file, scale)) = self.find(&scale_name) else {
            return TensorMatrix { view, note: None };
        };
        let note = match BlockScale::fit(scale_file.map(), scale, rows, cols) {
            Some(block_scale) => {
                let note = format!(
                    "dequantised: {} × {scale_name} ({}×{} blocks)",
                    tensor.dtype, block_scale.block_rows, block_scale.block_cols
                );
                view.scale = Some(block_scale);
                note
            }
            None => format!(
                "raw {} values: {scale_name} has shape {:?}, which fits no block size",
                tensor.dtype, scale.shape
            ),
        };
        TensorMatrix {
            view,
            note: Some(note),
        }
    }
}

/// rows × cols as the README defines them: `[n]` → n × 1, N-D → shape[0] × the rest, scalar → 1 × 1.
pub fn matrix_shape(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, 1),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}

/// Tensor name → (file, entry); a name stored twice is an error.
fn index_tensors(files: &[SafetensorsFile]) -> Result<BTreeMap<String, (usize, usize)>> {
    let mut index = BTreeMap::new();
    for (file_index, file) in files.iter().enumerate() {
        for (tensor_index, tensor) in file.tensors().iter().enumerate() {
            if let Some((other, _)) = index.insert(tensor.name.clone(), (file_index, tensor_index))
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
    Ok(index)
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
