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
    let mut scan = Scanner {
        file,
        text,
        bytes: text.as_bytes(),
        max_nesting,
        max_errors,
        out: Prescan {
            diagnostics: Vec::new(),
            partners: HashMap::new(),
            fatal: false,
        },
        stack: Vec::new(),
        delimiters_reliable: true,
    };
    let mut i = 0;
    while i < scan.bytes.len() && scan.out.diagnostics.len() < max_errors {
        match scan.step(i) {
            Some(next) => i = next,
            None => return scan.out,
        }
    }
    scan.unclosed_at_end();
    scan.out
}

/// The pre-pass's state while it walks the bytes.
struct Scanner<'t> {
    file: FileId,
    text: &'t str,
    bytes: &'t [u8],
    max_nesting: usize,
    max_errors: usize,
    out: Prescan,
    /// Open delimiters: (byte, offset).
    stack: Vec<(u8, usize)>,
    /// After an unterminated string, delimiters cannot be matched reliably any more; strings
    /// and characters still can.
    delimiters_reliable: bool,
}

impl Scanner<'_> {
    /// Reads the token at `i`; the offset to read next, or `None` to stop (a fatal problem).
    fn step(&mut self, i: usize) -> Option<usize> {
        let b = self.bytes[i];
        let next = self.bytes.get(i + 1).copied();
        match b {
            0 => {
                self.out.diagnostics.push(
                    Diagnostic::error(codes::SYNTAX_NUL_BYTE, "nul byte in source")
                        .primary(self.file, Span::new(i, i + 1), "a nul byte (0x00) here")
                        .note(
                            "no text file contains nul bytes: the file may be binary or corrupted",
                        ),
                );
                Some(i + 1)
            }
            b'/' if next == Some(b'/') => {
                let end = self
                    .text
                    .get(i..)
                    .and_then(|s| s.find(['\n', '\r']))
                    .map_or(self.bytes.len(), |n| i + n);
                self.check_text_chars(i, end);
                Some(end)
            }
            b'/' if next == Some(b'*') => self.block_comment(i),
            b'"' => Some(self.string(i)),
            b'(' | b'[' | b'{' | b')' | b']' | b'}' if !self.delimiters_reliable => Some(i + 1),
            b'(' | b'[' | b'{' => {
                if self.stack.len() >= self.max_nesting {
                    // Nothing later can be matched reliably.
                    self.out
                        .diagnostics
                        .push(too_deep(self.file, i, self.max_nesting, "brackets"));
                    self.out.fatal = true;
                    return None;
                }
                self.stack.push((b, i));
                Some(i + 1)
            }
            b')' | b']' | b'}' => self.close(i, b).then_some(i + 1),
            _ if b >= 0x80 => Some(self.non_ascii(i)),
            _ => Some(i + 1),
        }
    }

    fn block_comment(&mut self, i: usize) -> Option<usize> {
        match skip_block_comment(self.text, i, self.max_nesting) {
            Ok(end) => {
                self.check_text_chars(i, end);
                Some(end)
            }
            Err(CommentError::Unterminated) => {
                self.out.diagnostics.push(
                    Diagnostic::error(
                        codes::SYNTAX_UNTERMINATED_COMMENT,
                        "unterminated block comment",
                    )
                    .primary(
                        self.file,
                        Span::new(i, i + 2),
                        "this comment is never closed",
                    )
                    .help("add `*/` where the comment should end"),
                );
                self.out.fatal = true;
                None
            }
            Err(CommentError::TooDeep(at)) => {
                self.out.diagnostics.push(too_deep(
                    self.file,
                    at,
                    self.max_nesting,
                    "block comments",
                ));
                self.out.fatal = true;
                None
            }
        }
    }

    /// A string literal starting at `i`; the offset after it.
    fn string(&mut self, i: usize) -> usize {
        let bytes = self.bytes;
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
            self.check_text_chars(i, end);
            return end + 1;
        }
        self.out.diagnostics.push(
            Diagnostic::error(codes::SYNTAX_UNTERMINATED_STRING, "unterminated string")
                .primary(self.file, Span::new(i, end), "this string is never closed")
                .help("close the string with `\"` on the same line"),
        );
        self.out.fatal = true;
        self.delimiters_reliable = false;
        end
    }

    /// A closing delimiter `b` at `i`; `false` when scanning must stop.
    fn close(&mut self, i: usize, b: u8) -> bool {
        match self.stack.last() {
            Some(&(open, at)) if closer(open) == b => {
                self.stack.pop();
                self.out.partners.insert(at, i);
            }
            _ if self.stack.iter().any(|&(open, _)| closer(open) == b) => {
                // Closes an outer group while inner ones are open: unmatched openers.
                let (open, at) = self.stack.last().copied().unwrap_or((b'(', i));
                let open_c = open as char;
                let want = closer(open) as char;
                let found = b as char;
                self.out.diagnostics.push(
                    Diagnostic::error(
                        codes::SYNTAX_UNBALANCED,
                        format!("mismatched closing delimiter: `{found}`"),
                    )
                    .primary(
                        self.file,
                        Span::new(i, i + 1),
                        format!("expected `{want}`, found `{found}`"),
                    )
                    .secondary(
                        self.file,
                        Span::new(at, at + 1),
                        format!("this `{open_c}` is not closed"),
                    ),
                );
                self.out.fatal = true;
                return false;
            }
            _ => {
                // Closes nothing: report it and read on as if it were not there.
                let found = b as char;
                self.out.diagnostics.push(
                    Diagnostic::error(
                        codes::SYNTAX_UNBALANCED,
                        format!("unexpected closing delimiter: `{found}`"),
                    )
                    .primary(self.file, Span::new(i, i + 1), "this closes nothing")
                    .help("remove it, or add the opening delimiter it was meant to close"),
                );
            }
        }
        true
    }

    /// A non-ASCII character at `i` outside strings and comments; the offset after it.
    fn non_ascii(&mut self, i: usize) -> usize {
        let Some(c) = self.text.get(i..).and_then(|s| s.chars().next()) else {
            return i + 1;
        };
        let len = c.len_utf8();
        if i == 0 && c == '\u{FEFF}' {
            // A byte-order mark at the start is skipped by the parser.
        } else if is_bidi_control(c) {
            self.out.diagnostics.push(bidi(self.file, i, len, c, 1));
        } else {
            self.out.diagnostics.push(non_ascii(self.file, i, len, c));
        }
        i + len
    }

    /// Inside comments and strings any character is fine except bidi controls and NUL. A run
    /// of them is one diagnostic (a comment of 2,000 such characters is one problem, not 2,000
    /// renderings of its line), and the error cap holds inside a comment too.
    fn check_text_chars(&mut self, start: usize, end: usize) {
        let Some(slice) = self.text.get(start..end) else {
            return;
        };
        // The run being gathered: its first character, where it starts and ends, its length.
        let mut run: Option<(char, usize, usize, usize)> = None;
        for (off, c) in slice.char_indices() {
            let at = start + off;
            let bad = is_bidi_control(c) || c == '\0';
            match run {
                Some((first, from, to, n)) if bad && to == at && (c == '\0') == (first == '\0') => {
                    run = Some((first, from, at + c.len_utf8(), n + 1));
                }
                _ => {
                    if let Some(r) = run.take() {
                        self.push_run(r);
                    }
                    if bad {
                        run = Some((c, at, at + c.len_utf8(), 1));
                    }
                }
            }
        }
        if let Some(r) = run {
            self.push_run(r);
        }
    }

    /// The diagnostic of a run of NUL bytes or bidi controls, unless the cap is reached.
    fn push_run(&mut self, (first, from, to, count): (char, usize, usize, usize)) {
        if self.out.diagnostics.len() >= self.max_errors {
            return;
        }
        let d = if first == '\0' {
            let (message, label) = if count == 1 {
                (
                    "nul byte in source".to_string(),
                    "a nul byte (0x00) here".to_string(),
                )
            } else {
                (
                    format!("{count} nul bytes in source"),
                    format!("{count} nul bytes (0x00) here"),
                )
            };
            Diagnostic::error(codes::SYNTAX_NUL_BYTE, message).primary(
                self.file,
                Span::new(from, to),
                label,
            )
        } else {
            bidi(self.file, from, to - from, first, count)
        };
        self.out.diagnostics.push(d);
    }

    /// An opener still open at the end of a file with no other problem.
    fn unclosed_at_end(&mut self) {
        if !self.out.diagnostics.is_empty() || !self.delimiters_reliable {
            return;
        }
        let Some(&(open, at)) = self.stack.last() else {
            return;
        };
        let open_c = open as char;
        let end = self.bytes.len();
        self.out.diagnostics.push(
            Diagnostic::error(
                codes::SYNTAX_UNBALANCED,
                format!("unclosed delimiter `{open_c}`"),
            )
            .primary(self.file, Span::new(at, at + 1), "this is never closed")
            .secondary(self.file, Span::new(end, end), "the file ends here")
            .help(format!(
                "add `{}` where it should end",
                closer(open) as char
            )),
        );
        self.out.fatal = true;
    }
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

/// `count` bidirectional control characters in a row at `at` (`len` bytes), the first `c`.
fn bidi(file: FileId, at: usize, len: usize, c: char, count: usize) -> Diagnostic {
    let message = if count == 1 {
        format!("bidirectional control character U+{:04X}", c as u32)
    } else {
        format!(
            "{count} bidirectional control characters in a row, the first U+{:04X}",
            c as u32
        )
    };
    let label = if count == 1 {
        "this character can make the text display in a different order than it is read"
    } else {
        "these characters can make the text display in a different order than it is read"
    };
    Diagnostic::error(codes::SYNTAX_BIDI, message)
        .primary(file, Span::new(at, at + len), label)
        .help(if count == 1 {
            "remove it"
        } else {
            "remove them"
        })
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
    fn a_run_of_hostile_characters_is_one_diagnostic_and_the_cap_holds_in_comments() {
        let comment = format!("// {}\n", "\u{202E}".repeat(2000));
        let p = prescan(FileId::default(), &comment, 8, 50);
        assert_eq!(p.diagnostics.len(), 1);
        let d = &p.diagnostics[0];
        assert!(
            d.message
                .starts_with("2000 bidirectional control characters"),
            "{}",
            d.message
        );
        assert_eq!(d.labels[0].span, Span::new(3, 3 + 3 * 2000));
        let nuls = format!("/* {} */", "\0".repeat(7));
        let p = prescan(FileId::default(), &nuls, 8, 50);
        assert_eq!(p.diagnostics.len(), 1);
        assert_eq!(p.diagnostics[0].message, "7 nul bytes in source");
        // Separated characters are separate problems, and the cap holds inside one comment.
        let spaced = format!("// {}", "\u{202E} ".repeat(500));
        assert_eq!(
            prescan(FileId::default(), &spaced, 8, 50).diagnostics.len(),
            50
        );
        // A NUL next to a bidi control starts a new run: they are different problems.
        assert_eq!(codes_of("// \u{202E}\0"), ["E0108", "E0107"]);
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
