//! Semantic tokens (`textDocument/semanticTokens/full`): what each word of a `.model` file is,
//! so an editor colours a spec by meaning rather than by the TextMate grammar's patterns alone.
//!
//! One left-to-right scan of the text, linear in its length, that needs no parse (a file with
//! syntax errors is coloured too): comments, strings, numbers, `|>`, and words classified by
//! their place: the block keywords, the name after one (a block name), a word before `(` (a
//! layer, step, loss, optimizer or schedule), a word before `:` inside parentheses (an
//! argument name), a dtype, the first word of a settings line (a setting), and any other word
//! (a name).

use super::analysis::Analysis;
use lsp_types::{SemanticToken, SemanticTokenType, SemanticTokensLegend};

/// The token types, in the legend's order (a token's type is its index here).
const TYPES: [SemanticTokenType; 10] = [
    SemanticTokenType::KEYWORD,
    SemanticTokenType::CLASS,
    SemanticTokenType::FUNCTION,
    SemanticTokenType::PARAMETER,
    SemanticTokenType::TYPE,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::NUMBER,
    SemanticTokenType::STRING,
    SemanticTokenType::COMMENT,
];

/// What a token is (the index of its type in [`TYPES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Keyword,
    BlockName,
    Call,
    Argument,
    DType,
    Setting,
    Name,
    Number,
    Str,
    Comment,
}

const BLOCK_KEYWORDS: [&str; 4] = ["model", "data", "train", "experiment"];
const OTHER_KEYWORDS: [&str; 7] = ["let", "on", "as", "vary", "select", "true", "false"];
const DTYPES: [&str; 6] = ["f32", "f64", "f16", "i32", "i64", "bool"];

/// The legend the server announces.
pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TYPES.to_vec(),
        token_modifiers: Vec::new(),
    }
}

/// The tokens of a text as byte ranges, in order; none spans a line end.
pub fn scan(text: &str) -> Vec<(usize, usize, Kind)> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut line_start = true;
    let mut after_block_keyword = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        match b {
            b'\n' | b'\r' => {
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = line_end(bytes, i);
                tokens.push((start, i, Kind::Comment));
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n' | b'\r') {
                    let escaped = bytes[i] == b'\\'
                        && bytes.get(i + 1).is_some_and(|&c| c != b'\n' && c != b'\r');
                    i += if escaped { 2 } else { 1 };
                }
                if bytes.get(i) == Some(&b'"') {
                    i += 1;
                } else {
                    // An unterminated string breaks its line: what it opened is not carried on.
                    depth = 0;
                }
                while i < bytes.len() && !text.is_char_boundary(i) {
                    i += 1;
                }
                tokens.push((start, i, Kind::Str));
            }
            b'0'..=b'9' => {
                i = number_end(bytes, i);
                tokens.push((start, i, Kind::Number));
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &text[start..i];
                let next = next_char(bytes, i);
                let kind = if after_block_keyword {
                    Kind::BlockName
                } else if (BLOCK_KEYWORDS.contains(&word) && line_start && next != Some(b'.'))
                    || OTHER_KEYWORDS.contains(&word)
                {
                    Kind::Keyword
                } else if DTYPES.contains(&word) && next == Some(b'[') {
                    Kind::DType
                } else if next == Some(b'(') {
                    Kind::Call
                } else if next == Some(b':') && depth > 0 {
                    Kind::Argument
                } else if line_start && depth == 0 && !matches!(next, Some(b'=' | b':') | None) {
                    Kind::Setting
                } else {
                    Kind::Name
                };
                after_block_keyword = kind == Kind::Keyword && BLOCK_KEYWORDS.contains(&word);
                tokens.push((start, i, kind));
            }
            b'(' | b'[' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => {
                // Any other character (an operator, a brace, a byte of a multi-byte one).
                i += 1;
                while i < bytes.len() && !text.is_char_boundary(i) {
                    i += 1;
                }
            }
        }
        if !matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'_') {
            after_block_keyword = false;
        }
        line_start = false;
    }
    tokens
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map_or(bytes.len(), |p| from + p)
}

/// The end of a number literal: digits, `_`, one `.`, an exponent with its sign.
fn number_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'0'..=b'9' | b'_' | b'.' => i += 1,
            b'e' | b'E' => {
                i += 1;
                if matches!(bytes.get(i), Some(b'+' | b'-')) {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    i
}

/// The next character after spaces and tabs on the same line.
fn next_char(bytes: &[u8], mut i: usize) -> Option<u8> {
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
        i += 1;
    }
    bytes.get(i).copied().filter(|&c| c != b'\n' && c != b'\r')
}

/// The tokens of a document in the protocol's relative encoding (UTF-16 columns).
pub fn tokens(a: &Analysis) -> Vec<SemanticToken> {
    let mut out = Vec::new();
    let (mut last_line, mut last_start) = (0u32, 0u32);
    for (start, end, kind) in scan(&a.text) {
        let from = a.lines.position(&a.text, start);
        let to = a.lines.position(&a.text, end);
        if to.line != from.line || to.character <= from.character {
            continue;
        }
        let delta_line = from.line - last_line;
        let delta_start = if delta_line == 0 {
            from.character - last_start
        } else {
            from.character
        };
        out.push(SemanticToken {
            delta_line,
            delta_start,
            length: to.character - from.character,
            token_type: kind as u32,
            token_modifiers_bitset: 0,
        });
        (last_line, last_start) = (from.line, from.character);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&str, Kind)> {
        scan(text)
            .into_iter()
            .map(|(s, e, k)| (&text[s..e], k))
            .collect()
    }

    #[test]
    fn words_are_classified_by_their_place() {
        let text = "model Net(x: f32[N, 4]) -> f32[N, 1] { // a net\n    let h = dense(8, activation: relu)\n}\ntrain Net on D {\n    loss mse\n    optimizer sgd(lr: 1e-2)\n    schedule warmup(epochs: 2) |> cosine(epochs: 20)\n    source csv(\"a b.csv\")\n}\n";
        let got = kinds(text);
        let want = [
            ("model", Kind::Keyword),
            ("Net", Kind::BlockName),
            ("x", Kind::Argument),
            ("f32", Kind::DType),
            ("N", Kind::Name),
            ("4", Kind::Number),
            ("f32", Kind::DType),
            ("N", Kind::Name),
            ("1", Kind::Number),
            ("// a net", Kind::Comment),
            ("let", Kind::Keyword),
            ("h", Kind::Name),
            ("dense", Kind::Call),
            ("8", Kind::Number),
            ("activation", Kind::Argument),
            ("relu", Kind::Name),
            ("train", Kind::Keyword),
            ("Net", Kind::BlockName),
            ("on", Kind::Keyword),
            ("D", Kind::Name),
            ("loss", Kind::Setting),
            ("mse", Kind::Name),
            ("optimizer", Kind::Setting),
            ("sgd", Kind::Call),
            ("lr", Kind::Argument),
            ("1e-2", Kind::Number),
            ("schedule", Kind::Setting),
            ("warmup", Kind::Call),
            ("epochs", Kind::Argument),
            ("2", Kind::Number),
            ("cosine", Kind::Call),
            ("epochs", Kind::Argument),
            ("20", Kind::Number),
            ("source", Kind::Setting),
            ("csv", Kind::Call),
            ("\"a b.csv\"", Kind::Str),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn an_unterminated_string_or_odd_bytes_end_at_the_line() {
        let got = kinds("data D {\n    source csv(\"open\n    batch é 4\n}");
        assert!(got.contains(&("\"open", Kind::Str)), "{got:?}");
        assert!(got.contains(&("batch", Kind::Setting)), "{got:?}");
        assert!(got.contains(&("4", Kind::Number)), "{got:?}");
    }

    #[test]
    fn positions_are_relative_and_in_utf16_units() {
        // `é` is 2 bytes and 1 UTF-16 unit: the token after it starts 1 column later.
        let a = Analysis::new("// é\nmodel M(x: f32[N, 1]) {\n}\n".to_string());
        let t = tokens(&a);
        assert_eq!(
            (
                t[0].delta_line,
                t[0].delta_start,
                t[0].length,
                t[0].token_type
            ),
            (0, 0, 4, Kind::Comment as u32)
        );
        assert_eq!(
            (
                t[1].delta_line,
                t[1].delta_start,
                t[1].length,
                t[1].token_type
            ),
            (1, 0, 5, Kind::Keyword as u32)
        );
        assert_eq!(
            (
                t[2].delta_line,
                t[2].delta_start,
                t[2].length,
                t[2].token_type
            ),
            (0, 6, 1, Kind::BlockName as u32)
        );
    }
}
