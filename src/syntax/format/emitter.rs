//! The output side of the formatter: lines, indentation, and comments placed between tokens.
//!
//! Input: tokens in source order, each with the byte span it came from when there is a source
//! (a span is `None` for synthetic text), and the source's comments. Output: lines of text.
//! Invariants: every comment is emitted exactly once, in source order, before the first token
//! that follows it in the source; a comment that shared its line with the token before it stays
//! on that token's line, any other goes on a line of its own; a line comment always ends its
//! line, so nothing printed after it can fall into it; at most one blank line is ever emitted in
//! a row, and only where the caller allows one.

use super::comments::{Comment, CommentKind};
use crate::diag::Span;

/// Builds the formatted lines.
pub(super) struct Emitter<'s> {
    /// The source text (LF line ends, no BOM), or `None` when printing a synthetic tree.
    source: Option<&'s str>,
    comments: Vec<Comment>,
    next_comment: usize,
    /// Finished lines; the last one is the line being written.
    lines: Vec<String>,
    /// The source offset just past the last token emitted (where punctuation is looked for).
    cursor: usize,
    /// The source offset just past the last token or comment emitted (blank lines are counted
    /// from here).
    last_end: usize,
    /// The current line is finished (a line comment ended it, or the caller asked for a break):
    /// the next token starts a new line.
    closed: bool,
    /// A space is owed before the next token (after an inline block comment).
    space_owed: bool,
    /// Spaces owed before the next token (to align setting values).
    pad: usize,
    /// Indentation of a line started inside the current context.
    pub(super) break_indent: usize,
    /// What happens to a blank line before the next own-line element.
    pub(super) blanks: Blanks,
}

/// What happens to a blank line before the next element on a line of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Blanks {
    /// Dropped (at the start of a block, inside a statement).
    Drop,
    /// Kept when the source has one (runs collapse to one).
    Keep,
    /// One is put there whatever the source has (after a block); then `Keep`.
    Force,
}

impl Blanks {
    /// Whether to put a blank line, given the line breaks before the element in the source.
    fn wanted(self, newlines: usize) -> bool {
        match self {
            Blanks::Drop => false,
            Blanks::Keep => newlines >= 2,
            Blanks::Force => true,
        }
    }
}

impl<'s> Emitter<'s> {
    pub(super) fn new(source: Option<&'s str>, comments: Vec<Comment>) -> Self {
        Self {
            source,
            comments,
            next_comment: 0,
            lines: Vec::new(),
            cursor: 0,
            last_end: 0,
            closed: true,
            space_owed: false,
            pad: 0,
            break_indent: 0,
            blanks: Blanks::Keep,
        }
    }

    /// The source text being formatted, if any.
    pub(super) fn source(&self) -> Option<&'s str> {
        self.source
    }

    /// The source text of `span`, when printing from a source.
    pub(super) fn source_text(&self, span: Span) -> Option<&'s str> {
        self.source.and_then(|s| s.get(span.start..span.end))
    }

    /// Where the punctuation or keyword `token` is in the source: the next thing after the last
    /// token emitted, skipping blanks and comments (and, before a closing bracket, a trailing
    /// comma, which the formatter drops). `None` when it is not there (parentheses the AST does
    /// not keep) or there is no source.
    pub(super) fn find(&self, token: &str) -> Option<Span> {
        let source = self.source?;
        let mut at = crate::syntax::parser::skip_trivia(source, self.cursor);
        if matches!(token, ")" | "]") && source.get(at..)?.starts_with(',') {
            at = crate::syntax::parser::skip_trivia(source, at + 1);
        }
        source
            .get(at..)?
            .starts_with(token)
            .then(|| Span::new(at, at + token.len()))
    }

    /// Emits a token found with [`Emitter::find`] (or synthetic when not found).
    pub(super) fn punct(&mut self, token: &str, space_before: bool) {
        let span = self.find(token);
        self.token(token, span, space_before);
    }

    /// Emits one token; comments before `span` come first.
    pub(super) fn token(&mut self, text: &str, span: Option<Span>, space_before: bool) {
        if let Some(span) = span {
            self.flush_comments(span.start);
        }
        if self.closed {
            self.open_line(self.break_indent, false);
        }
        let fresh = self.line_is_fresh();
        let closer = matches!(text, ")" | "]" | ",");
        if !fresh {
            if self.pad > 0 {
                self.push_spaces(self.pad);
            } else if space_before || (self.space_owed && !closer) {
                self.push_spaces(1);
            }
        }
        self.pad = 0;
        self.space_owed = false;
        self.current().push_str(text);
        if let Some(span) = span {
            self.cursor = span.end;
            self.last_end = span.end;
        }
    }

    /// Asks for the next token to start a new line (at `break_indent`).
    pub(super) fn break_line(&mut self) {
        self.closed = true;
    }

    /// Owes `n` spaces before the next token instead of the usual one.
    pub(super) fn pad_next(&mut self, n: usize) {
        self.pad = n;
    }

    /// Starts an element (a block or a statement) that goes on its own line at `indent`, after
    /// the comments before it; a blank line of the source before it is kept if allowed.
    pub(super) fn start_element(&mut self, start: usize, indent: usize) {
        self.flush_comments(start);
        let blank = self.blanks.wanted(self.newlines_before(start));
        self.open_line(indent, blank);
        if self.blanks == Blanks::Force {
            self.blanks = Blanks::Keep;
        }
    }

    /// Emits every comment that starts before `pos`.
    pub(super) fn flush_comments(&mut self, pos: usize) {
        while let Some(&comment) = self.comments.get(self.next_comment) {
            if comment.start >= pos {
                break;
            }
            self.next_comment += 1;
            let text = self
                .source
                .and_then(|s| s.get(comment.start..comment.end))
                .map(tidy_comment)
                .unwrap_or_default();
            let newlines = self.newlines_before(comment.start);
            if newlines == 0 && !self.closed && !self.line_is_fresh() {
                // It shared its line with the token before it: it stays there.
                if !self.current().ends_with(['(', '[']) {
                    self.push_spaces(1);
                }
                self.current().push_str(&text);
                self.space_owed = true;
                self.closed = comment.kind == CommentKind::Line;
            } else {
                let blank = self.blanks.wanted(newlines);
                if self.blanks == Blanks::Force {
                    self.blanks = Blanks::Keep;
                }
                self.open_line(self.break_indent, blank);
                self.current().push_str(&text);
                self.closed = true;
            }
            self.last_end = comment.end;
        }
    }

    /// Starts a new line at `indent` (reusing the current one if nothing is on it yet), after
    /// a blank line when `blank`.
    fn open_line(&mut self, indent: usize, blank: bool) {
        if self.line_is_fresh() {
            self.lines.pop();
        }
        if blank && self.lines.last().is_some_and(|l| !l.is_empty()) {
            self.lines.push(String::new());
        }
        self.lines.push(" ".repeat(indent));
        self.closed = false;
        self.space_owed = false;
    }

    /// The number of line breaks in the source between the last thing emitted and `pos`.
    fn newlines_before(&self, pos: usize) -> usize {
        self.source
            .and_then(|s| s.get(self.last_end.min(pos)..pos))
            .map_or(0, |gap| gap.matches('\n').count())
    }

    fn line_is_fresh(&self) -> bool {
        self.lines.last().is_none_or(|l| l.trim().is_empty())
    }

    fn current(&mut self) -> &mut String {
        if self.lines.is_empty() {
            self.lines.push(String::new());
        }
        let last = self.lines.len() - 1;
        &mut self.lines[last]
    }

    fn push_spaces(&mut self, n: usize) {
        let line = self.current();
        line.extend(std::iter::repeat_n(' ', n));
    }

    /// The finished text: lines without trailing blanks, no leading or trailing blank lines,
    /// one final newline (none for an empty result).
    pub(super) fn finish(mut self) -> String {
        self.flush_comments(usize::MAX);
        let lines: Vec<&str> = self.lines.iter().map(|l| l.trim_end()).collect();
        let first = lines.iter().position(|l| !l.is_empty());
        let last = lines.iter().rposition(|l| !l.is_empty());
        let (Some(first), Some(last)) = (first, last) else {
            return String::new();
        };
        let mut out = lines.get(first..=last).unwrap_or_default().join("\n");
        out.push('\n');
        out
    }
}

/// A comment as printed: no trailing blanks on any of its lines.
fn tidy_comment(text: &str) -> String {
    text.split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}
