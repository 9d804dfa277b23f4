//! What the tokenizer alone says about each token (Land & Bartolo 2024, section 3.1): whether it
//! is special, stands for a part of a UTF-8 character, can never be produced by encoding text, or
//! is not a token at all.
//!
//! Unreachable tokens are found by a round trip through the `tokenizers` crate, which runs the
//! whole pipeline of `tokenizer.json` (normaliser, pre-tokeniser with its split regex, model,
//! decoder) as the model's users do: the token is decoded alone to text, the text encoded without
//! special tokens, and the token is unreachable unless that gives exactly the token back. A
//! tokenizer that puts a space before the text (SentencePiece's `▁`) would make every piece
//! without one look unreachable; as the paper's code does, such a tokenizer's round trip is made
//! behind a one-token prefix (`«`), which is then removed.

use std::path::Path;

use rayon::prelude::*;
use tokenizers::Tokenizer;

use super::under_trained::is_reserved_name;
use crate::error::{Error, Result};
use crate::model::vocab::Vocabulary;
use crate::observe::Observer;

/// What the tokenizer says about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCategory {
    /// None of the others: a token the tokenizer produces from its own text.
    Normal,
    /// An added or special token (`added_tokens` of `tokenizer.json`).
    Special,
    /// Bytes that are not whole UTF-8 characters (a byte-level piece that does not decode, or a
    /// SentencePiece byte token `<0x80>` … `<0xFF>`).
    PartialUtf8,
    /// Encoding the token's own decoded text does not give the token back.
    Unreachable,
    /// Known to be unused: no token has the id, or it is a reserved or unused special token by
    /// name. These are the reference rows of the under-trained score.
    Unused,
}

impl TokenCategory {
    /// Every category, in the order tables and summaries list them.
    pub const ALL: [TokenCategory; 5] = [
        TokenCategory::Normal,
        TokenCategory::Special,
        TokenCategory::PartialUtf8,
        TokenCategory::Unreachable,
        TokenCategory::Unused,
    ];

    /// The name in tables and summaries.
    pub fn name(self) -> &'static str {
        match self {
            TokenCategory::Normal => "normal",
            TokenCategory::Special => "special",
            TokenCategory::PartialUtf8 => "partial_utf8",
            TokenCategory::Unreachable => "unreachable",
            TokenCategory::Unused => "unused",
        }
    }
}

/// The category of every row below `rows` (`None` without a vocabulary), and notes on what could
/// not be checked. Unreachable tokens are checked only with a `tokenizer.json` the `tokenizers`
/// crate reads; without one the note says so. Only I/O errors fail.
pub fn categories(
    vocabulary: Option<&Vocabulary>,
    tokenizer: Option<&Path>,
    rows: usize,
    observer: &dyn Observer,
) -> Result<(Option<Vec<TokenCategory>>, Vec<String>)> {
    let mut notes = Vec::new();
    let Some(vocabulary) = vocabulary else {
        notes.push("no token categories: the model has no vocabulary".to_string());
        return Ok((None, notes));
    };
    let known = |id: usize| match vocabulary.token(id) {
        None => TokenCategory::Unused,
        Some(text) if is_reserved_name(text) => TokenCategory::Unused,
        Some(_) if vocabulary.is_added(id) => TokenCategory::Special,
        Some(_) if vocabulary.is_partial_utf8(id) => TokenCategory::PartialUtf8,
        Some(_) => TokenCategory::Normal,
    };
    let mut categories: Vec<TokenCategory> = (0..rows).map(known).collect();
    let round_trip = match tokenizer {
        None => Err("the model has no tokenizer.json to encode with".to_string()),
        Some(path) => RoundTrip::open(path).map_err(|err| err.message().to_string()),
    };
    match round_trip {
        Ok(round_trip) => {
            observer.detail("encoding every token's text to find unreachable tokens");
            let normal: Vec<usize> = (0..rows)
                .filter(|&id| categories[id] == TokenCategory::Normal)
                .collect();
            let unreachable: Vec<usize> = normal
                .into_par_iter()
                .filter(|&id| !round_trip.reaches(id))
                .collect();
            for id in unreachable {
                categories[id] = TokenCategory::Unreachable;
            }
        }
        Err(why) => notes.push(format!(
            "unreachable tokens not checked ({why}): they count as normal"
        )),
    }
    Ok((Some(categories), notes))
}

/// Characters tried, in order, as the one-token prefix of a tokenizer that adds a leading space.
const PREFIXES: [&str; 2] = ["«", "»"];

/// A tokenizer and how to make a round trip through it.
pub struct RoundTrip {
    tokenizer: Tokenizer,
    /// For a tokenizer that adds a leading space: the prefix text and its token.
    prefix: Option<(&'static str, u32)>,
}

impl RoundTrip {
    /// Reads `tokenizer.json` at `path`; an input error when the `tokenizers` crate cannot, or
    /// when the tokenizer adds a leading space and has no one-token prefix to hide it behind.
    pub fn open(path: &Path) -> Result<RoundTrip> {
        let failed = |err: &dyn std::fmt::Display| {
            Error::input(format!(
                "{}: the tokenizers library cannot use it: {err}",
                path.display()
            ))
        };
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| failed(&e))?;
        // A fixed padding or truncation length would change every encoding.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| failed(&e))?;
        let encode = |text: &str| -> Vec<u32> {
            tokenizer
                .encode(text, false)
                .map(|encoding| encoding.get_ids().to_vec())
                .unwrap_or_default()
        };
        let adds_space = encode("test")
            .first()
            .and_then(|&id| tokenizer.id_to_token(id))
            .is_some_and(|piece| piece.starts_with(['▁', 'Ġ', ' ']));
        let prefix = if adds_space {
            let one_token = PREFIXES
                .iter()
                .find_map(|&prefix| match encode(prefix)[..] {
                    [id] => Some((prefix, id)),
                    _ => None,
                });
            Some(one_token.ok_or_else(|| {
                Error::input(format!(
                    "{}: the tokenizer puts a space before the text and has no one-token prefix \
                     ({}) to make the round trip behind",
                    path.display(),
                    PREFIXES.join(" or ")
                ))
            })?)
        } else {
            None
        };
        Ok(RoundTrip { tokenizer, prefix })
    }

    /// Whether encoding the decoded text of token `id` gives exactly that token (behind the
    /// prefix, when there is one).
    pub fn reaches(&self, id: usize) -> bool {
        let Ok(id) = u32::try_from(id) else {
            return false;
        };
        let decode = |ids: &[u32]| self.tokenizer.decode(ids, false).ok();
        let encode = |text: &str| {
            self.tokenizer
                .encode(text, false)
                .ok()
                .map(|encoding| encoding.get_ids().to_vec())
        };
        match self.prefix {
            None => decode(&[id]).and_then(|text| encode(&text)) == Some(vec![id]),
            Some((prefix, prefix_id)) => {
                let Some(text) = decode(&[prefix_id, id]) else {
                    return false;
                };
                // Some decoders keep the space they removed from the first token's front.
                let text = text.strip_prefix(' ').unwrap_or(&text);
                text.starts_with(prefix) && encode(text) == Some(vec![prefix_id, id])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Silent;

    /// The ids of each category of the fixture tokenizer `name` (fixtures/tokenizers/).
    fn categorised(name: &str) -> Vec<(TokenCategory, Vec<usize>)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/tokenizers")
            .join(name);
        let vocabulary = Vocabulary::open(&path).unwrap();
        let (categories, notes) =
            categories(Some(&vocabulary), Some(&path), vocabulary.len(), &Silent).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        let categories = categories.unwrap();
        TokenCategory::ALL
            .iter()
            .map(|&category| {
                let ids = (0..categories.len())
                    .filter(|&id| categories[id] == category)
                    .collect();
                (category, ids)
            })
            .collect()
    }

    fn ids_of(found: &[(TokenCategory, Vec<usize>)], category: TokenCategory) -> Vec<usize> {
        found
            .iter()
            .find(|(c, _)| *c == category)
            .map(|(_, ids)| ids.clone())
            .unwrap()
    }

    #[test]
    fn byte_level_bpe() {
        let found = categorised("byte-level-bpe.json");
        assert_eq!(ids_of(&found, TokenCategory::Special), vec![0]);
        // Bytes 0x80–0xFF alone (ids 1 + byte), and two of the three bytes of 你.
        let partial: Vec<usize> = (1 + 0x80..=1 + 0xFF).chain([262]).collect();
        assert_eq!(ids_of(&found, TokenCategory::PartialUtf8), partial);
        // "a." is split by the pre-tokeniser's regex; "the" has no merge that makes it.
        assert_eq!(ids_of(&found, TokenCategory::Unreachable), vec![260, 263]);
        assert_eq!(ids_of(&found, TokenCategory::Unused), Vec::<usize>::new());
    }

    #[test]
    fn sentencepiece_bpe_behind_a_prefix() {
        let found = categorised("sentencepiece-bpe.json");
        assert_eq!(ids_of(&found, TokenCategory::Special), vec![0, 1, 2]);
        let byte = |b: usize| 3 + b;
        let partial: Vec<usize> = (byte(0x80)..=byte(0xFF)).collect();
        assert_eq!(ids_of(&found, TokenCategory::PartialUtf8), partial);
        // The byte tokens of characters that have tokens of their own, and "the" without a merge;
        // pieces without `▁` (`he`, `ing`) are reachable inside a word.
        let mut unreachable: Vec<usize> = [0x20, 0x2E].map(byte).to_vec();
        unreachable.extend(byte(0x61)..=byte(0x7A));
        unreachable.push(294);
        assert_eq!(ids_of(&found, TokenCategory::Unreachable), unreachable);
    }

    #[test]
    fn bert_wordpiece() {
        let found = categorised("wordpiece.json");
        assert_eq!(ids_of(&found, TokenCategory::Special), vec![0, 1, 2, 3, 4]);
        assert_eq!(
            ids_of(&found, TokenCategory::PartialUtf8),
            Vec::<usize>::new()
        );
        // `##s` and `##ing` decode alone to "##…", split by the pre-tokeniser; `The` is
        // lowercased; `a.b` is split at the period.
        assert_eq!(
            ids_of(&found, TokenCategory::Unreachable),
            vec![33, 34, 35, 36]
        );
    }

    #[test]
    fn without_a_tokenizer_the_note_says_so() {
        let vocabulary = Vocabulary::parse_tokenizer_json(
            r#"{"model": {"type": "BPE", "vocab": {"a": 0, "<unused0>": 1}}}"#,
        )
        .unwrap();
        let (found, notes) = categories(Some(&vocabulary), None, 3, &Silent).unwrap();
        assert_eq!(
            found.unwrap(),
            vec![
                TokenCategory::Normal,
                TokenCategory::Unused,
                TokenCategory::Unused
            ]
        );
        assert!(
            notes[0].contains("unreachable tokens not checked"),
            "{notes:?}"
        );
        let broken = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(broken.path(), "{\"model\": {}}").unwrap();
        let (_, notes) = categories(Some(&vocabulary), Some(broken.path()), 2, &Silent).unwrap();
        assert!(
            notes[0].contains("tokenizers library cannot use it"),
            "{notes:?}"
        );
        let (none, notes) = categories(None, None, 2, &Silent).unwrap();
        assert!(none.is_none() && notes[0].contains("no vocabulary"));
    }
}
