//! The vocabulary of a checkpoint, id → readable text, from `tokenizer.json` (the Hugging Face
//! tokenizers format), a plain `vocab.txt`, or a GGUF file's `tokenizer.ggml.tokens`.
//!
//! The id → piece table is read with serde_json; encoding text (the unreachable-token check of
//! `aib embed`) is left to the `tokenizers` crate, which runs the file's whole pipeline.
//!
//! Pieces are made readable by the convention of their tokenizer:
//! - byte-level BPE (GPT-2, Qwen, Llama 3): each character stands for one byte through GPT-2's
//!   byte-to-unicode table; the bytes are decoded as UTF-8 (invalid sequences as U+FFFD), so `Ġ`
//!   becomes a space;
//! - SentencePiece (Llama 2, Unigram models): `▁` becomes a space, byte tokens such as `<0x0A>`
//!   stay as written;
//! - WordPiece (BERT) and everything else: as written (`##ing` keeps its continuation mark).
//!
//! Added tokens (`added_tokens`, special or not) are shown as written.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Largest id accepted: far above any real vocabulary, low enough that a corrupt id cannot make
/// the table exhaust memory.
const MAX_TOKEN_ID: u64 = 1 << 24;

/// How a tokenizer spells its pieces, which decides how they are made readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceStyle {
    /// GPT-2's byte-to-unicode characters (`Ġ` is a space).
    ByteLevel,
    /// SentencePiece's `▁` for a space.
    Metaspace,
    /// Pieces are plain text (WordPiece, word-level, `vocab.txt`).
    Plain,
}

/// The vocabulary of a tokenizer: readable text by token id.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    /// Readable text and whether it is a special added token, by id. A map, not a table indexed
    /// by id: memory follows the tokens there are, so one stray id of 16 million in a 5 KB file
    /// costs one entry, not 400 MB of empty slots.
    tokens: BTreeMap<usize, Token>,
    /// The tokenizer's model type as the file names it (`BPE`, `Unigram`, `WordPiece`, …), or
    /// `vocab.txt`.
    model_type: String,
    style: PieceStyle,
}

impl Vocabulary {
    /// Reads the vocabulary file at `path`: a `vocab.txt` by its name, else a `tokenizer.json`.
    pub fn open(path: &Path) -> Result<Vocabulary> {
        if path.file_name().is_some_and(|name| name == "vocab.txt") {
            Vocabulary::from_vocab_txt(path)
        } else {
            Vocabulary::from_tokenizer_json(path)
        }
    }

    /// Reads a Hugging Face `tokenizer.json`.
    pub fn from_tokenizer_json(path: &Path) -> Result<Vocabulary> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::reading_text(path, e))?;
        Vocabulary::parse_tokenizer_json(&text)
            .map_err(|e| Error::input(format!("{}: {}", path.display(), e.message())))
    }

    /// Reads a `vocab.txt`: one token per line, the id is the line number from 0.
    pub fn from_vocab_txt(path: &Path) -> Result<Vocabulary> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::reading_text(path, e))?;
        Ok(Vocabulary::parse_vocab_txt(&text))
    }

    /// The vocabulary of a `vocab.txt` text.
    pub fn parse_vocab_txt(text: &str) -> Vocabulary {
        let tokens = text
            .lines()
            .enumerate()
            .map(|(id, line)| {
                let piece = line.trim_end_matches('\r');
                (id, Token::of_piece(piece, PieceStyle::Plain))
            })
            .collect();
        Vocabulary {
            tokens,
            model_type: "vocab.txt".to_string(),
            style: PieceStyle::Plain,
        }
    }

    /// The vocabulary of a GGUF file's `tokenizer.ggml.tokens` (id → piece), made readable by the
    /// spelling its pieces show: `▁` for SentencePiece, a leading `Ġ` for byte-level BPE.
    pub fn from_gguf_tokens(pieces: &[String]) -> Vocabulary {
        let style = if pieces.iter().any(|p| p.contains('▁')) {
            PieceStyle::Metaspace
        } else if pieces.iter().any(|p| p.starts_with('Ġ')) {
            PieceStyle::ByteLevel
        } else {
            PieceStyle::Plain
        };
        Vocabulary {
            tokens: pieces
                .iter()
                .enumerate()
                .map(|(id, piece)| (id, Token::of_piece(piece, style)))
                .collect(),
            model_type: "tokenizer.ggml.tokens".to_string(),
            style,
        }
    }

    /// The vocabulary of a `tokenizer.json` text. Errors (kind Input) name what is malformed.
    pub fn parse_tokenizer_json(text: &str) -> Result<Vocabulary> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| Error::input(format!("not valid JSON: {e}")))?;
        let model = root
            .get("model")
            .ok_or_else(|| Error::input("no \"model\" object"))?;
        let model_type = model
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let pieces = model_pieces(model)?;
        let style = piece_style(&root, &model_type, &pieces);
        let mut vocabulary = Vocabulary {
            tokens: BTreeMap::new(),
            model_type,
            style,
        };
        for (id, piece) in pieces {
            vocabulary.tokens.insert(id, Token::of_piece(&piece, style));
        }
        if let Some(added) = root.get("added_tokens").filter(|v| !v.is_null()) {
            let added = added
                .as_array()
                .ok_or_else(|| Error::input("\"added_tokens\" is not a list"))?;
            for token in added {
                let id = token.get("id").and_then(Value::as_u64);
                let content = token.get("content").and_then(Value::as_str);
                let (Some(id), Some(content)) = (id, content) else {
                    return Err(Error::input(format!(
                        "an added token without an integer \"id\" and a string \"content\": {token}"
                    )));
                };
                let special = token
                    .get("special")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let token = Token {
                    text: content.to_string(),
                    special,
                    added: true,
                    partial_utf8: false,
                };
                vocabulary.tokens.insert(checked_id(id)?, token);
            }
        }
        Ok(vocabulary)
    }

    /// One past the largest token id.
    pub fn len(&self) -> usize {
        self.tokens.last_key_value().map_or(0, |(&id, _)| id + 1)
    }

    /// The number of ids that have a token (fewer than [`Vocabulary::len`] when ids are left
    /// out).
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary has no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The readable text of token `id`; `None` beyond the vocabulary or for an unused id.
    pub fn token(&self, id: usize) -> Option<&str> {
        self.tokens.get(&id).map(|token| token.text.as_str())
    }

    /// Whether token `id` is a special added token (what the tests check the parse by).
    #[cfg(test)]
    fn is_special(&self, id: usize) -> bool {
        self.tokens.get(&id).is_some_and(|token| token.special)
    }

    /// Whether token `id` is an added token (`added_tokens` of `tokenizer.json`, special or not).
    pub fn is_added(&self, id: usize) -> bool {
        self.tokens.get(&id).is_some_and(|token| token.added)
    }

    /// Whether token `id` stands for bytes that are not whole UTF-8 characters: a byte-level
    /// piece whose bytes are not valid UTF-8, or a SentencePiece byte token `<0xNN>` of a byte
    /// from 0x80 up (alone, never a whole character).
    pub fn is_partial_utf8(&self, id: usize) -> bool {
        self.tokens.get(&id).is_some_and(|token| token.partial_utf8)
    }

    /// The model type as the file names it (`BPE`, `Unigram`, `WordPiece`, …) or `vocab.txt`.
    pub fn model_type(&self) -> &str {
        &self.model_type
    }

    /// How the pieces were spelled.
    pub fn style(&self) -> PieceStyle {
        self.style
    }
}

/// One token of a vocabulary.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    /// Its readable text.
    text: String,
    /// Whether it is a special added token.
    special: bool,
    /// Whether it is an added token (special or not).
    added: bool,
    /// Whether its bytes are not whole UTF-8 characters (see [`Vocabulary::is_partial_utf8`]).
    partial_utf8: bool,
}

impl Token {
    /// A piece of the model's vocabulary (not an added token), spelled in `style`.
    fn of_piece(piece: &str, style: PieceStyle) -> Token {
        Token {
            text: readable_piece(piece, style),
            special: false,
            added: false,
            partial_utf8: is_partial_utf8(piece, style),
        }
    }
}

fn checked_id(id: u64) -> Result<usize> {
    if id >= MAX_TOKEN_ID {
        return Err(Error::input(format!(
            "token id {id} is beyond any vocabulary (at most {MAX_TOKEN_ID})"
        )));
    }
    Ok(id as usize)
}

/// (id, piece) pairs of `model.vocab`: an object piece → id (BPE, WordPiece, WordLevel) or a
/// list of [piece, score] whose index is the id (Unigram).
fn model_pieces(model: &Value) -> Result<Vec<(usize, String)>> {
    match model.get("vocab") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(piece, id)| {
                let id = id.as_u64().ok_or_else(|| {
                    Error::input(format!(
                        "the id of {piece:?} in model.vocab is not an integer"
                    ))
                })?;
                Ok((checked_id(id)?, piece.clone()))
            })
            .collect(),
        Some(Value::Array(entries)) => entries
            .iter()
            .enumerate()
            .map(|(id, entry)| match entry.get(0).and_then(Value::as_str) {
                Some(piece) if entry.get(1).is_some_and(Value::is_number) => {
                    Ok((id, piece.to_string()))
                }
                _ => Err(Error::input(format!(
                    "model.vocab entry {id} is not a [piece, score] pair: {entry}"
                ))),
            })
            .collect(),
        _ => Err(Error::input(
            "model.vocab is missing or neither an object nor a list",
        )),
    }
}

/// Whether any part of the pipeline named `kind` (e.g. a decoder of type `ByteLevel`, or one
/// inside a `Sequence`) is present under `value`.
fn mentions_type(value: &Value, kind: &str) -> bool {
    match value {
        Value::Object(map) => {
            map.get("type").and_then(Value::as_str) == Some(kind)
                || map.values().any(|v| mentions_type(v, kind))
        }
        Value::Array(items) => items.iter().any(|v| mentions_type(v, kind)),
        _ => false,
    }
}

/// The spelling of the pieces: from the decoder and pre-tokeniser when they say, else from the
/// pieces themselves (files that leave the pipeline out, as small test tokenizers do).
fn piece_style(root: &Value, model_type: &str, pieces: &[(usize, String)]) -> PieceStyle {
    let pipeline = [root.get("decoder"), root.get("pre_tokenizer")];
    let says = |kind| pipeline.iter().flatten().any(|v| mentions_type(v, kind));
    if says("ByteLevel") {
        return PieceStyle::ByteLevel;
    }
    if says("Metaspace") || model_type == "Unigram" {
        return PieceStyle::Metaspace;
    }
    if pieces.iter().any(|(_, p)| p.contains('▁')) {
        return PieceStyle::Metaspace;
    }
    if model_type == "BPE" && pieces.iter().any(|(_, p)| p.starts_with('Ġ')) {
        return PieceStyle::ByteLevel;
    }
    PieceStyle::Plain
}

/// The piece as text a person can read (see the module documentation).
fn readable_piece(piece: &str, style: PieceStyle) -> String {
    match style {
        PieceStyle::ByteLevel => {
            let mut bytes = Vec::with_capacity(piece.len());
            for c in piece.chars() {
                match unicode_to_byte(c) {
                    Some(b) => bytes.push(b),
                    // Not from the table (a hand-added piece): keep the character itself.
                    None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        PieceStyle::Metaspace => piece.replace('▁', " "),
        PieceStyle::Plain => piece.to_string(),
    }
}

/// Whether `piece` stands for bytes that are not whole UTF-8 characters: byte-level pieces whose
/// bytes do not decode (pieces with characters outside the byte table are text, never partial);
/// SentencePiece byte tokens `<0xNN>` of 0x80 and up.
fn is_partial_utf8(piece: &str, style: PieceStyle) -> bool {
    match style {
        PieceStyle::ByteLevel => piece
            .chars()
            .map(unicode_to_byte)
            .collect::<Option<Vec<u8>>>()
            .is_some_and(|bytes| std::str::from_utf8(&bytes).is_err()),
        PieceStyle::Metaspace => piece
            .strip_prefix("<0x")
            .and_then(|rest| rest.strip_suffix('>'))
            .filter(|hex| hex.len() == 2)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .is_some_and(|byte| byte >= 0x80),
        PieceStyle::Plain => false,
    }
}

/// The inverse of GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves,
/// the other 68 bytes, in order, for U+0100 onwards.
fn unicode_to_byte(c: char) -> Option<u8> {
    let stands_for_itself = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let code = c as u32;
    if code < 0x100 {
        return stands_for_itself(code).then_some(code as u8);
    }
    let offset = code - 0x100;
    (0u32..=0xFF)
        .filter(|&b| !stands_for_itself(b))
        .nth(offset as usize)
        .map(|b| b as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GPT-2's `bytes_to_unicode`, written as its Python is.
    fn bytes_to_unicode() -> Vec<(u8, char)> {
        let mut bs: Vec<u32> = (0x21..=0x7E)
            .chain(0xA1..=0xAC)
            .chain(0xAE..=0xFF)
            .collect();
        let mut cs = bs.clone();
        let mut n = 0;
        for b in 0..256 {
            if !bs.contains(&b) {
                bs.push(b);
                cs.push(256 + n);
                n += 1;
            }
        }
        bs.iter()
            .zip(&cs)
            .map(|(&b, &c)| (b as u8, char::from_u32(c).unwrap()))
            .collect()
    }

    #[test]
    fn the_byte_table_inverts_gpt2s() {
        for (byte, c) in bytes_to_unicode() {
            assert_eq!(unicode_to_byte(c), Some(byte), "{c:?}");
        }
        assert_eq!(unicode_to_byte('Ġ'), Some(b' '));
        assert_eq!(unicode_to_byte('Ċ'), Some(b'\n'));
        assert_eq!(unicode_to_byte('€'), None);
    }

    #[test]
    fn byte_level_bpe_as_qwen_writes_it() {
        // "é" is bytes C3 A9, spelled Ã © by the table; "你" is E4 BD A0: ä ½ ł (U+0142 for A0).
        let text = r#"{
            "added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": true}],
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": {"Ġthe": 0, "Ċ": 1, "Ã©": 2, "ä½ł": 3, "Ã": 4}}
        }"#;
        let vocab = Vocabulary::parse_tokenizer_json(text).unwrap();
        assert_eq!(vocab.style(), PieceStyle::ByteLevel);
        assert_eq!(vocab.token(0), Some(" the"));
        assert_eq!(vocab.token(1), Some("\n"));
        assert_eq!(vocab.token(2), Some("é"));
        assert_eq!(vocab.token(3), Some("你"));
        // Half a character: lossy.
        assert_eq!(vocab.token(4), Some("\u{FFFD}"));
        assert_eq!(vocab.token(5), Some("<|endoftext|>"));
        assert!(vocab.is_special(5) && !vocab.is_special(0));
        assert!(vocab.is_added(5) && !vocab.is_added(0));
        // Only the half character is partial UTF-8.
        let partial: Vec<usize> = (0..6).filter(|&id| vocab.is_partial_utf8(id)).collect();
        assert_eq!(partial, vec![4]);
        assert_eq!(vocab.len(), 6);
        assert_eq!(vocab.token(6), None);
    }

    #[test]
    fn sentencepiece_bpe_as_llama2_writes_it() {
        let text = r#"{
            "added_tokens": [{"id": 0, "content": "<unk>", "special": true}],
            "decoder": {"type": "Sequence", "decoders": [{"type": "Replace"}, {"type": "ByteFallback"}]},
            "model": {"type": "BPE", "vocab": {"<unk>": 0, "<0x0A>": 1, "▁the": 2, "ing": 3, "<0xE4>": 4}}
        }"#;
        let vocab = Vocabulary::parse_tokenizer_json(text).unwrap();
        assert_eq!(vocab.style(), PieceStyle::Metaspace);
        // A byte from 0x80 up is never a whole character; a newline is.
        let partial: Vec<usize> = (0..5).filter(|&id| vocab.is_partial_utf8(id)).collect();
        assert_eq!(partial, vec![4]);
        assert!(vocab.is_added(0) && !vocab.is_added(1));
        assert_eq!(vocab.token(1), Some("<0x0A>"));
        assert_eq!(vocab.token(2), Some(" the"));
        assert_eq!(vocab.token(3), Some("ing"));
    }

    #[test]
    fn unigram_vocab_is_a_list_of_pairs() {
        let text = r#"{"model": {"type": "Unigram", "unk_id": 0,
            "vocab": [["<unk>", 0.0], ["▁a", -1.5], ["b", -3]]}}"#;
        let vocab = Vocabulary::parse_tokenizer_json(text).unwrap();
        assert_eq!(vocab.model_type(), "Unigram");
        assert_eq!(vocab.token(1), Some(" a"));
        assert_eq!(vocab.token(2), Some("b"));
        assert_eq!(vocab.len(), 3);
    }

    #[test]
    fn wordpiece_and_vocab_txt_stay_as_written() {
        let text =
            r###"{"model": {"type": "WordPiece", "vocab": {"[CLS]": 0, "##ing": 2, "play": 1}}}"###;
        let vocab = Vocabulary::parse_tokenizer_json(text).unwrap();
        assert_eq!(vocab.style(), PieceStyle::Plain);
        assert_eq!(vocab.token(2), Some("##ing"));
        let txt = Vocabulary::parse_vocab_txt("[PAD]\n[UNK]\n##s\r\nthe\n");
        assert_eq!(txt.len(), 4);
        assert_eq!(txt.token(2), Some("##s"));
        assert_eq!(txt.token(3), Some("the"));
    }

    #[test]
    fn the_repositorys_fixtures() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let llama = Vocabulary::open(&root.join("llama-tiny/tokenizer.json")).unwrap();
        assert_eq!(llama.style(), PieceStyle::ByteLevel);
        assert_eq!(llama.token(1), Some("<s>"));
        assert!(llama.is_special(1));
        let with_space = (0..llama.len()).filter_map(|id| llama.token(id));
        assert!(with_space.clone().any(|t| t.starts_with(' ')));
        assert!(with_space.clone().all(|t| !t.contains('Ġ')));
        let bert = Vocabulary::open(&root.join("bert-tiny/tokenizer.json")).unwrap();
        assert_eq!(bert.model_type(), "WordPiece");
        assert_eq!(bert.token(0), Some("[PAD]"));
        assert!((0..bert.len()).any(|id| bert.token(id) == Some("##a")));
    }

    #[test]
    fn malformed_files_are_input_errors() {
        for (text, says) in [
            ("{not json", "not valid JSON"),
            ("{}", "no \"model\""),
            (r#"{"model": {"vocab": 3}}"#, "model.vocab"),
            (r#"{"model": {"vocab": {"a": "x"}}}"#, "not an integer"),
            (r#"{"model": {"vocab": [["a"]]}}"#, "[piece, score]"),
            (
                r#"{"model": {"vocab": {"a": 99999999999}}}"#,
                "beyond any vocabulary",
            ),
            (
                r#"{"model": {"vocab": {}}, "added_tokens": [{"id": 1}]}"#,
                "added token",
            ),
        ] {
            let err = Vocabulary::parse_tokenizer_json(text).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Input);
            assert!(err.message().contains(says), "{text}: {}", err.message());
        }
    }
}
