//! Planning: every tensor of a model becomes one or more 2-D units to reduce (one per expert for
//! stacked expert tensors), each with its classification and, for fp8 and GGUF quantized types,
//! how it is dequantised.

use crate::error::Result;
use crate::matrix::view::MatrixView;
use crate::model::classify::{self, TensorRole};
use crate::model::{Model, StoredTensor, WeightFile, WeightFormat};

/// One row of the output: a tensor, or one expert of a stacked expert tensor.
#[derive(Debug, Clone)]
pub struct Unit<'a> {
    /// The tensor this unit belongs to.
    pub tensor: &'a StoredTensor,
    /// The file holding it.
    pub file: &'a WeightFile,
    /// Its classification; `expert_index` is set per expert for stacked tensors.
    pub role: TensorRole,
    /// The rows × cols view of its data.
    pub view: MatrixView<'a>,
    /// Stored bits per value (with a block scale's share).
    pub bits_per_weight: f64,
    /// True for tensors of two or more dimensions, whose spectrum is meaningful.
    pub is_matrix: bool,
    /// Remarks for the `note` column.
    pub notes: Vec<String>,
    /// The name of the weight file holding its block scale, when it has one.
    pub scale_file: Option<String>,
}

impl Unit<'_> {
    /// The names of the weight files reading it reads: its own, and its block scale's.
    pub fn file_names(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.file.file_name()).chain(self.scale_file.clone())
    }
}

/// The units of every tensor of `model`, in file and offset order; an input error names the
/// first tensor whose type aib cannot decode.
pub fn plan_units(model: &Model) -> Result<Vec<Unit<'_>>> {
    let tied = model
        .config
        .as_ref()
        .and_then(|config| config.tie_word_embeddings)
        .unwrap_or(false);
    let tie_reason = match model.format {
        WeightFormat::Safetensors => "tie_word_embeddings",
        WeightFormat::Gguf => "no output.weight",
    };
    let mut units = Vec::new();
    for file in &model.files {
        for tensor in file.tensors() {
            let role = model.classify(tensor);
            let mut notes = Vec::new();
            if tied && role.block_type == classify::BlockType::Embedding {
                notes.push(format!("tied: also the output head ({tie_reason})"));
            }
            let matrix = model.matrix(file, tensor)?;
            notes.extend(matrix.note);
            let scale_file = matrix.scale_file;
            let unit = Unit {
                tensor,
                file,
                role,
                view: matrix.view,
                bits_per_weight: matrix.bits_per_weight,
                is_matrix: tensor.shape.len() >= 2,
                notes,
                scale_file,
            };
            if role.stacked_experts && tensor.shape.len() == 3 {
                units.extend(expert_units(&unit));
            } else {
                units.push(unit);
            }
        }
    }
    Ok(units)
}

/// One unit per expert of a stacked `[E, rows, cols]` tensor.
fn expert_units<'a>(stacked: &Unit<'a>) -> impl Iterator<Item = Unit<'a>> {
    let (experts, rows, cols) = (
        stacked.tensor.shape[0],
        stacked.tensor.shape[1],
        stacked.tensor.shape[2],
    );
    (0..experts).map(move |expert| {
        let mut unit = stacked.clone();
        unit.role.expert_index = Some(expert);
        unit.view = stacked.view.stacked(expert, rows, cols);
        unit
    })
}
