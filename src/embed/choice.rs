//! Which matrix `aib embed` clusters: the one named, else the model's one token embedding; and
//! whether the output head beside it is the same matrix (tied) or its own.

use crate::error::{Error, Result};
use crate::formats::storage::StorageType;
use crate::matrix::view::MatrixView;
use crate::model::Model;
use crate::model::classify::BlockType;

/// The matrix being clustered, and what is known about the output head beside it.
pub struct ChosenMatrix<'a> {
    /// The tensor's name.
    pub name: String,
    /// How its values are stored.
    pub storage: StorageType,
    /// The matrix.
    pub view: MatrixView<'a>,
    /// Whether the output head is the same matrix as the input embedding, in words.
    pub head: String,
    /// The one output head's name, when it is stored apart from the embedding (untied).
    pub separate_head: Option<String>,
    /// Notes of the view (fp8 dequantisation).
    pub note: Option<String>,
}

/// The tensor named `wanted`, else the one token embedding; an error lists the candidates when
/// there is none or several.
pub fn choose_matrix<'a>(model: &'a Model, wanted: Option<&str>) -> Result<ChosenMatrix<'a>> {
    let of_type = |block_type: BlockType| {
        model
            .files
            .iter()
            .flat_map(|file| file.tensors().iter().map(move |tensor| (file, tensor)))
            .filter(move |(_, tensor)| {
                model.classify(tensor).block_type == block_type && tensor.shape.len() == 2
            })
            .collect::<Vec<_>>()
    };
    let embeddings = of_type(BlockType::Embedding);
    let heads = of_type(BlockType::Output);
    let (file, tensor) = match wanted {
        Some(name) => {
            let (file, tensor) = model.find(name).ok_or_else(|| {
                Error::usage(format!(
                    "--tensor {name:?}: no such tensor in {}",
                    model.model_id
                ))
            })?;
            if tensor.shape.len() != 2 {
                return Err(Error::usage(format!(
                    "--tensor {name:?} has shape {:?}: k-means needs a 2-D matrix (one row per token)",
                    tensor.shape
                )));
            }
            (file, tensor)
        }
        None => match embeddings.as_slice() {
            [one] => *one,
            [] => {
                let candidates: Vec<&str> = model
                    .files
                    .iter()
                    .flat_map(|file| file.tensors())
                    .filter(|tensor| tensor.shape.len() == 2)
                    .map(|tensor| tensor.name.as_str())
                    .collect();
                return Err(Error::input(format!(
                    "{}: no token embedding found; pick a 2-D tensor with --tensor: {}",
                    model.model_id,
                    candidates.join(", ")
                )));
            }
            several => {
                let names: Vec<&str> = several.iter().map(|(_, t)| t.name.as_str()).collect();
                return Err(Error::usage(format!(
                    "{}: several token embeddings; pick one with --tensor: {}",
                    model.model_id,
                    names.join(", ")
                )));
            }
        },
    };
    let tied_in_config = model
        .config
        .as_ref()
        .and_then(|config| config.tie_word_embeddings);
    let mut separate_head = None;
    let head = match (heads.as_slice(), embeddings.as_slice()) {
        ([], _) if tied_in_config == Some(false) => {
            "no output head stored, though config.json says tie_word_embeddings = false".to_string()
        }
        ([], _) => "tied: no output head is stored; the embedding serves as the head".to_string(),
        ([(head_file, head)], [(embed_file, embedding)]) => {
            let same = head.shape == embedding.shape
                && head.storage == embedding.storage
                && head_file.map()[head.bytes.clone()] == embed_file.map()[embedding.bytes.clone()];
            if same {
                format!(
                    "tied: {} holds the same bytes as {}",
                    head.name, embedding.name
                )
            } else {
                separate_head = Some(head.name.clone());
                format!("separate: {} differs from {}", head.name, embedding.name)
            }
        }
        (heads, _) => {
            let names: Vec<&str> = heads.iter().map(|(_, t)| t.name.as_str()).collect();
            format!("separate: {}", names.join(", "))
        }
    };
    let matrix = model.matrix(file, tensor)?;
    Ok(ChosenMatrix {
        name: tensor.name.clone(),
        storage: tensor.storage,
        view: matrix.view,
        head,
        separate_head,
        note: matrix.note,
    })
}
