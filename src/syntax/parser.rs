//! The parse driver: runs pest one block header or body line at a time and recovers after a
//! syntax error at the next line or block, so one run reports every error in a file.

use super::ast::{DataDef, ExperimentDef, File, Ident, Item, ModelDef, TrainDef};
use super::build::{Builder, Malformed};
use super::errors::{describe_found, syntax_error, Context, BLOCK_KEYWORDS};
use super::grammar::{ModelParser, Rule};
use super::prescan::prescan;
use super::Limits;
use crate::diag::{codes, Diagnostic, FileId, Span};
use pest::Parser as _;
use std::collections::HashMap;

/// The result of parsing one file: as much AST as could be built, and every problem found.
#[derive(Debug, Default)]
pub struct Parsed {
    pub file: File,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether any error (not just warnings) was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses a whole source text.
pub fn parse(file: FileId, text: &str, limits: &Limits) -> Parsed {
    let scan = prescan(file, text, limits.max_nesting, limits.max_errors);
    if scan.fatal {
        return Parsed {
            file: File::default(),
            diagnostics: scan.diagnostics,
        };
    }
    let start = if text.starts_with('\u{FEFF}') {
        '\u{FEFF}'.len_utf8()
    } else {
        0
    };
    let mut p = Driver {
        file,
        text,
        partners: scan.partners,
        limits: *limits,
        diagnostics: Vec::new(),
        items: Vec::new(),
    };
    p.run(start);
    // A place the pre-pass already reported (a stray `)`, a bad character) needs no second
    // report from the parser.
    let reported: Vec<usize> = scan
        .diagnostics
        .iter()
        .filter_map(|d| d.primary_label())
        .map(|l| l.span.start)
        .collect();
    p.diagnostics.retain(|d| {
        d.primary_label()
            .is_none_or(|l| !reported.contains(&l.span.start))
    });
    let mut diagnostics = scan.diagnostics;
    diagnostics.append(&mut p.diagnostics);
    p.diagnostics = diagnostics;
    if p.items.is_empty() && p.diagnostics.is_empty() {
        let end = text.len();
        p.diagnostics.push(
            Diagnostic::warning(
                codes::SYNTAX_EMPTY_FILE,
                "file defines no model, data, train or experiment block",
            )
            .primary(file, Span::new(end, end), "nothing to check")
            .help(format!("a spec starts with {BLOCK_KEYWORDS}")),
        );
    }
    Parsed {
        file: File { items: p.items },
        diagnostics: p.diagnostics,
    }
}

/// Parses a `--set KEY=VALUE` override (`optimizer=adam(lr: 3e-4)`, `data.batch=32`): the key
/// and the arguments of the setting it replaces, with spans into `text`.
///
/// Spans (of the tree and of the diagnostics) are offsets into `text` plus `base`, so a caller
/// can give each override a range of its own beside the spec's text.
pub fn parse_override(
    file: FileId,
    text: &str,
    base: usize,
    limits: &Limits,
) -> Result<(Ident, Vec<super::ast::Arg>), Vec<Diagnostic>> {
    let shifted = |mut diags: Vec<Diagnostic>| {
        for d in &mut diags {
            for l in &mut d.labels {
                l.span = l.span.shifted(base);
            }
        }
        diags
    };
    let scan = prescan(file, text, limits.max_nesting, limits.max_errors);
    if scan.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(shifted(scan.diagnostics));
    }
    let pair = match ModelParser::parse(Rule::override_alone, text) {
        Ok(mut pairs) => pairs.next(),
        Err(e) => {
            return Err(shifted(vec![syntax_error(
                file,
                text,
                0,
                &e,
                Context::Override,
            )]));
        }
    };
    let mut diagnostics = Vec::new();
    let mut b = Builder {
        file,
        base,
        diagnostics: &mut diagnostics,
    };
    let span = Span::new(base, base + text.len());
    let built = pair
        .ok_or(Malformed(span))
        .and_then(|p| b.keyed_args(p, span));
    match built {
        Ok(found) if diagnostics.is_empty() => Ok(found),
        Ok(_) => Err(diagnostics),
        Err(Malformed(at)) => Err(vec![Diagnostic::error(
            codes::SYNTAX_UNEXPECTED,
            "internal error: the parser could not build this override",
        )
        .primary(file, at, "here")]),
    }
}

struct Driver<'t> {
    file: FileId,
    text: &'t str,
    partners: HashMap<usize, usize>,
    limits: Limits,
    diagnostics: Vec<Diagnostic>,
    items: Vec<Item>,
}

#[derive(Clone, Copy)]
enum BlockKind {
    Model,
    Data,
    Train,
    Experiment,
}

impl Driver<'_> {
    fn run(&mut self, mut pos: usize) {
        loop {
            pos = skip_trivia(self.text, pos);
            if pos >= self.text.len() || self.too_many_errors() {
                return;
            }
            let kind = if starts_keyword(self.text, pos, "model") {
                BlockKind::Model
            } else if starts_keyword(self.text, pos, "data") {
                BlockKind::Data
            } else if starts_keyword(self.text, pos, "train") {
                BlockKind::Train
            } else if starts_keyword(self.text, pos, "experiment") {
                BlockKind::Experiment
            } else {
                self.error_at(pos, Context::TopLevel);
                pos = self.skip_to_next_block(pos);
                continue;
            };
            pos = self.block(kind, pos);
        }
    }

    fn too_many_errors(&mut self) -> bool {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        errors >= self.limits.max_errors
    }

    fn error_at(&mut self, pos: usize, context: Context) {
        let (found, span) = describe_found(self.text, pos);
        let expected = match context {
            Context::TopLevel => BLOCK_KEYWORDS,
            _ => "something else",
        };
        self.diagnostics.push(
            Diagnostic::error(
                codes::SYNTAX_UNEXPECTED,
                format!("expected {expected}, found {found}"),
            )
            .primary(self.file, span, format!("unexpected {found}"))
            .help(format!("every block starts with {BLOCK_KEYWORDS}")),
        );
    }

    /// Skips past the current line (and any bracket group opened on it) to the next line that
    /// starts a block.
    fn skip_to_next_block(&self, pos: usize) -> usize {
        let mut at = self.skip_line(pos);
        loop {
            at = skip_trivia(self.text, at);
            if at >= self.text.len()
                || starts_keyword(self.text, at, "model")
                || starts_keyword(self.text, at, "data")
                || starts_keyword(self.text, at, "train")
                || starts_keyword(self.text, at, "experiment")
            {
                return at;
            }
            at = self.skip_line(at);
        }
    }

    /// The offset just past the end of the line containing `pos`, jumping over any delimited
    /// group that starts on the line (so a broken multi-line call is skipped whole).
    fn skip_line(&self, pos: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut i = pos;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' | b'\r' => return i + 1,
                b'(' | b'[' | b'{' => i = self.partners.get(&i).map_or(i + 1, |&close| close + 1),
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
        }
        bytes.len()
    }

    /// Parses one block starting at `pos`; returns where parsing goes on.
    fn block(&mut self, kind: BlockKind, pos: usize) -> usize {
        let (header_rule, header_ctx, body_ctx) = match kind {
            BlockKind::Model => (Rule::model_header, Context::ModelHeader, Context::ModelBody),
            BlockKind::Data => (Rule::data_header, Context::DataHeader, Context::DataBody),
            BlockKind::Train => (Rule::train_header, Context::TrainHeader, Context::TrainBody),
            BlockKind::Experiment => (
                Rule::experiment_header,
                Context::ExperimentHeader,
                Context::ExperimentBody,
            ),
        };
        let rest = self.text.get(pos..).unwrap_or("");
        let header = match ModelParser::parse(header_rule, rest) {
            Ok(mut pairs) => pairs.next(),
            Err(e) => {
                let d = syntax_error(self.file, self.text, pos, &e, header_ctx);
                // Skip the whole block when the error is before its `{`.
                let resume = self.skip_broken_header(pos, &d);
                self.diagnostics.push(d);
                return resume;
            }
        };
        let Some(header) = header else {
            return self.skip_to_next_block(pos);
        };
        let header_end = pos + header.as_span().end();
        let brace = header_end.saturating_sub(1);
        let Some(&block_end) = self.partners.get(&brace) else {
            return self.skip_to_next_block(pos);
        };

        let mut builder = Builder {
            file: self.file,
            base: pos,
            diagnostics: &mut self.diagnostics,
        };
        let head = match kind {
            BlockKind::Model => builder.model_header(header).map(Head::Model),
            BlockKind::Data => Ok(Head::Data(
                header_idents(&builder, header).into_iter().next(),
            )),
            BlockKind::Train => Ok(Head::Train(header_idents(&builder, header))),
            BlockKind::Experiment => Ok(Head::Experiment(
                header_idents(&builder, header).into_iter().next(),
            )),
        };
        let mut stmts = Vec::new();
        let mut settings = Vec::new();
        let mut lines = Vec::new();
        let mut at = header_end;
        loop {
            at = skip_trivia(self.text, at);
            if at >= block_end || self.too_many_errors() {
                break;
            }
            let body = self.text.get(at..block_end).unwrap_or("");
            let (rule, alone) = match kind {
                BlockKind::Model => (Rule::stmt, Rule::stmt_alone),
                BlockKind::Data | BlockKind::Train => (Rule::setting, Rule::setting_alone),
                BlockKind::Experiment => (Rule::experiment_line, Rule::experiment_line_alone),
            };
            let parsed = match ModelParser::parse(rule, body) {
                Ok(mut pairs) => pairs.next().map(|pair| {
                    let end = at + last_token_end(&pair);
                    (pair, end)
                }),
                Err(e) => {
                    self.diagnostics
                        .push(syntax_error(self.file, self.text, at, &e, body_ctx));
                    at = self.skip_line(at).min(block_end);
                    continue;
                }
            };
            let Some((pair, end)) = parsed else { break };
            if !line_is_done(self.text, end, block_end) {
                // Text follows the statement on its line: parse the line alone, which makes
                // pest report the furthest point it reached, where the line really went wrong.
                let line_end = self.skip_line(end).min(block_end);
                let line = self
                    .text
                    .get(at..line_end)
                    .unwrap_or("")
                    .trim_end_matches(['\n', '\r']);
                if let Err(e) = ModelParser::parse(alone, line) {
                    self.diagnostics
                        .push(syntax_error(self.file, self.text, at, &e, body_ctx));
                }
                at = line_end;
                continue;
            }
            let mut b = Builder {
                file: self.file,
                base: at,
                diagnostics: &mut self.diagnostics,
            };
            let built = match kind {
                BlockKind::Model => b.stmt(pair).map(|s| stmts.push(s)),
                BlockKind::Experiment => b.experiment_line(pair).map(|l| lines.push(l)),
                BlockKind::Data | BlockKind::Train => b.setting(pair).map(|s| settings.push(s)),
            };
            if let Err(Malformed(span)) = built {
                self.internal(span);
            }
            at = end.max(at + 1);
        }
        let span = Span::new(pos, block_end + 1);
        match head {
            Ok(Head::Model((name, inputs, output, named_outputs))) => {
                self.items.push(Item::Model(ModelDef {
                    name,
                    inputs,
                    output,
                    named_outputs,
                    body: stmts,
                    span,
                }));
            }
            Ok(Head::Data(Some(name))) => self.items.push(Item::Data(DataDef {
                name,
                settings,
                span,
            })),
            Ok(Head::Train(names)) => {
                let mut names = names.into_iter();
                if let (Some(model), Some(data)) = (names.next(), names.next()) {
                    self.items.push(Item::Train(TrainDef {
                        model,
                        data,
                        alias: names.next(),
                        settings,
                        span,
                    }));
                }
            }
            Ok(Head::Experiment(Some(name))) => {
                self.items
                    .push(Item::Experiment(ExperimentDef { name, lines, span }));
            }
            Ok(Head::Data(None) | Head::Experiment(None)) => {
                self.internal(Span::new(pos, header_end));
            }
            Err(Malformed(span)) => self.internal(span),
        }
        block_end + 1
    }

    /// Where to go on after a header that did not parse: past the block's `}` when the header
    /// got as far as a `{` on its first lines, else the next line that starts a block.
    fn skip_broken_header(&self, pos: usize, d: &Diagnostic) -> usize {
        let err_at = d.primary_label().map_or(pos, |l| l.span.start);
        let bytes = self.text.as_bytes();
        let mut i = err_at;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => return self.partners.get(&i).map_or(i + 1, |&c| c + 1),
                b'(' | b'[' => i = self.partners.get(&i).map_or(i + 1, |&c| c + 1),
                b'}' => return i + 1,
                _ if starts_keyword(self.text, i, "model")
                    || starts_keyword(self.text, i, "data")
                    || starts_keyword(self.text, i, "train")
                    || starts_keyword(self.text, i, "experiment") =>
                {
                    if i > pos && (i == 0 || matches!(bytes[i - 1], b'\n' | b'\r')) {
                        return i;
                    }
                    i += 1;
                }
                _ => i += 1,
            }
        }
        bytes.len()
    }

    fn internal(&mut self, span: Span) {
        self.diagnostics.push(
            Diagnostic::error(
                codes::SYNTAX_UNEXPECTED,
                "internal error: the parser could not build this part of the file",
            )
            .primary(self.file, span, "here")
            .note("this is a bug in modelc; please report it with the file"),
        );
    }
}

enum Head {
    Model(super::build::ModelHeader),
    Data(Option<Ident>),
    Train(Vec<Ident>),
    Experiment(Option<Ident>),
}

/// The names in a data or train header, in order.
fn header_idents(b: &Builder<'_>, header: pest::iterators::Pair<'_, Rule>) -> Vec<Ident> {
    header
        .into_inner()
        .filter(|p| p.as_rule() == Rule::ident)
        .map(|p| b.ident(&p))
        .collect()
}

/// The end of the last token of a pair, relative to where it was parsed. (A rule's own span
/// can include the blanks pest skipped after its last token; a leaf's cannot.)
fn last_token_end(pair: &pest::iterators::Pair<'_, Rule>) -> usize {
    pair.clone()
        .into_inner()
        .flatten()
        .filter(|p| p.clone().into_inner().next().is_none() || p.as_rule() == Rule::string)
        .map(|p| p.as_span().end())
        .max()
        .unwrap_or_else(|| pair.as_span().end())
}

/// Whether only blanks and comments follow `pos` up to the end of its line (or `limit`).
fn line_is_done(text: &str, pos: usize, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let mut i = pos;
    while i < limit.min(bytes.len()) {
        match bytes[i] {
            b' ' | b'\t' => i += 1,
            b'\n' | b'\r' => return true,
            b'/' if bytes.get(i + 1) == Some(&b'/') => return true,
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let after = skip_trivia(text, i);
                // A block comment that spans lines ends the line too.
                if text.get(i..after).is_some_and(|c| c.contains(['\n', '\r'])) {
                    return true;
                }
                i = after.max(i + 1);
            }
            _ => return false,
        }
    }
    true
}

/// Whether `word` starts at `pos` as a whole word.
fn starts_keyword(text: &str, pos: usize, word: &str) -> bool {
    let Some(rest) = text.get(pos..) else {
        return false;
    };
    rest.starts_with(word)
        && !rest[word.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
}

/// Skips blanks and comments (the prescan guarantees comments are terminated).
pub(crate) fn skip_trivia(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    while pos < bytes.len() {
        match bytes[pos] {
            b' ' | b'\t' | b'\n' | b'\r' => pos += 1,
            b'/' if bytes.get(pos + 1) == Some(&b'/') => {
                while pos < bytes.len() && bytes[pos] != b'\n' && bytes[pos] != b'\r' {
                    pos += 1;
                }
            }
            b'/' if bytes.get(pos + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while pos + 1 < bytes.len() {
                    if bytes[pos] == b'/' && bytes[pos + 1] == b'*' {
                        depth += 1;
                        pos += 2;
                    } else if bytes[pos] == b'*' && bytes[pos + 1] == b'/' {
                        depth -= 1;
                        pos += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        pos += 1;
                    }
                }
                if depth > 0 {
                    return bytes.len();
                }
            }
            _ => break,
        }
    }
    pos
}
