//! The checked layer ops ([`LayerOp`], every attribute resolved) and the registry of layer
//! families: where the checker finds a layer's signature, builds its op, applies its shape rule,
//! and where lowering turns it into IR.
//!
//! Input: a layer name and bound arguments, or a `LayerOp` and its input facts. Output: the
//! family's answer. Invariants: every registered name builds an op; the dispatch arms below
//! only forward to the family modules (each op's behaviour lives in its family's file).

use super::attention;
use super::op::{Activation as IrActivation, Family, Op};
use super::param::ParamId;
use super::rule::{Rule, RuleError};
use super::signature::{BoundArgs, LayerSpec};
use super::symbols::Symbols;
use super::types::{Activation, DType, Fact, Padding, Padding1d, PoolKind, RnnCell};
use super::{activation, conv, dense, dropout, embedding, merge, norm, pool, recurrent, reshape};
use super::{separable, upsample};
use crate::diag::Span;
use serde::Serialize;

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
        /// Keras's `mask_zero`: id 0 is padding, masked for the layers after (`ops::mask`).
        mask_zero: bool,
    },
    Rnn {
        cell: RnnCell,
        units: usize,
        return_sequences: bool,
        options: recurrent::RnnOptions,
    },
    /// Keras's Bidirectional over a recurrent layer (its attributes as written).
    Bidirectional {
        cell: RnnCell,
        units: usize,
        return_sequences: bool,
        options: recurrent::RnnOptions,
        merge: super::bidirectional::BiMerge,
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
    // --- attention family (`ops::attention`) ---
    /// Keras MultiHeadAttention over `[query, value]` or `[query, value, key]`; `value_dim`
    /// already defaulted to `key_dim`.
    MultiHeadAttention {
        heads: usize,
        key_dim: usize,
        value_dim: usize,
        dropout: f64,
        causal: bool,
    },
    /// A learned `[max_length, d]` table added to the positions of its input.
    PositionEmbedding {
        max_length: usize,
    },
    // Issue 15's convolutions and pools (conv and pool families).
    /// Keras Conv1D over `[N, T, C]`.
    Conv1d {
        filters: usize,
        kernel: usize,
        strides: usize,
        padding: Padding1d,
        dilation: usize,
        use_bias: bool,
        activation: Activation,
    },
    /// Keras MaxPooling1D / AveragePooling1D (padding `valid` or `same`).
    Pool1d {
        kind: PoolKind,
        pool: usize,
        strides: usize,
        padding: Padding1d,
    },
    GlobalPool1d {
        kind: PoolKind,
    },
    /// Keras DepthwiseConv2D: each input channel with its own `depth_multiplier` filters.
    DepthwiseConv2d {
        kernel: (usize, usize),
        depth_multiplier: usize,
        strides: (usize, usize),
        padding: Padding,
        dilation: (usize, usize),
        use_bias: bool,
        activation: Activation,
    },
    /// Keras SeparableConv2D: a depthwise conv, then a 1 × 1 conv to `filters` channels.
    SeparableConv2d {
        filters: usize,
        kernel: (usize, usize),
        depth_multiplier: usize,
        strides: (usize, usize),
        padding: Padding,
        dilation: (usize, usize),
        use_bias: bool,
        activation: Activation,
    },
    // --- upsample family (`ops::upsample`) ---
    /// Keras Conv2DTranspose (`padding` valid or same, no output padding).
    Conv2dTranspose {
        filters: usize,
        kernel: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
        use_bias: bool,
        activation: Activation,
    },
    /// Keras UpSampling2D by `size` (rows, columns).
    UpSampling2d {
        size: (usize, usize),
        interpolation: upsample::Interpolation,
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
            LayerOp::Bidirectional { .. } => "bidirectional",
            LayerOp::Add => "add",
            LayerOp::Concat { .. } => "concat",
            LayerOp::Activation(a) => activation::name(*a),
            LayerOp::Cast { .. } => "cast",
            LayerOp::MultiHeadAttention { .. } => "multi_head_attention",
            LayerOp::PositionEmbedding { .. } => "position_embedding",
            LayerOp::Conv1d { .. } => "conv1d",
            LayerOp::Pool1d {
                kind: PoolKind::Max,
                ..
            } => "max_pool1d",
            LayerOp::Pool1d {
                kind: PoolKind::Avg,
                ..
            } => "avg_pool1d",
            LayerOp::GlobalPool1d {
                kind: PoolKind::Max,
            } => "global_max_pool1d",
            LayerOp::GlobalPool1d {
                kind: PoolKind::Avg,
            } => "global_avg_pool1d",
            LayerOp::DepthwiseConv2d { .. } => "depthwise_conv2d",
            LayerOp::SeparableConv2d { .. } => "separable_conv2d",
            LayerOp::Conv2dTranspose { .. } => "conv2d_transpose",
            LayerOp::UpSampling2d { .. } => "upsampling2d",
        }
    }
}

/// Every layer family's signatures, in the order layers are listed to users.
const FAMILIES: &[&[LayerSpec]] = &[
    dense::LAYERS,
    conv::LAYERS,
    pool::LAYERS,
    reshape::LAYERS,
    norm::LAYERS,
    dropout::LAYERS,
    embedding::LAYERS,
    recurrent::LAYERS,
    merge::LAYERS,
    activation::LAYERS,
    reshape::CAST_LAYERS,
    attention::LAYERS,
    separable::LAYERS,
    upsample::LAYERS,
];

/// Every layer a model body can use.
pub fn layers() -> impl Iterator<Item = &'static LayerSpec> + Clone {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// The registered layer with this name.
pub fn lookup(name: &str) -> Option<&'static LayerSpec> {
    layers().find(|l| l.name == name)
}

/// Every layer name, for suggestions.
pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    layers().map(|l| l.name)
}

/// Builds the op of a registered layer from its bound arguments (each family builds its own
/// layers). `reshape` is built by the checker (its target needs the input shape); `concat`'s
/// axis is normalized by the checker from [`merge::concat_axis`].
pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    dense::build(name, args)
        .or_else(|| conv::build(name, args))
        .or_else(|| pool::build(name, args))
        .or_else(|| reshape::build(name, args))
        .or_else(|| norm::build(name, args))
        .or_else(|| dropout::build(name, args))
        .or_else(|| embedding::build(name, args))
        .or_else(|| recurrent::build(name, args))
        .or_else(|| merge::build(name, args))
        .or_else(|| activation::build(name, args))
        .or_else(|| attention::build(name, args))
        .or_else(|| upsample::build(name, args))
}

/// Parameter `i` of a layer being lowered.
pub fn param(params: &[ParamId], i: usize) -> Result<ParamId, String> {
    params
        .get(i)
        .copied()
        .ok_or_else(|| format!("parameter {i} is missing"))
}

impl LayerOp {
    /// The family the op belongs to (see [`Family`]).
    pub fn family(&self) -> Family {
        match self {
            LayerOp::Dense { .. } => Family::Dense,
            LayerOp::Conv2d { .. } | LayerOp::Conv1d { .. } | LayerOp::DepthwiseConv2d { .. } => {
                Family::Conv
            }
            LayerOp::Pool2d { .. }
            | LayerOp::GlobalPool2d { .. }
            | LayerOp::Pool1d { .. }
            | LayerOp::GlobalPool1d { .. } => Family::Pool,
            LayerOp::Flatten | LayerOp::Reshape { .. } | LayerOp::Cast { .. } => Family::Reshape,
            LayerOp::BatchNorm { .. } | LayerOp::LayerNorm { .. } => Family::Norm,
            LayerOp::Dropout { .. } => Family::Dropout,
            LayerOp::Embedding { .. } => Family::Embedding,
            LayerOp::Rnn { .. } | LayerOp::Bidirectional { .. } => Family::Recurrent,
            LayerOp::Add | LayerOp::Concat { .. } => Family::Merge,
            LayerOp::Activation(_) => Family::Activation,
            LayerOp::MultiHeadAttention { .. } | LayerOp::PositionEmbedding { .. } => {
                Family::Attention
            }
            LayerOp::SeparableConv2d { .. } => Family::Conv,
            LayerOp::Conv2dTranspose { .. } | LayerOp::UpSampling2d { .. } => Family::Upsample,
        }
    }

    /// The shape rule of the op's family over `inputs`. `symbols` and `at` unify the dims of
    /// multi-input layers.
    pub fn infer(&self, inputs: &[Fact], symbols: &mut Symbols, at: Span) -> Rule {
        match self.family() {
            Family::Dense => dense::infer(self, inputs),
            Family::Conv => conv::infer(self, inputs),
            Family::Pool => pool::infer(self, inputs),
            Family::Reshape => reshape::infer(self, inputs),
            Family::Norm => norm::infer(self, inputs),
            Family::Dropout => dropout::infer(self, inputs),
            Family::Embedding => embedding::infer(self, inputs),
            Family::Recurrent => recurrent::infer(self, inputs),
            Family::Merge => merge::infer(self, inputs, symbols, at),
            Family::Activation => activation::infer(self, inputs),
            Family::Attention => attention::infer(self, inputs, symbols, at),
            Family::Upsample => upsample::infer(self, inputs),
        }
    }

    /// The IR op of this layer over parameters `params` (the layer's, in its rule's order) and
    /// the activation to apply after it as a separate node. `rank` is the output's rank.
    pub fn lower(&self, params: &[ParamId], rank: usize) -> Result<(Op, IrActivation), String> {
        match self.family() {
            Family::Dense => dense::lower(self, params, rank),
            Family::Conv => conv::lower(self, params, rank),
            Family::Pool => pool::lower(self),
            Family::Reshape => reshape::lower(self),
            Family::Norm => norm::lower(self, params),
            Family::Dropout => dropout::lower(self),
            Family::Embedding => embedding::lower(self, params),
            Family::Recurrent => recurrent::lower(self, params),
            Family::Merge => merge::lower(self),
            Family::Activation => activation::lower(self, rank),
            Family::Attention => attention::lower(self, params),
            Family::Upsample => upsample::lower(self, params, rank),
        }
    }
}

/// The first input of a single-input layer.
pub fn first(inputs: &[Fact]) -> Result<&Fact, RuleError> {
    inputs.first().ok_or(RuleError::InputCount { found: 0 })
}

/// The error of a family's entry point handed a layer of another family (a dispatch bug).
pub fn not_mine(family: &str, op: &LayerOp) -> RuleError {
    RuleError::Size(format!(
        "internal: the {family} family was asked about {}",
        op.kind_name()
    ))
}
