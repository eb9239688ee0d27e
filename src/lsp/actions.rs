//! Diagnostics as the protocol carries them, the quick fixes their helps suggest, and
//! formatting with `modelc fmt`'s printer.
//!
//! A diagnostic becomes one LSP diagnostic at its primary label, with the same code, the
//! message, the primary label's words, every note and the help (as `check` prints them), and
//! its secondary labels as related information. A quick fix is offered where the help names
//! the fix exactly: "did you mean `X`?" on a misspelled name (the primary label's text is
//! replaced by `X`), and "use `padding: same`" on a window that does not fit (the argument is
//! added to the call).

use super::analysis::{Analysis, FILE};
use crate::diag::{Diagnostic, Severity, Span};
use crate::syntax::{format::format_source, Limits};

/// A diagnostic's text: the message, the primary label's words, notes and help, one a line.
pub fn message(d: &Diagnostic) -> String {
    let mut text = d.message.clone();
    if let Some(l) = d
        .primary_label()
        .filter(|l| l.primary && !l.message.is_empty())
    {
        text.push_str(": ");
        text.push_str(&l.message);
    }
    for n in &d.notes {
        text.push_str("\nnote: ");
        text.push_str(n);
    }
    if let Some(h) = &d.help {
        text.push_str("\nhelp: ");
        text.push_str(h);
    }
    text
}

/// The LSP severity of a diagnostic.
pub fn severity(s: Severity) -> lsp_types::DiagnosticSeverity {
    match s {
        Severity::Error => lsp_types::DiagnosticSeverity::ERROR,
        Severity::Warning => lsp_types::DiagnosticSeverity::WARNING,
        Severity::Note => lsp_types::DiagnosticSeverity::INFORMATION,
    }
}

/// Where a diagnostic is: its primary label, or the file's start.
pub fn primary_span(d: &Diagnostic) -> Span {
    d.primary_label()
        .filter(|l| l.file == FILE)
        .map_or(Span::new(0, 0), |l| l.span)
}

/// A fix: the title, and the edit (a span and its new text).
pub struct Fix {
    pub title: String,
    pub span: Span,
    pub text: String,
}

/// The fix the diagnostic's help names, if it names one exactly.
pub fn fix_for(a: &Analysis, d: &Diagnostic) -> Option<Fix> {
    let help = d.help.as_deref()?;
    let span = primary_span(d);
    let written = a.text.get(span.start..span.end)?;
    if let Some(name) = help
        .strip_prefix("did you mean `")
        .and_then(|r| r.strip_suffix("`?"))
    {
        let is_word =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_word(written) && is_word(name) {
            return Some(Fix {
                title: format!("replace `{written}` with `{name}`"),
                span,
                text: name.to_string(),
            });
        }
    }
    if help.starts_with("use `padding: same`")
        && written.ends_with(')')
        && !written.contains("padding")
    {
        let open = written.find('(')?;
        let empty = written.get(open + 1..written.len() - 1)?.trim().is_empty();
        let at = span.end - 1;
        return Some(Fix {
            title: "add `padding: same`".to_string(),
            span: Span::new(at, at),
            text: if empty {
                "padding: same"
            } else {
                ", padding: same"
            }
            .to_string(),
        });
    }
    None
}

/// The whole document formatted by `modelc fmt`'s printer; `None` when it has syntax errors
/// (nothing is half-formatted) or is already formatted.
pub fn format(a: &Analysis) -> Option<String> {
    let formatted = format_source(FILE, &a.text, &Limits::default()).ok()?;
    (formatted != a.text).then_some(formatted)
}
