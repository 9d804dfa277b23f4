//! What a tensor is, from its name: block type, layer and expert (the taxonomy is the README's
//! "Block taxonomy"; `tests/classify.rs` holds the real names of every family it covers).
//!
//! Names are split at dots into a module path and a trailing parameter name (`weight`, `bias`,
//! `weight_scale_inv`, …); the block type comes from the last module segment and, where that is
//! ambiguous (`c_proj`, `dense`), from its parents. A name that matches nothing is
//! [`BlockType::Other`], never an error: new families must still get a row.
//!
//! Choices the taxonomy leaves open, decided here:
//! - DeepSeek MLA: `q_a_proj` / `q_b_proj` are [`BlockType::QProj`] (they are the query path,
//!   factorised). `kv_a_proj_with_mqa` and `kv_b_proj` are [`BlockType::QkvProj`]: each yields
//!   keys *and* values (the shared latent, and its expansion into both), so calling them `k_proj`
//!   or `v_proj` would misstate half of their rows; the fused-projection bucket is the honest one.
//!   `q_a_layernorm` / `kv_a_layernorm` are [`BlockType::Norm`].
//! - DeepSeek-V3's multi-token-prediction layer (the layer numbered `num_hidden_layers`) keeps its
//!   layer index; its `embed_tokens` is [`BlockType::Embedding`], `shared_head.head` is
//!   [`BlockType::Output`], `enorm` / `hnorm` / `shared_head.norm` are [`BlockType::Norm`], and
//!   `eh_proj` (which mixes the embedding with the previous hidden state) is [`BlockType::Other`].
//! - BERT's `token_type_embeddings` is [`BlockType::Other`]: a two-row segment table, neither the
//!   vocabulary embedding (which `embed` and tie detection look for) nor a positional table.
//! - GPT-2's `attn.bias` / `attn.masked_bias` are causal-mask buffers, not weights: `other`.
//! - A `weight_scale_inv` companion gets the role of the weight it scales.

use std::cmp::Ordering;

use crate::model::config::ModelConfig;

/// The kind of block a tensor belongs to: the `block_type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockType {
    /// The token embedding table.
    Embedding,
    /// A learned absolute position table (GPT-2 `wpe`, BERT `position_embeddings`).
    PositionEmbedding,
    /// The query projection (including MLA's factorised `q_a_proj` / `q_b_proj`).
    QProj,
    /// The key projection.
    KProj,
    /// The value projection.
    VProj,
    /// The attention output projection.
    OProj,
    /// A fused projection producing several of queries, keys and values.
    QkvProj,
    /// The gate projection of a gated MLP.
    MlpGate,
    /// The up (expanding) projection of an MLP.
    MlpUp,
    /// The down (contracting) projection of an MLP.
    MlpDown,
    /// Fused gate and up projections.
    MlpGateUp,
    /// An expert's weights, routed or shared.
    Moe,
    /// The router that picks experts, and its bias terms.
    MoeRouter,
    /// A normalisation scale or shift.
    Norm,
    /// The output head producing logits.
    Output,
    /// Anything else: pooler, buffers, names aib does not know.
    Other,
}

impl BlockType {
    /// Every block type, in declaration order.
    pub const ALL: [BlockType; 16] = [
        BlockType::Embedding,
        BlockType::PositionEmbedding,
        BlockType::QProj,
        BlockType::KProj,
        BlockType::VProj,
        BlockType::OProj,
        BlockType::QkvProj,
        BlockType::MlpGate,
        BlockType::MlpUp,
        BlockType::MlpDown,
        BlockType::MlpGateUp,
        BlockType::Moe,
        BlockType::MoeRouter,
        BlockType::Norm,
        BlockType::Output,
        BlockType::Other,
    ];

    /// The name used in outputs, e.g. `q_proj`, `mlp_gate_up`, `moe_router`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockType::Embedding => "embedding",
            BlockType::PositionEmbedding => "position_embedding",
            BlockType::QProj => "q_proj",
            BlockType::KProj => "k_proj",
            BlockType::VProj => "v_proj",
            BlockType::OProj => "o_proj",
            BlockType::QkvProj => "qkv_proj",
            BlockType::MlpGate => "mlp_gate",
            BlockType::MlpUp => "mlp_up",
            BlockType::MlpDown => "mlp_down",
            BlockType::MlpGateUp => "mlp_gate_up",
            BlockType::Moe => "moe",
            BlockType::MoeRouter => "moe_router",
            BlockType::Norm => "norm",
            BlockType::Output => "output",
            BlockType::Other => "other",
        }
    }
}

/// Everything the name (with shape and config) says about one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorRole {
    /// The block the tensor belongs to.
    pub block_type: BlockType,
    /// The transformer block number, `None` outside the blocks.
    pub layer_index: Option<usize>,
    /// The routed expert number, `None` for shared experts and everything else.
    pub expert_index: Option<usize>,
    /// A fused 3-D expert stack `[E, out, in]`: the engine reports one row per expert.
    pub stacked_experts: bool,
}

/// Segments whose following number is the layer index: `layers.N` (Llama, NeoX), `h.N` (GPT-2),
/// `layer.N` (BERT), `blocks.N` / `block.N` (DBRX, T5).
const LAYER_CONTAINERS: [&str; 5] = ["layers", "h", "layer", "blocks", "block"];

/// Trailing segments that name a parameter of a module rather than the module itself.
const PARAMETER_NAMES: [&str; 8] = [
    "weight",
    "bias",
    "weight_scale_inv",
    "e_score_correction_bias",
    "gamma",
    "beta",
    "masked_bias",
    "inv_freq",
];

/// Classifies the tensor `name` of `shape`; `config`, when known, settles what names cannot.
///
/// The config is used for one thing today: a 3-D tensor under `experts` is an expert stack
/// `[E, out, in]` unless the config states an expert count that its first dimension contradicts.
pub fn classify(name: &str, shape: &[usize], config: Option<&ModelConfig>) -> TensorRole {
    let segments: Vec<&str> = name.split('.').collect();
    let (module, parameter) = match segments.split_last() {
        Some((last, module)) if PARAMETER_NAMES.contains(last) => (module, *last),
        _ => (&segments[..], ""),
    };
    let layer_index = number_after(&segments, &LAYER_CONTAINERS);
    let expert_index = number_after(&segments, &["experts"]);
    let block_type = block_type_of(module, parameter);
    let named_as_stack = expert_index.is_none() && module.contains(&"experts");
    let stacked_experts = is_expert_stack(block_type, named_as_stack, shape, config);
    TensorRole {
        block_type,
        layer_index,
        expert_index,
        stacked_experts,
    }
}

/// Whether a tensor named as a stack of experts is one: an MoE tensor of shape `[E, out, in]`
/// whose `E` the config's expert count (when known) confirms.
fn is_expert_stack(
    block_type: BlockType,
    named_as_stack: bool,
    shape: &[usize],
    config: Option<&ModelConfig>,
) -> bool {
    block_type == BlockType::Moe
        && named_as_stack
        && shape.len() == 3
        && config
            .and_then(ModelConfig::expert_count)
            .is_none_or(|count| count == shape[0])
}

/// Classifies the tensor `name` of a GGUF file (llama.cpp's names, `shape` in the Hugging Face
/// order), like [`classify`] does for Hugging Face names: `token_embd`, `blk.N.attn_q` …,
/// `output`. The layer is the number after `blk`; `ffn_{gate,up,down}_exps` are expert stacks
/// `[E, out, in]` (unless the config's expert count contradicts the first dimension), `_shexp`
/// a shared expert, `ffn_gate_inp` and `exp_probs_b` the router; older files' per-expert
/// `blk.N.ffn_gate.E` carry their expert number.
pub fn classify_gguf(name: &str, shape: &[usize], config: Option<&ModelConfig>) -> TensorRole {
    let segments: Vec<&str> = name.split('.').collect();
    let module = match segments.split_last() {
        Some((last, module)) if matches!(*last, "weight" | "bias") => module,
        _ => &segments[..],
    };
    let layer_index = number_after(&segments, &["blk"]);
    // The module is the last segment that is not a number: `ffn_gate` in `blk.3.ffn_gate.5`.
    let (part, expert_index) = match module {
        [.., part, number] if is_number(number) && part.starts_with("ffn_") => {
            (*part, number.parse().ok())
        }
        [.., part] => (*part, None),
        [] => ("", None),
    };
    let block_type = gguf_block_type(part, module.len(), expert_index.is_some());
    let stacked_experts = is_expert_stack(block_type, part.ends_with("_exps"), shape, config);
    TensorRole {
        block_type,
        layer_index,
        expert_index,
        stacked_experts,
    }
}

/// The block type of a GGUF module name (`attn_q`, `ffn_down_exps`, …); `depth` is the number of
/// module segments (`output` is the head only at the top level), `per_expert` whether an expert
/// number follows it.
fn gguf_block_type(part: &str, depth: usize, per_expert: bool) -> BlockType {
    if part.contains("norm") {
        return BlockType::Norm;
    }
    if matches!(part, "ffn_gate_inp" | "ffn_gate_inp_shexp" | "exp_probs_b") {
        return BlockType::MoeRouter;
    }
    if part.ends_with("_exps") || part.ends_with("_shexp") {
        return BlockType::Moe;
    }
    match part {
        "token_embd" | "embed_tokens" => BlockType::Embedding,
        "position_embd" => BlockType::PositionEmbedding,
        "output" if depth == 1 => BlockType::Output,
        "shared_head_head" => BlockType::Output,
        "attn_q" | "attn_q_a" | "attn_q_b" => BlockType::QProj,
        "attn_k" | "attn_k_b" => BlockType::KProj,
        "attn_v" | "attn_v_b" => BlockType::VProj,
        "attn_output" => BlockType::OProj,
        "attn_qkv" | "attn_kv_a_mqa" | "attn_kv_b" => BlockType::QkvProj,
        "ffn_gate" | "ffn_up" | "ffn_down" if per_expert => BlockType::Moe,
        "ffn_gate" => BlockType::MlpGate,
        "ffn_up" => BlockType::MlpUp,
        "ffn_down" => BlockType::MlpDown,
        "ffn_gate_up" => BlockType::MlpGateUp,
        _ => BlockType::Other,
    }
}

/// The weight that a `….weight_scale_inv` block-scale tensor scales, e.g.
/// `model.layers.0.mlp.down_proj.weight_scale_inv` → `model.layers.0.mlp.down_proj.weight`.
pub fn scale_companion_of(name: &str) -> Option<String> {
    name.strip_suffix(".weight_scale_inv")
        .map(|module| format!("{module}.weight"))
}

/// The name of the block-scale tensor that would scale weight `name`, the inverse of
/// [`scale_companion_of`]: `….weight` → `….weight_scale_inv`.
pub fn scale_name_of(name: &str) -> String {
    format!("{name}_scale_inv")
}

/// The number in the first numeric segment that follows one of `containers`.
fn number_after(segments: &[&str], containers: &[&str]) -> Option<usize> {
    segments
        .windows(2)
        .find(|pair| containers.contains(&pair[0]) && is_number(pair[1]))
        .and_then(|pair| pair[1].parse().ok())
}

fn is_number(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|byte| byte.is_ascii_digit())
}

/// The block type of a module path (`model.layers.0.mlp.gate_proj` split at dots) holding
/// `parameter` (empty when the name ends in the module itself, as fused expert stacks do).
fn block_type_of(module: &[&str], parameter: &str) -> BlockType {
    let Some(last) = module.last() else {
        return BlockType::Other;
    };
    let last = last.to_ascii_lowercase();
    let parent = |generations: usize| {
        module
            .len()
            .checked_sub(generations + 1)
            .map_or("", |index| module[index])
    };

    if parameter == "e_score_correction_bias" {
        return BlockType::MoeRouter;
    }
    if last == "attn" && (parameter == "bias" || parameter == "masked_bias") {
        // GPT-2's causal mask buffers, saved by older transformers versions.
        return BlockType::Other;
    }
    // DBRX nests its router's linear one level deeper: `ffn.router.layer`.
    if matches!(last.as_str(), "gate" | "router" | "shared_expert_gate") || parent(1) == "router" {
        return BlockType::MoeRouter;
    }
    if module
        .iter()
        .any(|segment| matches!(*segment, "experts" | "shared_expert" | "shared_experts"))
    {
        return BlockType::Moe;
    }
    if last.contains("norm") || last.starts_with("ln_") {
        return BlockType::Norm;
    }
    match last.as_str() {
        "embed_tokens" | "wte" | "word_embeddings" | "embed_in" | "tok_embeddings" => {
            BlockType::Embedding
        }
        "wpe" | "position_embeddings" | "embed_positions" => BlockType::PositionEmbedding,
        "lm_head" | "embed_out" => BlockType::Output,
        "head" if parent(1) == "shared_head" => BlockType::Output,
        // The original Llama release names its head `output.weight` at top level.
        "output" if module.len() == 1 => BlockType::Output,
        "decoder" if parent(1) == "predictions" => BlockType::Output,
        "q_proj" | "q_a_proj" | "q_b_proj" | "query" | "wq" => BlockType::QProj,
        "k_proj" | "key" | "wk" => BlockType::KProj,
        "v_proj" | "value" | "wv" => BlockType::VProj,
        "o_proj" | "out_proj" | "wo" => BlockType::OProj,
        "qkv_proj" | "qkv" | "c_attn" | "query_key_value" | "wqkv" | "w_pack"
        | "kv_a_proj_with_mqa" | "kv_b_proj" => BlockType::QkvProj,
        "gate_proj" | "w1" => BlockType::MlpGate,
        "up_proj" | "w3" | "c_fc" | "fc1" | "fc_in" | "dense_h_to_4h" => BlockType::MlpUp,
        "down_proj" | "w2" | "fc2" | "fc_out" | "dense_4h_to_h" => BlockType::MlpDown,
        "gate_up_proj" => BlockType::MlpGateUp,
        "c_proj" => match parent(1) {
            "attn" => BlockType::OProj,
            "mlp" => BlockType::MlpDown,
            _ => BlockType::Other,
        },
        "dense" => dense_block_type(parent(1), parent(2)),
        _ => BlockType::Other,
    }
}

/// GPT-NeoX, Falcon, Phi-2 and BERT all call several projections `dense`; the parents tell them
/// apart.
fn dense_block_type(parent: &str, grandparent: &str) -> BlockType {
    match (grandparent, parent) {
        (_, "attention" | "self_attention" | "self_attn") | ("attention", "output") => {
            BlockType::OProj
        }
        (_, "output") => BlockType::MlpDown,
        (_, "intermediate") => BlockType::MlpUp,
        _ => BlockType::Other,
    }
}

/// Orders names as people read them: runs of digits compare as numbers, so `layers.2` comes
/// before `layers.10`; names equal under that rule (`01` and `1`) fall back to byte order, which
/// keeps the order total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let mut left = Runs(a.as_bytes());
    let mut right = Runs(b.as_bytes());
    loop {
        match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = compare_runs(x, y);
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Two runs: numerically when both are digits, else byte-wise (a digit run and a text run then
/// differ in their first byte, so the order stays consistent).
fn compare_runs(x: &[u8], y: &[u8]) -> Ordering {
    if x[0].is_ascii_digit() && y[0].is_ascii_digit() {
        let x = trim_leading_zeros(x);
        let y = trim_leading_zeros(y);
        // Equal-length digit strings compare like their numbers; no overflow for any length.
        x.len().cmp(&y.len()).then_with(|| x.cmp(y))
    } else {
        x.cmp(y)
    }
}

fn trim_leading_zeros(digits: &[u8]) -> &[u8] {
    let first_nonzero = digits
        .iter()
        .position(|&digit| digit != b'0')
        .unwrap_or(digits.len());
    &digits[first_nonzero..]
}

/// Splits bytes into maximal runs of ASCII digits and of everything else; every run is non-empty.
struct Runs<'a>(&'a [u8]);

impl<'a> Iterator for Runs<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let first = self.0.first()?;
        let digits = first.is_ascii_digit();
        let length = self
            .0
            .iter()
            .position(|byte| byte.is_ascii_digit() != digits)
            .unwrap_or(self.0.len());
        let (run, rest) = self.0.split_at(length);
        self.0 = rest;
        Some(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec![
            "model.layers.10.mlp.down_proj.weight",
            "model.layers.2.mlp.down_proj.weight",
            "model.layers.1.mlp.down_proj.weight",
            "lm_head.weight",
            "model.layers.2.mlp.up_proj.weight",
            "model.embed_tokens.weight",
            "model.layers.100.mlp.down_proj.weight",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "lm_head.weight",
                "model.embed_tokens.weight",
                "model.layers.1.mlp.down_proj.weight",
                "model.layers.2.mlp.down_proj.weight",
                "model.layers.2.mlp.up_proj.weight",
                "model.layers.10.mlp.down_proj.weight",
                "model.layers.100.mlp.down_proj.weight",
            ]
        );
    }

    #[test]
    fn natural_order_handles_zeros_huge_numbers_and_ties() {
        assert_eq!(natural_cmp("a007", "a7"), "a007".cmp("a7"));
        assert_eq!(natural_cmp("a7", "a007"), "a7".cmp("a007"));
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        assert_eq!(natural_cmp("", "a"), Ordering::Less);
        // Longer than any integer type: compared by digit count, then digits.
        let big = "n123456789012345678901234567890";
        let bigger = "n123456789012345678901234567891";
        assert_eq!(natural_cmp(big, bigger), Ordering::Less);
        assert_eq!(natural_cmp("n99", big), Ordering::Less);
        assert_eq!(natural_cmp("experts.9.w1", "experts.10.w1"), Ordering::Less);
        assert_eq!(natural_cmp("h.1.x", "h.1"), Ordering::Greater);
    }

    #[test]
    fn natural_order_is_a_consistent_total_order_on_mixed_names() {
        let names = [
            "", "0", "00", "1", "01", "10", "a", "a0", "a00", "a1", "a10", "a2", "a.1", "a.10",
            "a.2", "a_1", "ab", "b", "é1", "é10", "é2", "1a", "10a", "9z",
        ];
        for a in names {
            assert_eq!(natural_cmp(a, a), Ordering::Equal);
            for b in names {
                assert_eq!(
                    natural_cmp(a, b),
                    natural_cmp(b, a).reverse(),
                    "{a:?} {b:?}"
                );
                for c in names {
                    if natural_cmp(a, b).is_le() && natural_cmp(b, c).is_le() {
                        assert!(natural_cmp(a, c).is_le(), "{a:?} ≤ {b:?} ≤ {c:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn scale_companion_names_the_weight() {
        assert_eq!(
            scale_companion_of("model.layers.3.mlp.experts.7.up_proj.weight_scale_inv").as_deref(),
            Some("model.layers.3.mlp.experts.7.up_proj.weight")
        );
        assert_eq!(
            scale_companion_of("model.layers.3.mlp.up_proj.weight"),
            None
        );
        assert_eq!(scale_companion_of("weight_scale_inv"), None);
        let weight = "model.layers.3.mlp.up_proj.weight";
        assert_eq!(
            scale_companion_of(&scale_name_of(weight)).as_deref(),
            Some(weight)
        );
    }

    #[test]
    fn block_type_names_are_the_spec_names() {
        let all = [
            (BlockType::Embedding, "embedding"),
            (BlockType::PositionEmbedding, "position_embedding"),
            (BlockType::QProj, "q_proj"),
            (BlockType::KProj, "k_proj"),
            (BlockType::VProj, "v_proj"),
            (BlockType::OProj, "o_proj"),
            (BlockType::QkvProj, "qkv_proj"),
            (BlockType::MlpGate, "mlp_gate"),
            (BlockType::MlpUp, "mlp_up"),
            (BlockType::MlpDown, "mlp_down"),
            (BlockType::MlpGateUp, "mlp_gate_up"),
            (BlockType::Moe, "moe"),
            (BlockType::MoeRouter, "moe_router"),
            (BlockType::Norm, "norm"),
            (BlockType::Output, "output"),
            (BlockType::Other, "other"),
        ];
        for (block_type, name) in all {
            assert_eq!(block_type.as_str(), name);
        }
    }
}
