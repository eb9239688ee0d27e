//! The types every layer of the compiler shares: element types, dims, facts (dtype + shape),
//! window padding, recurrent cells, pooling kinds and activations.
//!
//! Input: nothing (plain data). Output: the vocabulary `check`, `ir`, `data` and `runtime`
//! speak. Invariants: these types know nothing of spans, source text or buffers; a `Fact`'s
//! dims are batch first, and every `Dim::Known` a checked program holds is at least 1.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    I32,
    I64,
}

impl DType {
    /// Every dtype with its spelling in specs.
    pub const ALL: [(&'static str, DType); 3] = [
        ("f32", DType::F32),
        ("i32", DType::I32),
        ("i64", DType::I64),
    ];

    /// Parses a dtype as written in a spec.
    pub fn from_name(name: &str) -> Option<DType> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
    }

    /// The spelling in specs.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::I64 => "i64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    /// Whether this is an integer type (token ids, class labels).
    pub fn is_integer(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of a shape: a size, or a symbol such as the batch symbol `N`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dim {
    Known(usize),
    Symbol(String),
}

impl Dim {
    /// The size, when known.
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            Dim::Symbol(_) => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Symbol(s) => f.write_str(s),
        }
    }
}

/// Keras's SELU `alpha`.
pub const SELU_ALPHA: f32 = 1.673_263_2;
/// Keras's SELU `scale`.
pub const SELU_SCALE: f32 = 1.050_701;

/// An activation function, as a layer or as the `activation:` argument.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Linear,
    Relu,
    /// `leaky_relu(alpha)`: Keras's default slope is 0.3.
    LeakyRelu {
        alpha: f64,
    },
    Sigmoid,
    Tanh,
    /// Softmax over `axis` (negative counts from the end).
    Softmax {
        axis: i64,
    },
    Gelu,
    // Issue 15's activations, Keras 3's definitions.
    /// `x · sigmoid(x)` (`swish`, alias `silu`).
    Swish,
    /// `elu(alpha)`: Keras's default alpha is 1.
    Elu {
        alpha: f64,
    },
    Selu,
    Softplus,
    /// Keras 3's `relu6(x + 3) / 6`.
    HardSigmoid,
    Relu6,
    Mish,
}

impl Activation {
    /// The names accepted for `activation:`.
    pub const NAMES: &'static [&'static str] = &[
        "linear",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "softmax",
        "gelu",
        "swish",
        "silu",
        "elu",
        "selu",
        "softplus",
        "hard_sigmoid",
        "relu6",
        "mish",
    ];

    /// The activation with default parameters for a name of [`Activation::NAMES`].
    pub fn from_name(name: &str) -> Option<Activation> {
        Some(match name {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu { alpha: 0.3 },
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax { axis: -1 },
            "gelu" => Activation::Gelu,
            "swish" | "silu" => Activation::Swish,
            "elu" => Activation::Elu { alpha: 1.0 },
            "selu" => Activation::Selu,
            "softplus" => Activation::Softplus,
            "hard_sigmoid" => Activation::HardSigmoid,
            "relu6" => Activation::Relu6,
            "mish" => Activation::Mish,
            _ => return None,
        })
    }
}

/// Padding of a convolution or pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: only windows that fit entirely.
    Valid,
    /// Keras `same`: output size `ceil(in / stride)`, padding split with the extra on the end.
    Same,
    /// Explicit zero padding `[top, bottom, left, right]`.
    Explicit([usize; 4]),
}

/// Padding of a 1-D convolution or pool (Keras's `Conv1D`): `causal` pads
/// `dilation · (kernel − 1)` zeros before the sequence only, so output `t` sees inputs up to
/// `t` (pools take `valid` and `same` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding1d {
    Valid,
    Same,
    Causal,
}

impl Padding1d {
    /// Parses a padding name as written in specs.
    pub fn from_name(name: &str) -> Option<Padding1d> {
        Some(match name {
            "valid" => Padding1d::Valid,
            "same" => Padding1d::Same,
            "causal" => Padding1d::Causal,
            _ => return None,
        })
    }
}

/// A recurrent cell kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnCell {
    SimpleRnn,
    Lstm,
    /// Keras's default GRU (`reset_after=True`: two bias vectors).
    Gru,
}

impl RnnCell {
    /// Gates per cell: the multiplier on every weight matrix.
    pub fn gates(self) -> usize {
        match self {
            RnnCell::SimpleRnn => 1,
            RnnCell::Lstm => 4,
            RnnCell::Gru => 3,
        }
    }
}

/// Pooling kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    Max,
    Avg,
}

/// The type of a value: dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fact {
    pub dtype: DType,
    pub dims: Vec<Dim>,
}

impl Fact {
    pub fn new(dtype: DType, dims: Vec<Dim>) -> Self {
        Self { dtype, dims }
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The shape as written in specs: `[N, 28, 28, 1]`.
    pub fn shape_string(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(ToString::to_string).collect();
        format!("[{}]", dims.join(", "))
    }

    /// Elements per sample: the product of all dims but the first (the batch), when all are known.
    /// `None` when a non-batch dim is symbolic or the product overflows.
    pub fn elements_per_sample(&self) -> Option<usize> {
        self.dims
            .iter()
            .skip(1)
            .try_fold(1usize, |acc, d| acc.checked_mul(d.known()?))
    }

    /// Bytes per sample (see [`Fact::elements_per_sample`]).
    pub fn bytes_per_sample(&self) -> Option<usize> {
        self.elements_per_sample()?.checked_mul(self.dtype.size())
    }

    /// The known size of axis `i` (negative counts from the end).
    pub fn dim(&self, i: isize) -> Option<usize> {
        let idx = if i < 0 {
            self.dims.len().checked_sub(i.unsigned_abs())?
        } else {
            i as usize
        };
        self.dims.get(idx)?.known()
    }
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}
