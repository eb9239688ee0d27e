//! Byte offsets ↔ LSP positions. The protocol counts columns in UTF-16 code units (its default
//! `positionEncoding`), the AST counts bytes; lines end at LF, CRLF or a lone CR, as in
//! `diag::SourceMap`.

use crate::diag::Span;
use lsp_types::{Position, Range};

/// Where each line of a text starts, for conversions both ways.
pub struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => starts.push(i + 1),
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    starts.push(i + 2);
                    i += 1;
                }
                b'\r' => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        Self {
            starts,
            len: text.len(),
        }
    }

    /// The 0-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&s| s <= offset.min(self.len))
            .max(1)
            - 1
    }

    /// The byte range of line `line` without its line end (empty past the last line).
    pub fn line_span(&self, text: &str, line: usize) -> Span {
        let Some(&start) = self.starts.get(line) else {
            return Span::new(self.len, self.len);
        };
        let mut end = self.starts.get(line + 1).copied().unwrap_or(self.len);
        let bytes = text.as_bytes();
        while end > start && matches!(bytes.get(end - 1), Some(b'\n' | b'\r')) {
            end -= 1;
        }
        Span::new(start, end)
    }

    /// The LSP position of a byte offset (clamped into the text, and back to a char boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_of(offset);
        let start = self.starts.get(line).copied().unwrap_or(0).min(offset);
        let character = text
            .get(start..offset)
            .map_or(0, |s| s.chars().map(char::len_utf16).sum::<usize>());
        Position::new(to_u32(line), to_u32(character))
    }

    /// The LSP range of a byte span.
    pub fn range(&self, text: &str, span: Span) -> Range {
        Range::new(
            self.position(text, span.start),
            self.position(text, span.end.max(span.start)),
        )
    }

    /// The byte offset of an LSP position: a column past the line's end is its end, a line past
    /// the text's end is the text's end, a column inside a surrogate pair is the character's start.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let line = self.line_span(text, pos.line as usize);
        let Some(content) = text.get(line.start..line.end) else {
            return self.len;
        };
        let want = pos.character as usize;
        let mut units = 0usize;
        for (i, c) in content.char_indices() {
            if units >= want {
                return line.start + i;
            }
            units += c.len_utf16();
            if units > want {
                return line.start + i;
            }
        }
        line.end
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_utf16_units_both_ways() {
        // `é` is 2 bytes, 1 unit; `𝔸` is 4 bytes, 2 units (a surrogate pair).
        let text = "ab\r\n// é𝔸 x\rlast";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(index.position(text, x), Position::new(1, 7));
        assert_eq!(index.offset(text, Position::new(1, 7)), x);
        assert_eq!(index.position(text, text.len()), Position::new(2, 4));
        assert_eq!(index.offset(text, Position::new(0, 99)), 2);
        assert_eq!(index.offset(text, Position::new(9, 0)), text.len());
        // Inside the surrogate pair: the character's start.
        let pair = text.find('𝔸').unwrap();
        assert_eq!(index.offset(text, Position::new(1, 5)), pair);
        assert_eq!(
            index.offset(text, Position::new(1, 6)),
            pair + '𝔸'.len_utf8()
        );
    }
}
