//! Finding the comments of a source text, which the AST does not keep.
//!
//! Input: a source text that parsed without errors (so every string and block comment is
//! terminated). Output: its comments in source order, with byte spans. Invariant: the scanner
//! knows strings, so `"a // b"` is not a comment; it never panics, even on text that did not
//! parse (it then finds what it can).

/// Which kind of comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CommentKind {
    /// `// to the end of the line`
    Line,
    /// `/* nested /* block */ comment */`
    Block,
}

/// One comment: where it is in the source and what kind it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Comment {
    pub start: usize,
    pub end: usize,
    pub kind: CommentKind,
}

/// Every comment of `text`, in order.
pub(super) fn scan(text: &str) -> Vec<Comment> {
    let bytes = text.as_bytes();
    let mut comments = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'"', _) => i = string_end(bytes, i),
            (b'/', Some(b'/')) => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                comments.push(Comment {
                    start,
                    end: i,
                    kind: CommentKind::Line,
                });
            }
            (b'/', Some(b'*')) => {
                let start = i;
                i = block_comment_end(bytes, i);
                comments.push(Comment {
                    start,
                    end: i,
                    kind: CommentKind::Block,
                });
            }
            _ => i += 1,
        }
    }
    comments
}

/// The offset just past the string that opens at `open` (or the end of its line).
fn string_end(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The offset just past the (nested) block comment that opens at `open`.
fn block_comment_end(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth = depth.saturating_sub(1);
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<&str> {
        scan(src).iter().map(|c| &src[c.start..c.end]).collect()
    }

    #[test]
    fn finds_line_block_and_nested_comments_but_not_strings() {
        let src = "// a\nx(\"// no /* no\") /* b /* c */ d */ y // e\r\nz";
        assert_eq!(texts(src), ["// a", "/* b /* c */ d */", "// e"]);
        assert_eq!(scan(src)[0].kind, CommentKind::Line);
        assert_eq!(scan(src)[1].kind, CommentKind::Block);
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        assert_eq!(texts(r#"f("a \" // b") // c"#), ["// c"]);
    }

    #[test]
    fn unterminated_text_does_not_panic() {
        assert_eq!(texts("/* a /* b */"), ["/* a /* b */"]);
        assert!(texts("\"abc").is_empty());
    }
}
