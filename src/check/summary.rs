//! `modelc summary`: a Keras-style table of a checked model.
//!
//! Input: a [`CheckedModel`]. Output: [`Summary`] (rows and totals) rendered as a human table
//! or as JSON. Invariant: totals are sums of the rows (saturating; the checker already rejected
//! overflowing sizes).

use super::types::{CheckedModel, Dim};
use serde::Serialize;
use std::fmt::Write as _;

/// One entry of an output shape: a size or a symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ShapeEntry {
    Size(usize),
    Symbol(String),
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub name: String,
    pub op: &'static str,
    pub output_shape: Vec<ShapeEntry>,
    pub params: u64,
    pub trainable_params: u64,
    pub flops: u64,
    /// The integer ids whose zeros mask the output's steps (`embedding(..., mask_zero: true)`),
    /// when the output carries a padding mask.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mask: Vec<String>,
}

/// A model's summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub model: String,
    pub layers: Vec<Row>,
    pub total_params: u64,
    pub trainable_params: u64,
    pub non_trainable_params: u64,
    /// A model with several outputs: each one's name, the layer computing it and its shape, in
    /// order. Empty for one output (the last row is it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputRow>,
}

/// One output of a model with several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutputRow {
    pub name: String,
    pub layer: String,
    pub shape: Vec<ShapeEntry>,
}

fn shape_entries(dims: &[Dim]) -> Vec<ShapeEntry> {
    dims.iter()
        .map(|d| match d {
            Dim::Known(n) => ShapeEntry::Size(*n),
            Dim::Symbol(s) => ShapeEntry::Symbol(s.clone()),
        })
        .collect()
}

/// Summarizes a checked model.
pub fn summarize(model: &CheckedModel) -> Summary {
    let mut layers = Vec::with_capacity(model.layers.len());
    let (mut total, mut trainable) = (0u64, 0u64);
    for l in &model.layers {
        let params: u64 = l
            .params
            .iter()
            .map(|p| p.count().unwrap_or(u64::MAX))
            .fold(0, u64::saturating_add);
        let train: u64 = l
            .params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.count().unwrap_or(u64::MAX))
            .fold(0, u64::saturating_add);
        total = total.saturating_add(params);
        trainable = trainable.saturating_add(train);
        layers.push(Row {
            name: l.name.clone(),
            op: l.op.kind_name(),
            output_shape: shape_entries(&l.output.dims),
            params,
            trainable_params: train,
            flops: l.flops_per_sample,
            mask: l.output_mask.iter().map(|&v| model.value_name(v)).collect(),
        });
    }
    Summary {
        model: model.name.clone(),
        layers,
        total_params: total,
        trainable_params: trainable,
        non_trainable_params: total - trainable,
        outputs: if model.outputs.len() > 1 {
            model
                .outputs
                .iter()
                .map(|o| OutputRow {
                    name: o.name.clone(),
                    layer: model.value_name(o.value),
                    shape: shape_entries(&o.fact.dims),
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn shape_text(shape: &[ShapeEntry]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|e| match e {
            ShapeEntry::Size(n) => n.to_string(),
            ShapeEntry::Symbol(s) => s.clone(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The Keras-style table.
pub fn render_human(s: &Summary) -> String {
    let header = ["Layer", "Op", "Output shape", "Params", "FLOPs/sample"];
    let rows: Vec<[String; 5]> = s
        .layers
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.op.to_string(),
                if r.mask.is_empty() {
                    shape_text(&r.output_shape)
                } else {
                    format!("{} masked", shape_text(&r.output_shape))
                },
                thousands(r.params),
                thousands(r.flops),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let total_width: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            // Numbers right-aligned, text left-aligned.
            if i >= 3 {
                let _ = write!(text, "{cell:>w$}");
            } else {
                let _ = write!(text, "{cell:<w$}");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    let mut out = String::new();
    let _ = writeln!(out, "Model: {}", s.model);
    let _ = writeln!(out, "{}", "━".repeat(total_width));
    line(&mut out, &header.map(String::from));
    let _ = writeln!(out, "{}", "━".repeat(total_width));
    for r in &rows {
        line(&mut out, r);
    }
    let _ = writeln!(out, "{}", "━".repeat(total_width));
    let _ = writeln!(out, "Total params: {}", thousands(s.total_params));
    let _ = writeln!(out, "Trainable params: {}", thousands(s.trainable_params));
    let _ = writeln!(
        out,
        "Non-trainable params: {}",
        thousands(s.non_trainable_params)
    );
    if !s.outputs.is_empty() {
        let outs: Vec<String> = s
            .outputs
            .iter()
            .map(|o| format!("{} = {} {}", o.name, o.layer, shape_text(&o.shape)))
            .collect();
        let _ = writeln!(out, "Outputs: {}", outs.join(", "));
    }
    out
}

/// The summary as one JSON object.
pub fn render_json(s: &Summary) -> String {
    serde_json::to_string_pretty(s).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
