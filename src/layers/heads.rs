//! Attention heads inside the projection matrices, and each head's Frobenius norm and σ_max.
//!
//! head_dim is `head_dim` from config.json, else hidden / heads. Where each head lives:
//! - q `[heads·hd, in]`: row block h; k and v `[kv_heads·hd, in]`: row block g per key-value head
//!   (grouped-query attention has fewer); o `[out, heads·hd]`: column block h — except GPT-2's
//!   Conv1D `attn.c_proj`, stored `[heads·hd, out]`, where it is row block h.
//! - GPT-2 `c_attn` `[H, 3H]` (Conv1D, stored `[in, out]`): columns q | k | v, column block h of each.
//! - GPT-NeoX `query_key_value` `[3·heads·hd, H]`: rows interleaved per head, head h owns rows
//!   `[3h·hd, 3(h+1)·hd)`: its q, k, v of hd rows each.
//! - Phi-3 `qkv_proj` (and `qkv`, `wqkv`, `W_pack`) `[(heads + 2·kv_heads)·hd, H]`: all q rows, then
//!   k rows, then v rows.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::matrix::tiles::for_each_row_tile;
use crate::matrix::{MatrixRows, SubMatrix};
use crate::model::classify::BlockType;
use crate::model::config::ModelConfig;
use crate::spectral;

/// Bytes of f32 decoded per row tile when a head block is read.
const TILE_BYTES: usize = 4 << 20;

/// The head geometry of a model, from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLayout {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (equal to `heads` without grouped-query attention).
    pub kv_heads: usize,
    /// The width of one head.
    pub head_dim: usize,
}

impl HeadLayout {
    /// The layout `config` states: heads, kv heads (default: heads), `head_dim` (default:
    /// hidden / heads); an explanation when the config does not say enough.
    pub fn from_config(config: &ModelConfig) -> Result<HeadLayout> {
        let heads = config
            .num_attention_heads
            .filter(|&heads| heads > 0)
            .ok_or_else(|| Error::input("config.json states no num_attention_heads"))?;
        let kv_heads = config.num_key_value_heads.unwrap_or(heads);
        if kv_heads == 0 || heads % kv_heads != 0 {
            return Err(Error::input(format!(
                "{heads} attention heads cannot share {kv_heads} key/value heads"
            )));
        }
        let head_dim = match (config.head_dim, config.hidden_size) {
            (Some(head_dim), _) => head_dim,
            (None, Some(hidden)) if hidden % heads == 0 => hidden / heads,
            (None, Some(hidden)) => {
                return Err(Error::input(format!(
                    "hidden size {hidden} is not a multiple of {heads} heads"
                )));
            }
            (None, None) => {
                return Err(Error::input(
                    "config.json states neither head_dim nor hidden_size",
                ));
            }
        };
        if head_dim == 0 {
            return Err(Error::input("head_dim is 0"));
        }
        Ok(HeadLayout {
            heads,
            kv_heads,
            head_dim,
        })
    }
}

/// Which projection of a head a block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadPart {
    /// Queries.
    Query,
    /// Keys (per key-value head).
    Key,
    /// Values (per key-value head).
    Value,
    /// The output projection's share of the head.
    Output,
}

/// One head's block inside a stored matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadBlock {
    /// The attention head (for `Key` and `Value`: the key-value head).
    pub head: usize,
    /// Queries, keys, values or output.
    pub part: HeadPart,
    /// The rows of the stored matrix.
    pub rows: Range<usize>,
    /// The columns of the stored matrix.
    pub cols: Range<usize>,
}

/// The head blocks of the tensor `name` of `block_type` and stored `shape`, or why it cannot be
/// split (not an attention projection, a layout aib does not know, a shape the layout contradicts).
pub fn split_heads(
    layout: &HeadLayout,
    block_type: BlockType,
    name: &str,
    shape: &[usize],
) -> Result<Vec<HeadBlock>> {
    let &[rows, cols] = shape else {
        return Err(Error::input(format!(
            "{name}: shape {shape:?} is not a matrix"
        )));
    };
    let hd = layout.head_dim;
    let (q_width, kv_width) = (layout.heads * hd, layout.kv_heads * hd);
    let module = name
        .strip_suffix(".weight")
        .unwrap_or(name)
        .rsplit('.')
        .next()
        .unwrap_or(name);
    let expect = |dimension: &str, actual: usize, expected: usize| {
        if actual == expected {
            Ok(())
        } else {
            Err(Error::input(format!(
                "{name}: {dimension} {actual} where the config's heads need {expected}"
            )))
        }
    };
    let row_blocks = |count: usize, first_row: usize, part: HeadPart| {
        (0..count).map(move |head| HeadBlock {
            head,
            part,
            rows: first_row + head * hd..first_row + (head + 1) * hd,
            cols: 0..cols,
        })
    };
    let col_blocks = |count: usize, first_col: usize, part: HeadPart| {
        (0..count).map(move |head| HeadBlock {
            head,
            part,
            rows: 0..rows,
            cols: first_col + head * hd..first_col + (head + 1) * hd,
        })
    };
    match block_type {
        BlockType::QProj => {
            expect("rows", rows, q_width)?;
            Ok(row_blocks(layout.heads, 0, HeadPart::Query).collect())
        }
        BlockType::KProj | BlockType::VProj => {
            expect("rows", rows, kv_width)?;
            let part = if block_type == BlockType::KProj {
                HeadPart::Key
            } else {
                HeadPart::Value
            };
            Ok(row_blocks(layout.kv_heads, 0, part).collect())
        }
        BlockType::OProj if module == "c_proj" => {
            expect("rows of the Conv1D output projection", rows, q_width)?;
            Ok(row_blocks(layout.heads, 0, HeadPart::Output).collect())
        }
        BlockType::OProj => {
            expect("columns", cols, q_width)?;
            Ok(col_blocks(layout.heads, 0, HeadPart::Output).collect())
        }
        BlockType::QkvProj => match module {
            "c_attn" => {
                expect("columns", cols, q_width + 2 * kv_width)?;
                Ok(col_blocks(layout.heads, 0, HeadPart::Query)
                    .chain(col_blocks(layout.kv_heads, q_width, HeadPart::Key))
                    .chain(col_blocks(
                        layout.kv_heads,
                        q_width + kv_width,
                        HeadPart::Value,
                    ))
                    .collect())
            }
            "query_key_value" => {
                if layout.kv_heads != layout.heads {
                    return Err(Error::input(format!(
                        "{name}: NeoX's interleaved layout with {} key/value heads for {} heads",
                        layout.kv_heads, layout.heads
                    )));
                }
                expect("rows", rows, 3 * q_width)?;
                let parts = [HeadPart::Query, HeadPart::Key, HeadPart::Value];
                Ok((0..layout.heads)
                    .flat_map(|head| {
                        parts.into_iter().enumerate().map(move |(k, part)| {
                            let first = (3 * head + k) * hd;
                            HeadBlock {
                                head,
                                part,
                                rows: first..first + hd,
                                cols: 0..cols,
                            }
                        })
                    })
                    .collect())
            }
            "qkv_proj" | "qkv" | "wqkv" | "W_pack" => {
                expect("rows", rows, q_width + 2 * kv_width)?;
                Ok(row_blocks(layout.heads, 0, HeadPart::Query)
                    .chain(row_blocks(layout.kv_heads, q_width, HeadPart::Key))
                    .chain(row_blocks(
                        layout.kv_heads,
                        q_width + kv_width,
                        HeadPart::Value,
                    ))
                    .collect())
            }
            other => Err(Error::input(format!(
                "{name}: the fused projection {other} has no known head layout"
            ))),
        },
        other => Err(Error::input(format!(
            "{name}: a {} matrix has no attention heads",
            other.as_str()
        ))),
    }
}

/// A head's block measured: its Frobenius norm and largest singular value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadMetrics {
    /// ‖B‖_F, summed in f64.
    pub fro_norm: f64,
    /// σ_max(B), the square root of the largest eigenvalue of the block's f64 Gram matrix on its
    /// smaller side (a head block is at most a few hundred wide): within ~side · ε(f64) of σ_max
    /// relatively, at a fraction of the cost of a dense SVD of the block.
    pub sigma_max: f64,
}

/// The metrics of `block` of `matrix`, streamed in row tiles: one pass for the norm, one that
/// forms the Gram matrix.
pub fn head_metrics(matrix: &dyn MatrixRows, block: &HeadBlock) -> Result<HeadMetrics> {
    let view = SubMatrix::new(matrix, block.rows.clone(), block.cols.clone())?;
    let mut sum_of_squares = 0.0_f64;
    for_each_row_tile(&view, TILE_BYTES, |_, tile| {
        for row in 0..tile.nrows() {
            for col in 0..tile.ncols() {
                let value = f64::from(tile[(row, col)]);
                sum_of_squares += value * value;
            }
        }
    });
    let largest = spectral::eigenvalues(&view)?.first().copied();
    Ok(HeadMetrics {
        fro_norm: sum_of_squares.sqrt(),
        sigma_max: largest.map_or(0.0, f64::sqrt),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::matrix::DenseRows;

    fn layout(heads: usize, kv_heads: usize, head_dim: usize) -> HeadLayout {
        HeadLayout {
            heads,
            kv_heads,
            head_dim,
        }
    }

    /// A matrix whose every entry in `block` of head h is (h + 1) · (1 + part index), so that the
    /// block's norm is known: |value| · √(rows · cols) and its σ_max equals it (rank one).
    fn planted(rows: usize, cols: usize, blocks: &[HeadBlock]) -> DenseRows {
        let mut values = vec![0.0_f32; rows * cols];
        for block in blocks {
            let value = planted_value(block);
            for row in block.rows.clone() {
                for col in block.cols.clone() {
                    assert_eq!(values[row * cols + col], 0.0, "blocks overlap");
                    values[row * cols + col] = value as f32;
                }
            }
        }
        assert!(
            values.iter().all(|&v| v != 0.0),
            "blocks do not cover the matrix"
        );
        DenseRows::new(rows, cols, values).unwrap()
    }

    fn planted_value(block: &HeadBlock) -> f64 {
        let part = match block.part {
            HeadPart::Query => 1.0,
            HeadPart::Key => 2.0,
            HeadPart::Value => 3.0,
            HeadPart::Output => 4.0,
        };
        (block.head + 1) as f64 * part
    }

    /// Splits, checks the blocks tile the matrix, and checks every head's planted norm.
    fn assert_heads(
        layout: &HeadLayout,
        block_type: BlockType,
        name: &str,
        shape: [usize; 2],
        expected_blocks: usize,
    ) -> Vec<HeadBlock> {
        let blocks = split_heads(layout, block_type, name, &shape).unwrap();
        assert_eq!(blocks.len(), expected_blocks, "{name}");
        let matrix = planted(shape[0], shape[1], &blocks);
        for block in &blocks {
            let metrics = head_metrics(&matrix, block).unwrap();
            let size = (block.rows.len() * block.cols.len()) as f64;
            let expected = planted_value(block) * size.sqrt();
            assert!(
                (metrics.fro_norm - expected).abs() < 1e-12 * expected,
                "{block:?}"
            );
            assert!(
                (metrics.sigma_max - expected).abs() < 1e-10 * expected,
                "{block:?}"
            );
        }
        blocks
    }

    /// σ_max from the Gram matrix against faer's dense f64 SVD of the same block, on Gaussian
    /// blocks of both orientations (q's row blocks are wide, o's column blocks tall).
    #[test]
    fn sigma_max_is_the_largest_singular_value_of_a_dense_svd() {
        let (rows, cols, head_dim) = (48, 40, 8);
        let mut stream = crate::random::GaussianStream::new(12, 0);
        let values: Vec<f32> = (0..rows * cols)
            .map(|_| stream.next_gaussian_pair().0 as f32)
            .collect();
        let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
        let heads = layout(5, 5, head_dim);
        for (block_type, name) in [
            (BlockType::QProj, "q_proj.weight"),
            (BlockType::OProj, "o_proj.weight"),
        ] {
            let shape = if block_type == BlockType::QProj {
                [40, cols]
            } else {
                [rows, 40]
            };
            for block in split_heads(&heads, block_type, name, &shape).unwrap() {
                let dense =
                    faer::Mat::<f64>::from_fn(block.rows.len(), block.cols.len(), |r, c| {
                        f64::from(values[(block.rows.start + r) * cols + block.cols.start + c])
                    });
                let expected = dense.singular_values().unwrap()[0];
                let metrics = head_metrics(&matrix, &block).unwrap();
                assert!(
                    (metrics.sigma_max - expected).abs() <= 1e-12 * expected,
                    "{block:?}: {} vs {expected}",
                    metrics.sigma_max
                );
                let fro = dense.norm_l2();
                assert!((metrics.fro_norm - fro).abs() <= 1e-12 * fro, "{block:?}");
            }
        }
    }

    #[test]
    fn multi_head_attention() {
        let mha = layout(4, 4, 8);
        assert_heads(
            &mha,
            BlockType::QProj,
            "l.0.self_attn.q_proj.weight",
            [32, 32],
            4,
        );
        assert_heads(
            &mha,
            BlockType::KProj,
            "l.0.self_attn.k_proj.weight",
            [32, 32],
            4,
        );
        let o = assert_heads(
            &mha,
            BlockType::OProj,
            "l.0.self_attn.o_proj.weight",
            [32, 32],
            4,
        );
        assert_eq!(o[2].cols, 16..24);
        assert_eq!(o[2].rows, 0..32);
    }

    #[test]
    fn grouped_query_attention() {
        let gqa = layout(8, 2, 4);
        let q = assert_heads(&gqa, BlockType::QProj, "q_proj.weight", [32, 16], 8);
        assert_eq!(q[7].rows, 28..32);
        let v = assert_heads(&gqa, BlockType::VProj, "v_proj.weight", [8, 16], 2);
        assert_eq!(
            (v[1].head, v[1].part, v[1].rows.clone()),
            (1, HeadPart::Value, 4..8)
        );
        let err = split_heads(&gqa, BlockType::KProj, "k_proj.weight", &[32, 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input);
        let message = err.message();
        assert!(
            message.contains("rows 32") && message.contains("need 8"),
            "{err}"
        );
    }

    #[test]
    fn fused_qkv_in_each_storage_order() {
        // GPT-2: [H, 3H] stored transposed, columns q | k | v.
        let gpt2 = layout(2, 2, 4);
        let c_attn = assert_heads(
            &gpt2,
            BlockType::QkvProj,
            "h.0.attn.c_attn.weight",
            [8, 24],
            6,
        );
        let key_of_head_1 = c_attn
            .iter()
            .find(|b| b.part == HeadPart::Key && b.head == 1)
            .unwrap();
        assert_eq!(
            (key_of_head_1.rows.clone(), key_of_head_1.cols.clone()),
            (0..8, 12..16)
        );
        // GPT-2's output projection is Conv1D too: heads are row blocks.
        let c_proj = assert_heads(&gpt2, BlockType::OProj, "h.0.attn.c_proj.weight", [8, 8], 2);
        assert_eq!(c_proj[1].rows, 4..8);
        // NeoX: [3H, H], rows interleaved per head.
        let neox = assert_heads(
            &gpt2,
            BlockType::QkvProj,
            "gpt_neox.layers.0.attention.query_key_value.weight",
            [24, 8],
            6,
        );
        assert_eq!(
            (neox[4].head, neox[4].part, neox[4].rows.clone()),
            (1, HeadPart::Key, 16..20)
        );
        // Phi-3 with GQA: q rows, then k rows, then v rows.
        let phi3 = layout(4, 2, 4);
        let fused = assert_heads(
            &phi3,
            BlockType::QkvProj,
            "self_attn.qkv_proj.weight",
            [32, 16],
            8,
        );
        let value_of_group_1 = fused
            .iter()
            .find(|b| b.part == HeadPart::Value && b.head == 1)
            .unwrap();
        assert_eq!(value_of_group_1.rows, 28..32);
    }

    #[test]
    fn what_cannot_be_split_says_why() {
        let mha = layout(4, 4, 8);
        let cases = [
            (
                BlockType::MlpUp,
                "mlp.up_proj.weight",
                vec![64, 32],
                "no attention heads",
            ),
            (BlockType::QProj, "q_proj.bias", vec![32], "not a matrix"),
            (
                BlockType::QkvProj,
                "kv_b_proj.weight",
                vec![64, 32],
                "no known head layout",
            ),
            (
                BlockType::OProj,
                "o_proj.weight",
                vec![32, 30],
                "columns 30",
            ),
        ];
        for (block_type, name, shape, reason) in cases {
            let err = split_heads(&mha, block_type, name, &shape).unwrap_err();
            assert!(err.message().contains(reason), "{name}: {err}");
        }
        let neox_gqa = split_heads(
            &layout(4, 2, 8),
            BlockType::QkvProj,
            "query_key_value",
            &[64, 32],
        );
        assert!(neox_gqa.unwrap_err().message().contains("interleaved"));
    }

    #[test]
    fn layout_from_config() {
        let config = ModelConfig {
            num_attention_heads: Some(32),
            num_key_value_heads: Some(8),
            hidden_size: Some(4096),
            ..ModelConfig::default()
        };
        assert_eq!(
            HeadLayout::from_config(&config).unwrap(),
            layout(32, 8, 128)
        );
        let explicit = ModelConfig {
            head_dim: Some(256),
            ..config.clone()
        };
        assert_eq!(HeadLayout::from_config(&explicit).unwrap().head_dim, 256);
        let no_kv = ModelConfig {
            num_key_value_heads: None,
            ..config.clone()
        };
        assert_eq!(HeadLayout::from_config(&no_kv).unwrap().kv_heads, 32);
        let uneven = ModelConfig {
            num_key_value_heads: Some(5),
            ..config.clone()
        };
        let uneven = HeadLayout::from_config(&uneven).unwrap_err();
        assert_eq!(uneven.kind(), ErrorKind::Input);
        assert!(uneven.message().contains("cannot share 5"), "{uneven}");
        let nothing = HeadLayout::from_config(&ModelConfig::default()).unwrap_err();
        assert!(
            nothing.message().contains("num_attention_heads"),
            "{nothing}"
        );
    }

    #[test]
    fn head_norms_of_a_random_block_match_a_float64_sum() {
        // Non-constant values: the norm by definition, and σ_max bounded by ‖B‖_F and ≥ ‖B‖_F/√rank.
        let (rows, cols) = (48, 20);
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
        let blocks =
            split_heads(&layout(6, 6, 8), BlockType::QProj, "q_proj", &[rows, cols]).unwrap();
        for block in &blocks {
            let metrics = head_metrics(&matrix, block).unwrap();
            let expected: f64 = block
                .rows
                .clone()
                .flat_map(|r| values[r * cols..(r + 1) * cols].iter())
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            assert!((metrics.fro_norm - expected).abs() < 1e-12 * expected);
            assert!(metrics.sigma_max <= expected * (1.0 + 1e-12));
            assert!(metrics.sigma_max >= expected / 8f64.sqrt());
        }
    }
}
