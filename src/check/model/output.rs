//! The model's value against its declared output type (`-> f32[N, 10]`), or the inferred type
//! when none is declared.
//!
//! Input: the walker after the body, the declared type. Output: the model's output fact, or a
//! diagnostic (`CHECK_OUTPUT_MISMATCH`, a symbol conflict) and `None`.

use super::Walker;
use crate::check::{inputs, model_diag};
use crate::diag::{codes, Diagnostic, Span};
use crate::ops::types::{Dim, Fact};
use crate::syntax::ast;

impl Walker<'_> {
    /// Checks the body's value against the declared output type, or infers it.
    pub(super) fn output_type(
        &mut self,
        def: &ast::ModelDef,
        output: Option<usize>,
        last_span: Span,
    ) -> Option<Fact> {
        let declared = def
            .output
            .as_ref()
            .map(|t| (t, inputs::tensor_type(self.file, t, self.diags)));
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
