//! The closed set of operations an IR graph (and a plan) can hold, with their attributes, and
//! the dispatch of each op's shape rule to its family (the verifier's rule is the checker's).
//!
//! Layouts follow Keras: activations are channels-last (`[N, H, W, C]`), conv kernels are
//! `[kh, kw, in, out]`, dense kernels `[in, out]`, recurrent gates in Keras order. The serde
//! form of [`Op`] is the plan format: renaming a variant or a field changes `format_version`.

use super::attention;
use super::param::{expect_params, ParamId, ParamRef};
use super::rule::Rule;
use super::types::Fact;
use super::upsample;
use super::{activation, conv, dense, dropout, embedding, merge, norm, pool, recurrent, reshape};
use serde::{Deserialize, Serialize};

pub use super::op_activation::Activation;
pub use super::types::Padding;

/// A 2-D window: size, strides, dilation and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub size: [usize; 2],
    pub strides: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: Padding,
}

pub use super::types::RnnCell;

/// An operation. Parameters are referenced by handle into the graph's parameter table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Conv2d {
        filters: usize,
        window: Window,
        kernel: ParamId,
        bias: Option<ParamId>,
        activation: Activation,
    },
    Dense {
        units: usize,
        kernel: ParamId,
        bias: Option<ParamId>,
        activation: Activation,
    },
    MaxPool2d {
        window: Window,
    },
    AvgPool2d {
        window: Window,
    },
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    /// `[N, ...] → [N, prod(...)]`.
    Flatten,
    /// Per-sample target shape; at most one `-1`.
    Reshape {
        shape: Vec<i64>,
    },
    BatchNorm {
        gamma: ParamId,
        beta: ParamId,
        mean: ParamId,
        variance: ParamId,
        epsilon: f32,
        momentum: f32,
    },
    LayerNorm {
        gamma: ParamId,
        beta: ParamId,
        epsilon: f32,
    },
    Dropout {
        rate: f32,
    },
    Embedding {
        table: ParamId,
    },
    Rnn {
        cell: RnnCell,
        units: usize,
        return_sequences: bool,
        /// Keras's options past the size (absent from a plan when all are defaults, and from
        /// plans written before they existed).
        #[serde(default, skip_serializing_if = "recurrent::RnnOptions::is_default")]
        options: recurrent::RnnOptions,
        kernel: ParamId,
        recurrent: ParamId,
        bias: ParamId,
    },
    /// A recurrent layer that reads integer token ids `[N, T]` instead of features: an
    /// embedding whose only reader was this layer, folded into the layer's input projection
    /// (`fold-embedding-projection`, inference only). `projection` is `[vocab, G·U]`, row `id`
    /// being `table[id]·kernel + b_in` (`b_in` the whole bias of a simple RNN or LSTM, row 0
    /// of a GRU's `[2, 3U]` bias), so a step adds a row of it where the plain layer multiplies
    /// `x_t` by its kernel. `bias` is the layer's own bias: only a GRU still reads it (its
    /// recurrent row 1). Output as [`Op::Rnn`]'s: `[N, T, U]` or `[N, U]`.
    EmbeddedRnn {
        cell: RnnCell,
        units: usize,
        return_sequences: bool,
        projection: ParamId,
        recurrent: ParamId,
        bias: ParamId,
    },
    /// Keras's Bidirectional over a recurrent layer: the layer forwards with `forward`'s
    /// weights, backwards (`go_backwards` flipped) with `backward`'s, the outputs merged.
    Bidirectional {
        cell: RnnCell,
        units: usize,
        return_sequences: bool,
        #[serde(default, skip_serializing_if = "recurrent::RnnOptions::is_default")]
        options: recurrent::RnnOptions,
        merge: super::bidirectional::BiMerge,
        forward: super::bidirectional::RnnWeights,
        backward: super::bidirectional::RnnWeights,
    },
    Activation(Activation),
    Add,
    Concat {
        axis: i64,
    },
    Cast {
        to: super::types::DType,
    },
    /// `x * scale + shift` per channel (last axis): fitted preprocessing carried into the plan.
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    // --- attention family (`ops::attention`) ---
    /// Keras MultiHeadAttention: inputs `[query, value]` or `[query, value, key]` (`[N, T, d]`
    /// each), output `[N, Tq, dq]`. Kernels in Keras's layouts (`query_kernel [dq, heads,
    /// key_dim]`, ..., `output_kernel [heads, value_dim, dq]`); `dropout` applies to the
    /// attention probabilities in training only; `causal` masks positions `j > i`.
    MultiHeadAttention {
        heads: usize,
        key_dim: usize,
        value_dim: usize,
        dropout: f32,
        causal: bool,
        query_kernel: ParamId,
        query_bias: ParamId,
        key_kernel: ParamId,
        key_bias: ParamId,
        value_kernel: ParamId,
        value_bias: ParamId,
        output_kernel: ParamId,
        output_bias: ParamId,
    },
    /// `x[n, t] + table[t]` over `[N, T, d]` (`table [max_length, d]`, `T ≤ max_length`).
    PositionEmbedding {
        table: ParamId,
    },
    // Issue 15's convolutions and pools. A 1-D op runs as its 2-D twin over `[N, 1, T, C]`
    // (the same memory as `[N, T, C]`), so its window is the 2-D one: height 1, causal
    // padding as explicit left padding.
    /// Keras Conv1D over `[N, T, C]`, kernel `[k, in, filters]`.
    Conv1d {
        filters: usize,
        window: Window,
        kernel: ParamId,
        bias: Option<ParamId>,
        activation: Activation,
    },
    MaxPool1d {
        window: Window,
    },
    AvgPool1d {
        window: Window,
    },
    GlobalAvgPool1d,
    GlobalMaxPool1d,
    /// Keras DepthwiseConv2D over `[N, H, W, C]`, kernel `[kh, kw, C, multiplier]`, output
    /// channel `c·multiplier + m`.
    DepthwiseConv2d {
        multiplier: usize,
        window: Window,
        kernel: ParamId,
        bias: Option<ParamId>,
        activation: Activation,
    },
    /// Keras SeparableConv2D: `DepthwiseConv2d`'s (no bias), then a 1 × 1 conv
    /// (`pointwise_kernel [1, 1, C·multiplier, filters]`) with the bias and activation.
    SeparableConv2d {
        filters: usize,
        multiplier: usize,
        window: Window,
        depthwise_kernel: ParamId,
        pointwise_kernel: ParamId,
        bias: Option<ParamId>,
        activation: Activation,
    },
    /// Keras Conv2DTranspose, kernel `[kh, kw, filters, C]`; `window.padding` is valid or same
    /// (see `ops::upsample`), dilation 1.
    Conv2dTranspose {
        filters: usize,
        window: Window,
        kernel: ParamId,
        bias: Option<ParamId>,
        activation: Activation,
    },
    /// Keras UpSampling2D: `[N, H, W, C] → [N, H·size[0], W·size[1], C]`.
    UpSampling2d {
        size: [usize; 2],
        interpolation: upsample::Interpolation,
    },
}

impl Op {
    /// The op's kind as a short name (`conv2d`, `dense`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::Dense { .. } => "dense",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::GlobalAvgPool2d => "global_avg_pool2d",
            Op::GlobalMaxPool2d => "global_max_pool2d",
            Op::Flatten => "flatten",
            Op::Reshape { .. } => "reshape",
            Op::BatchNorm { .. } => "batch_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Dropout { .. } => "dropout",
            Op::Embedding { .. } => "embedding",
            Op::Rnn {
                cell: RnnCell::SimpleRnn,
                ..
            } => "simple_rnn",
            Op::Rnn {
                cell: RnnCell::Lstm,
                ..
            } => "lstm",
            Op::Rnn {
                cell: RnnCell::Gru, ..
            } => "gru",
            Op::EmbeddedRnn {
                cell: RnnCell::SimpleRnn,
                ..
            } => "embedded_simple_rnn",
            Op::EmbeddedRnn {
                cell: RnnCell::Lstm,
                ..
            } => "embedded_lstm",
            Op::EmbeddedRnn {
                cell: RnnCell::Gru, ..
            } => "embedded_gru",
            Op::Bidirectional { .. } => "bidirectional",
            Op::Activation(a) => a.name(),
            Op::Add => "add",
            Op::Concat { .. } => "concat",
            Op::Cast { .. } => "cast",
            Op::Affine { .. } => "affine",
            Op::MultiHeadAttention { .. } => "multi_head_attention",
            Op::PositionEmbedding { .. } => "position_embedding",
            Op::Conv1d { .. } => "conv1d",
            Op::MaxPool1d { .. } => "max_pool1d",
            Op::AvgPool1d { .. } => "avg_pool1d",
            Op::GlobalAvgPool1d => "global_avg_pool1d",
            Op::GlobalMaxPool1d => "global_max_pool1d",
            Op::DepthwiseConv2d { .. } => "depthwise_conv2d",
            Op::SeparableConv2d { .. } => "separable_conv2d",
            Op::Conv2dTranspose { .. } => "conv2d_transpose",
            Op::UpSampling2d { .. } => "upsampling2d",
        }
    }

    /// Every parameter the op reads.
    pub fn params(&self) -> Vec<ParamId> {
        match self {
            Op::Conv2d { kernel, bias, .. }
            | Op::Dense { kernel, bias, .. }
            | Op::Conv1d { kernel, bias, .. }
            | Op::DepthwiseConv2d { kernel, bias, .. }
            | Op::Conv2dTranspose { kernel, bias, .. } => {
                std::iter::once(*kernel).chain(*bias).collect()
            }
            Op::SeparableConv2d {
                depthwise_kernel,
                pointwise_kernel,
                bias,
                ..
            } => [*depthwise_kernel, *pointwise_kernel]
                .into_iter()
                .chain(*bias)
                .collect(),
            Op::BatchNorm {
                gamma,
                beta,
                mean,
                variance,
                ..
            } => vec![*gamma, *beta, *mean, *variance],
            Op::LayerNorm { gamma, beta, .. } => vec![*gamma, *beta],
            Op::Embedding { table } => vec![*table],
            Op::Rnn {
                kernel,
                recurrent,
                bias,
                ..
            } => vec![*kernel, *recurrent, *bias],
            Op::EmbeddedRnn {
                projection,
                recurrent,
                bias,
                ..
            } => vec![*projection, *recurrent, *bias],
            Op::Bidirectional {
                forward: f,
                backward: b,
                ..
            } => vec![f.kernel, f.recurrent, f.bias, b.kernel, b.recurrent, b.bias],
            Op::MultiHeadAttention {
                query_kernel,
                query_bias,
                key_kernel,
                key_bias,
                value_kernel,
                value_bias,
                output_kernel,
                output_bias,
                ..
            } => vec![
                *query_kernel,
                *query_bias,
                *key_kernel,
                *key_bias,
                *value_kernel,
                *value_bias,
                *output_kernel,
                *output_bias,
            ],
            Op::PositionEmbedding { table } => vec![*table],
            _ => Vec::new(),
        }
    }

    /// Every parameter the op reads, to rewrite in place (same order as [`Op::params`]).
    pub fn params_mut(&mut self) -> Vec<&mut ParamId> {
        match self {
            Op::Conv2d { kernel, bias, .. }
            | Op::Dense { kernel, bias, .. }
            | Op::Conv1d { kernel, bias, .. }
            | Op::DepthwiseConv2d { kernel, bias, .. }
            | Op::Conv2dTranspose { kernel, bias, .. } => {
                std::iter::once(kernel).chain(bias.as_mut()).collect()
            }
            Op::SeparableConv2d {
                depthwise_kernel,
                pointwise_kernel,
                bias,
                ..
            } => [depthwise_kernel, pointwise_kernel]
                .into_iter()
                .chain(bias.as_mut())
                .collect(),
            Op::BatchNorm {
                gamma,
                beta,
                mean,
                variance,
                ..
            } => vec![gamma, beta, mean, variance],
            Op::LayerNorm { gamma, beta, .. } => vec![gamma, beta],
            Op::Embedding { table } => vec![table],
            Op::Rnn {
                kernel,
                recurrent,
                bias,
                ..
            } => vec![kernel, recurrent, bias],
            Op::EmbeddedRnn {
                projection,
                recurrent,
                bias,
                ..
            } => vec![projection, recurrent, bias],
            Op::Bidirectional {
                forward: f,
                backward: b,
                ..
            } => vec![
                &mut f.kernel,
                &mut f.recurrent,
                &mut f.bias,
                &mut b.kernel,
                &mut b.recurrent,
                &mut b.bias,
            ],
            Op::MultiHeadAttention {
                query_kernel,
                query_bias,
                key_kernel,
                key_bias,
                value_kernel,
                value_bias,
                output_kernel,
                output_bias,
                ..
            } => vec![
                query_kernel,
                query_bias,
                key_kernel,
                key_bias,
                value_kernel,
                value_bias,
                output_kernel,
                output_bias,
            ],
            Op::PositionEmbedding { table } => vec![table],
            _ => Vec::new(),
        }
    }

    /// The family the op belongs to: the module holding its shape rule, its lowering and
    /// (in `runtime::ops`) its kernels.
    pub fn family(&self) -> Family {
        match self {
            Op::Conv2d { .. } | Op::Conv1d { .. } | Op::DepthwiseConv2d { .. } => Family::Conv,
            Op::Dense { .. } => Family::Dense,
            Op::MaxPool2d { .. }
            | Op::AvgPool2d { .. }
            | Op::GlobalAvgPool2d
            | Op::GlobalMaxPool2d
            | Op::MaxPool1d { .. }
            | Op::AvgPool1d { .. }
            | Op::GlobalAvgPool1d
            | Op::GlobalMaxPool1d => Family::Pool,
            Op::Flatten | Op::Reshape { .. } | Op::Cast { .. } => Family::Reshape,
            Op::BatchNorm { .. } | Op::LayerNorm { .. } | Op::Affine { .. } => Family::Norm,
            Op::Dropout { .. } => Family::Dropout,
            Op::Embedding { .. } => Family::Embedding,
            Op::Rnn { .. } | Op::EmbeddedRnn { .. } | Op::Bidirectional { .. } => Family::Recurrent,
            Op::Activation(_) => Family::Activation,
            Op::Add | Op::Concat { .. } => Family::Merge,
            Op::MultiHeadAttention { .. } | Op::PositionEmbedding { .. } => Family::Attention,
            Op::SeparableConv2d { .. } => Family::Conv,
            Op::Conv2dTranspose { .. } | Op::UpSampling2d { .. } => Family::Upsample,
        }
    }

    /// The output fact of the op over `inputs`, its parameters being `params` (in
    /// [`Op::params`] order): the family's shape rule, the one the checker applies, with the
    /// parameters the graph holds compared to those the rule declares.
    pub fn infer(&self, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
        match self.family() {
            Family::Dense => dense::verify(self, inputs, params),
            Family::Conv => conv::verify(self, inputs, params),
            Family::Pool => pool::verify(self, inputs, params),
            Family::Reshape => reshape::verify(self, inputs, params),
            Family::Norm => norm::verify(self, inputs, params),
            Family::Dropout => dropout::verify(self, inputs, params),
            Family::Embedding => embedding::verify(self, inputs, params),
            Family::Recurrent => recurrent::verify(self, inputs, params),
            Family::Merge => merge::verify(self, inputs, params),
            Family::Activation => activation::verify(self, inputs, params),
            Family::Attention => attention::verify(self, inputs, params),
            Family::Upsample => upsample::verify(self, inputs, params),
        }
    }

    /// The op's attributes as `--emit ir` prints them (` {units: 10, ...}`), naming
    /// parameters with `pname`.
    pub fn attributes_text(&self, pname: impl Fn(ParamId) -> String) -> String {
        match self {
            Op::Conv2d { filters, window, kernel, bias, activation } | Op::Conv1d { filters, window, kernel, bias, activation } => format!(
                " {{filters: {filters}, kernel: {:?}, strides: {:?}, dilation: {:?}, padding: {:?}, activation: {}, w: {}, b: {}}}",
                window.size,
                window.strides,
                window.dilation,
                window.padding,
                activation.name(),
                pname(*kernel),
                bias.map_or_else(|| "none".to_string(), pname)
            ),
            Op::Dense { units, kernel, bias, activation } => format!(
                " {{units: {units}, activation: {}, w: {}, b: {}}}",
                activation.name(),
                pname(*kernel),
                bias.map_or_else(|| "none".to_string(), pname)
            ),
            Op::MaxPool2d { window } | Op::AvgPool2d { window } | Op::MaxPool1d { window } | Op::AvgPool1d { window } => {
                format!(" {{pool: {:?}, strides: {:?}, padding: {:?}}}", window.size, window.strides, window.padding)
            }
            Op::Reshape { shape } => format!(" {{shape: {shape:?}}}"),
            Op::BatchNorm { epsilon, .. } | Op::LayerNorm { epsilon, .. } => format!(" {{epsilon: {epsilon}}}"),
            Op::Dropout { rate } => format!(" {{rate: {rate}}}"),
            Op::Rnn { units, return_sequences, options, .. } => recurrent::attributes_text(*units, *return_sequences, options),
            Op::EmbeddedRnn { units, return_sequences, projection, .. } => format!(
                " {{units: {units}, return_sequences: {return_sequences}, projection: {}}}",
                pname(*projection)
            ),
            Op::Bidirectional { units, return_sequences, options, merge, .. } => {
                super::bidirectional::attributes_text(*units, *return_sequences, options, *merge)
            }
            Op::DepthwiseConv2d { multiplier, window, kernel, bias, activation } => format!(
                " {{multiplier: {multiplier}, kernel: {:?}, strides: {:?}, dilation: {:?}, padding: {:?}, activation: {}, w: {}, b: {}}}",
                window.size,
                window.strides,
                window.dilation,
                window.padding,
                activation.name(),
                pname(*kernel),
                bias.map_or_else(|| "none".to_string(), pname)
            ),
            Op::Concat { axis } => format!(" {{axis: {axis}}}"),
            Op::Cast { to } => format!(" {{to: {to}}}"),
            Op::Activation(Activation::LeakyRelu { alpha } | Activation::Elu { alpha }) => format!(" {{alpha: {alpha}}}"),
            Op::Affine { scale, shift } => format!(" {{scale: {scale:?}, shift: {shift:?}}}"),
            Op::MultiHeadAttention { heads, key_dim, value_dim, dropout, causal, .. } => format!(
                " {{heads: {heads}, key_dim: {key_dim}, value_dim: {value_dim}, dropout: {dropout}, causal: {causal}}}"
            ),
            Op::PositionEmbedding { table } => format!(" {{embeddings: {}}}", pname(*table)),
            Op::SeparableConv2d { filters, multiplier, window, activation, .. } => format!(
                " {{filters: {filters}, multiplier: {multiplier}, kernel: {:?}, strides: {:?}, dilation: {:?}, padding: {:?}, activation: {}}}",
                window.size, window.strides, window.dilation, window.padding, activation.name()
            ),
            Op::Conv2dTranspose { filters, window, activation, .. } => format!(
                " {{filters: {filters}, kernel: {:?}, strides: {:?}, padding: {:?}, activation: {}}}",
                window.size, window.strides, window.padding, activation.name()
            ),
            Op::UpSampling2d { size, interpolation } => format!(" {{size: {size:?}, interpolation: {interpolation:?}}}"),
            _ => String::new(),
        }
    }

    /// Whether the output may share the input's buffer (elementwise, same size).
    pub fn can_run_in_place(&self) -> bool {
        matches!(
            self,
            Op::Activation(_) | Op::Dropout { .. } | Op::Add | Op::Affine { .. }
        ) || matches!(self, Op::BatchNorm { .. } | Op::PositionEmbedding { .. })
    }

    /// Whether the output is the input reinterpreted with another shape (no copy).
    pub fn is_view(&self) -> bool {
        matches!(self, Op::Flatten | Op::Reshape { .. })
    }
}

/// The op families, one module each in `ops` (and in `runtime::ops`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Dense,
    Conv,
    Pool,
    Reshape,
    Norm,
    Dropout,
    Embedding,
    Recurrent,
    Merge,
    Activation,
    /// `multi_head_attention`, `position_embedding`.
    Attention,
    /// `conv2d_transpose`, `upsampling2d`.
    Upsample,
}

/// The error of a family's entry point handed an op of another family (a dispatch bug).
pub fn not_mine(family: &str, kind: &str) -> String {
    format!("internal: the {family} family was asked about {kind}")
}

/// An IR rule's answer from a family's shape rule: its output, once the graph's parameters are
/// the ones the rule declares.
pub fn checked(inferred: Rule, params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let inferred = inferred.map_err(|e| e.to_string())?;
    expect_params(&inferred.params, params)?;
    Ok(inferred.output)
}

// ---- ONNX export -------------------------------------------------------------------------

impl Op {
    /// Emits the op's ONNX nodes into `cx` (its family's `to_onnx`); an error says why the op
    /// has no ONNX form.
    pub fn to_onnx(&self, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
        match self.family() {
            Family::Dense => dense::to_onnx(self, cx),
            Family::Conv => conv::to_onnx(self, cx),
            Family::Pool => pool::to_onnx(self, cx),
            Family::Reshape => reshape::to_onnx(self, cx),
            Family::Norm => norm::to_onnx(self, cx),
            Family::Dropout => dropout::to_onnx(self, cx),
            Family::Embedding => embedding::to_onnx(self, cx),
            Family::Recurrent => recurrent::to_onnx(self, cx),
            Family::Merge => merge::to_onnx(self, cx),
            Family::Activation => activation::to_onnx(self, cx),
            Family::Attention => attention::to_onnx(self, cx),
            Family::Upsample => upsample::to_onnx(self, cx),
        }
    }
}
