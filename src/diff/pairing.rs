//! Which tensor of A goes with which tensor of B: by name, then by role.
//!
//! Two models in the same format are paired by tensor name. What is left, and every tensor of a
//! pair of different formats, is paired by role: layer, block type, expert and parameter
//! (`weight`, `bias`), with a slot that tells the norms of one block apart (the attention norm
//! from the MLP norm, q and k norms, the final norm). A role two tensors of one model share is
//! ambiguous and pairs nothing; such tensors stay unpaired (`only_a` / `only_b`) unless their
//! names match. Llama's and llama.cpp's names land on the same roles (`self_attn.q_proj` and
//! `attn_q`, `input_layernorm` and `attn_norm`, `embed_tokens` and `token_embd`, …).

use std::collections::HashMap;

use crate::model::classify::{BlockType, TensorRole};

/// One tensor as pairing sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The stored name.
    pub name: String,
    /// The shape, Hugging Face order (rows = output features).
    pub shape: Vec<usize>,
    /// The role its model's naming scheme gives it.
    pub role: TensorRole,
}

/// Indices into A's and B's entries: both for a pair, one for a tensor only one side has.
pub type Pairing = (Option<usize>, Option<usize>);

/// Pairs `a` with `b`: equal names first (when `by_name`, i.e. both sides use one naming
/// scheme), then equal unambiguous roles. The pairs come in A's order, then B's leftovers.
pub fn pair(a: &[Entry], b: &[Entry], by_name: bool) -> Vec<Pairing> {
    let mut partner_of_a: Vec<Option<usize>> = vec![None; a.len()];
    let mut b_taken = vec![false; b.len()];
    if by_name {
        let b_by_name: HashMap<&str, usize> = b
            .iter()
            .enumerate()
            .map(|(index, entry)| (entry.name.as_str(), index))
            .collect();
        for (index, entry) in a.iter().enumerate() {
            if let Some(&other) = b_by_name.get(entry.name.as_str()) {
                partner_of_a[index] = Some(other);
                b_taken[other] = true;
            }
        }
    }
    let a_left: Vec<usize> = (0..a.len())
        .filter(|&i| partner_of_a[i].is_none())
        .collect();
    let b_left: Vec<usize> = (0..b.len()).filter(|&i| !b_taken[i]).collect();
    let b_by_role = unique_roles(b, &b_left);
    let a_by_role = unique_roles(a, &a_left);
    for (key, &index) in &a_by_role {
        if let Some(&other) = b_by_role.get(key) {
            partner_of_a[index] = Some(other);
            b_taken[other] = true;
        }
    }
    let mut pairs: Vec<Pairing> = partner_of_a
        .into_iter()
        .enumerate()
        .map(|(index, other)| (Some(index), other))
        .collect();
    pairs.extend(
        (0..b.len())
            .filter(|&i| !b_taken[i])
            .map(|i| (None, Some(i))),
    );
    pairs
}

/// Role key → entry, for the `candidates` whose key no other candidate shares.
fn unique_roles(entries: &[Entry], candidates: &[usize]) -> HashMap<String, usize> {
    let mut by_key: HashMap<String, Option<usize>> = HashMap::new();
    for &index in candidates {
        let Some(key) = role_key(&entries[index]) else {
            continue;
        };
        by_key
            .entry(key)
            .and_modify(|seen| *seen = None)
            .or_insert(Some(index));
    }
    by_key
        .into_iter()
        .filter_map(|(key, index)| Some((key, index?)))
        .collect()
}

/// The role of `entry` as a key: layer, block type, expert, slot and parameter; `None` for
/// tensors whose role says too little to pair them (`other`).
pub fn role_key(entry: &Entry) -> Option<String> {
    let role = entry.role;
    if role.block_type == BlockType::Other {
        return None;
    }
    let segments: Vec<&str> = entry.name.split('.').collect();
    let parameter = match segments.last() {
        Some(&"bias") | Some(&"beta") => "bias",
        _ => "weight",
    };
    let slot = match role.block_type {
        BlockType::Norm => norm_slot(&entry.name, role.layer_index.is_some()),
        BlockType::Moe => moe_slot(&entry.name),
        _ => "",
    };
    Some(format!(
        "{:?}/{}/{:?}/{slot}/{parameter}",
        role.layer_index,
        role.block_type.as_str(),
        role.expert_index
    ))
}

/// Which norm of a block: the attention input's, the MLP input's, the q or k norm; `final`
/// outside the blocks.
fn norm_slot(name: &str, in_layer: bool) -> &'static str {
    let has = |parts: &[&str]| parts.iter().any(|part| name.contains(part));
    if has(&["q_norm", "q_a_layernorm"]) {
        "q"
    } else if has(&["k_norm", "kv_a_layernorm"]) {
        "k"
    } else if has(&["post_attention_layernorm", "ffn_norm", "ln_2"]) {
        "mlp"
    } else if has(&["input_layernorm", "attn_norm", "ln_1"]) {
        "attention"
    } else if !in_layer {
        "final"
    } else {
        "unknown"
    }
}

/// Which projection of an expert: gate (`w1`), up (`w3`) or down (`w2`).
fn moe_slot(name: &str) -> &'static str {
    let has = |parts: &[&str]| parts.iter().any(|part| name.contains(part));
    if has(&["gate_up"]) {
        "gate_up"
    } else if has(&["gate", ".w1."]) {
        "gate"
    } else if has(&["up", ".w3."]) {
        "up"
    } else if has(&["down", ".w2."]) {
        "down"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::classify::{classify, classify_gguf};

    fn hf(name: &str) -> Entry {
        Entry {
            name: name.to_string(),
            shape: vec![4, 4],
            role: classify(name, &[4, 4], None),
        }
    }

    fn gguf(name: &str) -> Entry {
        Entry {
            name: name.to_string(),
            shape: vec![4, 4],
            role: classify_gguf(name, &[4, 4], None),
        }
    }

    #[test]
    fn llama_names_pair_with_llama_cpp_names_by_role() {
        let hf_names = [
            "model.embed_tokens.weight",
            "model.layers.0.input_layernorm.weight",
            "model.layers.0.post_attention_layernorm.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight",
            "model.layers.0.mlp.down_proj.weight",
            "model.norm.weight",
            "lm_head.weight",
        ];
        let gguf_names = [
            "blk.0.attn_k.weight",
            "blk.0.attn_norm.weight",
            "blk.0.attn_q.weight",
            "blk.0.ffn_down.weight",
            "blk.0.ffn_norm.weight",
            "output.weight",
            "output_norm.weight",
            "token_embd.weight",
        ];
        let a: Vec<Entry> = hf_names.iter().map(|name| hf(name)).collect();
        let b: Vec<Entry> = gguf_names.iter().map(|name| gguf(name)).collect();
        let expected = [7, 1, 4, 2, 0, 3, 6, 5];
        let pairs = pair(&a, &b, false);
        assert_eq!(pairs.len(), a.len());
        for (index, (left, right)) in pairs.into_iter().enumerate() {
            assert_eq!(left, Some(index));
            assert_eq!(right, Some(expected[index]), "{}", hf_names[index]);
        }
    }

    #[test]
    fn names_first_then_roles_and_ambiguity_pairs_nothing() {
        let a = vec![
            hf("model.layers.0.self_attn.q_proj.weight"),
            hf("lm_head.weight"),
            hf("extra.one.weight"),
        ];
        let b = vec![
            hf("model.layers.0.self_attn.q_proj.weight"),
            hf("embed_out.weight"),
            hf("extra.two.weight"),
        ];
        // lm_head and embed_out are both the output head: a rename, paired by role; the two
        // `other` tensors pair with nothing.
        assert_eq!(
            pair(&a, &b, true),
            vec![
                (Some(0), Some(0)),
                (Some(1), Some(1)),
                (Some(2), None),
                (None, Some(2))
            ]
        );
        // Two candidates of one role: neither is paired.
        let a = vec![hf("model.layers.0.mlp.down_proj.weight")];
        let b = vec![
            hf("h.0.mlp.c_proj.weight"),
            hf("transformer.h.0.mlp.c_proj.weight"),
        ];
        assert_eq!(role_key(&b[0]), role_key(&b[1]));
        let pairs = pair(&a, &b, false);
        assert!(pairs.iter().all(|(x, y)| x.is_none() || y.is_none()));
    }
}
