//! Applying a layer to its inputs' facts: the op's one shape rule (from `ops`), the checked layer
//! and its output value, and, when the rule fails, a diagnostic that shows how the sizes got
//! there (`reshape`'s target resolved against its input first).
//!
//! Input: a built `LayerOp`, its input values and call. Output: the new value, or a diagnostic.

use super::naming::Hint;
use super::{Value, Walker};
use crate::check::model_diag::{self, History};
use crate::check::signature::BoundArgs;
use crate::check::types::{CheckedLayer, Dim, Fact, LayerOp, ValueId};
use crate::diag::Span;
use crate::ops::merge::concat_axis;
use crate::ops::rule::{normalize_axis, RuleError};
use crate::syntax::ast::Call;

impl Walker<'_> {
    pub(super) fn reshape(
        &mut self,
        call: &Call,
        input: Option<usize>,
        target: Option<Vec<i64>>,
        hint: Hint<'_>,
    ) -> Option<usize> {
        self.use_value(input);
        let target = target?;
        let fact = self.fact(input)?.clone();
        let dims = self.symbols.resolve_all(&fact.dims);
        match model_diag::resolve_reshape(self.file, call, &dims, &target) {
            Ok(shape) => {
                let bound = BoundArgs::empty();
                self.apply(LayerOp::Reshape { shape }, &[input], call, &bound, hint)
            }
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    pub(super) fn apply(
        &mut self,
        mut op: LayerOp,
        inputs: &[Option<usize>],
        call: &Call,
        bound: &BoundArgs,
        hint: Hint<'_>,
    ) -> Option<usize> {
        let mut facts = Vec::with_capacity(inputs.len());
        // Multi-input layers unify the dims as written, so a conflict can name the symbol.
        let raw = matches!(op, LayerOp::Add | LayerOp::Concat { .. });
        for &i in inputs {
            let f = self.fact(i)?;
            let dims = if raw {
                f.dims.clone()
            } else {
                self.symbols.resolve_all(&f.dims)
            };
            facts.push(Fact {
                dtype: f.dtype,
                dims,
            });
        }
        if let LayerOp::Concat { axis } = &mut op {
            let rank = facts.first().map_or(0, Fact::rank);
            match normalize_axis(concat_axis(bound), rank) {
                Ok(a) => *axis = a,
                Err(e) => return self.rule_failed(&e, call, inputs, bound),
            }
        }
        match op.infer(&facts, &mut self.symbols, call.span) {
            Ok(inferred) => {
                if let Some(d) = model_diag::check_size(self.file, call, &inferred.output) {
                    self.diags.push(d);
                    return None;
                }
                let known: Vec<usize> = inputs.iter().flatten().copied().collect();
                let masks =
                    self.layer_masks(&op, &known, facts.first().map_or(0, Fact::rank), call)?;
                let name = self.next_name(op.kind_name(), hint);
                let value_ids = |v: &[usize]| v.iter().map(|&i| ValueId(i)).collect::<Vec<_>>();
                self.layers.push(CheckedLayer {
                    name,
                    op,
                    inputs: value_ids(&known),
                    mask_inputs: value_ids(&masks.reads),
                    output_mask: value_ids(&masks.carries),
                    output: inferred.output.clone(),
                    params: inferred.params,
                    flops_per_sample: inferred.flops,
                    span: call.span,
                });
                self.values.push(Value {
                    fact: Some(inferred.output),
                    layer: Some(self.layers.len() - 1),
                    span: call.span,
                    used: false,
                    mask: masks.carries,
                });
                Some(self.values.len() - 1)
            }
            Err(e) => self.rule_failed(&e, call, inputs, bound),
        }
    }

    fn rule_failed(
        &mut self,
        e: &RuleError,
        call: &Call,
        inputs: &[Option<usize>],
        bound: &BoundArgs,
    ) -> Option<usize> {
        let history = History {
            values: self.history(inputs.first().copied().flatten()),
        };
        let input_spans: Vec<Span> = inputs
            .iter()
            .map(|i| {
                i.and_then(|i| self.values.get(i))
                    .map_or(call.span, |v| v.span)
            })
            .collect();
        let d = model_diag::rule_error(self.file, e, call, &input_spans, bound, &history);
        self.diags.push(d);
        None
    }

    /// The chain of rank-4 values leading to `v` through first inputs: (size, layer, span).
    fn history(&self, mut v: Option<usize>) -> Vec<(Dim, Dim, Option<String>, Span)> {
        let mut out = Vec::new();
        while let Some(i) = v {
            let Some(val) = self.values.get(i) else { break };
            let Some(fact) = &val.fact else { break };
            if fact.rank() != 4 || out.len() > 10_000 {
                break;
            }
            let layer = val.layer.and_then(|l| self.layers.get(l));
            out.push((
                self.symbols.resolve(&fact.dims[1]),
                self.symbols.resolve(&fact.dims[2]),
                layer.map(|l| l.name.clone()),
                val.span,
            ));
            v = layer.and_then(|l| l.inputs.first()).map(|id| id.0);
        }
        out.reverse();
        out
    }
}
