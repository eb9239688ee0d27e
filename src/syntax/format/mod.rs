//! `modelc fmt`: the canonical layout of a `.model` file, keeping every comment.
//!
//! Input: a source text that parses without errors. Output: the same file in the canonical style
//! of the shipped specs: 4-space indentation in blocks, `name(a, key: v)` spacing, ` |> ` between
//! stages (each on its own line when a statement would pass [`MAX_WIDTH`] columns), setting
//! values of a data or train block aligned in one column, one blank line between blocks, runs
//! of blank lines collapsed to one, no trailing blanks, exactly one final newline.
//!
//! Invariants (tested on every spec and `.model` file of the repository, golden cases and
//! random trees):
//! - meaning is kept: the output parses to the same AST as the input, spans aside; literals and
//!   names are copied as written;
//! - every comment is kept, in order, on the line of the token it followed or on a line of its
//!   own before the token it preceded;
//! - formatting is idempotent: formatting the output changes nothing;
//! - the line-ending style (LF or CRLF, taken from the first line end) and a byte-order mark
//!   are kept;
//! - a source with any syntax error is refused with its diagnostics, never half-formatted.

mod comments;
mod diff;
mod emitter;
mod print;

pub use diff::{changes, render_diff, Change};
pub use print::MAX_WIDTH;

use super::{parse, Limits};
use crate::diag::{Diagnostic, FileId};
use emitter::Emitter;

const BOM: char = '\u{FEFF}';

/// Formats a source text; `Err` holds the diagnostics when it has syntax errors (then nothing
/// is formatted). Diagnostics point into `text` as given.
pub fn format_source(file: FileId, text: &str, limits: &Limits) -> Result<String, Vec<Diagnostic>> {
    let parsed = parse(file, text, limits);
    if parsed.has_errors() {
        return Err(parsed.diagnostics);
    }
    let has_bom = text.starts_with(BOM);
    let crlf = uses_crlf(text);
    // Work on LF text without the mark; spans of this second parse point into it.
    let body = text.strip_prefix(BOM).unwrap_or(text);
    let lf = body.replace("\r\n", "\n").replace('\r', "\n");
    let reparsed = parse(file, &lf, limits);
    if reparsed.has_errors() {
        return Err(reparsed.diagnostics);
    }
    let mut emitter = Emitter::new(Some(&lf), comments::scan(&lf));
    print::file(&mut emitter, &reparsed.file);
    let formatted = emitter.finish();
    let mut out = String::with_capacity(formatted.len() + formatted.len() / 16 + 3);
    if has_bom {
        out.push(BOM);
    }
    if crlf {
        out.push_str(&formatted.replace('\n', "\r\n"));
    } else {
        out.push_str(&formatted);
    }
    Ok(out)
}

/// Prints a syntax tree that has no source (built by a program or a test) in the canonical
/// style, numbers in their shortest round-trip form. `parse(print_file(ast))` gives back `ast`,
/// spans aside.
pub fn print_file(file: &super::ast::File) -> String {
    let mut emitter = Emitter::new(None, Vec::new());
    print::file(&mut emitter, file);
    emitter.finish()
}

/// Prints the arguments of a setting (or one expression, a lone positional argument) in the
/// canonical style without a source: `sgd(lr: 0.05, momentum: 0.9)`, `patience: 2, mode: max`.
/// Experiments name their trials' values with it.
pub fn print_args(args: &[super::ast::Arg]) -> String {
    let mut emitter = Emitter::new(None, Vec::new());
    print::args(&mut emitter, args, false);
    emitter.finish().trim().to_string()
}

/// Whether the text's first line ends with CRLF (rustfmt's `newline_style = "Auto"`).
fn uses_crlf(text: &str) -> bool {
    text.find(['\n', '\r'])
        .is_some_and(|at| text.get(at..).is_some_and(|rest| rest.starts_with("\r\n")))
}

#[cfg(test)]
mod tests;
