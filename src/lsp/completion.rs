//! Completion and signature help, from the same signature tables the checker binds arguments
//! with (`ops` for layers, `check::train` for losses, optimizers and schedules, `data::lower`
//! for a data block's vocabulary), so the editor offers exactly what `check` accepts, with the
//! defaults it fills in.

use super::analysis::Analysis;
use super::context::{cursor, Block, CallSite, Cursor};
use super::names::NameKind;
use crate::check::train::{loss_params, OPTIMIZERS, SCHEDULES, SETTINGS as TRAIN_SETTINGS};
use crate::check::train_monitor::EARLY_STOPPING;
use crate::check::train_types::{LossKind, Metric};
use crate::data::lower::{AUGMENTS, SETTINGS as DATA_SETTINGS, SOURCES, TRANSFORMS};
use crate::ops::describe::{argument_line, page, synopsis};
use crate::ops::layer as layers;
use crate::ops::signature::{layer, Kind, LayerSpec, Param};
use lsp_types::{
    CompletionItem, CompletionItemKind, Documentation, MarkupContent, MarkupKind,
    ParameterInformation, ParameterLabel, SignatureHelp, SignatureInformation,
};

/// The completions at `offset`.
pub fn complete(a: &Analysis, offset: usize) -> Vec<CompletionItem> {
    let c = cursor(a, offset);
    if let Some(call) = &c.call {
        if let Some(spec) = callee_spec(&c, &call.callee) {
            return arguments(a, &c, call, &spec);
        }
        // A data setting's own arguments (`map `, `map image: scale(2) |> `) complete as its
        // line does; inside another call there is nothing to offer.
        let setting_args = c.block == Block::Data && call.callee == c.key;
        if !setting_args && (matches!(c.block, Block::Model(_)) || c.block == Block::Data) {
            return Vec::new();
        }
    }
    match c.block {
        Block::Model(item) => model_line(a, &c, item),
        Block::Train => train_line(&c),
        Block::Data => data_line(a, &c, offset),
        Block::TopLevel => top_level(a, &c),
    }
}

/// The signature of the callee a call site names, in the block it is written in.
fn callee_spec(c: &Cursor, callee: &str) -> Option<LayerSpec> {
    match c.block {
        Block::Model(_) => layers::lookup(callee).copied(),
        Block::Train => {
            if callee == "early_stopping" {
                return Some(layer("early_stopping", EARLY_STOPPING));
            }
            let table = OPTIMIZERS.iter().chain(SCHEDULES);
            if let Some((name, params)) = table.into_iter().find(|(n, _)| *n == callee) {
                return Some(layer(name, params));
            }
            let (name, kind) = LossKind::ALL.iter().find(|(n, _)| *n == callee)?;
            Some(layer(name, loss_params(*kind)))
        }
        Block::Data | Block::TopLevel => None,
    }
}

/// Inside a call: the argument names not written yet, or the values of the one being written.
fn arguments(a: &Analysis, c: &Cursor, call: &CallSite, spec: &LayerSpec) -> Vec<CompletionItem> {
    let params = spec.signature.params;
    if let Some(keyword) = &call.keyword {
        let Some(p) = params
            .iter()
            .find(|p| p.name == keyword || p.aliases.contains(&keyword.as_str()))
        else {
            return Vec::new();
        };
        return values(p);
    }
    let mut out: Vec<CompletionItem> = params
        .iter()
        .filter(|p| !call.written.iter().any(|w| w == p.name))
        .map(|p| CompletionItem {
            label: format!("{}:", p.name),
            kind: Some(CompletionItemKind::PROPERTY),
            detail: Some(argument_line(p)),
            insert_text: Some(format!("{}: ", p.name)),
            filter_text: Some(p.name.to_string()),
            ..CompletionItem::default()
        })
        .collect();
    if let Block::Model(item) = c.block {
        out.extend(values_in_scope(a, item));
    }
    out
}

/// The values an argument takes when they can be listed.
fn values(p: &Param) -> Vec<CompletionItem> {
    let names: &[&str] = match p.kind {
        Kind::Choice(names) => names,
        Kind::Bool => &["true", "false"],
        Kind::Padding => &["valid", "same"],
        Kind::Layer(names) => names,
        _ => &[],
    };
    names
        .iter()
        .map(|n| CompletionItem {
            label: (*n).to_string(),
            kind: Some(CompletionItemKind::ENUM_MEMBER),
            detail: Some(format!("{}: {}", p.name, argument_line(p))),
            ..CompletionItem::default()
        })
        .collect()
}

/// The start of a model line: layers, the model's inputs and `let` names.
fn model_line(a: &Analysis, c: &Cursor, item: Option<usize>) -> Vec<CompletionItem> {
    let trimmed = c.before.trim_start();
    if trimmed.starts_with("let") && !trimmed.contains('=') {
        return Vec::new();
    }
    let mut out: Vec<CompletionItem> = layers::layers().map(layer_item).collect();
    out.extend(values_in_scope(a, item));
    out
}

/// A layer as a completion: its synopsis with every default, and its page.
pub fn layer_item(spec: &LayerSpec) -> CompletionItem {
    CompletionItem {
        label: spec.name.to_string(),
        kind: Some(CompletionItemKind::FUNCTION),
        detail: Some(synopsis(spec)),
        documentation: Some(markdown(format!("```text\n{}```", page(spec)))),
        ..CompletionItem::default()
    }
}

fn values_in_scope(a: &Analysis, item: Option<usize>) -> Vec<CompletionItem> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for s in a.names.visible(item) {
        if !matches!(s.kind, NameKind::Let | NameKind::Input) || seen.contains(&s.name.as_str()) {
            continue;
        }
        seen.push(&s.name);
        out.push(CompletionItem {
            label: s.name.clone(),
            kind: Some(CompletionItemKind::VARIABLE),
            detail: Some(
                if s.kind == NameKind::Let {
                    "let"
                } else {
                    "input"
                }
                .to_string(),
            ),
            ..CompletionItem::default()
        });
    }
    out
}

fn train_line(c: &Cursor) -> Vec<CompletionItem> {
    let trimmed = c.before.trim_start();
    if !trimmed.contains(|ch: char| ch.is_whitespace()) {
        return words(TRAIN_SETTINGS, CompletionItemKind::KEYWORD, "setting");
    }
    match c.key.as_str() {
        "loss" => LossKind::ALL
            .iter()
            .map(|(n, k)| signature_item(&layer(n, loss_params(*k)), "loss"))
            .collect(),
        "optimizer" => OPTIMIZERS
            .iter()
            .map(|(n, p)| signature_item(&layer(n, p), "optimizer"))
            .collect(),
        "schedule" => SCHEDULES
            .iter()
            .map(|(n, p)| signature_item(&layer(n, p), "schedule"))
            .collect(),
        "metrics" => words(&Metric::NAMES, CompletionItemKind::ENUM_MEMBER, "metric"),
        "class_weight" => words(
            &["balanced"],
            CompletionItemKind::ENUM_MEMBER,
            "class weights",
        ),
        "target" => words(
            &["labels", "inputs"],
            CompletionItemKind::ENUM_MEMBER,
            "loss target",
        ),
        _ => Vec::new(),
    }
}

fn data_line(a: &Analysis, c: &Cursor, offset: usize) -> Vec<CompletionItem> {
    let trimmed = c.before.trim_start();
    if !trimmed.contains(|ch: char| ch.is_whitespace()) {
        return words(DATA_SETTINGS, CompletionItemKind::KEYWORD, "setting");
    }
    let mut items = match c.key.as_str() {
        "source" => words(SOURCES, CompletionItemKind::FUNCTION, "source"),
        "map" => words(TRANSFORMS, CompletionItemKind::FUNCTION, "transform"),
        "augment" => words(AUGMENTS, CompletionItemKind::FUNCTION, "augmentation"),
        _ => Vec::new(),
    };
    // Before a step's first call, the block's input groups: `map image: ...`.
    if matches!(c.key.as_str(), "map" | "augment") && !trimmed.contains([':', '(']) {
        items.extend(input_groups(a, offset).into_iter().map(|g| CompletionItem {
            insert_text: Some(format!("{g}: ")),
            label: format!("{g}:"),
            filter_text: Some(g),
            kind: Some(CompletionItemKind::FIELD),
            detail: Some("input group".into()),
            ..CompletionItem::default()
        }));
    }
    items
}

/// The group names of the `inputs` line of the data block around `offset`.
fn input_groups(a: &Analysis, offset: usize) -> Vec<String> {
    let block = a.ast.items.iter().find_map(|item| match item {
        crate::syntax::ast::Item::Data(d) if d.span.start <= offset && offset <= d.span.end => {
            Some(d)
        }
        _ => None,
    });
    block
        .into_iter()
        .flat_map(|d| &d.settings)
        .filter(|s| s.key.name == "inputs")
        .flat_map(|s| &s.args)
        .filter_map(|arg| arg.name.as_ref().map(|n| n.name.clone()))
        .collect()
}

/// Block keywords, and model and data names on a `train M on D` line.
fn top_level(a: &Analysis, c: &Cursor) -> Vec<CompletionItem> {
    let trimmed = c.before.trim_start();
    if c.key == "train" && trimmed.len() > "train".len() {
        let kind = if trimmed.split_whitespace().any(|w| w == "on") {
            NameKind::Data
        } else {
            NameKind::Model
        };
        return a
            .names
            .symbols
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| CompletionItem {
                label: s.name.clone(),
                kind: Some(if kind == NameKind::Model {
                    CompletionItemKind::CLASS
                } else {
                    CompletionItemKind::STRUCT
                }),
                detail: Some(
                    if kind == NameKind::Model {
                        "model"
                    } else {
                        "data"
                    }
                    .to_string(),
                ),
                ..CompletionItem::default()
            })
            .collect();
    }
    if trimmed.contains(' ') {
        return Vec::new();
    }
    words(
        &["model", "data", "train"],
        CompletionItemKind::KEYWORD,
        "block",
    )
}

fn words(names: &[&str], kind: CompletionItemKind, what: &str) -> Vec<CompletionItem> {
    names
        .iter()
        .map(|n| CompletionItem {
            label: (*n).to_string(),
            kind: Some(kind),
            detail: Some(what.to_string()),
            ..CompletionItem::default()
        })
        .collect()
}

fn signature_item(spec: &LayerSpec, what: &str) -> CompletionItem {
    CompletionItem {
        label: spec.name.to_string(),
        kind: Some(CompletionItemKind::FUNCTION),
        detail: Some(format!("{what}: {}", synopsis(spec))),
        ..CompletionItem::default()
    }
}

fn markdown(value: String) -> Documentation {
    Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    })
}

/// Signature help inside a call: the synopsis, one parameter per argument, the active one the
/// keyword being written or the positional index.
pub fn signature_help(a: &Analysis, offset: usize) -> Option<SignatureHelp> {
    let c = cursor(a, offset);
    let call = c.call.as_ref()?;
    let spec = callee_spec(&c, &call.callee)?;
    let label = synopsis(&spec);
    let params = spec.signature.params;
    let mut parameters = Vec::new();
    let open = u32::try_from(label.find('(')? + 1).ok()?;
    let mut at = open;
    // The synopsis lists the parameters in order, `, `-separated (after any input names).
    let inner = label.get(open as usize..label.len() - 1)?;
    let pieces: Vec<&str> = inner.split(", ").collect();
    let skip = pieces.len().saturating_sub(params.len());
    for (i, piece) in pieces.iter().enumerate() {
        let len = u32::try_from(piece.len()).ok()?;
        if i >= skip {
            let p = params.get(i - skip)?;
            parameters.push(ParameterInformation {
                label: ParameterLabel::LabelOffsets([at, at + len]),
                documentation: Some(Documentation::String(argument_line(p))),
            });
        }
        at += len + 2;
    }
    let active = if let Some(k) = &call.keyword {
        params
            .iter()
            .position(|p| p.name == k || p.aliases.contains(&k.as_str()))
    } else {
        // The n-th positional argument is the n-th positional parameter.
        let positional = call.index.saturating_sub(call.written.len());
        params
            .iter()
            .enumerate()
            .filter(|(_, p)| p.positional && !call.written.iter().any(|w| w == p.name))
            .nth(positional)
            .map(|(i, _)| i)
    };
    Some(SignatureHelp {
        signatures: vec![SignatureInformation {
            label,
            documentation: Some(markdown(format!("```text\n{}```", page(&spec)))),
            parameters: Some(parameters),
            active_parameter: active.and_then(|i| u32::try_from(i).ok()),
        }],
        active_signature: Some(0),
        active_parameter: None,
    })
}
