//! The source files diagnostics point into, with line/column lookup that is right for LF, CRLF
//! and lone-CR line ends.

use serde::{Deserialize, Serialize};

/// An index into a [`SourceMap`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct FileId(usize);

impl FileId {
    /// The id of the `index`-th file added to a map.
    pub const fn from_index(index: usize) -> Self {
        Self(index)
    }

    /// The position of this file in its map.
    pub const fn index(self) -> usize {
        self.0
    }
}

/// A 1-based line and column; the column counts characters, as editors do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

struct SourceFile {
    name: String,
    text: String,
    /// Byte offsets at which each line starts.
    line_starts: Vec<usize>,
}

/// The files of one run.
#[derive(Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        let line_starts = line_starts(&text);
        self.files.push(SourceFile {
            name: name.into(),
            text,
            line_starts,
        });
        FileId(self.files.len() - 1)
    }

    /// The file's name as given (a path as the user wrote it).
    pub fn name(&self, id: FileId) -> &str {
        self.files
            .get(id.0)
            .map_or("<unknown>", |f| f.name.as_str())
    }

    /// The file's text (empty for an unknown id).
    pub fn text(&self, id: FileId) -> &str {
        self.files.get(id.0).map_or("", |f| f.text.as_str())
    }

    /// The byte offsets at which lines start.
    pub(crate) fn line_starts(&self, id: FileId) -> &[usize] {
        self.files
            .get(id.0)
            .map_or(&[0][..], |f| f.line_starts.as_slice())
    }

    /// The 1-based line and column of a byte offset (clamped into the file).
    pub fn line_col(&self, id: FileId, offset: usize) -> LineCol {
        let Some(file) = self.files.get(id.0) else {
            return LineCol { line: 1, column: 1 };
        };
        let mut offset = offset.min(file.text.len());
        while !file.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = file.line_starts.partition_point(|&s| s <= offset).max(1) - 1;
        let start = file.line_starts.get(line).copied().unwrap_or(0);
        let column = file
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        LineCol {
            line: line + 1,
            column,
        }
    }
}

/// Line starts for LF, CRLF and lone CR line ends.
fn line_starts(text: &str) -> Vec<usize> {
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
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_handles_every_line_end() {
        let mut map = SourceMap::new();
        let f = map.add("a", "ab\r\ncd\ref\ngh");
        assert_eq!(map.line_col(f, 0), LineCol { line: 1, column: 1 });
        assert_eq!(map.line_col(f, 4), LineCol { line: 2, column: 1 });
        assert_eq!(map.line_col(f, 5), LineCol { line: 2, column: 2 });
        assert_eq!(map.line_col(f, 7), LineCol { line: 3, column: 1 });
        assert_eq!(map.line_col(f, 10), LineCol { line: 4, column: 1 });
        assert_eq!(map.line_col(f, 999), LineCol { line: 4, column: 3 });
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let mut map = SourceMap::new();
        let f = map.add("a", "// é\nx é y");
        assert_eq!(
            map.line_col(f, "// é\nx é ".len()),
            LineCol { line: 2, column: 5 }
        );
    }
}
