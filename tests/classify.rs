//! The classifier against the real tensor names of every family aib knows (Llama, Qwen, Mixtral,
//! DeepSeek, GPT-2, GPT-NeoX, Phi-3, BERT, Gemma).
//!
//! Each table lists the names of a real checkpoint (top level plus whole layers) with the role a
//! researcher expects; layer and expert numbers are varied so that parsing them is tested too.

use aib::model::classify::{
    BlockType, TensorRole, classify, classify_gguf, natural_cmp, scale_companion_of,
};
use aib::model::config::{self, ModelConfig};

/// A tensor name with its expected block type (as output), layer index and expert index.
type Row = (&'static str, &'static str, Option<usize>, Option<usize>);

fn check_table(family: &str, config: Option<&ModelConfig>, rows: &[Row]) {
    for &(name, block_type, layer_index, expert_index) in rows {
        let role = classify(name, &[8, 8], config);
        let expected = (block_type, layer_index, expert_index, false);
        let actual = (
            role.block_type.as_str(),
            role.layer_index,
            role.expert_index,
            role.stacked_experts,
        );
        assert_eq!(actual, expected, "{family}: {name}");
    }
}

#[test]
fn llama_mistral_qwen2_qwen3() {
    check_table(
        "llama",
        None,
        &[
            ("model.embed_tokens.weight", "embedding", None, None),
            (
                "model.layers.0.input_layernorm.weight",
                "norm",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.q_proj.weight",
                "q_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.k_proj.weight",
                "k_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.v_proj.weight",
                "v_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.o_proj.weight",
                "o_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.post_attention_layernorm.weight",
                "norm",
                Some(0),
                None,
            ),
            (
                "model.layers.0.mlp.gate_proj.weight",
                "mlp_gate",
                Some(0),
                None,
            ),
            ("model.layers.0.mlp.up_proj.weight", "mlp_up", Some(0), None),
            (
                "model.layers.0.mlp.down_proj.weight",
                "mlp_down",
                Some(0),
                None,
            ),
            (
                "model.layers.31.mlp.down_proj.weight",
                "mlp_down",
                Some(31),
                None,
            ),
            (
                "model.layers.0.self_attn.rotary_emb.inv_freq",
                "other",
                Some(0),
                None,
            ),
            ("model.norm.weight", "norm", None, None),
            ("lm_head.weight", "output", None, None),
        ],
    );
    check_table(
        "qwen2 biases belong to their projection",
        None,
        &[
            (
                "model.layers.27.self_attn.q_proj.bias",
                "q_proj",
                Some(27),
                None,
            ),
            (
                "model.layers.27.self_attn.k_proj.bias",
                "k_proj",
                Some(27),
                None,
            ),
            (
                "model.layers.27.self_attn.v_proj.bias",
                "v_proj",
                Some(27),
                None,
            ),
        ],
    );
    check_table(
        "qwen3",
        None,
        &[
            (
                "model.layers.35.self_attn.q_norm.weight",
                "norm",
                Some(35),
                None,
            ),
            (
                "model.layers.35.self_attn.k_norm.weight",
                "norm",
                Some(35),
                None,
            ),
            (
                "model.layers.35.self_attn.q_proj.weight",
                "q_proj",
                Some(35),
                None,
            ),
        ],
    );
    check_table(
        "original llama release",
        None,
        &[
            ("tok_embeddings.weight", "embedding", None, None),
            ("layers.3.attention.wq.weight", "q_proj", Some(3), None),
            ("layers.3.attention.wk.weight", "k_proj", Some(3), None),
            ("layers.3.attention.wv.weight", "v_proj", Some(3), None),
            ("layers.3.attention.wo.weight", "o_proj", Some(3), None),
            ("layers.3.feed_forward.w1.weight", "mlp_gate", Some(3), None),
            ("layers.3.feed_forward.w2.weight", "mlp_down", Some(3), None),
            ("layers.3.feed_forward.w3.weight", "mlp_up", Some(3), None),
            ("layers.3.attention_norm.weight", "norm", Some(3), None),
            ("layers.3.ffn_norm.weight", "norm", Some(3), None),
            ("norm.weight", "norm", None, None),
            ("output.weight", "output", None, None),
        ],
    );
}

#[test]
fn mixtral() {
    check_table(
        "mixtral",
        None,
        &[
            ("model.embed_tokens.weight", "embedding", None, None),
            (
                "model.layers.5.block_sparse_moe.gate.weight",
                "moe_router",
                Some(5),
                None,
            ),
            (
                "model.layers.5.block_sparse_moe.experts.0.w1.weight",
                "moe",
                Some(5),
                Some(0),
            ),
            (
                "model.layers.5.block_sparse_moe.experts.0.w2.weight",
                "moe",
                Some(5),
                Some(0),
            ),
            (
                "model.layers.5.block_sparse_moe.experts.7.w3.weight",
                "moe",
                Some(5),
                Some(7),
            ),
            (
                "model.layers.5.self_attn.k_proj.weight",
                "k_proj",
                Some(5),
                None,
            ),
            (
                "model.layers.5.input_layernorm.weight",
                "norm",
                Some(5),
                None,
            ),
            ("model.norm.weight", "norm", None, None),
            ("lm_head.weight", "output", None, None),
        ],
    );
}

#[test]
fn qwen2_moe_and_qwen3_moe() {
    check_table(
        "qwen2-moe",
        None,
        &[
            (
                "model.layers.12.mlp.gate.weight",
                "moe_router",
                Some(12),
                None,
            ),
            (
                "model.layers.12.mlp.experts.59.gate_proj.weight",
                "moe",
                Some(12),
                Some(59),
            ),
            (
                "model.layers.12.mlp.experts.59.up_proj.weight",
                "moe",
                Some(12),
                Some(59),
            ),
            (
                "model.layers.12.mlp.experts.59.down_proj.weight",
                "moe",
                Some(12),
                Some(59),
            ),
            (
                "model.layers.12.mlp.shared_expert.gate_proj.weight",
                "moe",
                Some(12),
                None,
            ),
            (
                "model.layers.12.mlp.shared_expert.up_proj.weight",
                "moe",
                Some(12),
                None,
            ),
            (
                "model.layers.12.mlp.shared_expert.down_proj.weight",
                "moe",
                Some(12),
                None,
            ),
            (
                "model.layers.12.mlp.shared_expert_gate.weight",
                "moe_router",
                Some(12),
                None,
            ),
            (
                "model.layers.12.self_attn.q_proj.bias",
                "q_proj",
                Some(12),
                None,
            ),
        ],
    );
    check_table(
        "qwen3-moe",
        None,
        &[
            (
                "model.layers.47.mlp.gate.weight",
                "moe_router",
                Some(47),
                None,
            ),
            (
                "model.layers.47.mlp.experts.127.gate_proj.weight",
                "moe",
                Some(47),
                Some(127),
            ),
            (
                "model.layers.47.mlp.experts.0.down_proj.weight",
                "moe",
                Some(47),
                Some(0),
            ),
            (
                "model.layers.47.self_attn.q_norm.weight",
                "norm",
                Some(47),
                None,
            ),
            (
                "model.layers.47.self_attn.k_norm.weight",
                "norm",
                Some(47),
                None,
            ),
            (
                "model.layers.47.self_attn.o_proj.weight",
                "o_proj",
                Some(47),
                None,
            ),
        ],
    );
}

#[test]
fn deepseek_v2_v3_with_mla_fp8_scales_and_mtp() {
    check_table(
        "deepseek-v3",
        None,
        &[
            ("model.embed_tokens.weight", "embedding", None, None),
            (
                "model.layers.0.self_attn.q_a_proj.weight",
                "q_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.q_a_proj.weight_scale_inv",
                "q_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.q_a_layernorm.weight",
                "norm",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.q_b_proj.weight",
                "q_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
                "qkv_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.kv_a_layernorm.weight",
                "norm",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.kv_b_proj.weight",
                "qkv_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.self_attn.o_proj.weight",
                "o_proj",
                Some(0),
                None,
            ),
            (
                "model.layers.0.mlp.gate_proj.weight",
                "mlp_gate",
                Some(0),
                None,
            ),
            (
                "model.layers.0.mlp.down_proj.weight_scale_inv",
                "mlp_down",
                Some(0),
                None,
            ),
            (
                "model.layers.3.mlp.gate.weight",
                "moe_router",
                Some(3),
                None,
            ),
            (
                "model.layers.3.mlp.gate.e_score_correction_bias",
                "moe_router",
                Some(3),
                None,
            ),
            (
                "model.layers.3.mlp.experts.255.up_proj.weight",
                "moe",
                Some(3),
                Some(255),
            ),
            (
                "model.layers.3.mlp.experts.255.up_proj.weight_scale_inv",
                "moe",
                Some(3),
                Some(255),
            ),
            (
                "model.layers.3.mlp.shared_experts.down_proj.weight",
                "moe",
                Some(3),
                None,
            ),
            (
                "model.layers.60.post_attention_layernorm.weight",
                "norm",
                Some(60),
                None,
            ),
            ("model.norm.weight", "norm", None, None),
            ("lm_head.weight", "output", None, None),
        ],
    );
    check_table(
        "deepseek-v2 (unfactorised q_proj)",
        None,
        &[(
            "model.layers.1.self_attn.q_proj.weight",
            "q_proj",
            Some(1),
            None,
        )],
    );
    check_table(
        "deepseek-v3 multi-token-prediction layer",
        None,
        &[
            (
                "model.layers.61.embed_tokens.weight",
                "embedding",
                Some(61),
                None,
            ),
            ("model.layers.61.enorm.weight", "norm", Some(61), None),
            ("model.layers.61.hnorm.weight", "norm", Some(61), None),
            ("model.layers.61.eh_proj.weight", "other", Some(61), None),
            (
                "model.layers.61.shared_head.norm.weight",
                "norm",
                Some(61),
                None,
            ),
            (
                "model.layers.61.shared_head.head.weight",
                "output",
                Some(61),
                None,
            ),
            (
                "model.layers.61.mlp.experts.3.gate_proj.weight",
                "moe",
                Some(61),
                Some(3),
            ),
        ],
    );
}

#[test]
fn gpt2() {
    check_table(
        "gpt2",
        None,
        &[
            ("wte.weight", "embedding", None, None),
            ("wpe.weight", "position_embedding", None, None),
            ("h.0.ln_1.weight", "norm", Some(0), None),
            ("h.0.ln_1.bias", "norm", Some(0), None),
            ("h.0.attn.bias", "other", Some(0), None),
            ("h.0.attn.masked_bias", "other", Some(0), None),
            ("h.0.attn.c_attn.weight", "qkv_proj", Some(0), None),
            ("h.0.attn.c_attn.bias", "qkv_proj", Some(0), None),
            ("h.0.attn.c_proj.weight", "o_proj", Some(0), None),
            ("h.0.attn.c_proj.bias", "o_proj", Some(0), None),
            ("h.11.ln_2.weight", "norm", Some(11), None),
            ("h.11.mlp.c_fc.weight", "mlp_up", Some(11), None),
            ("h.11.mlp.c_fc.bias", "mlp_up", Some(11), None),
            ("h.11.mlp.c_proj.weight", "mlp_down", Some(11), None),
            ("ln_f.weight", "norm", None, None),
            (
                "transformer.h.3.attn.c_attn.weight",
                "qkv_proj",
                Some(3),
                None,
            ),
            ("transformer.wte.weight", "embedding", None, None),
        ],
    );
}

#[test]
fn gpt_neox_pythia() {
    check_table(
        "gpt-neox",
        None,
        &[
            ("gpt_neox.embed_in.weight", "embedding", None, None),
            (
                "gpt_neox.layers.4.input_layernorm.weight",
                "norm",
                Some(4),
                None,
            ),
            (
                "gpt_neox.layers.4.post_attention_layernorm.bias",
                "norm",
                Some(4),
                None,
            ),
            (
                "gpt_neox.layers.4.attention.query_key_value.weight",
                "qkv_proj",
                Some(4),
                None,
            ),
            (
                "gpt_neox.layers.4.attention.query_key_value.bias",
                "qkv_proj",
                Some(4),
                None,
            ),
            (
                "gpt_neox.layers.4.attention.dense.weight",
                "o_proj",
                Some(4),
                None,
            ),
            ("gpt_neox.layers.4.attention.bias", "other", Some(4), None),
            (
                "gpt_neox.layers.4.attention.rotary_emb.inv_freq",
                "other",
                Some(4),
                None,
            ),
            (
                "gpt_neox.layers.4.mlp.dense_h_to_4h.weight",
                "mlp_up",
                Some(4),
                None,
            ),
            (
                "gpt_neox.layers.4.mlp.dense_4h_to_h.weight",
                "mlp_down",
                Some(4),
                None,
            ),
            ("gpt_neox.final_layer_norm.weight", "norm", None, None),
            ("embed_out.weight", "output", None, None),
        ],
    );
}

#[test]
fn phi3() {
    check_table(
        "phi-3",
        None,
        &[
            ("model.embed_tokens.weight", "embedding", None, None),
            (
                "model.layers.9.self_attn.qkv_proj.weight",
                "qkv_proj",
                Some(9),
                None,
            ),
            (
                "model.layers.9.self_attn.o_proj.weight",
                "o_proj",
                Some(9),
                None,
            ),
            (
                "model.layers.9.mlp.gate_up_proj.weight",
                "mlp_gate_up",
                Some(9),
                None,
            ),
            (
                "model.layers.9.mlp.down_proj.weight",
                "mlp_down",
                Some(9),
                None,
            ),
            (
                "model.layers.9.input_layernorm.weight",
                "norm",
                Some(9),
                None,
            ),
            ("lm_head.weight", "output", None, None),
        ],
    );
}

#[test]
fn bert_with_and_without_prefix() {
    let layer = |suffix: &str| format!("encoder.layer.7.{suffix}");
    let rows: Vec<(String, &str, Option<usize>)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            "embedding",
            None,
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            "position_embedding",
            None,
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            "other",
            None,
        ),
        ("embeddings.LayerNorm.weight".into(), "norm", None),
        ("embeddings.LayerNorm.gamma".into(), "norm", None),
        ("embeddings.LayerNorm.beta".into(), "norm", None),
        ("embeddings.position_ids".into(), "other", None),
        (layer("attention.self.query.weight"), "q_proj", Some(7)),
        (layer("attention.self.query.bias"), "q_proj", Some(7)),
        (layer("attention.self.key.weight"), "k_proj", Some(7)),
        (layer("attention.self.value.weight"), "v_proj", Some(7)),
        (layer("attention.output.dense.weight"), "o_proj", Some(7)),
        (layer("attention.output.LayerNorm.weight"), "norm", Some(7)),
        (layer("intermediate.dense.weight"), "mlp_up", Some(7)),
        (layer("intermediate.dense.bias"), "mlp_up", Some(7)),
        (layer("output.dense.weight"), "mlp_down", Some(7)),
        (layer("output.LayerNorm.bias"), "norm", Some(7)),
        ("pooler.dense.weight".into(), "other", None),
    ];
    for prefix in ["", "bert."] {
        for (name, block_type, layer_index) in &rows {
            let name = format!("{prefix}{name}");
            let role = classify(&name, &[8, 8], None);
            assert_eq!(role.block_type.as_str(), *block_type, "{name}");
            assert_eq!(role.layer_index, *layer_index, "{name}");
            assert_eq!(role.expert_index, None, "{name}");
        }
    }
    let head = classify("cls.predictions.decoder.weight", &[30522, 768], None);
    assert_eq!(head.block_type, BlockType::Output);
}

#[test]
fn gemma_and_multimodal_prefixes() {
    check_table(
        "gemma / gemma-3 language model inside a multimodal checkpoint",
        None,
        &[
            ("model.embed_tokens.weight", "embedding", None, None),
            (
                "model.layers.2.pre_feedforward_layernorm.weight",
                "norm",
                Some(2),
                None,
            ),
            (
                "model.layers.2.post_feedforward_layernorm.weight",
                "norm",
                Some(2),
                None,
            ),
            (
                "language_model.model.layers.2.mlp.up_proj.weight",
                "mlp_up",
                Some(2),
                None,
            ),
            (
                "model.language_model.layers.2.self_attn.v_proj.weight",
                "v_proj",
                Some(2),
                None,
            ),
        ],
    );
}

#[test]
fn neighbouring_families_share_the_same_names() {
    check_table(
        "falcon, opt, phi-2, gpt-j, dbrx",
        None,
        &[
            (
                "transformer.word_embeddings.weight",
                "embedding",
                None,
                None,
            ),
            (
                "transformer.h.3.self_attention.query_key_value.weight",
                "qkv_proj",
                Some(3),
                None,
            ),
            (
                "transformer.h.3.self_attention.dense.weight",
                "o_proj",
                Some(3),
                None,
            ),
            ("transformer.h.3.ln_attn.weight", "norm", Some(3), None),
            (
                "model.decoder.embed_positions.weight",
                "position_embedding",
                None,
                None,
            ),
            (
                "model.decoder.layers.5.self_attn.out_proj.weight",
                "o_proj",
                Some(5),
                None,
            ),
            ("model.decoder.layers.5.fc1.weight", "mlp_up", Some(5), None),
            ("model.decoder.layers.5.fc2.bias", "mlp_down", Some(5), None),
            (
                "model.decoder.layers.5.final_layer_norm.weight",
                "norm",
                Some(5),
                None,
            ),
            (
                "model.layers.7.self_attn.dense.weight",
                "o_proj",
                Some(7),
                None,
            ),
            ("model.layers.7.mlp.fc1.weight", "mlp_up", Some(7), None),
            ("transformer.h.2.mlp.fc_in.weight", "mlp_up", Some(2), None),
            (
                "transformer.h.2.mlp.fc_out.weight",
                "mlp_down",
                Some(2),
                None,
            ),
            (
                "transformer.blocks.4.ffn.router.layer.weight",
                "moe_router",
                Some(4),
                None,
            ),
            (
                "transformer.blocks.4.ffn.experts.mlp.w1",
                "moe",
                Some(4),
                None,
            ),
            (
                "transformer.blocks.4.norm_attn_norm.attn.Wqkv.weight",
                "qkv_proj",
                Some(4),
                None,
            ),
        ],
    );
}

#[test]
fn unknown_or_malformed_names_never_fail() {
    let huge_layer = "model.layers.99999999999999999999999.mlp.up_proj.weight";
    let cases: [(&str, BlockType); 9] = [
        ("", BlockType::Other),
        (".", BlockType::Other),
        ("weight", BlockType::Other),
        ("foo", BlockType::Other),
        ("model.layers..weight", BlockType::Other),
        ("完全に未知.テンソル", BlockType::Other),
        (
            "model.vision_tower.patch_embed.proj.weight",
            BlockType::Other,
        ),
        // A layer "number" that is not one, or too large for usize, is no layer index.
        ("model.layers.x.mlp.up_proj.weight", BlockType::MlpUp),
        (huge_layer, BlockType::MlpUp),
    ];
    for (name, block_type) in cases {
        let role = classify(name, &[], None);
        let expected = TensorRole {
            block_type,
            layer_index: None,
            expert_index: None,
            stacked_experts: false,
        };
        assert_eq!(role, expected, "{name:?}");
    }
}

#[test]
fn fused_expert_stacks_are_one_row_per_expert() {
    let gate_up = "model.layers.1.mlp.experts.gate_up_proj";
    let role = classify(gate_up, &[8, 256, 64], None);
    assert_eq!(role.block_type, BlockType::Moe);
    assert_eq!(role.layer_index, Some(1));
    assert_eq!(role.expert_index, None);
    assert!(role.stacked_experts);
    assert!(classify("model.layers.1.mlp.experts.down_proj", &[8, 64, 128], None).stacked_experts);

    let eight_experts = config::parse(r#"{"num_local_experts": 8}"#).unwrap();
    assert!(classify(gate_up, &[8, 256, 64], Some(&eight_experts)).stacked_experts);
    // A config whose expert count contradicts the first dimension: not split into "experts".
    assert!(!classify(gate_up, &[4, 256, 64], Some(&eight_experts)).stacked_experts);
    // Two-dimensional per-expert biases and per-expert matrices are not stacks.
    assert!(
        !classify(
            "model.layers.1.mlp.experts.gate_up_proj_bias",
            &[8, 256],
            None
        )
        .stacked_experts
    );
    assert!(
        !classify(
            "model.layers.1.mlp.experts.3.down_proj.weight",
            &[64, 128],
            None
        )
        .stacked_experts
    );
    // A dense fused gate/up (Phi-3) is not an expert stack even if someone stored it 3-D.
    let dense = classify(
        "model.layers.1.mlp.gate_up_proj.weight",
        &[1, 256, 64],
        None,
    );
    assert_eq!(dense.block_type, BlockType::MlpGateUp);
    assert!(!dense.stacked_experts);
}

#[test]
fn scale_companions_share_the_role_of_their_weight() {
    for weight in [
        "model.layers.0.self_attn.kv_b_proj.weight",
        "model.layers.3.mlp.experts.17.down_proj.weight",
        "model.layers.3.mlp.shared_experts.gate_proj.weight",
    ] {
        let scale = weight.replace(".weight", ".weight_scale_inv");
        assert_eq!(scale_companion_of(&scale).as_deref(), Some(weight));
        assert_eq!(
            classify(&scale, &[2, 3], None),
            classify(weight, &[256, 384], None),
            "{scale}"
        );
    }
}

#[test]
fn natural_order_sorts_a_sharded_name_list_by_layer() {
    let mut names: Vec<String> = (0..12)
        .rev()
        .map(|layer| format!("model.layers.{layer}.mlp.down_proj.weight"))
        .collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    let layers: Vec<Option<usize>> = names
        .iter()
        .map(|name| classify(name, &[], None).layer_index)
        .collect();
    assert_eq!(layers, (0..12).map(Some).collect::<Vec<_>>());
}

/// GGUF names (llama.cpp's `gguf-py/gguf/constants.py`) with their expected roles.
fn check_gguf_table(family: &str, rows: &[Row]) {
    for &(name, block_type, layer_index, expert_index) in rows {
        let role = classify_gguf(name, &[8, 8], None);
        let actual = (
            role.block_type.as_str(),
            role.layer_index,
            role.expert_index,
            role.stacked_experts,
        );
        assert_eq!(
            actual,
            (block_type, layer_index, expert_index, false),
            "{family}: {name}"
        );
    }
}

#[test]
fn gguf_llama_and_qwen3_names() {
    check_gguf_table(
        "gguf llama",
        &[
            ("token_embd.weight", "embedding", None, None),
            ("output_norm.weight", "norm", None, None),
            ("output.weight", "output", None, None),
            ("rope_freqs.weight", "other", None, None),
            ("blk.0.attn_norm.weight", "norm", Some(0), None),
            ("blk.0.attn_q.weight", "q_proj", Some(0), None),
            ("blk.0.attn_k.weight", "k_proj", Some(0), None),
            ("blk.0.attn_v.weight", "v_proj", Some(0), None),
            ("blk.0.attn_q.bias", "q_proj", Some(0), None),
            ("blk.17.attn_output.weight", "o_proj", Some(17), None),
            ("blk.17.attn_q_norm.weight", "norm", Some(17), None),
            ("blk.17.attn_k_norm.weight", "norm", Some(17), None),
            ("blk.31.ffn_norm.weight", "norm", Some(31), None),
            ("blk.31.ffn_gate.weight", "mlp_gate", Some(31), None),
            ("blk.31.ffn_up.weight", "mlp_up", Some(31), None),
            ("blk.31.ffn_down.weight", "mlp_down", Some(31), None),
            // Gemma 2/3 and OLMo 2 extra norms.
            ("blk.4.post_attention_norm.weight", "norm", Some(4), None),
            ("blk.4.post_ffw_norm.weight", "norm", Some(4), None),
        ],
    );
}

#[test]
fn gguf_fused_attention_position_tables_and_bert() {
    check_gguf_table(
        "gguf gpt2 / neox / phi3 / bert",
        &[
            ("position_embd.weight", "position_embedding", None, None),
            ("blk.2.attn_qkv.weight", "qkv_proj", Some(2), None),
            ("blk.2.attn_qkv.bias", "qkv_proj", Some(2), None),
            ("blk.2.ffn_up.bias", "mlp_up", Some(2), None),
            ("token_types.weight", "other", None, None),
            ("token_embd_norm.weight", "norm", None, None),
            ("blk.2.attn_output_norm.weight", "norm", Some(2), None),
            ("blk.2.layer_output_norm.weight", "norm", Some(2), None),
        ],
    );
}

#[test]
fn gguf_moe_names_stacked_shared_and_per_expert() {
    check_gguf_table(
        "gguf moe",
        &[
            ("blk.3.ffn_gate_inp.weight", "moe_router", Some(3), None),
            (
                "blk.3.ffn_gate_inp_shexp.weight",
                "moe_router",
                Some(3),
                None,
            ),
            ("blk.3.exp_probs_b.bias", "moe_router", Some(3), None),
            ("blk.3.ffn_gate_shexp.weight", "moe", Some(3), None),
            ("blk.3.ffn_up_shexp.weight", "moe", Some(3), None),
            ("blk.3.ffn_down_shexp.weight", "moe", Some(3), None),
            // Older Mixtral files store one tensor per expert.
            ("blk.3.ffn_gate.7.weight", "moe", Some(3), Some(7)),
            ("blk.3.ffn_down.0.weight", "moe", Some(3), Some(0)),
        ],
    );
    // Stacked experts [E, out, in]: one row per expert, unless the config says otherwise.
    let mut config = ModelConfig::default();
    for part in ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"] {
        let name = format!("blk.1.{part}.weight");
        let role = classify_gguf(&name, &[8, 32, 16], None);
        assert_eq!(role.block_type, BlockType::Moe, "{name}");
        assert_eq!((role.layer_index, role.expert_index), (Some(1), None));
        assert!(role.stacked_experts, "{name}");
        config.num_experts = Some(8);
        assert!(classify_gguf(&name, &[8, 32, 16], Some(&config)).stacked_experts);
        config.num_experts = Some(4);
        assert!(!classify_gguf(&name, &[8, 32, 16], Some(&config)).stacked_experts);
        assert!(!classify_gguf(&name, &[32, 16], None).stacked_experts);
    }
}

#[test]
fn gguf_deepseek_mla_and_multi_token_prediction() {
    check_gguf_table(
        "gguf deepseek2",
        &[
            ("blk.0.attn_q_a.weight", "q_proj", Some(0), None),
            ("blk.0.attn_q_b.weight", "q_proj", Some(0), None),
            ("blk.0.attn_q_a_norm.weight", "norm", Some(0), None),
            ("blk.0.attn_kv_a_mqa.weight", "qkv_proj", Some(0), None),
            ("blk.0.attn_kv_a_norm.weight", "norm", Some(0), None),
            ("blk.0.attn_kv_b.weight", "qkv_proj", Some(0), None),
            ("blk.0.attn_k_b.weight", "k_proj", Some(0), None),
            ("blk.0.attn_v_b.weight", "v_proj", Some(0), None),
            (
                "blk.61.nextn.embed_tokens.weight",
                "embedding",
                Some(61),
                None,
            ),
            ("blk.61.nextn.enorm.weight", "norm", Some(61), None),
            ("blk.61.nextn.hnorm.weight", "norm", Some(61), None),
            ("blk.61.nextn.eh_proj.weight", "other", Some(61), None),
            (
                "blk.61.nextn.shared_head_head.weight",
                "output",
                Some(61),
                None,
            ),
            (
                "blk.61.nextn.shared_head_norm.weight",
                "norm",
                Some(61),
                None,
            ),
        ],
    );
}

#[test]
fn gguf_unknown_or_malformed_names_never_fail() {
    check_gguf_table(
        "gguf odd",
        &[
            ("", "other", None, None),
            ("blk", "other", None, None),
            ("blk.x.attn_q.weight", "q_proj", None, None),
            ("blk.3.weight", "other", Some(3), None),
            ("blk.3.ssm_conv1d.weight", "other", Some(3), None),
            ("blk.3.output.weight", "other", Some(3), None),
            ("weight", "other", None, None),
        ],
    );
}
