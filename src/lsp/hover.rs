//! Hovers and inlay hints: what the checker knows about a layer or a name, shown where the
//! cursor is. A layer shows its output type, parameters and FLOPs (from the checked model, the
//! same numbers as `modelc summary`), how its spatial sizes came to be (`height: 28 → 26 →
//! 13`, read off the checked facts along the chain of first inputs) and its documentation
//! (`ops::describe`, the text of `modelc explain LAYER`). Inlay hints put each line's output
//! shape at the line's end.

use super::analysis::Analysis;
use super::names::{NameKind, Symbol};
use crate::check::summary::{summarize, thousands};
use crate::check::types::{CheckedLayer, CheckedModel, Dim, Fact};
use crate::diag::Span;
use crate::ops::{describe, layer as layers};
use crate::syntax::ast::{ExprKind, Item, Stmt};
use std::fmt::Write as _;

/// Longest chain of sizes a derivation shows (its last steps).
const MAX_STEPS: usize = 12;

/// The hover text (markdown) at `offset`, if there is anything to say.
pub fn hover(a: &Analysis, offset: usize) -> Option<(String, Span)> {
    if let Some(sym) = a.names.at(offset) {
        let span = if sym.def.start <= offset && offset <= sym.def.end {
            sym.def
        } else {
            *sym.uses
                .iter()
                .find(|s| s.start <= offset && offset <= s.end)?
        };
        return Some((name_hover(a, sym), span));
    }
    if let Some((model, layer)) = layer_at(a, offset) {
        return Some((layer_hover(model, layer), layer.span));
    }
    // A layer name in a model that does not check yet: its documentation alone.
    let (word, span) = a.word_at(offset)?;
    let spec = layers::lookup(word)?;
    Some((format!("```text\n{}```", describe::page(spec)), span))
}

/// The checked layer whose call is the innermost one around `offset`.
pub fn layer_at(a: &Analysis, offset: usize) -> Option<(&CheckedModel, &CheckedLayer)> {
    let model = a
        .checked
        .models
        .iter()
        .find(|m| m.span.start <= offset && offset <= m.span.end)?;
    let layer = model
        .layers
        .iter()
        .filter(|l| l.span.start <= offset && offset <= l.span.end)
        .min_by_key(|l| l.span.end - l.span.start)?;
    Some((model, layer))
}

/// Markdown for a layer: kind, name and output; parameters and FLOPs; derivation; its page.
pub fn layer_hover(model: &CheckedModel, layer: &CheckedLayer) -> String {
    let kind = layer.op.kind_name();
    let mut text = format!("**{kind}** `{}` → `{}`\n\n", layer.name, layer.output);
    let count: u64 = layer
        .params
        .iter()
        .map(|p| p.count().unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add);
    if layer.params.is_empty() {
        text.push_str("no parameters");
    } else {
        let shapes: Vec<String> = layer
            .params
            .iter()
            .map(|p| {
                let dims: Vec<String> = p.shape.iter().map(ToString::to_string).collect();
                let frozen = if p.trainable { "" } else { ", frozen" };
                format!("{} [{}]{frozen}", p.name, dims.join(", "))
            })
            .collect();
        let _ = write!(
            text,
            "parameters: {} ({})",
            thousands(count),
            shapes.join(", ")
        );
    }
    let _ = writeln!(
        text,
        " · FLOPs per sample: {}\n",
        thousands(layer.flops_per_sample)
    );
    let derivation = derivation(model, layer);
    if !derivation.is_empty() {
        let _ = writeln!(text, "{derivation}\n");
    }
    if let Some(spec) = layers::lookup(kind) {
        let _ = write!(text, "```text\n{}```", describe::page(spec));
    }
    text
}

/// `height: 28 → 26 → 13 · width: 28 → 26 → 13 · channels: 1 → 32`: each axis of the layer's
/// output, through the values of the same rank that led to it by first inputs.
pub fn derivation(model: &CheckedModel, layer: &CheckedLayer) -> String {
    let rank = layer.output.rank();
    let mut chain: Vec<&Fact> = vec![&layer.output];
    let mut next = layer.inputs.first().copied();
    while let Some(id) = next {
        let Some(fact) = model.fact(id) else { break };
        if fact.rank() != rank || chain.len() > 10_000 {
            break;
        }
        chain.push(fact);
        next =
            id.0.checked_sub(model.inputs.len())
                .and_then(|i| model.layers.get(i))
                .and_then(|l| l.inputs.first().copied());
    }
    chain.reverse();
    let names: &[&str] = match rank {
        4 => &["height", "width", "channels"],
        3 => &["time", "features"],
        2 => &["features"],
        _ => &[],
    };
    let mut parts = Vec::new();
    for (axis, name) in names.iter().enumerate() {
        let mut sizes: Vec<&Dim> = Vec::new();
        for f in &chain {
            let Some(d) = f.dims.get(axis + 1) else { break };
            if sizes.last() != Some(&d) {
                sizes.push(d);
            }
        }
        if sizes.len() < 2 {
            continue;
        }
        let skipped = sizes.len().saturating_sub(MAX_STEPS);
        let shown: Vec<String> = sizes[skipped..].iter().map(ToString::to_string).collect();
        let lead = if skipped > 0 { "… → " } else { "" };
        parts.push(format!("{name}: {lead}{}", shown.join(" → ")));
    }
    parts.join(" · ")
}

fn name_hover(a: &Analysis, sym: &Symbol) -> String {
    let model_of = |item: usize| {
        let span = a.ast.items.get(item).map(Item::span)?;
        a.checked.models.iter().find(|m| m.span == span)
    };
    match sym.kind {
        NameKind::Model => match model_of(sym.item) {
            Some(m) => {
                let inputs: Vec<String> = m
                    .inputs
                    .iter()
                    .map(|i| format!("{}: {}", i.name, i.fact))
                    .collect();
                let s = summarize(m);
                let output = if m.outputs.len() > 1 {
                    let outs: Vec<String> = m
                        .outputs
                        .iter()
                        .map(|o| format!("{}: {}", o.name, o.fact))
                        .collect();
                    format!("({})", outs.join(", "))
                } else {
                    m.output_fact.to_string()
                };
                format!(
                    "```text\nmodel {}({}) -> {}\n```\n{} layers · {} parameters ({} trainable)",
                    m.name,
                    inputs.join(", "),
                    output,
                    m.layers.len(),
                    thousands(s.total_params),
                    thousands(s.trainable_params)
                )
            }
            None => format!("model `{}`", sym.name),
        },
        NameKind::Input => {
            let fact = model_of(sym.item)
                .and_then(|m| {
                    m.inputs
                        .iter()
                        .find(|i| i.span.start <= sym.def.start && sym.def.end <= i.span.end)
                })
                .map(|i| i.fact.to_string());
            match fact {
                Some(f) => format!("input `{}`: `{f}`", sym.name),
                None => format!("input `{}`", sym.name),
            }
        }
        NameKind::Let => {
            let found = model_of(sym.item).and_then(|m| {
                let span = let_value_span(a, sym, 0)?;
                m.layers.iter().find(|l| l.span == span).map(|l| (m, l))
            });
            match found {
                Some((m, l)) => format!(
                    "let `{}`: `{}`\n\n{}",
                    sym.name,
                    l.output,
                    layer_hover(m, l)
                ),
                None => format!("let `{}`", sym.name),
            }
        }
        NameKind::Data => format!("data block `{}`", sym.name),
        NameKind::Train => format!("train block `{}`", sym.name),
        NameKind::Experiment => format!("experiment `{}`", sym.name),
    }
}

/// The span of the layer call whose value a `let` binds (through `let b = a` chains).
fn let_value_span(a: &Analysis, sym: &Symbol, depth: usize) -> Option<Span> {
    if depth > 64 {
        return None;
    }
    let Item::Model(m) = a.ast.items.get(sym.item)? else {
        return None;
    };
    let value = m.body.iter().find_map(|s| match s {
        Stmt::Let { name, value, .. } if name.span == sym.def => Some(value),
        _ => None,
    })?;
    match &value.kind {
        ExprKind::Call(c) => Some(c.span),
        ExprKind::Pipe { stages, .. } => stages.last().map(|c| c.span),
        ExprKind::Name(i) => {
            let target = a.names.at(i.span.start)?;
            match target.kind {
                NameKind::Let => let_value_span(a, target, depth + 1),
                _ => None,
            }
        }
        _ => None,
    }
}

/// One hint per model line: the output shape of the last layer written on it, at the line's end.
pub fn inlay_hints(a: &Analysis, range: Span) -> Vec<(usize, String)> {
    let mut hints: Vec<(usize, usize, String)> = Vec::new();
    for m in &a.checked.models {
        for l in &m.layers {
            let line = a.lines.line_of(l.span.end);
            let end = a.lines.line_span(&a.text, line).end;
            if end < range.start || end > range.end {
                continue;
            }
            let label = l.output.shape_string();
            match hints.iter_mut().find(|(ln, _, _)| *ln == line) {
                Some(h) => h.2 = label,
                None => hints.push((line, end, label)),
            }
        }
    }
    hints
        .into_iter()
        .map(|(_, at, label)| (at, label))
        .collect()
}
