//! A model: located (a folder, one `.safetensors` file, an index file, a `.gguf` file or split,
//! or a Hub id in the local cache), every weight file mapped (or, for a run of one part, a missing
//! shard's header alone read) and checked against the others and the index, with what the
//! commands use beside the weights: `config.json` and `tokenizer.json` or `vocab.txt` for
//! safetensors; for GGUF, the same facts from the file's metadata (`{arch}.*` keys and
//! `tokenizer.ggml.tokens`).

pub mod classify;
pub mod config;
mod locate;
pub mod parts;
pub mod plan;
pub mod vocab;
mod weights;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::formats::dtype::Dtype;
use crate::formats::gguf::split;
pub use crate::formats::safetensors::HEADER_ALONE_SUFFIX;
use crate::formats::safetensors::{SafetensorsFile, SafetensorsHeader, TensorInfo};
use crate::formats::storage::StorageType;
use crate::hub::blob::with_suffix;
use crate::matrix::view::{BlockScale, MatrixView};
use crate::model::vocab::Vocabulary;
use config::ModelConfig;
pub use locate::INDEX_FILE;
pub use weights::{StoredTensor, WeightFile, WeightFormat};

/// The GGUF name of the output head; a GGUF model without it ties the head to `token_embd`.
pub const GGUF_OUTPUT_HEAD: &str = "output.weight";

/// An open model: its identity, its mapped shards and the files beside them.
#[derive(Debug)]
pub struct Model {
    /// What the user passed, verbatim (the original Python toolkit's `model_path` column).
    pub model_path: String,
    /// A Hub-style id: the repo id for cached models, else the folder's last two path components.
    pub model_id: String,
    /// The commit of a Hub snapshot, or the revision the user named; `None` when unknown.
    pub revision: Option<String>,
    /// The folder holding the weights.
    pub folder: PathBuf,
    /// The format of the weight files.
    pub format: WeightFormat,
    /// The weight files, mapped and validated: safetensors shards sorted by file name (a missing
    /// one as its header alone when opened with [`Shards::HeadersSuffice`]), or the parts of a
    /// GGUF model in order.
    pub files: Vec<WeightFile>,
    /// The architecture: `config.json` when present; for GGUF, from the metadata
    /// ([`config::from_gguf`]).
    pub config: Option<ModelConfig>,
    /// The vocabulary file beside the weights: `tokenizer.json`, else `vocab.txt` (safetensors).
    pub tokenizer: Option<PathBuf>,
    /// A GGUF model's vocabulary, `tokenizer.ggml.tokens`: token id → token text.
    pub gguf_tokens: Option<Vec<String>>,
    /// Tensor name → (file index, tensor index in that file).
    index: BTreeMap<String, (usize, usize)>,
}

/// How a stored tensor is to be read as a matrix.
#[derive(Debug, Clone)]
pub struct TensorMatrix<'a> {
    /// The rows × cols view of its data, with its dequantisation scale when it has one.
    pub view: MatrixView<'a>,
    /// Remarks on how the values were obtained (fp8 or GGUF dequantisation, or why it was not
    /// done).
    pub note: Option<String>,
    /// Stored bits per value, a block scale's share included (fp8 with a `weight_scale_inv`).
    pub bits_per_weight: f64,
    /// The name of the weight file holding its block scale, when it has one (reading the matrix
    /// reads that file too).
    pub scale_file: Option<String>,
}

/// Which of the shards an index names opening a model requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shards {
    /// Every shard: a whole run reads every tensor.
    All,
    /// A missing shard may stand as its header alone (`NAME.safetensors.header` beside the
    /// index, see [`HEADER_ALONE_SUFFIX`]): enough to plan parts, and to run a part that does not
    /// read it. Its tensors hold no data: a caller must check with [`Model::check_present`] that
    /// what it reads is there.
    HeadersSuffice,
}

impl Model {
    /// Locates the model named by `spec` (`revision` picks a Hub snapshot), maps every shard and
    /// checks that tensor names are unique and agree with the index.
    pub fn open(spec: &str, revision: Option<&str>) -> Result<Model> {
        Model::open_with(spec, revision, Shards::All)
    }

    /// [`Model::open`], requiring of the shards the index names what `shards` says: a missing
    /// shard is an input error naming it, unless `shards` lets its header stand in for it.
    pub fn open_with(spec: &str, revision: Option<&str>, shards: Shards) -> Result<Model> {
        let location = locate::locate(spec, revision)?;
        let missing = headers_of_missing(&location, shards)?;
        let mut files = match location.format {
            WeightFormat::Safetensors => location
                .shards
                .iter()
                .map(|path| SafetensorsFile::open(path).map(WeightFile::from_safetensors))
                .collect::<Result<Vec<_>>>()?,
            // The split's parts are checked against each other's `split.*` keys.
            WeightFormat::Gguf => split::open_split(&location.shards[0])?
                .into_iter()
                .map(WeightFile::from_gguf)
                .collect(),
        };
        if !missing.is_empty() {
            files.extend(missing);
            files.sort_by(|a, b| a.path().cmp(b.path()));
        }
        let index = index_tensors(&files)?;
        if let Some(weight_map) = &location.weight_map {
            check_index(weight_map, &files, &index)?;
        }
        let beside = |name: &str| Some(location.folder.join(name)).filter(|path| path.is_file());
        let (config, tokenizer, gguf_tokens) = match files[0].gguf() {
            None => {
                let config = beside("config.json")
                    .as_deref()
                    .map(config::read)
                    .transpose()?;
                (
                    config,
                    beside("tokenizer.json").or_else(|| beside("vocab.txt")),
                    None,
                )
            }
            // gguf-split keeps every metadata key but `split.*` in the first part.
            Some(first) => {
                let metadata = first.metadata();
                let tied = !index.contains_key(GGUF_OUTPUT_HEAD);
                let tokens = metadata
                    .get_string_array("tokenizer.ggml.tokens")
                    .map(|tokens| tokens.into_iter().map(str::to_string).collect());
                (Some(config::from_gguf(metadata, tied)), None, tokens)
            }
        };
        Ok(Model {
            model_path: spec.to_string(),
            model_id: location.model_id,
            revision: location.revision,
            folder: location.folder,
            format: location.format,
            files,
            config,
            tokenizer,
            gguf_tokens,
            index,
        })
    }

    /// The role of `tensor` (block type, layer, expert) by the naming scheme of the model's
    /// format: Hugging Face names for safetensors, llama.cpp's for GGUF.
    pub fn classify(&self, tensor: &StoredTensor) -> classify::TensorRole {
        let (name, shape, config) = (&tensor.name, &tensor.shape, self.config.as_ref());
        match self.format {
            WeightFormat::Safetensors => classify::classify(name, shape, config),
            WeightFormat::Gguf => classify::classify_gguf(name, shape, config),
        }
    }

    /// The model's vocabulary: its `tokenizer.json` or `vocab.txt`, else a GGUF file's tokens;
    /// `None` when it has none.
    pub fn vocabulary(&self) -> Result<Option<Vocabulary>> {
        if let Some(path) = &self.tokenizer {
            return Vocabulary::open(path).map(Some);
        }
        Ok(self
            .gguf_tokens
            .as_deref()
            .map(Vocabulary::from_gguf_tokens))
    }

    /// Every file the model was read from: the weight files (a missing shard's header file and
    /// the place of the shard itself), and beside them the index, `config.json` and the
    /// vocabulary file when present. No output may replace one of them.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let mut inputs: Vec<PathBuf> = self
            .files
            .iter()
            .flat_map(|file| [file.path(), file.read_path()])
            .map(Path::to_path_buf)
            .collect();
        inputs.dedup();
        for name in [INDEX_FILE, "config.json"] {
            inputs.push(self.folder.join(name));
        }
        inputs.extend(self.tokenizer.clone());
        inputs
    }

    /// An input error naming the first of `file_names` (weight files of this model, by name) that
    /// is missing, its header alone at hand: what `reader` (e.g. `part 2/3`) would read cannot be
    /// read.
    pub fn check_present<'n>(
        &self,
        file_names: impl IntoIterator<Item = &'n str>,
        reader: &str,
    ) -> Result<()> {
        let missing: BTreeSet<String> = self
            .files
            .iter()
            .filter(|file| file.is_missing())
            .map(WeightFile::file_name)
            .collect();
        match file_names.into_iter().find(|name| missing.contains(*name)) {
            Some(name) => Err(Error::input(format!(
                "{}: {reader} reads this shard, which is missing (only its header is here)",
                self.folder.join(name).display()
            ))),
            None => Ok(()),
        }
    }

    /// The file and entry of the tensor called `name`.
    pub fn find(&self, name: &str) -> Option<(&WeightFile, &StoredTensor)> {
        let &(file, tensor) = self.index.get(name)?;
        Some((&self.files[file], &self.files[file].tensors()[tensor]))
    }

    /// `tensor` of `file` as a `rows × cols` matrix (see [`matrix_shape`]): dequantised when it is
    /// block-quantized (GGUF), or an fp8 weight with a `weight_scale_inv` companion whose shape
    /// fits a block size. An input error when aib cannot decode its type (the grid-based IQ
    /// types, ternary and fp4 GGUF types): no number is better than a wrong one.
    pub fn matrix<'a>(
        &'a self,
        file: &'a WeightFile,
        tensor: &StoredTensor,
    ) -> Result<TensorMatrix<'a>> {
        let (rows, cols) = matrix_shape(&tensor.shape);
        let mut view =
            MatrixView::new(file.map(), tensor.bytes.clone(), tensor.storage, rows, cols);
        let plain = TensorMatrix {
            view: view.clone(),
            note: None,
            bits_per_weight: tensor.storage.bits_per_weight(),
            scale_file: None,
        };
        let dtype = match tensor.storage {
            StorageType::Quantized(ggml_type) if !ggml_type.can_dequantize() => {
                return Err(Error::input(format!(
                    "{}: tensor {} is {ggml_type}, which aib cannot dequantize yet",
                    file.path().display(),
                    tensor.name
                )));
            }
            StorageType::Quantized(ggml_type) => {
                return Ok(TensorMatrix {
                    note: Some(format!("dequantized from {ggml_type}")),
                    ..plain
                });
            }
            StorageType::Dtype(dtype) => dtype,
        };
        let is_fp8 = matches!(dtype, Dtype::F8E4M3 | Dtype::F8E5M2);
        if !is_fp8 || tensor.shape.len() != 2 {
            return Ok(plain);
        }
        let scale_name = classify::scale_name_of(&tensor.name);
        let Some((scale_file, scale)) = self.find_safetensors(&scale_name) else {
            return Ok(plain);
        };
        let (note, bits_per_weight) = match BlockScale::fit(scale_file.map(), scale, rows, cols) {
            Some(block_scale) => {
                let note = format!(
                    "dequantised: {dtype} × {scale_name} ({}×{} blocks)",
                    block_scale.block_rows, block_scale.block_cols
                );
                view.scale = Some(block_scale);
                // Each value also carries its share of its block's scale.
                let scale_bits = (scale.numel() * scale.dtype.size() * 8) as f64;
                let share = scale_bits / (rows * cols).max(1) as f64;
                (note, plain.bits_per_weight + share)
            }
            None => (
                format!(
                    "raw {dtype} values: {scale_name} has shape {:?}, which fits no block size",
                    scale.shape
                ),
                plain.bits_per_weight,
            ),
        };
        let scale_file = view.scale.is_some().then(|| scale_file.file_name());
        Ok(TensorMatrix {
            view,
            note: Some(note),
            bits_per_weight,
            scale_file,
        })
    }

    /// The safetensors shard and entry of the tensor called `name`, when it is in one.
    fn find_safetensors(&self, name: &str) -> Option<(&WeightFile, &TensorInfo)> {
        let &(file, tensor) = self.index.get(name)?;
        let file = &self.files[file];
        Some((file, &file.safetensors_entries()?[tensor]))
    }
}

/// The missing shards of `location` (none, mostly) as their headers alone, when `shards` allows
/// and every one has its header file; else an input error naming the missing shards.
fn headers_of_missing(location: &locate::Location, shards: Shards) -> Result<Vec<WeightFile>> {
    if location.missing.is_empty() {
        return Ok(Vec::new());
    }
    let index = location
        .index
        .as_deref()
        .unwrap_or(location.folder.as_path());
    let names = |paths: &[&PathBuf]| -> String {
        let names: Vec<String> = paths
            .iter()
            .map(|path| {
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.join(", ")
    };
    let missing: Vec<&PathBuf> = location.missing.iter().collect();
    if shards == Shards::All {
        return Err(Error::input(format!(
            "{}: {} shard(s) listed in the index are missing: {}",
            index.display(),
            missing.len(),
            names(&missing)
        )));
    }
    let without_header: Vec<&PathBuf> = missing
        .iter()
        .copied()
        .filter(|shard| !with_suffix(shard, HEADER_ALONE_SUFFIX).is_file())
        .collect();
    if !without_header.is_empty() {
        return Err(Error::input(format!(
            "{}: {} shard(s) listed in the index are missing, without their header (NAME{HEADER_ALONE_SUFFIX}, \
             which `aib fetch --headers` writes) either: {}",
            index.display(),
            without_header.len(),
            names(&without_header)
        )));
    }
    missing
        .into_iter()
        .map(|shard| {
            let header = SafetensorsHeader::open(&with_suffix(shard, HEADER_ALONE_SUFFIX))?;
            WeightFile::from_header_alone(shard.clone(), header)
        })
        .collect()
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
fn index_tensors(files: &[WeightFile]) -> Result<BTreeMap<String, (usize, usize)>> {
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
    files: &[WeightFile],
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
