//! Small `tokenizer.json` files in the Hugging Face tokenizers format, with as many tokens as the
//! embedding has rows.

use std::io;
use std::path::Path;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::json_file;

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
        unk_token: "<unk>",
        continuing_subword_prefix: None,
        vocab: Vocab(tokens),
        merges: Some(merges),
    };
    write(path, &specials, model)
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
        unk_token: "[UNK]",
        continuing_subword_prefix: Some("##"),
        vocab: Vocab(tokens),
        merges: None,
    };
    write(path, &specials, model)
}

fn write(path: &Path, specials: &[&str], model: Model) -> io::Result<()> {
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
        normalizer: None,
        pre_tokenizer: None,
        post_processor: None,
        decoder: None,
        model,
    };
    json_file::write_pretty(path, &tokenizer)
}

/// The top level of `tokenizer.json`; the pipeline stages aib does not use are null.
#[derive(Serialize)]
struct TokenizerFile {
    version: &'static str,
    truncation: Option<()>,
    padding: Option<()>,
    added_tokens: Vec<AddedToken>,
    normalizer: Option<()>,
    pre_tokenizer: Option<()>,
    post_processor: Option<()>,
    decoder: Option<()>,
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
    unk_token: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuing_subword_prefix: Option<&'static str>,
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
