//! A layer's signature as text for people: the synopsis `conv2d(filters, kernel, strides: 1,
//! ...)` and one line per argument with what it accepts and its default, for `modelc explain
//! LAYER` and the editor's hovers.
//!
//! Input: a registered [`LayerSpec`]. Output: plain text (no colour, no trailing spaces).
//! Everything is read from the signature tables, so the text cannot drift from what the checker
//! accepts.

use super::signature::{Default, Inputs, Kind, LayerSpec, Limit, Param};
use std::fmt::Write as _;

/// The call as a user writes it, with every default: `dense(units, activation: linear,
/// use_bias: true)`. Positional inputs of a multi-input layer come first (`add(a, b, ...)`).
pub fn synopsis(spec: &LayerSpec) -> String {
    let mut parts: Vec<String> = Vec::new();
    match spec.inputs {
        Inputs::Many => parts.push("a, b, ...".into()),
        Inputs::Reshape => parts.push("d1, d2, ...".into()),
        Inputs::One => {}
    }
    for p in spec.signature.params {
        parts.push(match (p.default, p.positional) {
            (Default::Required, _) => p.name.to_string(),
            (Default::Absent, _) => format!("{}: _", p.name),
            (d, _) => format!("{}: {}", p.name, default_text(d)),
        });
    }
    format!("{}({})", spec.name, parts.join(", "))
}

/// The page `modelc explain LAYER` prints: the synopsis, how the layer takes its input, and a
/// line per argument.
pub fn page(spec: &LayerSpec) -> String {
    let mut text = format!("{}\n\n", synopsis(spec));
    let input = match spec.inputs {
        Inputs::One => "the previous line's value, or the value piped into it (`x |> f(...)`)",
        Inputs::Many => {
            "the values named as its first arguments (`f(a, b)`); a piped value comes first"
        }
        Inputs::Reshape => {
            "the previous value; the arguments are the new sizes, one of them may be -1"
        }
    };
    let _ = writeln!(text, "input: {input}");
    if let Some(help) = spec.input_help {
        let _ = writeln!(text, "       ({help})");
    }
    if !spec.signature.params.is_empty() {
        let _ = writeln!(text, "\narguments:");
        let width = spec
            .signature
            .params
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(0);
        for p in spec.signature.params {
            let _ = writeln!(text, "  {:width$}  {}", p.name, argument_line(p));
        }
    }
    text
}

/// One argument's line of the page: what it accepts, its default and its other spellings.
pub fn argument_line(p: &Param) -> String {
    let mut line = kind_text(p.kind);
    match p.default {
        Default::Required => line.push_str(if p.positional {
            "; required, by position or by name"
        } else {
            "; required"
        }),
        Default::Absent => line.push_str("; optional"),
        d => {
            let _ = write!(line, "; default {}", default_text(d));
        }
    }
    let aliases: Vec<&str> = p.aliases.iter().copied().filter(|a| *a != p.name).collect();
    if !aliases.is_empty() {
        let _ = write!(line, " (also written `{}`)", aliases.join("`, `"));
    }
    line
}

fn default_text(d: Default) -> String {
    match d {
        Default::Required | Default::Absent => String::new(),
        Default::Int(i) => i.to_string(),
        Default::Float(f) => format!("{f}"),
        Default::Bool(b) => b.to_string(),
        Default::Name(n) => n.to_string(),
    }
}

fn kind_text(kind: Kind) -> String {
    match kind {
        Kind::Int { min, max } => match (min, max) {
            (i64::MIN, i64::MAX) => "an integer".into(),
            (lo, i64::MAX) => format!("an integer >= {lo}"),
            (lo, hi) => format!("an integer in {lo}..={hi}"),
        },
        Kind::Float { lo, hi } => match (limit_text(lo, '>'), limit_text(hi, '<')) {
            (None, None) => "a number".into(),
            (Some(a), None) => format!("a number {a}"),
            (None, Some(b)) => format!("a number {b}"),
            (Some(a), Some(b)) => format!("a number {a} and {b}"),
        },
        Kind::Bool => "true or false".into(),
        Kind::Choice(names) => format!("one of {}", names.join(", ")),
        Kind::Pair => "a size, or a pair [h, w]".into(),
        Kind::Padding => {
            "valid, same, or explicit amounts [h, w] / [top, bottom, left, right]".into()
        }
        Kind::Str => "a string".into(),
        Kind::Layer(names) => format!("a layer call: {}(...)", names.join("(...), ")),
    }
}

fn limit_text(limit: Limit, side: char) -> Option<String> {
    match limit {
        Limit::None => None,
        Limit::Incl(v) => Some(format!("{side}= {v}")),
        Limit::Excl(v) => Some(format!("{side} {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::layer::lookup;

    #[test]
    fn synopsis_shows_every_default_as_the_checker_fills_it() {
        let dense = lookup("dense").expect("dense is registered");
        assert_eq!(
            synopsis(dense),
            "dense(units, activation: linear, use_bias: true)"
        );
        let add = lookup("add").expect("add is registered");
        assert_eq!(synopsis(add), "add(a, b, ...)");
        let concat = lookup("concat").expect("concat is registered");
        assert_eq!(synopsis(concat), "concat(a, b, ..., axis: -1)");
    }

    #[test]
    fn page_lists_each_argument_with_its_range_and_default() {
        let dropout = lookup("dropout").expect("dropout is registered");
        let page = page(dropout);
        assert!(page.starts_with("dropout(rate"), "{page}");
        let rate = page
            .lines()
            .find(|l| l.trim_start().starts_with("rate"))
            .expect("a line for `rate`");
        assert!(rate.contains("a number >= 0 and < 1"), "{rate}");
        assert!(rate.contains("required"), "{rate}");
        let lstm = page_of("lstm");
        let sequences = lstm
            .lines()
            .find(|l| l.trim_start().starts_with("return_sequences "))
            .expect("a line for `return_sequences`");
        assert!(
            sequences.ends_with("true or false; default false"),
            "{lstm}"
        );
        assert!(lstm.contains("feed it a sequence"), "{lstm}");
    }

    #[test]
    fn the_upsampling_and_separable_layers_show_keras_defaults() {
        let synopsis_of = |name| synopsis(lookup(name).expect("registered"));
        assert_eq!(
            synopsis_of("conv2d_transpose"),
            "conv2d_transpose(filters, kernel, strides: 1, padding: valid, use_bias: true, activation: linear)"
        );
        assert_eq!(
            synopsis_of("separable_conv2d"),
            "separable_conv2d(filters, kernel, depth_multiplier: 1, strides: 1, padding: valid, dilation: 1, use_bias: true, activation: linear)"
        );
        assert_eq!(
            synopsis_of("upsampling2d"),
            "upsampling2d(size: 2, interpolation: nearest)"
        );
        let page = page_of("upsampling2d");
        assert!(
            page.contains("interpolation  one of nearest, bilinear; default nearest"),
            "{page}"
        );
    }

    fn page_of(name: &str) -> String {
        page(lookup(name).expect("registered"))
    }
}
