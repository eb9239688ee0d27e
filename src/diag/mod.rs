//! Diagnostics: the one type every phase reports problems with, the registry of codes, the
//! renderers (human via codespan-reporting, JSON lines, GitHub annotations, SARIF), and the wording
//! every phase shares: the one did-you-mean policy (`suggest`) and byte counts in words
//! ([`human_bytes`]).
//!
//! Input: problems found by any phase. Output: rendered text. Invariants: every diagnostic
//! carries a registered [`Code`]; spans are byte ranges into a file of a [`SourceMap`]; this
//! module never decides exit codes (it only says which [`Class`] a code belongs to).

mod bytes;
pub mod cap;
pub mod codes;
mod excerpt;
mod render;
mod sarif;
mod source_map;
pub mod suggest;

pub use bytes::human_bytes;
pub use codes::{all_codes, lookup, Class, Code, CodeInfo};
pub use render::{render, Format, RenderOptions};
pub use source_map::{FileId, LineCol, SourceMap};

use serde::{Deserialize, Serialize};

/// A byte range `[start, end)` in one source file.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The smallest span covering both.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// The span shifted right by `base` bytes (used when a sub-slice was parsed).
    #[must_use]
    pub fn shifted(self, base: usize) -> Span {
        Span::new(
            self.start.saturating_add(base),
            self.end.saturating_add(base),
        )
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// A place in a source file, with what to say about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub message: String,
    /// The primary label says what is wrong here; secondary labels say why.
    pub primary: bool,
}

/// A location in a file that is not a spec (a CSV cell, a weights file), for problems in data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalLocation {
    pub path: String,
    /// 1-based; 0 when unknown.
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
}

/// One problem, with everything needed to render it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// Lowercase, says what is wrong, no trailing period.
    pub message: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Option<String>,
    /// Where the problem is when it is not in a spec (a data or weights file).
    pub external: Option<ExternalLocation>,
}

impl Diagnostic {
    /// An error with the given code and message.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Error, message)
    }

    /// A warning with the given code and message.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Warning, message)
    }

    fn new(code: Code, severity: Severity, message: impl Into<String>) -> Self {
        Self {
            code,
            severity,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
            external: None,
        }
    }

    /// Adds the primary label: what is wrong here.
    #[must_use]
    pub fn primary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            file,
            span,
            message: message.into(),
            primary: true,
        });
        self
    }

    /// Adds a secondary label: why, or where something was fixed.
    #[must_use]
    pub fn secondary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            file,
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    /// Adds a note (expected/found, a derivation).
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line: how to fix it.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets a location outside any spec (a data file's row and column).
    #[must_use]
    pub fn at_external(mut self, path: impl Into<String>, line: usize, column: usize) -> Self {
        self.external = Some(ExternalLocation {
            path: path.into(),
            line,
            column,
        });
        self
    }

    /// The first primary label, if any: where the problem is.
    pub fn primary_label(&self) -> Option<&Label> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or_else(|| self.labels.first())
    }

    /// Whether this diagnostic is an error (as opposed to a warning or note).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The sort key used to report problems in source order.
    fn sort_key(&self) -> (usize, usize, usize) {
        self.primary_label()
            .map_or((usize::MAX, usize::MAX, usize::MAX), |l| {
                (l.file.index(), l.span.start, l.span.end)
            })
    }
}

/// Sorts diagnostics into source order (stable, so equal positions keep their phase order).
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(Diagnostic::sort_key);
}

/// The exit status a list of diagnostics calls for: 0 clean, 1 problems in the user's input,
/// 2 usage or I/O problems (these win, since nothing could be checked).
pub fn exit_status(diags: &[Diagnostic]) -> u8 {
    let errors = diags.iter().filter(|d| d.is_error());
    let mut status = 0;
    for d in errors {
        match d.code.class() {
            Class::Io => return 2,
            Class::Input => status = 1,
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_prefers_io_over_input_problems() {
        let f = FileId::from_index(0);
        let input =
            Diagnostic::error(codes::SYNTAX_UNEXPECTED, "x").primary(f, Span::new(0, 1), "");
        let io = Diagnostic::error(codes::IO_READ, "y");
        let warn = Diagnostic::warning(codes::SYNTAX_EMPTY_FILE, "z");
        assert_eq!(exit_status(&[]), 0);
        assert_eq!(exit_status(std::slice::from_ref(&warn)), 0);
        assert_eq!(exit_status(&[warn, input.clone()]), 1);
        assert_eq!(exit_status(&[input, io]), 2);
    }

    #[test]
    fn sort_orders_by_position() {
        let f = FileId::from_index(0);
        let mut v = vec![
            Diagnostic::error(codes::SYNTAX_UNEXPECTED, "b").primary(f, Span::new(9, 10), ""),
            Diagnostic::error(codes::SYNTAX_UNEXPECTED, "a").primary(f, Span::new(2, 3), ""),
        ];
        sort(&mut v);
        assert_eq!(v[0].message, "a");
    }
}
