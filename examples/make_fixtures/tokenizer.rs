//! Small `tokenizer.json` files in the Hugging Face tokenizers format: the models' (as many tokens
//! as the embedding has rows, no pipeline), and three with the whole pipeline of their family and
//! planted unreachable tokens (`tokenizers/`).

use std::io;
use std::path::Path;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Value, json};

use super::json_file::{self, object};

/// Printable ASCII without the space: the base alphabet of both tokenizers.
fn printable_ascii() -> impl Iterator<Item = String> {
    (b'!'..=b'~').map(|byte| char::from(byte).to_string())
}

fn lowercase() -> impl Iterator<Item = char> + Clone {
    'a'..='z'
}

/// Writes a byte-level-style BPE tokenizer of exactly `vocab_size` tokens to `path`: three
/// special tokens, printable ASCII, `Ġ` (the space marker), then merge results (`Ġ` + letter,
/// letter pairs, then pairs of letter pairs) until the vocabulary is full. Every merge joins two earlier tokens.
pub fn write_bpe(path: &Path, vocab_size: usize) -> io::Result<()> {
    let specials = ["<unk>", "<s>", "</s>"];
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    tokens.extend(printable_ascii());
    tokens.push("Ġ".to_string());
    let letter_pairs =
        || lowercase().flat_map(|first| lowercase().map(move |second| format!("{first}{second}")));
    // Four-letter merges come after every letter pair exists; they make room for 32,000 tokens
    // and leave the smaller vocabularies (and the committed fixtures) as they were.
    let pairs = lowercase()
        .map(|letter| ("Ġ".to_string(), letter.to_string()))
        .chain(lowercase().flat_map(|first| {
            lowercase().map(move |second| (first.to_string(), second.to_string()))
        }))
        .chain(
            letter_pairs()
                .flat_map(move |left| letter_pairs().map(move |right| (left.clone(), right))),
        );
    let merges_needed = vocab_size
        .checked_sub(tokens.len())
        .unwrap_or_else(|| panic!("a BPE vocabulary needs at least {} tokens", tokens.len()));
    let mut merges = Vec::with_capacity(merges_needed);
    for (left, right) in pairs.take(merges_needed) {
        tokens.push(format!("{left}{right}"));
        merges.push(format!("{left} {right}"));
    }
    assert_eq!(
        tokens.len(),
        vocab_size,
        "not enough merges for the vocabulary"
    );
    let model = Model {
        kind: "BPE",
        unk_token: Some("<unk>"),
        continuing_subword_prefix: None,
        max_input_chars_per_word: None,
        byte_fallback: None,
        vocab: Vocab(tokens),
        merges: Some(merges),
    };
    write(path, &specials, model, Pipeline::default())
}

/// Writes a BERT-style WordPiece tokenizer of exactly `vocab_size` tokens to `path`: five special
/// tokens, printable ASCII, `##` + letter continuations, then two-letter words.
pub fn write_wordpiece(path: &Path, vocab_size: usize) -> io::Result<()> {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    tokens.extend(printable_ascii());
    tokens.extend(lowercase().map(|letter| format!("##{letter}")));
    let words =
        lowercase().flat_map(|first| lowercase().map(move |second| format!("{first}{second}")));
    tokens.extend(words.take(vocab_size.saturating_sub(tokens.len())));
    assert_eq!(tokens.len(), vocab_size, "vocabulary size out of range");
    let model = Model {
        kind: "WordPiece",
        unk_token: Some("[UNK]"),
        continuing_subword_prefix: Some("##"),
        max_input_chars_per_word: Some(100),
        byte_fallback: None,
        vocab: Vocab(tokens),
        merges: None,
    };
    write(path, &specials, model, Pipeline::default())
}

/// The pipeline stages of a `tokenizer.json` around its model (null when `None`).
#[derive(Default)]
struct Pipeline {
    normalizer: Option<Value>,
    pre_tokenizer: Option<Value>,
    decoder: Option<Value>,
}

/// GPT-2's `bytes_to_unicode`: the character standing for each byte, by byte.
fn byte_characters() -> Vec<char> {
    let stands_for_itself = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 0x100;
    (0..=0xFF_u32)
        .map(|b| {
            if stands_for_itself(b) {
                char::from_u32(b).unwrap()
            } else {
                next += 1;
                char::from_u32(next - 1).unwrap()
            }
        })
        .collect()
}

/// Appends the merge of `left` and `right` (both already tokens) to `tokens` and `merges`.
fn merge(tokens: &mut Vec<String>, merges: &mut Vec<String>, left: &str, right: &str) {
    tokens.push(format!("{left}{right}"));
    merges.push(format!("{left} {right}"));
}

/// Writes `tokenizers/{byte-level-bpe,sentencepiece-bpe,wordpiece}.json`: each with the whole
/// pipeline of its family and planted tokens that encoding their own text never gives back
/// (README of the fixtures lists them).
pub fn write_round_trip_tokenizers(folder: &Path) -> io::Result<()> {
    write_byte_level_bpe(&folder.join("byte-level-bpe.json"))?;
    write_sentencepiece_bpe(&folder.join("sentencepiece-bpe.json"))?;
    write_bert_wordpiece(&folder.join("wordpiece.json"))
}

/// GPT-2's pipeline: `<|endoftext|>` (id 0), the 256 byte characters (ids 1–256), then merges
/// `Ġt` 257, `he` 258, `Ġthe` 259, `a.` 260 (unreachable: the split regex cuts "a." before the
/// period), `Ã©` 261 (é), `ä½` 262 (two of the three bytes of 你: partial UTF-8), and `the` 263
/// with no merge that makes it (unreachable: "the" encodes as `t` `he`).
fn write_byte_level_bpe(path: &Path) -> io::Result<()> {
    let specials = ["<|endoftext|>"];
    let bytes = byte_characters();
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    tokens.extend(bytes.iter().map(char::to_string));
    let mut merges = Vec::new();
    for (left, right) in [
        ("Ġ", "t"),
        ("h", "e"),
        ("Ġt", "he"),
        ("a", "."),
        ("Ã", "©"),
        ("ä", "½"),
    ] {
        merge(&mut tokens, &mut merges, left, right);
    }
    tokens.push("the".to_string());
    let byte_level = object(vec![
        ("add_prefix_space", json!(false)),
        ("trim_offsets", json!(true)),
        ("type", json!("ByteLevel")),
        ("use_regex", json!(true)),
    ]);
    let model = Model {
        kind: "BPE",
        unk_token: None,
        continuing_subword_prefix: None,
        max_input_chars_per_word: None,
        byte_fallback: Some(false),
        vocab: Vocab(tokens),
        merges: Some(merges),
    };
    let pipeline = Pipeline {
        normalizer: None,
        pre_tokenizer: Some(byte_level.clone()),
        decoder: Some(byte_level),
    };
    write(path, &specials, model, pipeline)
}

/// Llama 2's pipeline (prepend `▁`, spaces as `▁`, byte fallback; the decoder strips the leading
/// space): `<unk>` `<s>` `</s>` (ids 0–2), byte tokens `<0x00>`–`<0xFF>` (ids 3–258), `▁` 259,
/// `a`–`z` 260–285, `«` 286, `.` 287, then merges `▁t` 288, `he` 289, `▁the` 290, `▁«` 291, `in`
/// 292, `ing` 293, and `the` 294 with no merge that makes it. Unreachable: `the`, and the byte
/// tokens of the space, `.` and `a`–`z` (their characters have tokens of their own).
fn write_sentencepiece_bpe(path: &Path) -> io::Result<()> {
    let specials = ["<unk>", "<s>", "</s>"];
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    tokens.extend((0..=0xFF_u32).map(|b| format!("<0x{b:02X}>")));
    tokens.push("▁".to_string());
    tokens.extend(lowercase().map(String::from));
    tokens.push("«".to_string());
    tokens.push(".".to_string());
    let mut merges = Vec::new();
    for (left, right) in [
        ("▁", "t"),
        ("h", "e"),
        ("▁t", "he"),
        ("▁", "«"),
        ("i", "n"),
        ("in", "g"),
    ] {
        merge(&mut tokens, &mut merges, left, right);
    }
    tokens.push("the".to_string());
    let replace = |from: &str, to: &str| {
        object(vec![
            ("content", json!(to)),
            ("pattern", object(vec![("String", json!(from))])),
            ("type", json!("Replace")),
        ])
    };
    let normalizer = object(vec![
        (
            "normalizers",
            json!([
                object(vec![("prepend", json!("▁")), ("type", json!("Prepend"))]),
                replace(" ", "▁"),
            ]),
        ),
        ("type", json!("Sequence")),
    ]);
    let decoder = object(vec![
        (
            "decoders",
            json!([
                replace("▁", " "),
                object(vec![("type", json!("ByteFallback"))]),
                object(vec![("type", json!("Fuse"))]),
                object(vec![
                    ("content", json!(" ")),
                    ("start", json!(1)),
                    ("stop", json!(0)),
                    ("type", json!("Strip")),
                ]),
            ]),
        ),
        ("type", json!("Sequence")),
    ]);
    let model = Model {
        kind: "BPE",
        unk_token: Some("<unk>"),
        continuing_subword_prefix: None,
        max_input_chars_per_word: None,
        byte_fallback: Some(true),
        vocab: Vocab(tokens),
        merges: Some(merges),
    };
    let pipeline = Pipeline {
        normalizer: Some(normalizer),
        pre_tokenizer: None,
        decoder: Some(decoder),
    };
    write(path, &specials, model, pipeline)
}

/// BERT's pipeline (lowercasing normaliser, split on whitespace and punctuation, WordPiece
/// decoder): `[PAD]` `[UNK]` `[CLS]` `[SEP]` `[MASK]` (ids 0–4), `a`–`z` 5–30, `.` 31, `the` 32,
/// `##s` 33, `##ing` 34, `The` 35, `a.b` 36. Unreachable: `##s` and `##ing` (alone they decode
/// to text beginning with `##`, which the pre-tokeniser splits), `The` (lowercased to `the`) and
/// `a.b` (split at the period).
fn write_bert_wordpiece(path: &Path) -> io::Result<()> {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    tokens.extend(lowercase().map(String::from));
    tokens.extend([".", "the", "##s", "##ing", "The", "a.b"].map(String::from));
    let normalizer = object(vec![
        ("clean_text", json!(true)),
        ("handle_chinese_chars", json!(true)),
        ("lowercase", json!(true)),
        ("strip_accents", Value::Null),
        ("type", json!("BertNormalizer")),
    ]);
    let decoder = object(vec![
        ("cleanup", json!(true)),
        ("prefix", json!("##")),
        ("type", json!("WordPiece")),
    ]);
    let model = Model {
        kind: "WordPiece",
        unk_token: Some("[UNK]"),
        continuing_subword_prefix: Some("##"),
        max_input_chars_per_word: Some(100),
        byte_fallback: None,
        vocab: Vocab(tokens),
        merges: None,
    };
    let pipeline = Pipeline {
        normalizer: Some(normalizer),
        pre_tokenizer: Some(object(vec![("type", json!("BertPreTokenizer"))])),
        decoder: Some(decoder),
    };
    write(path, &specials, model, pipeline)
}

fn write(path: &Path, specials: &[&str], model: Model, pipeline: Pipeline) -> io::Result<()> {
    let added_tokens = specials
        .iter()
        .enumerate()
        .map(|(id, content)| AddedToken {
            id,
            content: content.to_string(),
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: true,
        })
        .collect();
    let tokenizer = TokenizerFile {
        version: "1.0",
        truncation: None,
        padding: None,
        added_tokens,
        normalizer: pipeline.normalizer,
        pre_tokenizer: pipeline.pre_tokenizer,
        post_processor: None,
        decoder: pipeline.decoder,
        model,
    };
    json_file::write_pretty(path, &tokenizer)
}

/// The top level of `tokenizer.json`; absent pipeline stages are null.
#[derive(Serialize)]
struct TokenizerFile {
    version: &'static str,
    truncation: Option<()>,
    padding: Option<()>,
    added_tokens: Vec<AddedToken>,
    normalizer: Option<Value>,
    pre_tokenizer: Option<Value>,
    post_processor: Option<()>,
    decoder: Option<Value>,
    model: Model,
}

#[derive(Serialize)]
struct AddedToken {
    id: usize,
    content: String,
    single_word: bool,
    lstrip: bool,
    rstrip: bool,
    normalized: bool,
    special: bool,
}

#[derive(Serialize)]
struct Model {
    #[serde(rename = "type")]
    kind: &'static str,
    unk_token: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuing_subword_prefix: Option<&'static str>,
    /// WordPiece's longest word (the `tokenizers` crate requires the field).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_input_chars_per_word: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    byte_fallback: Option<bool>,
    vocab: Vocab,
    #[serde(skip_serializing_if = "Option::is_none")]
    merges: Option<Vec<String>>,
}

/// Tokens in id order, written as a `{token: id}` object in that order, as tokenizers does.
struct Vocab(Vec<String>);

impl Serialize for Vocab {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, token) in self.0.iter().enumerate() {
            map.serialize_entry(token, &id)?;
        }
        map.end()
    }
}
