//! The model's values against its declared outputs (`-> f32[N, 10]`, or named outputs
//! `-> (digit: f32[N, 10], parity: f32[N, 1])` computed by a last line `(a, b)`), or the
//! inferred types when none are declared.
//!
//! Input: the walker after the body, the signature. Output: the model's outputs, named (by the
//! signature, else by the layers computing them), or diagnostics (`CHECK_OUTPUT_MISMATCH`: a
//! type, a count or a name that disagrees; a symbol conflict) and `None`.

use std::collections::HashMap;

use super::Walker;
use crate::check::types::{CheckedOutput, ValueId};
use crate::check::{inputs, model_diag};
use crate::diag::{codes, Diagnostic, Span};
use crate::ops::types::{Dim, Fact};
use crate::syntax::ast;

impl Walker<'_> {
    /// The model's outputs from the body's results (the last line's value, or each element of
    /// its tuple, with where it is computed) and the signature.
    pub(super) fn outputs(
        &mut self,
        def: &ast::ModelDef,
        results: &[(Option<usize>, Span)],
        last_span: Span,
    ) -> Option<Vec<CheckedOutput>> {
        let named = &def.named_outputs;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        for o in named {
            if let Some(first) = seen.insert(&o.name.name, o.name.span) {
                self.diags.push(
                    Diagnostic::error(
                        codes::CHECK_OUTPUT_MISMATCH,
                        format!("output `{}` is declared twice", o.name.name),
                    )
                    .primary(self.file, o.name.span, "declared again here")
                    .secondary(self.file, first, "first declared here")
                    .help("give each output its own name"),
                );
                ok = false;
            }
        }
        let declared_count = match (named.len(), &def.output) {
            (0, Some(_)) => 1,
            (0, None) => results.len(),
            (n, _) => n,
        };
        if declared_count != results.len() {
            let header = match (named.first(), named.last(), &def.output) {
                (Some(f), Some(l), _) => f.span.to(l.span),
                (_, _, Some(t)) => t.span,
                _ => def.name.span,
            };
            let count = |n: usize| {
                if n == 1 {
                    "1 output".to_string()
                } else {
                    format!("{n} outputs")
                }
            };
            self.diags.push(
                Diagnostic::error(
                    codes::CHECK_OUTPUT_MISMATCH,
                    format!(
                        "model `{}` declares {} but its last line computes {}",
                        def.name.name,
                        count(declared_count),
                        results.len()
                    ),
                )
                .primary(
                    self.file,
                    header,
                    format!("{} declared", count(declared_count)),
                )
                .secondary(
                    self.file,
                    last_span,
                    format!("{} computed here", count(results.len())),
                )
                .note("the last line's tuple gives the outputs in the signature's order")
                .help("end the body with one expression per declared output, e.g. `(a, b)`"),
            );
            return None;
        }
        let mut outputs = Vec::new();
        let mut by_value: HashMap<usize, Span> = HashMap::new();
        for (k, &(value, at)) in results.iter().enumerate() {
            let decl = named.get(k);
            let declared = match decl {
                Some(d) => d.ty.as_ref(),
                None => def.output.as_ref(),
            };
            let fact = self.output_type(def, declared, value, at);
            let (Some(v), Some(fact)) = (value, fact) else {
                ok = false;
                continue;
            };
            if let Some(first) = by_value.insert(v, at) {
                self.diags.push(
                    Diagnostic::error(
                        codes::CHECK_OUTPUT_MISMATCH,
                        "the same value is two outputs of the model",
                    )
                    .primary(self.file, at, "output again here")
                    .secondary(self.file, first, "already an output here")
                    .help("an output is one value; compute a second one with its own layer"),
                );
                ok = false;
            }
            let name = decl.map_or_else(
                || {
                    let layer = self.values.get(v).and_then(|x| x.layer);
                    let input = self.inputs.get(v).map(|i| i.name.clone());
                    layer
                        .and_then(|l| self.layers.get(l))
                        .map(|l| l.name.clone())
                        .or(input)
                        .unwrap_or_default()
                },
                |d| d.name.name.clone(),
            );
            outputs.push(CheckedOutput {
                name,
                value: ValueId(v),
                fact,
                span: decl.map_or(at, |d| d.span),
            });
        }
        ok.then_some(outputs)
    }

    /// Checks one output's value against its declared type, or infers it.
    fn output_type(
        &mut self,
        def: &ast::ModelDef,
        declared: Option<&ast::TensorType>,
        output: Option<usize>,
        last_span: Span,
    ) -> Option<Fact> {
        let declared = declared.map(|t| (t, inputs::tensor_type(self.file, t, self.diags)));
        let found = self.fact(output)?.clone();
        let found = Fact {
            dtype: found.dtype,
            dims: self.symbols.resolve_all(&found.dims),
        };
        let produced_at = output
            .and_then(|o| self.values.get(o))
            .map_or(last_span, |v| v.span);
        let Some((ty, declared)) = declared else {
            return Some(found);
        };
        let declared = declared?;
        let mut ok = declared.dtype == found.dtype && declared.rank() == found.rank();
        if ok {
            for (d, f) in declared.dims.iter().zip(&found.dims) {
                let same_symbol = match (self.symbols.resolve(d), f) {
                    (Dim::Symbol(a), Dim::Symbol(b)) => a == *b,
                    _ => true,
                };
                match self.symbols.unify(d, f, ty.span) {
                    Ok(true) if same_symbol => {}
                    Ok(_) => ok = false,
                    Err(c) => {
                        self.diags
                            .push(model_diag::conflict(self.file, &c, ty.span));
                        return None;
                    }
                }
            }
        }
        if !ok {
            let found_text = format!(
                "{}{}",
                found.dtype,
                Fact {
                    dtype: found.dtype,
                    dims: found.dims.clone()
                }
                .shape_string()
            );
            self.diags.push(
                Diagnostic::error(
                    codes::CHECK_OUTPUT_MISMATCH,
                    format!(
                        "model `{}` does not compute its declared output type",
                        def.name.name
                    ),
                )
                .primary(self.file, ty.span, format!("declared as {declared}"))
                .secondary(
                    self.file,
                    produced_at,
                    format!("the body's value is {found_text}, computed here"),
                )
                .note(format!("expected {declared}, found {found_text}"))
                .help("change the declared type, or the last layers of the body"),
            );
            return None;
        }
        Some(Fact {
            dtype: declared.dtype,
            dims: self.symbols.resolve_all(&found.dims),
        })
    }
}
