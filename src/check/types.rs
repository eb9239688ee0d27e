//! The typed program the checker produces and the IR lowering consumes.
//!
//! Input: nothing (plain data). Output: `CheckedModel` / `CheckedLayer` / `Fact` and the
//! closed `LayerOp` enum with every attribute resolved (defaults filled in, Keras semantics).
//! Invariants: in a `CheckedModel`, value ids `0..inputs.len()` are the inputs and value id
//! `inputs.len() + i` is the output of `layers[i]`; every layer only uses values defined before
//! it, so `layers` is a valid execution order; every `Dim::Known` is at least 1.

use crate::diag::Span;
use serde::Serialize;

pub use crate::ops::types::{Activation, DType, Dim, Fact, Padding, PoolKind, RnnCell};

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
    pub output: Fact,
    pub params: Vec<ParamInfo>,
    /// Floating-point operations for one sample (a multiply-add counts as 2).
    pub flops_per_sample: u64,
    pub span: Span,
}

/// One input of a checked model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedInput {
    pub name: String,
    pub fact: Fact,
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
    pub output_fact: Fact,
    pub span: Span,
}

impl CheckedModel {
    /// The fact of a value.
    pub fn fact(&self, id: ValueId) -> Option<&Fact> {
        if id.0 < self.inputs.len() {
            self.inputs.get(id.0).map(|i| &i.fact)
        } else {
            self.layers.get(id.0 - self.inputs.len()).map(|l| &l.output)
        }
    }
}
