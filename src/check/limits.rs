//! Limits on the size of a checked model: its layer count and the bytes of its parameters.
//!
//! Input: the checker's [`CheckedModel`]s and [`ModelLimits`] (from `--max-layers` and
//! `--max-param-bytes`). Output: one error per model over a limit, naming the limit, the model's
//! figure and the flag that raises it. Invariant: the figures use checked arithmetic, so a model
//! whose parameter bytes do not fit in 64 bits is reported, never wrapped.

use super::types::CheckedModel;
use crate::diag::{codes, Diagnostic, FileId};

/// The bounds a model must stay within; both can be raised from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelLimits {
    /// Most layers in one model.
    pub max_layers: u64,
    /// Most bytes of parameters (every parameter is f32) in one model.
    pub max_param_bytes: u64,
}

/// 100,000 layers: far past any real network, well below what a spec of the largest allowed
/// size could declare.
pub const DEFAULT_MAX_LAYERS: u64 = 100_000;
/// 4 GiB of parameters (a billion f32 values): training holds about four copies (values,
/// gradients, two optimizer moments), which is what a 24 GiB machine can take.
pub const DEFAULT_MAX_PARAM_BYTES: u64 = 4 << 30;

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

/// `1610612736` → `1.5 GiB`; exact byte counts stay in the message beside it.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("PiB"))
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
        let c = super::super::check_file(file, &parsed.file);
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

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(4 << 30), "4.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }
}
