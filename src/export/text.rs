//! A readable, deterministic text form of an exported graph (`modelc export --to onnx-text`,
//! and the golden files of `tests/export/`): the signature, every initializer's dtype and
//! dims (the numbers of small integer ones), every node with its inputs, outputs and
//! attributes, and the metadata keys.
//!
//! Input: a built [`OnnxModel`]. Output: text, one item a line. Invariant: the same model gives
//! the same text; nothing in it depends on the modelc version.

use super::OnnxModel;
use crate::ops::onnx::{Attr, TensorData};
use std::fmt::Write as _;

/// The text form of `model`.
pub fn render(model: &OnnxModel) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {} (opset {}, ir {})",
        model.name,
        model.opset,
        super::encode::ir_version(model.opset)
    );
    for (name, fact) in &model.inputs {
        let _ = writeln!(s, "input  {name}: {fact}");
    }
    for (name, fact) in &model.outputs {
        let _ = writeln!(s, "output {name}: {fact}");
    }
    for t in &model.graph.initializers {
        let dims: Vec<String> = t.dims.iter().map(ToString::to_string).collect();
        match &t.data {
            TensorData::F32(_) => {
                let _ = writeln!(s, "init   {}: f32[{}]", t.name, dims.join(", "));
            }
            TensorData::I64(v) => {
                let _ = writeln!(s, "init   {}: i64[{}] = {v:?}", t.name, dims.join(", "));
            }
        }
    }
    for n in &model.graph.nodes {
        let mut attributes: Vec<&(&str, Attr)> = n.attributes.iter().collect();
        attributes.sort_by_key(|(k, _)| *k);
        let attributes: Vec<String> = attributes
            .iter()
            .map(|(k, v)| match v {
                Attr::Int(i) => format!("{k}={i}"),
                Attr::Float(f) => format!("{k}={f}"),
                Attr::Ints(v) => format!("{k}={v:?}"),
                Attr::Text(t) => format!("{k}={t:?}"),
            })
            .collect();
        let attributes = if attributes.is_empty() {
            String::new()
        } else {
            format!(" {{{}}}", attributes.join(", "))
        };
        let _ = writeln!(
            s,
            "{} = {}({}){attributes}",
            n.outputs.join(", "),
            n.op_type,
            n.inputs.join(", ")
        );
    }
    let keys: Vec<&str> = model.metadata.iter().map(|(k, _)| k.as_str()).collect();
    let _ = writeln!(s, "metadata {}", keys.join(", "));
    s
}
