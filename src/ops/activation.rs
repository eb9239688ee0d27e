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

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export of an activation step: elementwise ones keep their input's layout; softmax
/// (over the last axis) reads the channels-last form.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::Layout;
    let Op::Activation(a) = op else {
        return Err(op::not_mine("activation", op.kind()));
    };
    let (x, layout) = if matches!(a, IrActivation::Softmax) {
        (cx.input(0, Layout::Nhwc)?, Layout::Nhwc)
    } else {
        cx.input_any(0)?
    };
    let y = onnx_activation(cx, *a, x);
    cx.set_output(y, layout);
    Ok(())
}

/// The ONNX nodes of activation `a` applied to `x` (also a conv's or dense's fused
/// activation); returns the output's name. Gelu is ONNX `Gelu` from opset 20, before it its
/// exact erf form `x · (1 + erf(x / √2)) / 2`.
pub fn onnx_activation(cx: &mut super::onnx::NodeCx<'_>, a: IrActivation, x: String) -> String {
    use super::onnx::Attr;
    match a {
        IrActivation::Linear => cx.node("Identity", "linear", vec![x], vec![]),
        IrActivation::Relu => cx.node("Relu", "relu", vec![x], vec![]),
        IrActivation::LeakyRelu { alpha } => cx.node(
            "LeakyRelu",
            "leaky_relu",
            vec![x],
            vec![("alpha", Attr::Float(alpha))],
        ),
        IrActivation::Sigmoid => cx.node("Sigmoid", "sigmoid", vec![x], vec![]),
        IrActivation::Tanh => cx.node("Tanh", "tanh", vec![x], vec![]),
        IrActivation::Softmax => {
            cx.node("Softmax", "softmax", vec![x], vec![("axis", Attr::Int(-1))])
        }
        IrActivation::Gelu if cx.opset >= 20 => cx.node("Gelu", "gelu", vec![x], vec![]),
        IrActivation::Gelu => {
            let root2 = cx.f32_tensor("sqrt2", vec![], vec![std::f32::consts::SQRT_2]);
            let one = cx.f32_tensor("one", vec![], vec![1.0]);
            let half = cx.f32_tensor("half", vec![], vec![0.5]);
            let scaled = cx.node("Div", "gelu_scaled", vec![x.clone(), root2], vec![]);
            let erf = cx.node("Erf", "gelu_erf", vec![scaled], vec![]);
            let gate = cx.node("Add", "gelu_gate", vec![erf, one], vec![]);
            let gated = cx.node("Mul", "gelu_gated", vec![x, gate], vec![]);
            cx.node("Mul", "gelu", vec![gated, half], vec![])
        }
    }
}
