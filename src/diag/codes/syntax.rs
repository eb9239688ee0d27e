//! Codes of the syntax phase: malformed text and source limits (E01xx).

use super::{code_info, Code, CodeInfo};

pub const SYNTAX_UNEXPECTED: Code = Code::new("E0100");
pub const SYNTAX_UNTERMINATED_STRING: Code = Code::new("E0101");
pub const SYNTAX_UNTERMINATED_COMMENT: Code = Code::new("E0102");
pub const SYNTAX_UNBALANCED: Code = Code::new("E0103");
pub const SYNTAX_TOO_DEEP: Code = Code::new("E0104");
pub const SYNTAX_FILE_TOO_LARGE: Code = Code::new("E0105");
pub const SYNTAX_INVALID_UTF8: Code = Code::new("E0106");
pub const SYNTAX_NUL_BYTE: Code = Code::new("E0107");
pub const SYNTAX_BIDI: Code = Code::new("E0108");
pub const SYNTAX_BAD_NUMBER: Code = Code::new("E0109");
pub const SYNTAX_EMPTY_FILE: Code = Code::new("E0110");
pub const SYNTAX_NON_ASCII: Code = Code::new("E0111");
pub const SYNTAX_BAD_ESCAPE: Code = Code::new("E0112");
pub const FMT_NOT_FORMATTED: Code = Code::new("E0113");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[
    code_info!(E0100, "unexpected token"),
    code_info!(E0101, "unterminated string"),
    code_info!(E0102, "unterminated block comment"),
    code_info!(E0103, "unbalanced delimiter"),
    code_info!(E0104, "nesting too deep"),
    code_info!(E0105, "source file too large"),
    code_info!(E0106, "source is not valid utf-8"),
    code_info!(E0107, "nul byte in source"),
    code_info!(E0108, "bidirectional control character"),
    code_info!(E0109, "number literal out of range"),
    code_info!(E0110, "file defines nothing"),
    code_info!(E0111, "non-ascii character outside a string or comment"),
    code_info!(E0112, "unknown escape in string"),
    code_info!(E0113, "spec is not formatted"),
];

// The `code_info!` macro refers to codes by their literal names.
const E0100: Code = SYNTAX_UNEXPECTED;
const E0101: Code = SYNTAX_UNTERMINATED_STRING;
const E0102: Code = SYNTAX_UNTERMINATED_COMMENT;
const E0103: Code = SYNTAX_UNBALANCED;
const E0104: Code = SYNTAX_TOO_DEEP;
const E0105: Code = SYNTAX_FILE_TOO_LARGE;
const E0106: Code = SYNTAX_INVALID_UTF8;
const E0107: Code = SYNTAX_NUL_BYTE;
const E0108: Code = SYNTAX_BIDI;
const E0109: Code = SYNTAX_BAD_NUMBER;
const E0110: Code = SYNTAX_EMPTY_FILE;
const E0111: Code = SYNTAX_NON_ASCII;
const E0112: Code = SYNTAX_BAD_ESCAPE;
const E0113: Code = FMT_NOT_FORMATTED;
