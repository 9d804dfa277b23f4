//! A model's `config.json`: the few architecture facts aib uses to interpret tensor names.
//!
//! Every field is optional and unknown fields are ignored, because configs differ by family and
//! a missing fact only means aib falls back to names alone. Multimodal checkpoints (Llava,
//! Gemma 3, Qwen2-VL, …) keep the language model's facts in a nested `text_config`; a field absent
//! at the top level is taken from there, so callers see the text model without knowing the layout.
//! GPT-2-style configs (`n_layer`, `n_head`, `n_embd`, `n_inner`) fill the same fields, and so do
//! a GGUF file's metadata keys ([`from_gguf`]).

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::formats::gguf::{Metadata, Value};

/// The architecture facts of a checkpoint, as its `config.json` states them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Class names such as `["LlamaForCausalLM"]`.
    pub architectures: Option<Vec<String>>,
    /// The family tag, e.g. `llama`, `qwen3_moe`, `deepseek_v3`, `gpt2`.
    pub model_type: Option<String>,
    /// The number of transformer blocks (DeepSeek-V3's multi-token-prediction layer comes after these).
    pub num_hidden_layers: Option<usize>,
    /// Query heads per block.
    pub num_attention_heads: Option<usize>,
    /// Key/value heads per block; fewer than the query heads under grouped-query attention.
    pub num_key_value_heads: Option<usize>,
    /// The width of one attention head, when stated.
    pub head_dim: Option<usize>,
    /// The width of the residual stream.
    pub hidden_size: Option<usize>,
    /// The width of the dense MLP.
    pub intermediate_size: Option<usize>,
    /// Routed experts per MoE layer (Qwen2-MoE, Qwen3-MoE).
    pub num_experts: Option<usize>,
    /// Routed experts per MoE layer (Mixtral, Phi-3.5-MoE).
    pub num_local_experts: Option<usize>,
    /// Routed experts per MoE layer (DeepSeek-V2/V3).
    pub n_routed_experts: Option<usize>,
    /// Whether the output head shares the token embedding. Absent means not stated; transformers
    /// then assumes `true`.
    pub tie_word_embeddings: Option<bool>,
    /// Rows of the token embedding.
    pub vocab_size: Option<usize>,
    /// The language model's config inside a multimodal config; already merged into the fields
    /// above by [`read`] and [`parse`].
    pub text_config: Option<Box<ModelConfig>>,
}

impl ModelConfig {
    /// The number of routed experts per MoE layer, whichever field the family uses to state it.
    pub fn expert_count(&self) -> Option<usize> {
        self.num_experts
            .or(self.num_local_experts)
            .or(self.n_routed_experts)
    }

    /// Fills every field absent here from the nested `text_config`, if any.
    fn with_text_config_merged(mut self) -> ModelConfig {
        let Some(text) = self.text_config.take() else {
            return self;
        };
        let text = text.with_text_config_merged();
        let merged = ModelConfig {
            architectures: self.architectures.or(text.architectures.clone()),
            model_type: self.model_type.or(text.model_type.clone()),
            num_hidden_layers: self.num_hidden_layers.or(text.num_hidden_layers),
            num_attention_heads: self.num_attention_heads.or(text.num_attention_heads),
            num_key_value_heads: self.num_key_value_heads.or(text.num_key_value_heads),
            head_dim: self.head_dim.or(text.head_dim),
            hidden_size: self.hidden_size.or(text.hidden_size),
            intermediate_size: self.intermediate_size.or(text.intermediate_size),
            num_experts: self.num_experts.or(text.num_experts),
            num_local_experts: self.num_local_experts.or(text.num_local_experts),
            n_routed_experts: self.n_routed_experts.or(text.n_routed_experts),
            tie_word_embeddings: self.tie_word_embeddings.or(text.tie_word_embeddings),
            vocab_size: self.vocab_size.or(text.vocab_size),
            text_config: None,
        };
        ModelConfig {
            text_config: Some(Box::new(text)),
            ..merged
        }
    }
}

/// What `config.json` holds: the fields above plus GPT-2's own names for four of them, kept apart
/// so that a config stating both spellings is not a duplicate-field error.
#[derive(Deserialize)]
struct StoredConfig {
    #[serde(flatten)]
    config: ModelConfig,
    n_layer: Option<usize>,
    n_head: Option<usize>,
    n_embd: Option<usize>,
    n_inner: Option<usize>,
}

impl StoredConfig {
    /// The config with GPT-2's names folded in where the standard ones are absent.
    fn into_model_config(self) -> ModelConfig {
        let config = self.config;
        ModelConfig {
            num_hidden_layers: config.num_hidden_layers.or(self.n_layer),
            num_attention_heads: config.num_attention_heads.or(self.n_head),
            hidden_size: config.hidden_size.or(self.n_embd),
            intermediate_size: config.intermediate_size.or(self.n_inner),
            ..config
        }
    }
}

/// Reads and parses the `config.json` at `path`.
pub fn read(path: &Path) -> Result<ModelConfig> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::reading_text(path, err))?;
    parse(&text).map_err(|err| err.context(path.display()))
}

/// The config that a GGUF file's metadata states, in llama.cpp's keys: `general.architecture`
/// (the family tag) and `{arch}.block_count`, `.attention.head_count`, `.attention.head_count_kv`,
/// `.attention.key_length` (the head width), `.embedding_length`, `.feed_forward_length`,
/// `.expert_count`, `.vocab_size` (else the length of `tokenizer.ggml.tokens`). `tied`: the file
/// has no output head of its own. A key that is absent or not a single integer (some families
/// give head counts per layer, as arrays) leaves its field empty.
pub fn from_gguf(metadata: &Metadata, tied: bool) -> ModelConfig {
    let architecture = metadata.get_str("general.architecture");
    let count = |key: &str| {
        let arch = architecture?;
        let value = metadata.get_u64(&format!("{arch}.{key}"))?;
        usize::try_from(value).ok()
    };
    let vocab_size = count("vocab_size").or_else(|| {
        metadata
            .get("tokenizer.ggml.tokens")
            .and_then(|tokens| match tokens {
                Value::Array(_, values) => Some(values.len()),
                _ => None,
            })
    });
    ModelConfig {
        model_type: architecture.map(str::to_string),
        num_hidden_layers: count("block_count"),
        num_attention_heads: count("attention.head_count"),
        num_key_value_heads: count("attention.head_count_kv"),
        head_dim: count("attention.key_length"),
        hidden_size: count("embedding_length"),
        intermediate_size: count("feed_forward_length"),
        num_experts: count("expert_count"),
        tie_word_embeddings: Some(tied),
        vocab_size,
        ..ModelConfig::default()
    }
}

/// Parses the text of a `config.json`; the error names no file (see [`read`]).
pub fn parse(text: &str) -> Result<ModelConfig> {
    let stored: StoredConfig = serde_json::from_str(text)
        .map_err(|err| Error::input(format!("not a valid model config: {err}")))?;
    Ok(stored.into_model_config().with_text_config_merged())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn reads_a_llama_config_and_ignores_unknown_fields() {
        let config = parse(
            r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
                "head_dim": 64, "hidden_size": 2048, "intermediate_size": 8192,
                "tie_word_embeddings": true, "vocab_size": 128256,
                "rope_scaling": {"factor": 32.0, "rope_type": "llama3"}, "torch_dtype": "bfloat16"}"#,
        )
        .unwrap();
        assert_eq!(
            config.architectures.as_deref(),
            Some(&["LlamaForCausalLM".to_string()][..])
        );
        assert_eq!(config.model_type.as_deref(), Some("llama"));
        assert_eq!(config.num_hidden_layers, Some(16));
        assert_eq!(config.num_attention_heads, Some(32));
        assert_eq!(config.num_key_value_heads, Some(8));
        assert_eq!(config.head_dim, Some(64));
        assert_eq!(config.hidden_size, Some(2048));
        assert_eq!(config.intermediate_size, Some(8192));
        assert_eq!(config.tie_word_embeddings, Some(true));
        assert_eq!(config.vocab_size, Some(128256));
        assert_eq!(config.expert_count(), None);
    }

    #[test]
    fn expert_count_comes_from_whichever_field_the_family_uses() {
        let mixtral = parse(r#"{"num_local_experts": 8}"#).unwrap();
        let qwen = parse(r#"{"num_experts": 128}"#).unwrap();
        let deepseek = parse(r#"{"n_routed_experts": 256}"#).unwrap();
        assert_eq!(mixtral.expert_count(), Some(8));
        assert_eq!(qwen.expert_count(), Some(128));
        assert_eq!(deepseek.expert_count(), Some(256));
    }

    #[test]
    fn gpt2_names_fill_the_standard_fields_without_overriding_them() {
        let gpt2 = parse(
            r#"{"model_type": "gpt2", "n_layer": 12, "n_head": 12, "n_embd": 768,
                "n_inner": null, "n_positions": 1024, "vocab_size": 50257}"#,
        )
        .unwrap();
        assert_eq!(gpt2.num_hidden_layers, Some(12));
        assert_eq!(gpt2.num_attention_heads, Some(12));
        assert_eq!(gpt2.hidden_size, Some(768));
        assert_eq!(gpt2.intermediate_size, None);
        let both = parse(r#"{"n_layer": 2, "num_hidden_layers": 3, "n_inner": 64}"#).unwrap();
        assert_eq!(both.num_hidden_layers, Some(3));
        assert_eq!(both.intermediate_size, Some(64));
    }

    #[test]
    fn null_and_missing_fields_are_none() {
        let config = parse(r#"{"head_dim": null}"#).unwrap();
        assert_eq!(config, ModelConfig::default());
    }

    #[test]
    fn multimodal_text_config_fills_missing_fields_but_not_present_ones() {
        let config = parse(
            r#"{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                "vision_config": {"hidden_size": 1152, "num_hidden_layers": 27},
                "text_config": {"model_type": "gemma3_text", "hidden_size": 2560,
                                "num_hidden_layers": 34, "num_key_value_heads": 4,
                                "vocab_size": 262208}}"#,
        )
        .unwrap();
        assert_eq!(config.model_type.as_deref(), Some("gemma3"));
        assert_eq!(config.hidden_size, Some(2560));
        assert_eq!(config.num_hidden_layers, Some(34));
        assert_eq!(config.num_key_value_heads, Some(4));
        assert_eq!(config.vocab_size, Some(262208));
        let text = config.text_config.as_deref().unwrap();
        assert_eq!(text.model_type.as_deref(), Some("gemma3_text"));
    }

    #[test]
    fn invalid_json_and_wrong_types_are_input_errors() {
        for text in ["{", "[1, 2]", r#"{"num_hidden_layers": "twelve"}"#] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input, "{text}");
        }
    }

    #[test]
    fn read_names_the_file_in_every_error() {
        let folder = tempfile::tempdir().unwrap();
        let missing = folder.path().join("config.json");
        let err = read(&missing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("config.json"), "{}", err.message());

        std::fs::write(&missing, "{not json").unwrap();
        let err = read(&missing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input);
        assert!(err.message().contains("config.json"), "{}", err.message());

        std::fs::write(&missing, r#"{"hidden_size": 64}"#).unwrap();
        assert_eq!(read(&missing).unwrap().hidden_size, Some(64));
    }

    #[test]
    fn gguf_metadata_fills_the_same_fields() {
        let pair = |key: &str, value: Value| (key.to_string(), value);
        let tokens = Value::Array(
            crate::formats::gguf::ValueType::String,
            ["<s>", "a", "b"]
                .map(|t| Value::String(t.to_string()))
                .to_vec(),
        );
        let metadata = Metadata::from_entries(vec![
            pair(
                "general.architecture",
                Value::String("qwen3moe".to_string()),
            ),
            pair("qwen3moe.block_count", Value::U32(48)),
            pair("qwen3moe.attention.head_count", Value::U32(32)),
            pair("qwen3moe.attention.head_count_kv", Value::U64(4)),
            pair("qwen3moe.attention.key_length", Value::U32(128)),
            pair("qwen3moe.embedding_length", Value::U32(2048)),
            pair("qwen3moe.feed_forward_length", Value::U32(6144)),
            pair("qwen3moe.expert_count", Value::U32(128)),
            // Another family's keys are not this model's.
            pair("llama.block_count", Value::U32(7)),
            pair("tokenizer.ggml.tokens", tokens),
        ]);
        let config = from_gguf(&metadata, false);
        assert_eq!(
            config,
            ModelConfig {
                model_type: Some("qwen3moe".to_string()),
                num_hidden_layers: Some(48),
                num_attention_heads: Some(32),
                num_key_value_heads: Some(4),
                head_dim: Some(128),
                hidden_size: Some(2048),
                intermediate_size: Some(6144),
                num_experts: Some(128),
                tie_word_embeddings: Some(false),
                vocab_size: Some(3),
                ..ModelConfig::default()
            }
        );
        assert_eq!(config.expert_count(), Some(128));

        // Per-layer head counts (an array), negative or absent values leave fields empty.
        let metadata = Metadata::from_entries(vec![
            pair("general.architecture", Value::String("openelm".to_string())),
            pair(
                "openelm.attention.head_count",
                Value::Array(crate::formats::gguf::ValueType::U32, vec![Value::U32(12)]),
            ),
            pair("openelm.block_count", Value::I32(-1)),
            pair("openelm.vocab_size", Value::U32(32000)),
        ]);
        let config = from_gguf(&metadata, true);
        assert_eq!(config.num_attention_heads, None);
        assert_eq!(config.num_hidden_layers, None);
        assert_eq!(config.vocab_size, Some(32000));
        assert_eq!(config.tie_word_embeddings, Some(true));
        assert_eq!(from_gguf(&Metadata::default(), true).model_type, None);
    }
}
