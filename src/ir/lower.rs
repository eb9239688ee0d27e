//! Lowering: a checked model becomes an IR graph.
//!
//! Input: a [`CheckedModel`] (names, dtypes and shapes already checked). Output: a verified
//! [`Graph`]. Each layer's op comes from its family's lowering (`ops`); a layer's `activation:`
//! becomes a separate activation node, so that `fuse-activation` (and the pass log) shows the
//! fusion; parameters are named `LAYER.PARAM` with the Keras names and initializers the
//! family's shape rule declared.

use super::{verify, Activation, Graph, Op, Param, ParamSource, ValueId};
use crate::check::types as ck;

/// Why a checked model could not be lowered: a construct the interpreter does not run yet, or
/// (a bug) a checked model that breaks an IR invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerError {
    /// The layer at fault.
    pub layer: String,
    pub message: String,
    /// The layer's span in the spec.
    pub span: crate::diag::Span,
}

/// Lowers a checked model.
pub fn lower(model: &ck::CheckedModel) -> Result<Graph, LowerError> {
    let mut g = Graph {
        name: model.name.clone(),
        ..Graph::default()
    };
    let mut values: Vec<ValueId> = Vec::with_capacity(model.inputs.len() + model.layers.len());
    for input in &model.inputs {
        values.push(g.add_input(input.name.clone(), input.fact.clone()));
    }
    for layer in &model.layers {
        let err = |message: String| LowerError {
            layer: layer.name.clone(),
            message,
            span: layer.span,
        };
        // The data inputs, then the ids of the padding mask the layer reads (`ops::mask`).
        let inputs: Vec<ValueId> = layer
            .inputs
            .iter()
            .chain(&layer.mask_inputs)
            .map(|v| {
                values
                    .get(v.0)
                    .copied()
                    .ok_or_else(|| err(format!("value {} is not defined", v.0)))
            })
            .collect::<Result<_, _>>()?;
        let mut params = Vec::new();
        for p in &layer.params {
            params.push(g.add_param(Param {
                name: format!("{}.{}", layer.name, p.name),
                shape: p.shape.clone(),
                trainable: p.trainable,
                init: p.init,
                source: ParamSource::Stored,
            }));
        }
        // The op, and the activation to apply after it as a separate node.
        let (op, then) = layer.op.lower(&params, layer.output.rank()).map_err(err)?;
        let mut out = g.add_node(layer.name.clone(), op, inputs).map_err(err)?;
        if then != Activation::Linear {
            out = g
                .add_node(
                    format!("{}.{}", layer.name, then.name()),
                    Op::Activation(then),
                    vec![out],
                )
                .map_err(err)?;
        }
        if g.value(out).map(|v| &v.fact) != Some(&layer.output) {
            let got = g.value(out).map(|v| v.fact.to_string()).unwrap_or_default();
            return Err(err(format!(
                "the checker says {} but the IR computes {got}",
                layer.output
            )));
        }
        values.push(out);
    }
    for o in &model.outputs {
        let out = values.get(o.value.0).copied().ok_or_else(|| LowerError {
            layer: model.name.clone(),
            message: format!("the model's output `{}` is not defined", o.name),
            span: model.span,
        })?;
        g.outputs.push(out);
    }
    verify(&g).map_err(|e| LowerError {
        layer: e.at,
        message: e.message,
        span: model.span,
    })?;
    Ok(g)
}
