//! Planning: every tensor of a model becomes one or more 2-D units to reduce (one per expert for
//! stacked expert tensors), each with its classification and, for fp8, its dequantisation scale.

use crate::classify::{self, TensorRole};
use crate::dtype::Dtype;
use crate::format::{SafetensorsFile, TensorInfo};

use super::open::OpenModel;
use super::view::{BlockScale, MatrixView};

/// DeepSeek-V3's fp8 block size, used when the scale's shape agrees with it.
const DEFAULT_SCALE_BLOCK: usize = 128;

/// One row of the output: a tensor, or one expert of a stacked expert tensor.
#[derive(Debug, Clone)]
pub struct Unit<'a> {
    /// The tensor this unit belongs to.
    pub tensor: &'a TensorInfo,
    /// The file holding it.
    pub file: &'a SafetensorsFile,
    /// Its classification; `expert_index` is set per expert for stacked tensors.
    pub role: TensorRole,
    /// The rows × cols view of its data.
    pub view: MatrixView<'a>,
    /// True for tensors of two or more dimensions, whose spectrum is meaningful.
    pub is_matrix: bool,
    /// Remarks for the `note` column.
    pub notes: Vec<String>,
}

/// The units of every tensor of `model`, in file and offset order.
pub fn plan_units(model: &OpenModel) -> Vec<Unit<'_>> {
    let tied = model
        .config
        .as_ref()
        .and_then(|config| config.tie_word_embeddings)
        .unwrap_or(false);
    let mut units = Vec::new();
    for file in &model.files {
        for tensor in file.tensors() {
            let role = classify::classify(&tensor.name, &tensor.shape, model.config.as_ref());
            let mut notes = Vec::new();
            if tied && role.block_type == classify::BlockType::Embedding {
                notes.push("tied: also the output head (tie_word_embeddings)".to_string());
            }
            if role.stacked_experts && tensor.shape.len() == 3 {
                units.extend(expert_units(file, tensor, &role, &notes));
                continue;
            }
            let (rows, cols) = matrix_shape(&tensor.shape);
            let mut view = MatrixView {
                file,
                bytes: tensor.bytes.clone(),
                dtype: tensor.dtype,
                rows,
                cols,
                scale: None,
            };
            if let Some((scale, note)) = dequantisation(model, tensor, rows, cols) {
                view.scale = scale;
                notes.push(note);
            }
            units.push(Unit {
                tensor,
                file,
                role,
                view,
                is_matrix: tensor.shape.len() >= 2,
                notes,
            });
        }
    }
    units
}

/// rows × cols as the SPEC defines them: `[n]` → n × 1, N-D → shape[0] × the rest, scalar → 1 × 1.
pub fn matrix_shape(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, 1),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}

fn expert_units<'a>(
    file: &'a SafetensorsFile,
    tensor: &'a TensorInfo,
    role: &TensorRole,
    notes: &[String],
) -> Vec<Unit<'a>> {
    let (experts, rows, cols) = (tensor.shape[0], tensor.shape[1], tensor.shape[2]);
    let expert_bytes = rows * cols * tensor.dtype.size();
    (0..experts)
        .map(|expert| {
            let start = tensor.bytes.start + expert * expert_bytes;
            let mut role = *role;
            role.expert_index = Some(expert);
            Unit {
                tensor,
                file,
                role,
                view: MatrixView {
                    file,
                    bytes: start..start + expert_bytes,
                    dtype: tensor.dtype,
                    rows,
                    cols,
                    scale: None,
                },
                is_matrix: true,
                notes: notes.to_vec(),
            }
        })
        .collect()
}

/// For an fp8 weight with a `weight_scale_inv` companion: the block scale and a note saying so.
/// A companion whose shape fits no block size leaves the weight raw, and the note says that too.
fn dequantisation<'a>(
    model: &'a OpenModel,
    tensor: &TensorInfo,
    rows: usize,
    cols: usize,
) -> Option<(Option<BlockScale<'a>>, String)> {
    if !matches!(tensor.dtype, Dtype::F8E4M3 | Dtype::F8E5M2) || tensor.shape.len() != 2 {
        return None;
    }
    let scale_name = classify::scale_name_of(&tensor.name);
    let (scale_file, scale) = model.find(&scale_name)?;
    let fits = |dim: usize, blocks: usize| -> Option<usize> {
        if blocks == 0 {
            None
        } else if dim.div_ceil(DEFAULT_SCALE_BLOCK) == blocks {
            Some(DEFAULT_SCALE_BLOCK)
        } else {
            Some(dim.div_ceil(blocks)).filter(|block| dim.div_ceil(*block) == blocks)
        }
    };
    let is_float = matches!(
        scale.dtype,
        Dtype::F32 | Dtype::BF16 | Dtype::F16 | Dtype::F64 | Dtype::F8E8M0
    );
    let blocks = match scale.shape.as_slice() {
        [scale_rows, scale_cols] if is_float => {
            fits(rows, *scale_rows).zip(fits(cols, *scale_cols))
        }
        _ => None,
    };
    match blocks {
        Some((block_rows, block_cols)) => Some((
            Some(BlockScale {
                file: scale_file,
                bytes: scale.bytes.clone(),
                dtype: scale.dtype,
                scale_cols: scale.shape[1],
                block_rows,
                block_cols,
            }),
            format!(
                "dequantised: {} × {scale_name} ({block_rows}×{block_cols} blocks)",
                tensor.dtype
            ),
        )),
        None => Some((
            None,
            format!(
                "raw {} values: {scale_name} has shape {:?}, which fits no block size",
                tensor.dtype, scale.shape
            ),
        )),
    }
}
