//! The front end: source bytes → AST, with every syntax problem reported as a diagnostic.
//!
//! Input: the bytes of one `.model` file. Output: an [`ast::File`] (as much as could be parsed)
//! and diagnostics. Invariants: never panics; nesting depth is bounded by [`Limits`] before pest
//! runs; every AST node has a byte span into the original text.

pub mod ast;
mod build;
mod errors;
pub mod format;
mod grammar;
mod limits;
mod parser;
mod prescan;

pub use grammar::{ModelParser, Rule};
pub use limits::Limits;
pub use parser::{parse, parse_override, Parsed};

use crate::diag::{codes, Diagnostic, FileId, Span};

/// Decodes source bytes as UTF-8, or explains where they are not.
pub fn decode(file: FileId, bytes: &[u8]) -> Result<&str, Diagnostic> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let bad = bytes.get(at).copied().unwrap_or(0);
        Diagnostic::error(codes::SYNTAX_INVALID_UTF8, "source is not valid utf-8")
            .primary(
                file,
                Span::new(at, at),
                format!("byte 0x{bad:02X} at offset {at} is not UTF-8"),
            )
            .help("save the file as UTF-8")
    })
}
