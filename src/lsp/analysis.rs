//! One open document, analysed: its text, the AST the parser recovered, what the checker found
//! (models, train blocks, diagnostics) and the names defined and used in it. Every feature of
//! the server reads an [`Analysis`]; nothing here knows the protocol.
//!
//! As in `modelc check`, the checker's diagnostics come after the parser's; a file with syntax
//! errors is still checked (the parser recovers line by line), and the checker's findings are
//! kept for every block that has no syntax error in it, so one typo does not hide a shape error
//! three blocks down.

use super::names::NameIndex;
use super::position::LineIndex;
use crate::check::limits::{check_with_limits, ModelLimits};
use crate::check::Checked;
use crate::diag::{self, codes, Diagnostic, FileId, Span};
use crate::syntax::{self, ast, Limits};

/// The one file of an analysis (the server checks each document on its own).
pub const FILE: FileId = FileId::from_index(0);

/// A document and everything known about it.
pub struct Analysis {
    pub text: String,
    pub lines: LineIndex,
    pub ast: ast::File,
    /// What the checker found (its diagnostics are moved into `diagnostics`).
    pub checked: Checked,
    /// Parser and checker diagnostics, in source order.
    pub diagnostics: Vec<Diagnostic>,
    pub names: NameIndex,
}

impl Analysis {
    /// Parses and checks a text as `modelc check` does, with the default limits.
    pub fn new(text: String) -> Self {
        let lines = LineIndex::new(&text);
        let limits = Limits::default();
        if text.len() as u64 > limits.max_source_bytes {
            let d = Diagnostic::error(
                codes::SYNTAX_FILE_TOO_LARGE,
                format!(
                    "the file is {} bytes; the limit is {}",
                    text.len(),
                    limits.max_source_bytes
                ),
            )
            .primary(FILE, Span::new(0, 0), "not checked")
            .help("split the file: `modelc check --max-source-bytes` reads larger ones");
            return Self {
                text,
                lines,
                ast: ast::File::default(),
                checked: Checked::default(),
                diagnostics: vec![d],
                names: NameIndex::default(),
            };
        }
        let parsed = syntax::parse(FILE, &text, &limits);
        let mut checked = check_with_limits(FILE, &parsed.file, &ModelLimits::default());
        let mut diagnostics = parsed.diagnostics;
        let broken: Vec<Span> = parsed
            .file
            .items
            .iter()
            .map(ast::Item::span)
            .filter(|item| {
                diagnostics.iter().any(|d| {
                    d.is_error()
                        && d.primary_label()
                            .is_some_and(|l| item.start <= l.span.start && l.span.start <= item.end)
                })
            })
            .collect();
        let syntax_errors = diagnostics.iter().any(Diagnostic::is_error);
        diagnostics.extend(
            std::mem::take(&mut checked.diagnostics)
                .into_iter()
                .filter(|d| {
                    !syntax_errors
                        || d.primary_label().is_some_and(|l| {
                            !broken
                                .iter()
                                .any(|b| b.start <= l.span.start && l.span.start <= b.end)
                        })
                }),
        );
        diag::sort(&mut diagnostics);
        let names = NameIndex::build(&parsed.file);
        Self {
            text,
            lines,
            ast: parsed.file,
            checked,
            diagnostics,
            names,
        }
    }

    /// The byte offset of an LSP position.
    pub fn offset(&self, pos: lsp_types::Position) -> usize {
        self.lines.offset(&self.text, pos)
    }

    /// The LSP range of a span.
    pub fn range(&self, span: Span) -> lsp_types::Range {
        self.lines.range(&self.text, span)
    }

    /// The identifier (letters, digits, `_`) around `offset`, with its span.
    pub fn word_at(&self, offset: usize) -> Option<(&str, Span)> {
        let bytes = self.text.as_bytes();
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let offset = offset.min(bytes.len());
        let mut start = offset;
        while start > 0 && is_word(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = offset;
        while end < bytes.len() && is_word(bytes[end]) {
            end += 1;
        }
        (start < end).then(|| (&self.text[start..end], Span::new(start, end)))
    }
}
