//! Declared argument signatures: what a layer (or an optimizer, a loss, a data step) accepts,
//! with Keras's defaults, and the bound arguments its builder reads.
//!
//! Input: nothing (tables of `const` data). Output: [`Signature`], [`LayerSpec`] and
//! [`BoundArgs`]. Invariant: `check::signature::bind` builds a `BoundArgs` only when every
//! argument was valid, so the getters never see a value of the wrong kind (they still fall
//! back to a neutral value instead of panicking). Binding itself, with its diagnostics, is the
//! checker's.

use super::types::Padding;
use crate::diag::Span;

/// A bound on a number.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    None,
    Incl(f64),
    Excl(f64),
}

/// What kind of value a parameter takes.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// An integer in `[min, max]`.
    Int {
        min: i64,
        max: i64,
    },
    /// A number within the limits.
    Float {
        lo: Limit,
        hi: Limit,
    },
    Bool,
    /// A bare name from the set.
    Choice(&'static [&'static str]),
    /// A positive size, or a pair `[h, w]` of them (kernel, strides, dilation).
    Pair,
    /// `valid`, `same`, or an explicit list `[h, w]` / `[top, bottom, left, right]`.
    Padding,
    /// A string literal.
    Str,
    /// A call of one of these layers, bound to its own signature (the layer a wrapper such as
    /// `bidirectional` wraps).
    Layer(&'static [&'static str]),
}

/// A parameter's default.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    /// The argument must be written.
    Required,
    Int(i64),
    Float(f64),
    Bool(bool),
    Name(&'static str),
    /// Optional with no value (e.g. pool strides default to the pool size).
    Absent,
}

/// One parameter of a signature.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
    /// Whether it may be given by position (in declaration order).
    pub positional: bool,
    /// Other accepted keyword spellings (`stride` for `strides`).
    pub aliases: &'static [&'static str],
}

/// Shorthand constructors for the signature tables.
pub const fn pos(name: &'static str, kind: Kind, default: Default) -> Param {
    Param {
        name,
        kind,
        default,
        positional: true,
        aliases: &[],
    }
}

/// A keyword-only parameter.
pub const fn kw(name: &'static str, kind: Kind, default: Default) -> Param {
    Param {
        name,
        kind,
        default,
        positional: false,
        aliases: &[],
    }
}

/// The largest size a layer argument may have (kernel, units, filters): 2^31 - 1.
pub const MAX_SIZE: i64 = i32::MAX as i64;

/// An integer `>= min`.
pub const fn int_min(min: i64) -> Kind {
    Kind::Int { min, max: i64::MAX }
}

/// A number in `(lo, hi)` with the given limits.
pub const fn float(lo: Limit, hi: Limit) -> Kind {
    Kind::Float { lo, hi }
}

/// What a callee's arguments look like.
#[derive(Clone, Copy, Debug)]
pub struct Signature {
    pub params: &'static [Param],
}

/// A resolved argument value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Name(String),
    Pair(usize, usize),
    Padding(Padding),
    Str(String),
    /// A layer call: its name and its bound arguments.
    Layer(Box<(String, BoundArgs)>),
    Absent,
}

/// Arguments bound to a signature: one value per parameter, in declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct BoundArgs {
    values: Vec<(&'static str, Value, Option<Span>)>,
}

impl BoundArgs {
    /// Arguments already validated against their signature, one per parameter in declaration
    /// order: `(name, value, where it was written)`.
    pub fn new(values: Vec<(&'static str, Value, Option<Span>)>) -> Self {
        Self { values }
    }

    /// No arguments (for layers whose arguments are checked elsewhere, like `reshape`).
    pub fn empty() -> Self {
        Self { values: Vec::new() }
    }

    fn get(&self, name: &str) -> &Value {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(&Value::Absent, |(_, v, _)| v)
    }

    /// Where the argument was written, if it was.
    pub fn span(&self, name: &str) -> Option<Span> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .and_then(|(_, _, s)| *s)
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Value::Int(i) => *i,
            _ => 0,
        }
    }

    /// An integer parameter declared with `min >= 1`, as a size.
    pub fn size(&self, name: &str) -> usize {
        usize::try_from(self.int(name)).unwrap_or(1)
    }

    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Value::Float(f) => *f,
            Value::Int(i) => *i as f64,
            _ => 0.0,
        }
    }

    pub fn opt_float(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Value::Absent => None,
            _ => Some(self.float(name)),
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Value::Bool(true))
    }

    pub fn name(&self, name: &str) -> &str {
        match self.get(name) {
            Value::Name(s) | Value::Str(s) => s,
            _ => "",
        }
    }

    pub fn pair(&self, name: &str) -> Option<(usize, usize)> {
        match self.get(name) {
            Value::Pair(a, b) => Some((*a, *b)),
            _ => None,
        }
    }

    /// A layer-call argument: the layer's name and its bound arguments.
    pub fn layer(&self, name: &str) -> Option<(&str, &BoundArgs)> {
        match self.get(name) {
            Value::Layer(call) => Some((call.0.as_str(), &call.1)),
            _ => None,
        }
    }

    pub fn padding(&self, name: &str) -> Padding {
        match self.get(name) {
            Value::Padding(p) => *p,
            _ => Padding::Valid,
        }
    }
}

/// How a layer receives its input values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inputs {
    /// The previous line's value, or the value piped into it.
    One,
    /// Named values as positional arguments (`add(a, b)`); a piped value comes first.
    Many,
    /// `reshape(d1, d2, ...)`: positional sizes, one of which may be `-1`.
    Reshape,
}

/// A registered layer.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    pub name: &'static str,
    pub signature: Signature,
    pub inputs: Inputs,
    /// What to feed the layer, for the help of a wrong-rank input (`None`: reshape it).
    pub input_help: Option<&'static str>,
}

impl LayerSpec {
    /// The same layer with a help for wrong-rank inputs.
    #[must_use]
    pub const fn with_input_help(self, help: &'static str) -> Self {
        Self {
            input_help: Some(help),
            ..self
        }
    }
}

/// The input help of the layers that read images.
pub const IMAGES_HELP: &str =
    "give it images [batch, height, width, channels], e.g. with `reshape(28, 28, 1)`";
/// The input help of the layers that read sequences.
pub const SEQUENCES_HELP: &str = "feed it a sequence [batch, time, features], e.g. from `embedding` or `reshape`; set `return_sequences: true` on a recurrent layer before it";

/// A single-input layer.
pub const fn layer(name: &'static str, params: &'static [Param]) -> LayerSpec {
    LayerSpec {
        name,
        signature: Signature { params },
        inputs: Inputs::One,
        input_help: None,
    }
}

/// A layer taking named values as positional arguments (`add(a, b)`).
pub const fn multi_input(name: &'static str, params: &'static [Param]) -> LayerSpec {
    LayerSpec {
        name,
        signature: Signature { params },
        inputs: Inputs::Many,
        input_help: None,
    }
}

/// A positive size (units, filters, kernel).
pub const SIZE: Kind = Kind::Int {
    min: 1,
    max: MAX_SIZE,
};
/// `activation:`, linear by default.
pub const ACTIVATION: Param = kw(
    "activation",
    Kind::Choice(super::types::Activation::NAMES),
    Default::Name("linear"),
);
/// `use_bias:`, true by default.
pub const USE_BIAS: Param = kw("use_bias", Kind::Bool, Default::Bool(true));
/// `padding:`, valid by default.
pub const PADDING: Param = kw("padding", Kind::Padding, Default::Name("valid"));
/// An axis argument (`concat`, `softmax`), the last by default.
pub const AXIS: Param = kw("axis", Kind::Int { min: -64, max: 64 }, Default::Int(-1));
/// No arguments.
pub const NONE: &[Param] = &[];
