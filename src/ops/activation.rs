//! Elementwise activations, as layers (`relu()`, `leaky_relu(alpha: 0.3)`, `sigmoid()`,
//! `tanh()`, `softmax(axis: -1)`, `gelu()`, `linear()`) and as the `activation:` argument of
//! dense and conv2d.
//!
//! No weights. FLOPs: one per element (softmax three; linear none). The checker's
//! [`Activation`] keeps Keras's arguments (`f64` slope, a softmax axis); the IR's holds what
//! the interpreter runs (`f32` slope, softmax over the last axis only). `fuse-activation` folds
//! an activation node into the conv2d or dense before it.
//! Export: ONNX `Relu` / `LeakyRelu` / `Sigmoid` / `Tanh` / `Softmax` (axis -1) / `Gelu`
//! (opset 20, else its erf form); PyTorch `torch.nn.functional`.

use super::layer::{first, not_mine, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::ParamRef;
use super::rule::{mul, need_float, normalize_axis, one, per_sample, Inferred, Rule};
use super::signature::{float, kw, layer, BoundArgs, Default, LayerSpec, Limit, Param, AXIS, NONE};
use super::types::{Activation, Fact};

pub const LAYERS: &[LayerSpec] = &[
    layer("relu", NONE),
    layer(
        "leaky_relu",
        &[Param {
            aliases: &["negative_slope"],
            ..kw(
                "alpha",
                float(Limit::Incl(0.0), Limit::None),
                Default::Float(0.3),
            )
        }],
    ),
    layer("sigmoid", NONE),
    layer("tanh", NONE),
    layer("softmax", &[AXIS]),
    layer("gelu", NONE),
    layer("linear", NONE),
];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    Some(LayerOp::Activation(match name {
        "leaky_relu" => Activation::LeakyRelu {
            alpha: args.float("alpha"),
        },
        "softmax" => Activation::Softmax {
            axis: args.int("axis"),
        },
        other => Activation::from_name(other)?,
    }))
}

/// The layer name of an activation.
pub fn name(a: Activation) -> &'static str {
    match a {
        Activation::Linear => "linear",
        Activation::Relu => "relu",
        Activation::LeakyRelu { .. } => "leaky_relu",
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
        Activation::Softmax { .. } => "softmax",
        Activation::Gelu => "gelu",
    }
}

/// The shape rule: the output is the input.
pub fn rule(x: &Fact, a: Activation) -> Rule {
    need_float(x)?;
    let per_element = match a {
        Activation::Linear => 0,
        Activation::Softmax { axis } => {
            normalize_axis(axis, x.rank())?;
            3
        }
        _ => 1,
    };
    Ok(Inferred::plain(
        x.clone(),
        mul(per_sample(&x.dims)?, per_element)? as u64,
    ))
}

/// The checker's activation for an IR one (softmax over the last axis).
fn checked(a: IrActivation) -> Activation {
    match a {
        IrActivation::Linear => Activation::Linear,
        IrActivation::Relu => Activation::Relu,
        IrActivation::LeakyRelu { alpha } => Activation::LeakyRelu {
            alpha: f64::from(alpha),
        },
        IrActivation::Sigmoid => Activation::Sigmoid,
        IrActivation::Tanh => Activation::Tanh,
        IrActivation::Gelu => Activation::Gelu,
        IrActivation::Softmax => Activation::Softmax { axis: -1 },
    }
}

/// The checker's entry: [`rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::Activation(a) => rule(first(inputs)?, *a),
        other => Err(not_mine("activation", other)),
    }
}

/// The IR verifier's entry: [`rule`] over the one input.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let Op::Activation(a) = op else {
        return Err(op::not_mine("activation", op.kind()));
    };
    op::checked(
        rule(one(inputs).map_err(|e| e.to_string())?, checked(*a)),
        params,
    )
}

/// The IR activation for a checked one over a value of `rank` dims; a softmax over an axis
/// other than the last is not run by the interpreter yet.
pub fn lower_activation(a: Activation, rank: usize) -> Result<IrActivation, String> {
    Ok(match a {
        Activation::Linear => IrActivation::Linear,
        Activation::Relu => IrActivation::Relu,
        Activation::LeakyRelu { alpha } => IrActivation::LeakyRelu {
            alpha: alpha as f32,
        },
        Activation::Sigmoid => IrActivation::Sigmoid,
        Activation::Tanh => IrActivation::Tanh,
        Activation::Gelu => IrActivation::Gelu,
        Activation::Softmax { axis } => {
            let last = rank as i64 - 1;
            if axis == -1 || axis == last {
                IrActivation::Softmax
            } else {
                return Err(
                    "softmax over an axis other than the last is not supported by the interpreter yet"
                        .into(),
                );
            }
        }
    })
}

/// The IR op of an activation layer.
pub fn lower(op: &LayerOp, rank: usize) -> Result<(Op, IrActivation), String> {
    match op {
        LayerOp::Activation(a) => Ok((
            Op::Activation(lower_activation(*a, rank)?),
            IrActivation::Linear,
        )),
        other => Err(not_mine("activation", other).to_string()),
    }
}
