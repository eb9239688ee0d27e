//! Long source lines elided around the span, as rustc does, for the human renderer.
//!
//! A label on a line of a million characters (a minified spec, a comment of control
//! characters) would otherwise print the whole line, once per diagnostic. When a diagnostic's
//! labels touch a line longer than [`LONG_LINE`] bytes, it is rendered from an [`Excerpt`]: a
//! small text holding only the lines codespan shows (each label's first and last lines with
//! their context lines), each long one cut to a window around its labels with `…` on the cut
//! sides. Line numbers and columns stay the original ones.
//!
//! Input: the source map and one diagnostic's labels. Output: an `Excerpt` (a codespan
//! `Files`) and the labels' ranges moved into it. Cost: linear in the labels and the kept
//! windows, never in the file's size.

use super::{FileId, Label, SourceMap};
use codespan_reporting::files::{Error as FilesError, Files};
use std::collections::BTreeSet;
use std::ops::Range;

/// Lines longer than this many bytes are shown as a window around their labels.
pub const LONG_LINE: usize = 160;
/// Bytes of context kept on each side of the labels in a cut line.
const CONTEXT: usize = 40;
const ELLIPSIS: &str = "…";

/// One shown line: where it is in the excerpt and which part of the original it holds.
struct KeptLine {
    line_index: usize,
    /// Its range in the excerpt's text, without the newline.
    range: Range<usize>,
    /// The original bytes it shows (`window.start` is the original line start when nothing
    /// is cut on the left).
    window: Range<usize>,
    /// Bytes of `…` before the window in the excerpt.
    prefix: usize,
}

struct ExcerptFile {
    id: FileId,
    text: String,
    lines: Vec<KeptLine>,
}

/// The shown lines of one diagnostic's files (see the module doc).
pub struct Excerpt<'m> {
    map: &'m SourceMap,
    files: Vec<ExcerptFile>,
}

/// Whether any label of `labels` starts or ends on a line longer than [`LONG_LINE`].
pub fn touches_long_line(map: &SourceMap, labels: &[Label]) -> bool {
    labels.iter().any(|l| {
        [l.span.start, l.span.end].iter().any(|&at| {
            let line = line_of(map, l.file, at);
            let r = line_range(map, l.file, line);
            r.end - r.start > LONG_LINE
        })
    })
}

fn line_of(map: &SourceMap, file: FileId, at: usize) -> usize {
    map.line_starts(file).partition_point(|&s| s <= at).max(1) - 1
}

/// The original byte range of a line, without its line break.
fn line_range(map: &SourceMap, file: FileId, line: usize) -> Range<usize> {
    let starts = map.line_starts(file);
    let text = map.text(file);
    let start = starts
        .get(line)
        .copied()
        .unwrap_or(text.len())
        .min(text.len());
    let end = starts.get(line + 1).copied().unwrap_or(text.len());
    let content = text.get(start..end).unwrap_or("");
    start..start + content.trim_end_matches(['\n', '\r']).len()
}

impl<'m> Excerpt<'m> {
    /// The excerpt of the lines `labels` show.
    pub fn new(map: &'m SourceMap, labels: &[Label]) -> Self {
        let mut ids: Vec<FileId> = Vec::new();
        for l in labels {
            if !ids.contains(&l.file) {
                ids.push(l.file);
            }
        }
        let files = ids
            .into_iter()
            .map(|id| Self::file(map, id, labels))
            .collect();
        Excerpt { map, files }
    }

    fn file(map: &SourceMap, id: FileId, labels: &[Label]) -> ExcerptFile {
        let last_line = map.line_starts(id).len().saturating_sub(1);
        let mut shown = BTreeSet::new();
        for l in labels.iter().filter(|l| l.file == id) {
            let (first, last) = (line_of(map, id, l.span.start), line_of(map, id, l.span.end));
            // codespan's context: a few lines after a multi-line label's start, one before its
            // end, and the single line between two shown lines.
            let head_end = last.min(first + 3);
            shown.extend(first.saturating_sub(1)..=head_end);
            shown.extend(last.saturating_sub(1)..=(last + 1).min(last_line));
        }
        let text_all = map.text(id);
        let mut text = String::new();
        let mut lines = Vec::with_capacity(shown.len());
        for line_index in shown {
            let whole = line_range(map, id, line_index);
            let window = window(text_all, whole.clone(), labels, id);
            let start = text.len();
            let prefix = if window.start > whole.start {
                text.push_str(ELLIPSIS);
                ELLIPSIS.len()
            } else {
                0
            };
            text.push_str(text_all.get(window.clone()).unwrap_or(""));
            let end = text.len();
            if window.end < whole.end {
                text.push_str(ELLIPSIS);
            }
            text.push('\n');
            lines.push(KeptLine {
                line_index,
                range: start
                    ..end
                        + if window.end < whole.end {
                            ELLIPSIS.len()
                        } else {
                            0
                        },
                window,
                prefix,
            });
        }
        ExcerptFile { id, text, lines }
    }

    /// `range` (original bytes of `file`) moved into the excerpt.
    pub fn map_range(&self, file: FileId, range: Range<usize>) -> Range<usize> {
        self.map_offset(file, range.start)..self.map_offset(file, range.end)
    }

    fn map_offset(&self, file: FileId, at: usize) -> usize {
        let Some(f) = self.files.iter().find(|f| f.id == file) else {
            return 0;
        };
        let line = line_of(self.map, file, at);
        let Some(kept) = f.lines.iter().find(|k| k.line_index == line) else {
            return 0;
        };
        let inside = at.clamp(kept.window.start, kept.window.end);
        kept.range.start + kept.prefix + (inside - kept.window.start)
    }

    fn get(&self, id: FileId) -> Result<&ExcerptFile, FilesError> {
        self.files
            .iter()
            .find(|f| f.id == id)
            .ok_or(FilesError::FileMissing)
    }
}

/// The original bytes shown of line `whole`: all of it when short, else a window around
/// the labels on it, on character boundaries.
fn window(text: &str, whole: Range<usize>, labels: &[Label], file: FileId) -> Range<usize> {
    if whole.end - whole.start <= LONG_LINE {
        return whole;
    }
    let on_line = labels
        .iter()
        .filter(|l| l.file == file && l.span.start <= whole.end && l.span.end >= whole.start);
    let lo = on_line
        .clone()
        .map(|l| l.span.start.max(whole.start))
        .min()
        .unwrap_or(whole.start);
    let hi = on_line
        .map(|l| l.span.end.min(whole.end))
        .max()
        .unwrap_or(whole.start)
        .min(lo + LONG_LINE);
    let mut start = lo.saturating_sub(CONTEXT).max(whole.start);
    let mut end = (hi + CONTEXT).min(whole.end);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

impl<'a> Files<'a> for Excerpt<'_> {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(self.map.name(id))
    }

    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(&self.get(id)?.text)
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        let f = self.get(id)?;
        let i = f.lines.partition_point(|k| k.range.start <= byte_index);
        Ok(f.lines.get(i.max(1) - 1).map_or(0, |k| k.line_index))
    }

    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, FilesError> {
        let f = self.get(id)?;
        match f.lines.binary_search_by_key(&line_index, |k| k.line_index) {
            Ok(i) => Ok(f.lines[i].range.clone()),
            // A line codespan walks past without showing it (inside a multi-line label).
            Err(_) if line_index < self.map.line_starts(id).len() => Ok(0..0),
            Err(_) => Err(FilesError::LineTooLarge {
                given: line_index,
                max: self.map.line_starts(id).len().saturating_sub(1),
            }),
        }
    }

    /// The original column, so a cut line's header still says where the span is.
    fn column_number(
        &'a self,
        id: FileId,
        line_index: usize,
        byte_index: usize,
    ) -> Result<usize, FilesError> {
        let f = self.get(id)?;
        let Ok(i) = f.lines.binary_search_by_key(&line_index, |k| k.line_index) else {
            return Ok(1);
        };
        let kept = &f.lines[i];
        let offset = byte_index.saturating_sub(kept.range.start + kept.prefix);
        let original = (kept.window.start + offset).min(kept.window.end);
        let whole = line_range(self.map, id, line_index);
        let before = self.map.text(id).get(whole.start..original).unwrap_or("");
        Ok(before.chars().count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::render::{render, RenderOptions};
    use crate::diag::{codes, Diagnostic, Format, SourceMap, Span};
    use codespan_reporting::term::termcolor::NoColor;

    fn human(map: &SourceMap, d: Diagnostic) -> String {
        let mut out = NoColor::new(Vec::new());
        let options = RenderOptions {
            format: Format::Human,
        };
        render(&mut out, map, &[d], options).unwrap();
        String::from_utf8(out.into_inner()).unwrap()
    }

    #[test]
    fn a_label_deep_in_a_long_line_is_shown_in_a_window_with_its_original_column() {
        let mut map = SourceMap::new();
        let long = format!("// {}\n", "ab".repeat(5_000));
        let text = format!("model M() {{\n{long}    oops{}\n}}\n", "x".repeat(3_000));
        let f = map.add("a.model", text.clone());
        let at = text.find("oops").unwrap();
        let d = Diagnostic::error(codes::SYNTAX_UNEXPECTED, "unexpected `oops`")
            .primary(f, Span::new(at, at + 4), "here")
            .secondary(f, Span::new(20, 22), "and here");
        let out = human(&map, d);
        // Line 3 column 5; line 2 column 9 (the secondary label, also cut).
        assert!(out.contains("a.model:3:5"), "{out}");
        assert!(out.len() < 1_200, "{} bytes:\n{out}", out.len());
        assert!(out.contains("    oopsxxxx"), "{out}");
        assert!(out.contains("x…"), "{out}");
        assert!(out.contains("^^^^ here"), "{out}");
        assert!(out.contains("2 │ // abab"), "{out}");
        assert!(out.contains("-- and here"), "{out}");
        // The carets sit under `oops`: same column in the rendered line as in its source text.
        let source_line = out.lines().find(|l| l.contains("oopsx")).unwrap();
        let caret_line = out.lines().find(|l| l.contains("^^^^")).unwrap();
        assert_eq!(
            source_line.find("oops").unwrap(),
            caret_line.find('^').unwrap(),
            "{out}"
        );
    }

    #[test]
    fn a_cut_on_both_sides_keeps_whole_characters() {
        let mut map = SourceMap::new();
        let text = format!("{}BAD{}\n", "é".repeat(400), "ü".repeat(400));
        let f = map.add("u.model", text.clone());
        let at = text.find("BAD").unwrap();
        let d = Diagnostic::error(codes::SYNTAX_UNEXPECTED, "bad").primary(
            f,
            Span::new(at, at + 3),
            "here",
        );
        let out = human(&map, d);
        assert!(out.contains("u.model:1:401"), "{out}");
        assert!(out.contains("│ …éé"), "{out}");
        assert!(out.contains("BADüü"), "{out}");
        assert!(out.contains("ü…"), "{out}");
        assert!(out.len() < 600, "{out}");
    }

    #[test]
    fn short_lines_render_exactly_as_before() {
        let mut map = SourceMap::new();
        let f = map.add("s.model", "model M(x: f32[N, 4]) {\n    dense(3))\n}\n");
        let d = Diagnostic::error(codes::SYNTAX_UNEXPECTED, "x").primary(f, Span::new(36, 37), "y");
        assert!(!super::touches_long_line(&map, &d.labels));
        // Rendered through an excerpt anyway, the output is the same bytes.
        let through_map = human(&map, d.clone());
        let excerpt = super::Excerpt::new(&map, &d.labels);
        let mut cs = super::super::render::to_codespan(&d);
        for (label, ours) in cs.labels.iter_mut().zip(&d.labels) {
            label.range = excerpt.map_range(ours.file, ours.span.start..ours.span.end);
        }
        let mut out = NoColor::new(Vec::new());
        let config = codespan_reporting::term::Config::default();
        codespan_reporting::term::emit_to_write_style(&mut out, &config, &excerpt, &cs).unwrap();
        assert_eq!(String::from_utf8(out.into_inner()).unwrap(), through_map);
    }

    #[test]
    fn a_label_over_many_long_lines_shows_its_ends_only() {
        let mut map = SourceMap::new();
        let line = format!("{}\n", "z".repeat(1_000));
        let text = line.repeat(500);
        let f = map.add("m.model", text.clone());
        let d = Diagnostic::error(codes::SYNTAX_UNEXPECTED, "span").primary(
            f,
            Span::new(10, text.len() - 10),
            "all of this",
        );
        let out = human(&map, d);
        assert!(out.contains("m.model:1:11"), "{out}");
        assert!(out.contains("500 │"), "{out}");
        assert!(out.len() < 3_000, "{} bytes:\n{out}", out.len());
    }
}
