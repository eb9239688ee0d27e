//! The layout of each construct: which tokens, which spaces, where lines break.
//!
//! Input: an [`ast::File`] and, when formatting a source, its text (literals are then copied
//! exactly as written: `1e-3` stays `1e-3`, `1/16` stays `1/16`). Output: tokens handed to the
//! [`Emitter`]. Invariant: the printed text parses back to the same tree, spans aside: every
//! statement and setting starts on its own line, a line is only ever broken between tokens of
//! one statement (where the grammar allows any blanks), and parentheses are printed where the
//! tree needs them (a pipe whose head is itself a pipe).

use super::emitter::{Blanks, Emitter};
use crate::diag::Span;
use crate::syntax::ast::{
    Arg, Call, DataDef, Dim, ExperimentDef, ExperimentLine, Expr, ExprKind, File, Item, ModelDef,
    Number, Param, Setting, Stmt, TensorType, TrainDef, Vary,
};

/// Lines longer than this break their top-level pipe before each `|>`.
pub const MAX_WIDTH: usize = 100;
/// Indentation of one level.
const INDENT: usize = 4;

/// Prints a whole file.
pub(super) fn file(e: &mut Emitter<'_>, file: &File) {
    for item in &file.items {
        e.break_indent = 0;
        e.start_element(item.span().start, 0);
        match item {
            Item::Model(m) => model(e, m),
            Item::Data(d) => data(e, d),
            Item::Train(t) => train(e, t),
            Item::Experiment(x) => experiment(e, x),
        }
        e.break_indent = 0;
        e.blanks = Blanks::Force;
    }
    e.break_indent = 0;
}

fn keyword(e: &mut Emitter<'_>, word: &str, at: usize) {
    let span = Span::new(at, at + word.len());
    let found = e.source_text(span) == Some(word);
    e.token(word, found.then_some(span), true);
}

fn model(e: &mut Emitter<'_>, m: &ModelDef) {
    e.break_indent = INDENT;
    keyword(e, "model", m.span.start);
    e.token(&m.name.name, Some(m.name.span), true);
    e.punct("(", false);
    for (i, p) in m.inputs.iter().enumerate() {
        if i > 0 {
            e.punct(",", false);
        }
        param(e, p, i > 0);
    }
    e.punct(")", false);
    if let Some(out) = &m.output {
        e.punct("->", true);
        tensor_type(e, out, true);
    } else if !m.named_outputs.is_empty() {
        e.punct("->", true);
        e.punct("(", true);
        for (i, o) in m.named_outputs.iter().enumerate() {
            if i > 0 {
                e.punct(",", false);
            }
            e.token(&o.name.name, Some(o.name.span), i > 0);
            if let Some(ty) = &o.ty {
                e.punct(":", false);
                tensor_type(e, ty, true);
            }
        }
        e.punct(")", false);
    }
    e.punct("{", true);
    body(e, m.span, |e| {
        for s in &m.body {
            stmt(e, s);
        }
    });
}

fn param(e: &mut Emitter<'_>, p: &Param, space: bool) {
    e.token(&p.name.name, Some(p.name.span), space);
    e.punct(":", false);
    tensor_type(e, &p.ty, true);
}

fn tensor_type(e: &mut Emitter<'_>, t: &TensorType, space: bool) {
    e.token(&t.dtype.name, Some(t.dtype.span), space);
    e.punct("[", false);
    for (i, d) in t.dims.iter().enumerate() {
        if i > 0 {
            e.punct(",", false);
        }
        match d {
            Dim::Fixed(n, span) => {
                let text = e
                    .source_text(*span)
                    .map_or_else(|| n.to_string(), str::to_string);
                e.token(&text, Some(*span), i > 0);
            }
            Dim::Symbol(s) => e.token(&s.name, Some(s.span), i > 0),
        }
    }
    e.punct("]", false);
}

/// The lines of a block after its `{`, then its `}` on a line of its own.
fn body(e: &mut Emitter<'_>, span: Span, lines: impl FnOnce(&mut Emitter<'_>)) {
    e.break_indent = INDENT;
    e.blanks = Blanks::Drop;
    lines(e);
    e.break_indent = INDENT;
    let close = span.end.saturating_sub(1);
    e.flush_comments(close);
    e.break_indent = 0;
    e.break_line();
    let found = e.source_text(Span::new(close, span.end)) == Some("}");
    e.token("}", found.then_some(Span::new(close, span.end)), false);
}

fn stmt(e: &mut Emitter<'_>, s: &Stmt) {
    let break_pipe = too_wide(e, INDENT, |f| stmt_tokens(f, s, false));
    e.break_indent = INDENT;
    e.start_element(s.span().start, INDENT);
    e.break_indent = 2 * INDENT;
    stmt_tokens(e, s, break_pipe);
    e.break_indent = INDENT;
    e.blanks = Blanks::Keep;
}

fn stmt_tokens(e: &mut Emitter<'_>, s: &Stmt, break_pipe: bool) {
    match s {
        Stmt::Let { name, value, span } => {
            keyword(e, "let", span.start);
            e.token(&name.name, Some(name.span), true);
            e.punct("=", true);
            expr(e, value, true, break_pipe);
        }
        Stmt::Expr(x) => expr(e, x, false, break_pipe),
    }
}

/// Whether printing with `print` on one line at `indent` would pass [`MAX_WIDTH`].
fn too_wide(e: &Emitter<'_>, indent: usize, print: impl FnOnce(&mut Emitter<'_>)) -> bool {
    let mut flat = Emitter::new(e.source(), Vec::new());
    print(&mut flat);
    let text = flat.finish();
    indent + text.trim_end().chars().count() > MAX_WIDTH
}

fn data(e: &mut Emitter<'_>, d: &DataDef) {
    e.break_indent = INDENT;
    keyword(e, "data", d.span.start);
    e.token(&d.name.name, Some(d.name.span), true);
    e.punct("{", true);
    settings(e, d.span, &d.settings);
}

fn train(e: &mut Emitter<'_>, t: &TrainDef) {
    e.break_indent = INDENT;
    keyword(e, "train", t.span.start);
    e.token(&t.model.name, Some(t.model.span), true);
    e.punct("on", true);
    e.token(&t.data.name, Some(t.data.span), true);
    if let Some(alias) = &t.alias {
        e.punct("as", true);
        e.token(&alias.name, Some(alias.span), true);
    }
    e.punct("{", true);
    settings(e, t.span, &t.settings);
}

/// The settings of a data or train block, their values aligned in one column.
fn settings(e: &mut Emitter<'_>, span: Span, settings: &[Setting]) {
    let column = settings
        .iter()
        .map(|s| s.key.name.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    body(e, span, |e| {
        for s in settings {
            let pad = column - s.key.name.chars().count();
            let break_pipe = too_wide(e, INDENT, |f| setting_tokens(f, s, pad, false));
            e.break_indent = INDENT;
            e.start_element(s.span.start, INDENT);
            e.break_indent = 2 * INDENT;
            setting_tokens(e, s, pad, break_pipe);
            e.break_indent = INDENT;
            e.blanks = Blanks::Keep;
        }
    });
}

/// An experiment block: its lines' values aligned in one column, as a train block's.
fn experiment(e: &mut Emitter<'_>, x: &ExperimentDef) {
    e.break_indent = INDENT;
    keyword(e, "experiment", x.span.start);
    e.token(&x.name.name, Some(x.name.span), true);
    e.punct("{", true);
    let key = |line: &ExperimentLine| match line {
        ExperimentLine::Setting(s) => s.key.name.chars().count(),
        ExperimentLine::Vary(_) => "vary".len(),
        ExperimentLine::Select(_) => "select".len(),
    };
    let column = x.lines.iter().map(key).max().unwrap_or(0) + 1;
    body(e, x.span, |e| {
        for line in &x.lines {
            let pad = column - key(line);
            let tokens = |f: &mut Emitter<'_>, break_pipe: bool| match line {
                ExperimentLine::Setting(s) => setting_tokens(f, s, pad, break_pipe),
                ExperimentLine::Vary(v) => vary_tokens(f, v, pad),
                ExperimentLine::Select(s) => {
                    keyword(f, "select", s.span.start);
                    f.pad_next(pad);
                    f.token(&s.goal.name, Some(s.goal.span), false);
                    f.token(&s.metric.name, Some(s.metric.span), true);
                }
            };
            let break_pipe = too_wide(e, INDENT, |f| tokens(f, false));
            e.break_indent = INDENT;
            e.start_element(line.span().start, INDENT);
            e.break_indent = 2 * INDENT;
            tokens(e, break_pipe);
            e.break_indent = INDENT;
            e.blanks = Blanks::Keep;
        }
    });
}

/// `vary key: [a, b]` or `vary (a, b): [(a1, b1), (a2, b2)]`.
fn vary_tokens(e: &mut Emitter<'_>, v: &Vary, pad: usize) {
    keyword(e, "vary", v.span.start);
    e.pad_next(pad);
    if v.tied {
        e.punct("(", false);
    }
    for (i, axis) in v.axes.iter().enumerate() {
        if i > 0 {
            e.punct(",", false);
        }
        e.token(&axis.name, Some(axis.span), i > 0);
    }
    if v.tied {
        e.punct(")", false);
    }
    e.punct(":", false);
    e.punct("[", true);
    for (i, value) in v.values.iter().enumerate() {
        if i > 0 {
            e.punct(",", false);
        }
        if value.grouped {
            e.punct("(", i > 0);
            args(e, &value.args, false);
            e.punct(")", false);
        } else {
            for (j, a) in value.args.iter().enumerate() {
                if j > 0 {
                    e.punct(",", false);
                }
                arg(e, a, i > 0 || j > 0, false);
            }
        }
    }
    e.punct("]", false);
}

fn setting_tokens(e: &mut Emitter<'_>, s: &Setting, pad: usize, break_pipe: bool) {
    e.token(&s.key.name, Some(s.key.span), false);
    e.pad_next(pad);
    args(e, &s.args, break_pipe && s.args.len() == 1);
}

/// Arguments separated by `, `; `break_pipe` applies to a lone argument's top-level pipe.
pub(super) fn args(e: &mut Emitter<'_>, args: &[Arg], break_pipe: bool) {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            e.punct(",", false);
        }
        arg(e, a, i > 0, break_pipe);
    }
}

fn arg(e: &mut Emitter<'_>, a: &Arg, space: bool, break_pipe: bool) {
    if let Some(name) = &a.name {
        e.token(&name.name, Some(name.span), space);
        e.punct(":", false);
        expr(e, &a.value, true, break_pipe);
    } else {
        expr(e, &a.value, space, break_pipe);
    }
}

/// Prints an expression; `break_pipe` puts each stage of a pipe at this level on its own line.
fn expr(e: &mut Emitter<'_>, x: &Expr, space: bool, break_pipe: bool) {
    match &x.kind {
        ExprKind::Number(n) => {
            let text = e
                .source_text(x.span)
                .map_or_else(|| render_number(*n), str::to_string);
            e.token(&text, Some(x.span), space);
        }
        ExprKind::Str(s) => {
            let text = e
                .source_text(x.span)
                .map_or_else(|| render_string(s), str::to_string);
            e.token(&text, Some(x.span), space);
        }
        ExprKind::Bool(b) => e.token(if *b { "true" } else { "false" }, Some(x.span), space),
        ExprKind::Name(id) => e.token(&id.name, Some(id.span), space),
        ExprKind::List(items) => {
            e.punct("[", space);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    e.punct(",", false);
                }
                expr(e, item, i > 0, false);
            }
            e.punct("]", false);
        }
        ExprKind::Tuple(items) => tuple(e, items, space, break_pipe),
        ExprKind::Call(c) => call(e, c, space),
        ExprKind::Pipe { head, stages } => {
            if matches!(head.kind, ExprKind::Pipe { .. }) {
                e.punct("(", space);
                expr(e, head, false, false);
                e.punct(")", false);
            } else {
                expr(e, head, space, false);
            }
            for stage in stages {
                if break_pipe {
                    e.break_line();
                }
                e.punct("|>", true);
                call(e, stage, true);
            }
        }
    }
}

/// A model's outputs, `(a, b)`: on one line when it fits, else one element a line, each with a
/// trailing comma, the `)` back at the statement's indent.
fn tuple(e: &mut Emitter<'_>, items: &[Expr], space: bool, one_a_line: bool) {
    e.punct("(", space);
    for (i, item) in items.iter().enumerate() {
        if one_a_line {
            e.break_line();
            expr(e, item, false, false);
            e.punct(",", false);
        } else {
            if i > 0 {
                e.punct(",", false);
            }
            expr(e, item, i > 0, false);
        }
    }
    if one_a_line {
        // the line opens at the next token, at the indent then in force
        let indent = e.break_indent;
        e.break_indent = INDENT;
        e.break_line();
        e.punct(")", false);
        e.break_indent = indent;
    } else {
        e.punct(")", false);
    }
}

fn call(e: &mut Emitter<'_>, c: &Call, space: bool) {
    e.token(&c.callee.name, Some(c.callee.span), space);
    e.punct("(", false);
    args(e, &c.args, false);
    e.punct(")", false);
}

/// A number of a synthetic tree: integers as integers, others in Rust's shortest round-trip
/// form (always with a `.` or an exponent, so it reads back as a decimal).
fn render_number(n: Number) -> String {
    match n.int {
        Some(i) => i.to_string(),
        None => format!("{:?}", n.value),
    }
}

/// A string of a synthetic tree, quoted, with the language's escapes.
fn render_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
