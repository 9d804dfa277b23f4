//! Which matrix `aib embed` clusters: the one named, else the model's one token embedding;
//! whether the output head beside it is the same matrix (tied) or its own; and which matrix the
//! under-trained score compares.

use std::path::Path;

use super::EmbedAnalysis;
use super::under_trained::{UnderTrainedInputs, find_under_trained};
use crate::error::{Error, Result};
use crate::formats::storage::StorageType;
use crate::matrix::MatrixRows;
use crate::matrix::view::MatrixView;
use crate::model::Model;
use crate::model::classify::BlockType;
use crate::model::vocab::Vocabulary;
use crate::observe::Observer;

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

/// The matrix whose rows the under-trained score compares ([`super::under_trained`]), with its
/// name: the output head when it is stored apart, else the chosen matrix itself when it is the
/// token embedding (tied) or the head. When the chosen matrix is neither, the reason instead.
pub fn scored_head<'a>(
    model: &'a Model,
    chosen: &ChosenMatrix<'a>,
) -> Result<std::result::Result<(String, MatrixView<'a>), String>> {
    let holds_tokens = model.find(&chosen.name).is_some_and(|(_, tensor)| {
        matches!(
            model.classify(tensor).block_type,
            BlockType::Embedding | BlockType::Output
        )
    });
    if !holds_tokens {
        return Ok(Err(format!(
            "{} is neither the token embedding nor the output head",
            chosen.name
        )));
    }
    match &chosen.separate_head {
        Some(head) if *head != chosen.name => {
            let (file, tensor) = model
                .find(head)
                .ok_or_else(|| Error::input(format!("{head}: no such tensor")))?;
            Ok(Ok((head.clone(), model.matrix(file, tensor)?.view)))
        }
        _ => Ok(Ok((chosen.name.clone(), chosen.view.clone()))),
    }
}

/// The model's `tokenizer.json`, when its vocabulary comes from one (not `vocab.txt` or GGUF).
pub fn tokenizer_json(model: &Model) -> Option<&Path> {
    model
        .tokenizer
        .as_deref()
        .filter(|path| path.file_name().is_some_and(|name| name != "vocab.txt"))
}

/// Runs [`find_under_trained`] on `analysis` of the `chosen` matrix of `model`: the score on its
/// [`scored_head`], the categories from its vocabulary and `tokenizer.json`.
pub fn find_under_trained_in_model(
    analysis: &mut EmbedAnalysis,
    model: &Model,
    chosen: &ChosenMatrix,
    vocabulary: Option<&Vocabulary>,
    observer: &dyn Observer,
) -> Result<()> {
    let head = scored_head(model, chosen)?;
    let inputs = UnderTrainedInputs {
        head: match &head {
            Ok((name, view)) => Ok((name.clone(), view as &dyn MatrixRows)),
            Err(why) => Err(why.clone()),
        },
        vocabulary,
        tokenizer: tokenizer_json(model),
    };
    find_under_trained(analysis, &inputs, observer)
}
