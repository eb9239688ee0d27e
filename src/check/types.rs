//! The typed program the checker produces and the IR lowering consumes.
//!
//! Input: nothing (plain data). Output: `CheckedModel` / `CheckedLayer` / `TensorFact` and the
//! closed `LayerOp` enum with every attribute resolved (defaults filled in, Keras semantics).
//! Invariants: in a `CheckedModel`, value ids `0..inputs.len()` are the inputs and value id
//! `inputs.len() + i` is the output of `layers[i]`; every layer only uses values defined before
//! it, so `layers` is a valid execution order; every `Dim::Known` is at least 1.

use crate::diag::Span;
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

/// What is known statically about a tensor: its dtype and its dims (batch first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorFact {
    pub dtype: DType,
    pub dims: Vec<Dim>,
}

impl TensorFact {
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The shape as written in specs: `[N, 28, 28, 1]`.
    pub fn shape_string(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(ToString::to_string).collect();
        format!("[{}]", dims.join(", "))
    }
}

impl fmt::Display for TensorFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape_string())
    }
}

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

/// A layer with every attribute resolved. The closed set of operations a model can use.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerOp {
    Dense {
        units: usize,
        use_bias: bool,
        activation: Activation,
    },
    Conv2d {
        filters: usize,
        kernel: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
        dilation: (usize, usize),
        use_bias: bool,
        activation: Activation,
    },
    Pool2d {
        kind: PoolKind,
        pool: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
    },
    GlobalPool2d {
        kind: PoolKind,
    },
    Flatten,
    /// The per-sample target shape (batch axis kept), with any `-1` already resolved.
    Reshape {
        shape: Vec<usize>,
    },
    /// Keras BatchNormalization over the last axis; moving statistics are non-trainable.
    BatchNorm {
        momentum: f64,
        epsilon: f64,
    },
    /// Keras LayerNormalization over the last axis.
    LayerNorm {
        epsilon: f64,
    },
    Dropout {
        rate: f64,
    },
    Embedding {
        input_dim: usize,
        output_dim: usize,
    },
    Rnn {
        cell: RnnCell,
        units: usize,
        return_sequences: bool,
    },
    Add,
    /// Concatenation along `axis` (normalized to a non-negative index).
    Concat {
        axis: usize,
    },
    Activation(Activation),
    Cast {
        to: DType,
    },
}

impl LayerOp {
    /// The op kind as written in specs (and as the stem of generated layer names).
    pub fn kind_name(&self) -> &'static str {
        match self {
            LayerOp::Dense { .. } => "dense",
            LayerOp::Conv2d { .. } => "conv2d",
            LayerOp::Pool2d {
                kind: PoolKind::Max,
                ..
            } => "max_pool2d",
            LayerOp::Pool2d {
                kind: PoolKind::Avg,
                ..
            } => "avg_pool2d",
            LayerOp::GlobalPool2d {
                kind: PoolKind::Max,
            } => "global_max_pool2d",
            LayerOp::GlobalPool2d {
                kind: PoolKind::Avg,
            } => "global_avg_pool2d",
            LayerOp::Flatten => "flatten",
            LayerOp::Reshape { .. } => "reshape",
            LayerOp::BatchNorm { .. } => "batch_norm",
            LayerOp::LayerNorm { .. } => "layer_norm",
            LayerOp::Dropout { .. } => "dropout",
            LayerOp::Embedding { .. } => "embedding",
            LayerOp::Rnn {
                cell: RnnCell::SimpleRnn,
                ..
            } => "simple_rnn",
            LayerOp::Rnn {
                cell: RnnCell::Lstm,
                ..
            } => "lstm",
            LayerOp::Rnn {
                cell: RnnCell::Gru, ..
            } => "gru",
            LayerOp::Add => "add",
            LayerOp::Concat { .. } => "concat",
            LayerOp::Activation(a) => match a {
                Activation::Linear => "linear",
                Activation::Relu => "relu",
                Activation::LeakyRelu { .. } => "leaky_relu",
                Activation::Sigmoid => "sigmoid",
                Activation::Tanh => "tanh",
                Activation::Softmax { .. } => "softmax",
                Activation::Gelu => "gelu",
            },
            LayerOp::Cast { .. } => "cast",
        }
    }
}

/// The index of a value in a [`CheckedModel`] (see the module invariants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ValueId(pub usize);

/// One weight tensor of a layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParamInfo {
    /// Keras's name for it: `kernel`, `bias`, `gamma`, `moving_mean`, `embeddings`, ...
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub trainable: bool,
}

impl ParamInfo {
    /// The number of scalars (`None` on overflow, which the checker reports before).
    pub fn count(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
    }
}

/// One layer of a checked model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedLayer {
    /// The stable layer name: the `let` name, or generated per kind (`conv2d`, `conv2d_1`).
    pub name: String,
    pub op: LayerOp,
    pub inputs: Vec<ValueId>,
    pub output: TensorFact,
    pub params: Vec<ParamInfo>,
    /// Floating-point operations for one sample (a multiply-add counts as 2).
    pub flops_per_sample: u64,
    pub span: Span,
}

/// One input of a checked model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedInput {
    pub name: String,
    pub fact: TensorFact,
    pub span: Span,
}

/// A model whose names, dtypes and shapes all check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedModel {
    pub name: String,
    pub inputs: Vec<CheckedInput>,
    pub layers: Vec<CheckedLayer>,
    /// The model's result (declared or inferred type in `output_fact`).
    pub output: ValueId,
    pub output_fact: TensorFact,
    pub span: Span,
}

impl CheckedModel {
    /// The fact of a value.
    pub fn fact(&self, id: ValueId) -> Option<&TensorFact> {
        if id.0 < self.inputs.len() {
            self.inputs.get(id.0).map(|i| &i.fact)
        } else {
            self.layers.get(id.0 - self.inputs.len()).map(|l| &l.output)
        }
    }
}
