//! Limits on the size of a checked model: its layer count and the bytes of its parameters, and
//! [`check_with_limits`], checking a file within them.
//!
//! Input: the checker's [`CheckedModel`]s and [`ModelLimits`] (from `--max-layers` and
//! `--max-param-bytes`). Output: one error per model over a limit, naming the limit, the model's
//! figure and the flag that raises it. Invariant: the figures use checked arithmetic, so a model
//! whose parameter bytes do not fit in 64 bits is reported, never wrapped.

use super::types::CheckedModel;
use super::{check_file, Checked};
use crate::diag::{codes, human_bytes, Diagnostic, FileId};
use crate::syntax::ast;

use crate::util::limits::{DEFAULT_MAX_LAYERS, DEFAULT_MAX_PARAM_BYTES};

/// The bounds a model must stay within; both can be raised from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelLimits {
    /// Most layers in one model.
    pub max_layers: u64,
    /// Most bytes of parameters (every parameter is f32) in one model.
    pub max_param_bytes: u64,
}

impl Default for ModelLimits {
    fn default() -> Self {
        Self {
            max_layers: DEFAULT_MAX_LAYERS,
            max_param_bytes: DEFAULT_MAX_PARAM_BYTES,
        }
    }
}

/// Bytes per parameter value: parameters are f32.
const PARAM_BYTES: u64 = 4;

/// The bytes of a model's parameters, `None` when they overflow 64 bits.
pub fn param_bytes(model: &CheckedModel) -> Option<u64> {
    model
        .layers
        .iter()
        .flat_map(|l| &l.params)
        .try_fold(0u64, |total, p| {
            p.count()
                .and_then(|n| n.checked_mul(PARAM_BYTES))
                .and_then(|b| total.checked_add(b))
        })
}

/// Checks a parsed file, then the limits of every model that checked: what `modelc check`,
/// `summary`, `compile`, `train`, `run` and `data` all do with a spec.
pub fn check_with_limits(file: FileId, ast: &ast::File, limits: &ModelLimits) -> Checked {
    let mut checked = check_file(file, ast);
    let over = check_limits(file, &checked.models, limits);
    checked.diagnostics.extend(over);
    checked
}

/// Errors for every model over a limit.
pub fn check_limits(
    file: FileId,
    models: &[CheckedModel],
    limits: &ModelLimits,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for model in models {
        let layers = model.layers.len() as u64;
        if layers > limits.max_layers {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_TOO_MANY_LAYERS,
                    format!(
                        "model `{}` has {layers} layers; the limit is {}",
                        model.name, limits.max_layers
                    ),
                )
                .primary(file, model.span, "this model")
                .help(format!(
                    "raise the limit with `--max-layers {layers}` if the model is meant to be this large"
                )),
            );
        }
        let bytes = param_bytes(model);
        if bytes.is_none_or(|b| b > limits.max_param_bytes) {
            let figure = bytes.map_or_else(
                || "more than 2^64 bytes".to_string(),
                |b| format!("{b} bytes ({})", human_bytes(b)),
            );
            let help = match bytes {
                Some(b) => format!(
                    "raise the limit with `--max-param-bytes {b}` if the machine has the memory"
                ),
                None => "make the layers smaller: no machine holds this many parameters".into(),
            };
            diags.push(
                Diagnostic::error(
                    codes::CHECK_TOO_MANY_PARAMS,
                    format!(
                        "the parameters of model `{}` need {figure}; the limit is {} bytes ({})",
                        model.name,
                        limits.max_param_bytes,
                        human_bytes(limits.max_param_bytes)
                    ),
                )
                .primary(file, model.span, "this model")
                .note("parameters are f32: 4 bytes each; training holds about four copies")
                .help(help),
            );
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceMap;

    fn checked(text: &str) -> Vec<CheckedModel> {
        let mut map = SourceMap::new();
        let file = map.add("t.model", text);
        let parsed = crate::syntax::parse(file, text, &crate::syntax::Limits::default());
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let c = check_file(file, &parsed.file);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        c.models
    }

    #[test]
    fn param_bytes_counts_every_parameter_in_f32() {
        // dense 4→3: 12 + 3 = 15 parameters; dense 3→2: 6 + 2 = 8; 23 × 4 bytes.
        let m = checked("model M(x: f32[N, 4]) -> f32[N, 2] {\n dense(3)\n dense(2)\n}\n");
        assert_eq!(param_bytes(&m[0]), Some(92));
        let at = ModelLimits {
            max_layers: 2,
            max_param_bytes: 92,
        };
        assert!(check_limits(FileId::default(), &m, &at).is_empty());
        let below = ModelLimits {
            max_layers: 1,
            max_param_bytes: 91,
        };
        let d = check_limits(FileId::default(), &m, &below);
        let codes: Vec<_> = d.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            [codes::CHECK_TOO_MANY_LAYERS, codes::CHECK_TOO_MANY_PARAMS]
        );
        assert!(d[0].message.contains("2 layers; the limit is 1"));
        assert!(d[1]
            .message
            .contains("need 92 bytes (92 B); the limit is 91 bytes"));
    }
}
