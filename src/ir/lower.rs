//! Lowering: a checked model becomes an IR graph.
//!
//! Input: a [`CheckedModel`] (names, dtypes and shapes already checked). Output: a verified
//! [`Graph`]. A layer's `activation:` becomes a separate activation node, so that
//! `fuse-activation` (and the pass log) shows the fusion; parameters are named `LAYER.PARAM` with
//! Keras's names and initializers.

use super::{verify, Activation, Graph, Init, Op, Param, ParamSource, ValueId, Window};
use crate::check::types as ck;

/// Why a checked model could not be lowered: a construct the interpreter does not run yet, or
/// (a bug) a checked model that breaks an IR invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerError {
    /// The layer at fault.
    pub layer: String,
    pub message: String,
    /// The layer's span in the spec.
    pub span: crate::diag::Span,
}

/// The IR activation for a checked one; `None` for a softmax over an axis other than the last.
fn activation(a: ck::Activation, rank: usize) -> Option<Activation> {
    Some(match a {
        ck::Activation::Linear => Activation::Linear,
        ck::Activation::Relu => Activation::Relu,
        ck::Activation::LeakyRelu { alpha } => Activation::LeakyRelu {
            alpha: alpha as f32,
        },
        ck::Activation::Sigmoid => Activation::Sigmoid,
        ck::Activation::Tanh => Activation::Tanh,
        ck::Activation::Gelu => Activation::Gelu,
        ck::Activation::Softmax { axis } => {
            let last = rank as i64 - 1;
            if axis == -1 || axis == last {
                Activation::Softmax
            } else {
                return None;
            }
        }
    })
}

/// Keras's default initializer for a parameter of a layer.
fn init(op: &ck::LayerOp, param: &str) -> Init {
    match (op, param) {
        (
            ck::LayerOp::Rnn {
                cell: ck::RnnCell::Lstm,
                ..
            },
            "bias",
        ) => Init::UnitForgetBias,
        (_, "kernel") => Init::GlorotUniform,
        (_, "recurrent_kernel") => Init::Orthogonal,
        (_, "gamma" | "moving_variance") => Init::Ones,
        (_, "embeddings") => Init::Uniform { limit: 0.05 },
        _ => Init::Zeros,
    }
}

/// Lowers a checked model.
pub fn lower(model: &ck::CheckedModel) -> Result<Graph, LowerError> {
    let mut g = Graph {
        name: model.name.clone(),
        ..Graph::default()
    };
    let mut values: Vec<ValueId> = Vec::with_capacity(model.inputs.len() + model.layers.len());
    for input in &model.inputs {
        values.push(g.add_input(input.name.clone(), input.fact.clone()));
    }
    for layer in &model.layers {
        let err = |message: String| LowerError {
            layer: layer.name.clone(),
            message,
            span: layer.span,
        };
        let inputs: Vec<ValueId> = layer
            .inputs
            .iter()
            .map(|v| {
                values
                    .get(v.0)
                    .copied()
                    .ok_or_else(|| err(format!("value {} is not defined", v.0)))
            })
            .collect::<Result<_, _>>()?;
        let mut params = Vec::new();
        for p in &layer.params {
            params.push(g.add_param(Param {
                name: format!("{}.{}", layer.name, p.name),
                shape: p.shape.clone(),
                trainable: p.trainable,
                init: init(&layer.op, p.name),
                source: ParamSource::Stored,
            }));
        }
        let param = |i: usize| {
            params
                .get(i)
                .copied()
                .ok_or_else(|| err(format!("parameter {i} is missing")))
        };
        let rank = layer.output.rank();
        let unsupported_softmax = || {
            err(
                "softmax over an axis other than the last is not supported by the interpreter yet"
                    .into(),
            )
        };
        // The op, and the activation to apply after it as a separate node.
        let (op, then) = match &layer.op {
            ck::LayerOp::Dense {
                units,
                use_bias,
                activation: a,
            } => {
                let bias = if *use_bias { Some(param(1)?) } else { None };
                let a = activation(*a, rank).ok_or_else(unsupported_softmax)?;
                (
                    Op::Dense {
                        units: *units,
                        kernel: param(0)?,
                        bias,
                        activation: Activation::Linear,
                    },
                    a,
                )
            }
            ck::LayerOp::Conv2d {
                filters,
                kernel,
                strides,
                padding: p,
                dilation,
                use_bias,
                activation: a,
            } => {
                let bias = if *use_bias { Some(param(1)?) } else { None };
                let window = Window {
                    size: [kernel.0, kernel.1],
                    strides: [strides.0, strides.1],
                    dilation: [dilation.0, dilation.1],
                    padding: *p,
                };
                let a = activation(*a, rank).ok_or_else(unsupported_softmax)?;
                (
                    Op::Conv2d {
                        filters: *filters,
                        window,
                        kernel: param(0)?,
                        bias,
                        activation: Activation::Linear,
                    },
                    a,
                )
            }
            ck::LayerOp::Pool2d {
                kind,
                pool,
                strides,
                padding: p,
            } => {
                let window = Window {
                    size: [pool.0, pool.1],
                    strides: [strides.0, strides.1],
                    dilation: [1, 1],
                    padding: *p,
                };
                let op = match kind {
                    ck::PoolKind::Max => Op::MaxPool2d { window },
                    ck::PoolKind::Avg => Op::AvgPool2d { window },
                };
                (op, Activation::Linear)
            }
            ck::LayerOp::GlobalPool2d {
                kind: ck::PoolKind::Max,
            } => (Op::GlobalMaxPool2d, Activation::Linear),
            ck::LayerOp::GlobalPool2d {
                kind: ck::PoolKind::Avg,
            } => (Op::GlobalAvgPool2d, Activation::Linear),
            ck::LayerOp::Flatten => (Op::Flatten, Activation::Linear),
            ck::LayerOp::Reshape { shape } => (
                Op::Reshape {
                    shape: shape.iter().map(|&d| d as i64).collect(),
                },
                Activation::Linear,
            ),
            ck::LayerOp::BatchNorm { momentum, epsilon } => (
                Op::BatchNorm {
                    gamma: param(0)?,
                    beta: param(1)?,
                    mean: param(2)?,
                    variance: param(3)?,
                    epsilon: *epsilon as f32,
                    momentum: *momentum as f32,
                },
                Activation::Linear,
            ),
            ck::LayerOp::LayerNorm { epsilon } => (
                Op::LayerNorm {
                    gamma: param(0)?,
                    beta: param(1)?,
                    epsilon: *epsilon as f32,
                },
                Activation::Linear,
            ),
            ck::LayerOp::Dropout { rate } => {
                (Op::Dropout { rate: *rate as f32 }, Activation::Linear)
            }
            ck::LayerOp::Embedding { .. } => {
                (Op::Embedding { table: param(0)? }, Activation::Linear)
            }
            ck::LayerOp::Rnn {
                cell,
                units,
                return_sequences,
            } => {
                let cell = *cell;
                let op = Op::Rnn {
                    cell,
                    units: *units,
                    return_sequences: *return_sequences,
                    kernel: param(0)?,
                    recurrent: param(1)?,
                    bias: param(2)?,
                };
                (op, Activation::Linear)
            }
            ck::LayerOp::Add => (Op::Add, Activation::Linear),
            ck::LayerOp::Concat { axis } => (Op::Concat { axis: *axis as i64 }, Activation::Linear),
            ck::LayerOp::Activation(a) => (
                Op::Activation(activation(*a, rank).ok_or_else(unsupported_softmax)?),
                Activation::Linear,
            ),
            ck::LayerOp::Cast { to } => (Op::Cast { to: *to }, Activation::Linear),
        };
        let mut out = g.add_node(layer.name.clone(), op, inputs).map_err(err)?;
        if then != Activation::Linear {
            out = g
                .add_node(
                    format!("{}.{}", layer.name, then.name()),
                    Op::Activation(then),
                    vec![out],
                )
                .map_err(err)?;
        }
        if g.value(out).map(|v| &v.fact) != Some(&layer.output) {
            let got = g.value(out).map(|v| v.fact.to_string()).unwrap_or_default();
            return Err(err(format!(
                "the checker says {} but the IR computes {got}",
                layer.output
            )));
        }
        values.push(out);
    }
    let out = values
        .get(model.output.0)
        .copied()
        .ok_or_else(|| LowerError {
            layer: model.name.clone(),
            message: "the model's output is not defined".into(),
            span: model.span,
        })?;
    g.outputs.push(out);
    verify(&g).map_err(|e| LowerError {
        layer: e.at,
        message: e.message,
        span: model.span,
    })?;
    Ok(g)
}
