//! A lexical pre-pass over the whole source, before pest sees it.
//!
//! It finds what a PEG parser reports badly or cannot survive: NUL bytes, bidirectional control
//! characters, non-ASCII characters outside strings and comments, unterminated strings and block
//! comments, unbalanced delimiters, and nesting deeper than the limit (which would otherwise
//! overflow the stack in the recursive-descent parser). It also records, for each opening
//! delimiter, where its partner is, which the parser uses to skip a broken block in one step.
//!
//! Invariant: when [`prescan`] reports no error, every delimiter outside strings and comments is
//! matched and nesting is at most `max_nesting`, so pest's recursion is bounded.

use crate::diag::{codes, Diagnostic, FileId, Span};
use std::collections::HashMap;

/// What the pre-pass learned about a source.
pub struct Prescan {
    pub diagnostics: Vec<Diagnostic>,
    /// Byte offset of each opening delimiter → byte offset of its closing partner.
    pub partners: HashMap<usize, usize>,
    /// Whether parsing must not go on (unterminated text, unmatched openers, nesting limit).
    /// Problems that are local (a stray closer, a bad character) let the parser continue.
    pub fatal: bool,
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn closer(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

/// Runs the pre-pass. `max_errors` caps the diagnostics.
pub fn prescan(file: FileId, text: &str, max_nesting: usize, max_errors: usize) -> Prescan {
    let mut out = Prescan {
        diagnostics: Vec::new(),
        partners: HashMap::new(),
        fatal: false,
    };
    let bytes = text.as_bytes();
    // Stack of open delimiters: (byte, offset).
    let mut stack: Vec<(u8, usize)> = Vec::new();
    // After an unterminated string, delimiters cannot be matched reliably any more; strings
    // and characters still can.
    let mut delimiters_reliable = true;
    let mut i = 0;
    while i < bytes.len() && out.diagnostics.len() < max_errors {
        let b = bytes[i];
        match b {
            0 => {
                out.diagnostics.push(
                    Diagnostic::error(codes::SYNTAX_NUL_BYTE, "nul byte in source")
                        .primary(file, Span::new(i, i + 1), "a nul byte (0x00) here")
                        .note(
                            "no text file contains nul bytes: the file may be binary or corrupted",
                        ),
                );
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text
                    .get(i..)
                    .and_then(|s| s.find(['\n', '\r']))
                    .map_or(bytes.len(), |n| i + n);
                check_text_chars(file, text, i, end, &mut out.diagnostics);
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                match skip_block_comment(text, i, max_nesting) {
                    Ok(end) => {
                        check_text_chars(file, text, i, end, &mut out.diagnostics);
                        i = end;
                    }
                    Err(CommentError::Unterminated) => {
                        out.diagnostics.push(
                            Diagnostic::error(
                                codes::SYNTAX_UNTERMINATED_COMMENT,
                                "unterminated block comment",
                            )
                            .primary(file, Span::new(i, i + 2), "this comment is never closed")
                            .help("add `*/` where the comment should end"),
                        );
                        out.fatal = true;
                        return out;
                    }
                    Err(CommentError::TooDeep(at)) => {
                        out.diagnostics
                            .push(too_deep(file, at, max_nesting, "block comments"));
                        out.fatal = true;
                        return out;
                    }
                }
            }
            b'"' => {
                let mut j = i + 1;
                let mut closed = false;
                while j < bytes.len() {
                    match bytes[j] {
                        b'\\' => j += 2,
                        b'"' => {
                            closed = true;
                            break;
                        }
                        b'\n' | b'\r' => break,
                        _ => j += 1,
                    }
                }
                let end = j.min(bytes.len());
                if closed {
                    check_text_chars(file, text, i, end, &mut out.diagnostics);
                    i = end + 1;
                } else {
                    out.diagnostics.push(
                        Diagnostic::error(codes::SYNTAX_UNTERMINATED_STRING, "unterminated string")
                            .primary(file, Span::new(i, end), "this string is never closed")
                            .help("close the string with `\"` on the same line"),
                    );
                    out.fatal = true;
                    delimiters_reliable = false;
                    i = end;
                }
            }
            b'(' | b'[' | b'{' | b')' | b']' | b'}' if !delimiters_reliable => i += 1,
            b'(' | b'[' | b'{' => {
                if stack.len() >= max_nesting {
                    // Nothing later can be matched reliably.
                    out.diagnostics
                        .push(too_deep(file, i, max_nesting, "brackets"));
                    out.fatal = true;
                    return out;
                }
                stack.push((b, i));
                i += 1;
            }
            b')' | b']' | b'}' => {
                match stack.last() {
                    Some(&(open, at)) if closer(open) == b => {
                        stack.pop();
                        out.partners.insert(at, i);
                    }
                    _ if stack.iter().any(|&(open, _)| closer(open) == b) => {
                        // Closes an outer group while inner ones are open: unmatched openers.
                        let (open, at) = stack.last().copied().unwrap_or((b'(', i));
                        let open_c = open as char;
                        let want = closer(open) as char;
                        let found = b as char;
                        out.diagnostics.push(
                            Diagnostic::error(
                                codes::SYNTAX_UNBALANCED,
                                format!("mismatched closing delimiter: `{found}`"),
                            )
                            .primary(
                                file,
                                Span::new(i, i + 1),
                                format!("expected `{want}`, found `{found}`"),
                            )
                            .secondary(
                                file,
                                Span::new(at, at + 1),
                                format!("this `{open_c}` is not closed"),
                            ),
                        );
                        out.fatal = true;
                        return out;
                    }
                    _ => {
                        // Closes nothing: report it and read on as if it were not there.
                        let found = b as char;
                        out.diagnostics.push(
                            Diagnostic::error(
                                codes::SYNTAX_UNBALANCED,
                                format!("unexpected closing delimiter: `{found}`"),
                            )
                            .primary(file, Span::new(i, i + 1), "this closes nothing")
                            .help("remove it, or add the opening delimiter it was meant to close"),
                        );
                    }
                }
                i += 1;
            }
            _ if b >= 0x80 => {
                let Some(c) = text.get(i..).and_then(|s| s.chars().next()) else {
                    i += 1;
                    continue;
                };
                let len = c.len_utf8();
                if i == 0 && c == '\u{FEFF}' {
                    // A byte-order mark at the start is skipped by the parser.
                } else if is_bidi_control(c) {
                    out.diagnostics.push(bidi(file, i, len, c));
                } else {
                    out.diagnostics.push(non_ascii(file, i, len, c));
                }
                i += len;
            }
            _ => i += 1,
        }
    }
    if out.diagnostics.is_empty() && delimiters_reliable {
        if let Some(&(open, at)) = stack.last() {
            let open_c = open as char;
            out.diagnostics.push(
                Diagnostic::error(
                    codes::SYNTAX_UNBALANCED,
                    format!("unclosed delimiter `{open_c}`"),
                )
                .primary(file, Span::new(at, at + 1), "this is never closed")
                .secondary(
                    file,
                    Span::new(bytes.len(), bytes.len()),
                    "the file ends here",
                )
                .help(format!(
                    "add `{}` where it should end",
                    closer(open) as char
                )),
            );
            out.fatal = true;
        }
    }
    out
}

enum CommentError {
    Unterminated,
    TooDeep(usize),
}

/// Returns the offset just past the block comment starting at `start` (comments nest).
fn skip_block_comment(text: &str, start: usize, max_nesting: usize) -> Result<usize, CommentError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < bytes.len() {
        if bytes[i] == b'/' && bytes[i + 1] == b'*' {
            depth += 1;
            if depth > max_nesting {
                return Err(CommentError::TooDeep(i));
            }
            i += 2;
        } else if bytes[i] == b'*' && bytes[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Ok(i);
            }
        } else {
            i += 1;
        }
    }
    Err(CommentError::Unterminated)
}

/// Inside comments and strings any character is fine except bidi controls and NUL.
fn check_text_chars(file: FileId, text: &str, start: usize, end: usize, out: &mut Vec<Diagnostic>) {
    let Some(slice) = text.get(start..end) else {
        return;
    };
    for (off, c) in slice.char_indices() {
        let at = start + off;
        if is_bidi_control(c) {
            out.push(bidi(file, at, c.len_utf8(), c));
        } else if c == '\0' {
            out.push(
                Diagnostic::error(codes::SYNTAX_NUL_BYTE, "nul byte in source").primary(
                    file,
                    Span::new(at, at + 1),
                    "a nul byte (0x00) here",
                ),
            );
        }
    }
}

fn too_deep(file: FileId, at: usize, max: usize, what: &str) -> Diagnostic {
    Diagnostic::error(
        codes::SYNTAX_TOO_DEEP,
        format!("{what} nested more than {max} deep"),
    )
    .primary(
        file,
        Span::new(at, at + 2),
        format!("nesting exceeds {max} levels here"),
    )
    .help("flatten the expression, or raise the limit with `--max-nesting`")
}

fn bidi(file: FileId, at: usize, len: usize, c: char) -> Diagnostic {
    Diagnostic::error(
        codes::SYNTAX_BIDI,
        format!("bidirectional control character U+{:04X}", c as u32),
    )
    .primary(
        file,
        Span::new(at, at + len),
        "this character can make the text display in a different order than it is read",
    )
    .help("remove it")
}

fn non_ascii(file: FileId, at: usize, len: usize, c: char) -> Diagnostic {
    let d = Diagnostic::error(
        codes::SYNTAX_NON_ASCII,
        format!("non-ascii character `{c}` (U+{:04X})", c as u32),
    )
    .primary(
        file,
        Span::new(at, at + len),
        "names and symbols are ASCII only",
    );
    match confusable(c) {
        Some(ascii) => d.help(format!(
            "this looks like `{ascii}`; type the ASCII character instead"
        )),
        None => d.help("non-ASCII text is allowed only inside strings and comments"),
    }
}

/// A few characters often pasted in place of ASCII ones.
fn confusable(c: char) -> Option<char> {
    Some(match c {
        'а' => 'a',
        'е' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'х' => 'x',
        'у' => 'y',
        'і' => 'i',
        '‘' | '’' => '\'',
        '“' | '”' => '"',
        '−' | '–' | '—' => '-',
        '\u{00A0}' => ' ',
        '×' => 'x',
        '：' => ':',
        '，' => ',',
        '（' => '(',
        '）' => ')',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes_of(text: &str) -> Vec<&'static str> {
        prescan(FileId::default(), text, 8, 50)
            .diagnostics
            .iter()
            .map(|d| d.code.as_str())
            .collect()
    }

    #[test]
    fn clean_text_has_no_problems_and_matches_partners() {
        let p = prescan(FileId::default(), "a(b[c]{\"(\"}) // (\n/* ( */", 8, 50);
        assert!(p.diagnostics.is_empty());
        assert_eq!(p.partners.get(&1), Some(&11));
        assert_eq!(p.partners.get(&3), Some(&5));
    }

    #[test]
    fn finds_each_lexical_problem() {
        assert_eq!(codes_of("a\0b"), ["E0107"]);
        assert_eq!(codes_of("\"abc\nx"), ["E0101"]);
        assert_eq!(codes_of("/* /* */"), ["E0102"]);
        assert_eq!(codes_of("(]"), ["E0103"]);
        assert_eq!(codes_of("(]])"), ["E0103", "E0103"]);
        assert_eq!(codes_of(")"), ["E0103"]);
        assert_eq!(codes_of("(("), ["E0103"]);
        assert_eq!(codes_of("((((((((((x))))))))))"), ["E0104"]);
        assert_eq!(codes_of("// \u{202E}"), ["E0108"]);
        assert_eq!(codes_of("dеnse"), ["E0111"]);
        assert!(codes_of("\u{FEFF}model").is_empty());
        assert!(codes_of("\"é\" // é").is_empty());
    }

    #[test]
    fn deep_nesting_is_cheap() {
        let text = "[".repeat(100_000);
        let p = prescan(FileId::default(), &text, 256, 50);
        assert_eq!(p.diagnostics.len(), 1);
        assert_eq!(p.diagnostics[0].code, codes::SYNTAX_TOO_DEEP);
    }
}
