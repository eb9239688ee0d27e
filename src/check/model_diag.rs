//! Diagnostics of the model walker: rule errors explained (with the feature-map derivation for
//! windows that do not fit), `reshape` arguments and element counts, symbol conflicts, and the
//! help for an unknown layer (Keras's and PyTorch's class names, the closest layers).
//!
//! Input: typed errors of the op families' shape rules (`ops::rule::RuleError`, symbol conflicts
//! from `ops::symbols`) and the spans around them. Output: `Diagnostic`s. Invariant: pure
//! functions, no state.

use super::signature::BoundArgs;
use super::types::{Dim, Fact};
use crate::diag::{codes, suggest, Diagnostic, FileId, Span};
use crate::ops::rule::{product, RuleError};
use crate::ops::symbols::Conflict;
use crate::ops::{keras_names, layer as layers};
use crate::syntax::ast::{Call, ExprKind};

/// The help for a call of an unknown layer: modelc's name for a Keras or PyTorch class name
/// (`Conv2D`, `nn.Linear`), else the closest registered layers (up to three), else nothing.
pub fn unknown_layer_help(name: &str) -> Option<String> {
    if let Some(ours) = keras_names::modelc_name(name) {
        return Some(format!(
            "`{name}` is a Keras or PyTorch class name; the layer here is `{ours}`"
        ));
    }
    match suggest::closest_several(name, layers::names(), 3).as_slice() {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        several => Some(format!(
            "the closest layers are {}",
            several
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The rank-4 values leading to a layer's input: `(height, width, producing layer, span)`,
/// oldest first.
pub struct History {
    pub values: Vec<(Dim, Dim, Option<String>, Span)>,
}

fn pair_text(p: Option<(usize, usize)>) -> String {
    match p {
        Some((a, b)) if a == b => a.to_string(),
        Some((a, b)) => format!("[{a}, {b}]"),
        None => "?".into(),
    }
}

/// Turns a rule error into a diagnostic. `input_spans` are where each input was computed.
pub fn rule_error(
    file: FileId,
    e: &RuleError,
    call: &Call,
    input_spans: &[Span],
    bound: &BoundArgs,
    history: &History,
) -> Diagnostic {
    let layer = call.callee.name.as_str();
    let at = call.callee.span;
    let input_span = input_spans.first().copied().unwrap_or(call.span);
    match e {
        RuleError::Rank { expected, found } => {
            let help = crate::ops::layer::lookup(layer)
                .and_then(|spec| spec.input_help)
                .unwrap_or("reshape the value first");
            Diagnostic::error(
                codes::CHECK_RANK,
                format!("`{layer}` expects a tensor of rank {expected}"),
            )
            .primary(file, at, format!("its input has rank {found}"))
            .secondary(file, input_span, "the input is computed here")
            .note(format!("expected rank {expected}, found rank {found}"))
            .help(help)
        }
        RuleError::NeedsFloat { found } => Diagnostic::error(
            codes::CHECK_NEEDS_FLOAT,
            format!("`{layer}` needs a float tensor, found {found}"),
        )
        .primary(file, at, format!("applied to an {found} tensor"))
        .secondary(file, input_span, format!("this value is {found}"))
        .help("convert explicitly with `cast(f32)` before it"),
        RuleError::NeedsInteger { found } => Diagnostic::error(
            codes::CHECK_NEEDS_INTEGER,
            format!("`{layer}` needs integer token ids, found {found}"),
        )
        .primary(file, at, format!("applied to an {found} tensor"))
        .secondary(file, input_span, format!("this value is {found}"))
        .help("declare the input as `i32[...]`, or `cast(i32)` it first"),
        RuleError::DTypeMismatch {
            first,
            other,
            input,
        } => Diagnostic::error(
            codes::CHECK_DTYPE_MISMATCH,
            format!("the inputs of `{layer}` have different dtypes"),
        )
        .primary(
            file,
            input_spans.get(*input).copied().unwrap_or(at),
            format!("this input is {other}"),
        )
        .secondary(file, input_span, format!("the first input is {first}"))
        .help("`cast` one of them"),
        RuleError::ShapeMismatch {
            axis,
            first,
            other,
            input,
        } => {
            // Attention compares the key's length with the value's (input 1), not the query's.
            let attention_length = layer == "multi_head_attention" && *axis == 1;
            let first_span = if attention_length {
                input_spans.get(1).copied().unwrap_or(input_span)
            } else {
                input_span
            };
            let other_span = input_spans.get(*input).copied().unwrap_or(at);
            let (label, note) = if *axis == usize::MAX {
                (
                    format!("rank {other} here, rank {first} in the first input"),
                    format!("expected rank {first}, found rank {other}"),
                )
            } else {
                (
                    format!("size {other} on axis {axis}"),
                    format!("on axis {axis}: expected {first}, found {other}"),
                )
            };
            Diagnostic::error(
                codes::CHECK_SHAPE_MISMATCH,
                format!("the inputs of `{layer}` have incompatible shapes"),
            )
            .primary(file, call.span, label)
            .secondary(
                file,
                first_span,
                if attention_length {
                    format!("the value has {first} positions, computed here")
                } else {
                    format!("the first input has {first} on that axis, computed here")
                },
            )
            .secondary(file, other_span, format!("this input has {other}"))
            .note(note)
            .help(match layer {
                "add" => "`add` needs equal shapes; project one input, e.g. with `conv2d` or `dense`",
                "multi_head_attention" => "query, value and key share the batch, and the key has as many positions as the value",
                _ => "`concat` needs equal sizes on every axis but the one it joins",
            })
        }
        RuleError::Conflict(c) => conflict(file, c, call.span),
        RuleError::Window {
            axis,
            input,
            needed,
        } => window(file, call, bound, history, *axis, *input, *needed),
        RuleError::Unknown { axis, symbol } => Diagnostic::error(
            codes::CHECK_SIZE_UNKNOWN,
            format!("`{layer}` needs a known size on axis {axis}, found the symbol `{symbol}`"),
        )
        .primary(file, at, format!("axis {axis} is `{symbol}`"))
        .secondary(file, input_span, "the input is computed here")
        .help("declare that size as a number in the model signature"),
        RuleError::Size(what) if layer == "position_embedding" => Diagnostic::error(
            codes::CHECK_SIZE_INVALID,
            "`position_embedding` has fewer positions than its input sequence",
        )
        .primary(file, call.span, what.clone())
        .secondary(file, input_span, "the sequence is computed here")
        .help("raise `max_length` to the sequence length, or shorten the sequence"),
        RuleError::Size(what) => Diagnostic::error(
            codes::CHECK_SIZE_INVALID,
            format!("the output size of `{layer}` is too large"),
        )
        .primary(file, call.span, what.clone())
        .help("use smaller sizes"),
        RuleError::InputCount { found } if layer == "multi_head_attention" => Diagnostic::error(
            codes::CHECK_INPUT_COUNT,
            "`multi_head_attention` takes two or three inputs",
        )
        .primary(file, call.span, format!("{found} given"))
        .help("name the query, the value and optionally the key: `multi_head_attention(q, v, k, ...)`"),
        RuleError::InputCount { found } => Diagnostic::error(
            codes::CHECK_INPUT_COUNT,
            format!("`{layer}` needs at least two inputs"),
        )
        .primary(file, call.span, format!("{found} given")),
        RuleError::Axis { axis, rank } => Diagnostic::error(
            codes::CHECK_ARGUMENT_RANGE,
            format!("axis {axis} is out of range for `{layer}`"),
        )
        .primary(
            file,
            bound.span("axis").unwrap_or(at),
            format!("the input has rank {rank}"),
        )
        .note(format!(
            "expected an axis from -{rank} to {}",
            rank.saturating_sub(1)
        )),
        RuleError::Reshape(msg) => {
            Diagnostic::error(codes::CHECK_RESHAPE, msg.clone()).primary(file, call.span, "here")
        }
    }
}

/// A symbol bound to two sizes.
pub fn conflict(file: FileId, c: &Conflict, at: Span) -> Diagnostic {
    Diagnostic::error(
        codes::CHECK_SYMBOL_CONFLICT,
        format!("symbol `{}` is bound to two sizes", c.symbol),
    )
    .primary(
        file,
        at,
        format!("here `{}` would be {}", c.symbol, c.second),
    )
    .secondary(
        file,
        c.first_span,
        format!("`{}` is {} here", c.symbol, c.first),
    )
    .note(format!("`{}` is {}; found {}", c.symbol, c.first, c.second))
    .help("use a different symbol for sizes that may differ, or make the sizes agree")
}

fn window(
    file: FileId,
    call: &Call,
    bound: &BoundArgs,
    history: &History,
    axis: usize,
    input: usize,
    needed: usize,
) -> Diagnostic {
    let layer = call.callee.name.as_str();
    if layer.ends_with("1d") {
        return window_1d(file, call, bound, input, needed);
    }
    let (what, size) = if matches!(layer, "conv2d" | "depthwise_conv2d" | "separable_conv2d") {
        ("kernel", bound.pair("kernel"))
    } else {
        ("pool", bound.pair("pool"))
    };
    let dilation = bound.pair("dilation").unwrap_or((1, 1));
    let square = size.is_some_and(|(a, b)| a == b) && dilation.0 == dilation.1;
    let needs = if square {
        format!("{needed}x{needed}")
    } else {
        format!(
            "{needed} along the {}",
            if axis == 1 { "height" } else { "width" }
        )
    };
    let last = history.values.last();
    let map = last.map_or(String::from("?"), |(h, w, _, _)| format!("{h}x{w}"));
    let after = match last {
        Some((_, _, Some(name), _)) => format!(" after `{name}`"),
        _ => String::from(" (the model input)"),
    };
    let sizes: Vec<String> = history
        .values
        .iter()
        .map(|(h, w, _, _)| {
            if axis == 1 {
                h.to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let mut d = Diagnostic::error(
        codes::CHECK_WINDOW_TOO_LARGE,
        format!(
            "the feature map is {map}{after}; `{layer}` with {what} {} needs at least {needs}",
            pair_text(size)
        ),
    )
    .primary(
        file,
        call.span,
        format!("needs at least {needs}, the input is {map}"),
    );
    if let Some((_, _, Some(name), span)) = last {
        d = d.secondary(
            file,
            *span,
            format!("the feature map is {map} after `{name}`"),
        );
    }
    let padded = if input == 0 {
        String::new()
    } else {
        format!(" ({input} with padding)")
    };
    let axis_name = if axis == 1 { "height" } else { "width" };
    if sizes.len() > 1 {
        d = d.note(format!(
            "{axis_name}: {}{}",
            sizes.join(" → "),
            if bound.span("padding").is_some() {
                padded
            } else {
                String::new()
            }
        ));
    }
    d.help("use `padding: same` or remove a pooling layer")
}

/// A 1-D window (conv1d, max_pool1d, avg_pool1d) longer than its sequence.
fn window_1d(
    file: FileId,
    call: &Call,
    bound: &BoundArgs,
    input: usize,
    needed: usize,
) -> Diagnostic {
    let layer = call.callee.name.as_str();
    let (what, size) = if layer == "conv1d" {
        ("kernel", bound.int("kernel"))
    } else {
        ("pool", bound.int("pool"))
    };
    let dilation = bound.int("dilation");
    let dilated = if dilation > 1 {
        format!(" and dilation {dilation}")
    } else {
        String::new()
    };
    Diagnostic::error(
        codes::CHECK_WINDOW_TOO_LARGE,
        format!(
            "the sequence is {input} steps long; `{layer}` with {what} {size}{dilated} needs at \
             least {needed}"
        ),
    )
    .primary(
        file,
        call.span,
        format!("needs at least {needed} steps, the input has {input}"),
    )
    .help(if layer == "conv1d" {
        "use `padding: same` or `padding: causal`, or a smaller kernel"
    } else {
        "use `padding: same`, or a smaller pool"
    })
}

/// `reshape`'s positional sizes: integers ≥ 1, and at most one `-1`.
pub fn reshape_args(file: FileId, call: &Call, diags: &mut Vec<Diagnostic>) -> Option<Vec<i64>> {
    let before = diags.len();
    let mut dims = Vec::new();
    let mut wildcard: Option<Span> = None;
    for arg in &call.args {
        if let Some(k) = &arg.name {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_UNKNOWN_ARGUMENT,
                    format!("`reshape` has no argument `{}`", k.name),
                )
                .primary(file, k.span, "unknown argument")
                .help("write the target sizes as positional arguments: `reshape(8, 8, 1)`"),
            );
            continue;
        }
        let n = match &arg.value.kind {
            ExprKind::Number(n) => n.int,
            _ => None,
        };
        match n {
            Some(-1) => {
                if let Some(first) = wildcard {
                    diags.push(
                        Diagnostic::error(
                            codes::CHECK_RESHAPE,
                            "`reshape` can infer only one size",
                        )
                        .primary(file, arg.span, "a second `-1`")
                        .secondary(file, first, "the first `-1`")
                        .help("write all but one size"),
                    );
                }
                wildcard = Some(arg.span);
                dims.push(-1);
            }
            Some(v) if v >= 1 => dims.push(v),
            _ => diags.push(
                Diagnostic::error(
                    codes::CHECK_ARGUMENT_RANGE,
                    "a `reshape` size must be a positive integer or -1",
                )
                .primary(file, arg.span, "not a size")
                .note("expected a positive integer, or -1 for the size to infer"),
            ),
        }
    }
    if dims.is_empty() && diags.len() == before {
        diags.push(
            Diagnostic::error(
                codes::CHECK_MISSING_ARGUMENT,
                "`reshape` needs the target sizes",
            )
            .primary(file, call.span, "no sizes given")
            .help("write the per-sample shape, e.g. `reshape(8, 8, 1)`"),
        );
    }
    (diags.len() == before).then_some(dims)
}

/// The per-sample target of a `reshape`, checked against the input's element count.
pub fn resolve_reshape(
    file: FileId,
    call: &Call,
    input: &[Dim],
    target: &[i64],
) -> Result<Vec<usize>, Diagnostic> {
    let mut elements = 1usize;
    for (axis, d) in input.iter().enumerate().skip(1) {
        match d {
            Dim::Known(n) => {
                elements = elements
                    .checked_mul(*n)
                    .ok_or_else(|| too_large(file, call))?;
            }
            Dim::Symbol(s) => {
                return Err(Diagnostic::error(
                    codes::CHECK_SIZE_UNKNOWN,
                    format!("`reshape` needs a known size on axis {axis}, found the symbol `{s}`"),
                )
                .primary(file, call.span, "cannot count the elements")
                .help("declare that size as a number in the model signature"))
            }
        }
    }
    let known = target
        .iter()
        .filter(|&&d| d != -1)
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
        .ok_or_else(|| too_large(file, call))?;
    let shown: Vec<String> = target.iter().map(ToString::to_string).collect();
    let input_shape: Vec<String> = input.iter().skip(1).map(ToString::to_string).collect();
    let mismatch = |msg: String| {
        Diagnostic::error(codes::CHECK_RESHAPE, msg)
            .primary(
                file,
                call.span,
                format!("[{}] has {known} elements", shown.join(", ")),
            )
            .note(format!(
                "the input [{}] has {elements} elements per sample",
                input_shape.join(", ")
            ))
            .help("the sizes must multiply to the input's element count")
    };
    if target.contains(&-1) {
        if known == 0 || !elements.is_multiple_of(known) {
            return Err(mismatch(format!(
                "`reshape` cannot split {elements} elements into [{}]",
                shown.join(", ")
            )));
        }
        let inferred = elements / known;
        Ok(target
            .iter()
            .map(|&d| {
                if d == -1 {
                    inferred
                } else {
                    usize::try_from(d).unwrap_or(1)
                }
            })
            .collect())
    } else if known == elements {
        Ok(target
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(1))
            .collect())
    } else {
        Err(mismatch(format!(
            "`reshape` changes the element count from {elements} to {known}"
        )))
    }
}

fn too_large(file: FileId, call: &Call) -> Diagnostic {
    Diagnostic::error(
        codes::CHECK_SIZE_INVALID,
        "the element count overflows 64 bits",
    )
    .primary(file, call.span, "too many elements")
    .help("use smaller sizes")
}

/// Reports an output whose per-sample element count overflows.
pub fn check_size(file: FileId, call: &Call, out: &Fact) -> Option<Diagnostic> {
    let known = out.dims.iter().skip(1).filter_map(Dim::known);
    if product(known).is_some() {
        return None;
    }
    Some(
        Diagnostic::error(
            codes::CHECK_SIZE_INVALID,
            format!("the output of `{}` has too many elements", call.callee.name),
        )
        .primary(
            file,
            call.span,
            format!("{} overflows 64 bits", out.shape_string()),
        )
        .help("use smaller sizes"),
    )
}
