//! Elementwise activations, as layers (`relu()`, `leaky_relu(alpha: 0.3)`, `sigmoid()`,
//! `tanh()`, `softmax(axis: -1)`, `gelu()`, `linear()`, `swish()` (alias `silu()`),
//! `elu(alpha: 1)`, `selu()`, `softplus()`, `hard_sigmoid()`, `relu6()`, `mish()`) and as the
//! `activation:` argument of dense and the convolutions.
//!
//! No weights. FLOPs: one per element (softmax three; linear none). The checker's
//! [`Activation`] keeps Keras's arguments (`f64` slope, a softmax axis); the IR's holds what
//! the interpreter runs (`f32` slope, softmax over the last axis only). `fuse-activation` folds
//! an activation node into the conv or dense before it when its derivative is a function of
//! its output (not gelu, swish, mish or softmax). `hard_sigmoid` is Keras 3's
//! `relu6(x + 3) / 6` (also PyTorch's `Hardsigmoid`), not Keras 2's `clip(0.2x + 0.5, 0, 1)`:
//! Keras 3 is the reference, and the two frameworks then agree.
//! Export: ONNX `Relu` / `LeakyRelu` / `Sigmoid` / `Tanh` / `Softmax` (axis -1) / `Gelu`
//! (opset 20, else its erf form) / `Elu` / `Selu` / `Softplus` / `HardSigmoid` (alpha 1/6,
//! beta 1/2) / `Mish`, swish as `x · Sigmoid(x)`, relu6 as `Clip(0, 6)`; PyTorch
//! `torch.nn.functional` (`silu`, `elu`, `selu`, `softplus`, `hardsigmoid`, `relu6`, `mish`).

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
    // Issue 15's activations.
    layer("swish", NONE),
    layer("silu", NONE),
    layer(
        "elu",
        // Positive, so that the output's sign is the input's (the derivative is taken from
        // the output).
        &[kw(
            "alpha",
            float(Limit::Excl(0.0), Limit::None),
            Default::Float(1.0),
        )],
    ),
    layer("selu", NONE),
    layer("softplus", NONE),
    layer("hard_sigmoid", NONE),
    layer("relu6", NONE),
    layer("mish", NONE),
];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    Some(LayerOp::Activation(match name {
        "leaky_relu" => Activation::LeakyRelu {
            alpha: args.float("alpha"),
        },
        "softmax" => Activation::Softmax {
            axis: args.int("axis"),
        },
        "elu" => Activation::Elu {
            alpha: args.float("alpha"),
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
        Activation::Swish => "swish",
        Activation::Elu { .. } => "elu",
        Activation::Selu => "selu",
        Activation::Softplus => "softplus",
        Activation::HardSigmoid => "hard_sigmoid",
        Activation::Relu6 => "relu6",
        Activation::Mish => "mish",
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
        IrActivation::Swish => Activation::Swish,
        IrActivation::Elu { alpha } => Activation::Elu {
            alpha: f64::from(alpha),
        },
        IrActivation::Selu => Activation::Selu,
        IrActivation::Softplus => Activation::Softplus,
        IrActivation::HardSigmoid => Activation::HardSigmoid,
        IrActivation::Relu6 => Activation::Relu6,
        IrActivation::Mish => Activation::Mish,
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
        Activation::Swish => IrActivation::Swish,
        Activation::Elu { alpha } => IrActivation::Elu {
            alpha: alpha as f32,
        },
        Activation::Selu => IrActivation::Selu,
        Activation::Softplus => IrActivation::Softplus,
        Activation::HardSigmoid => IrActivation::HardSigmoid,
        Activation::Relu6 => IrActivation::Relu6,
        Activation::Mish => IrActivation::Mish,
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
        IrActivation::Swish => {
            let gate = cx.node("Sigmoid", "swish_gate", vec![x.clone()], vec![]);
            cx.node("Mul", "swish", vec![x, gate], vec![])
        }
        IrActivation::Elu { alpha } => {
            cx.node("Elu", "elu", vec![x], vec![("alpha", Attr::Float(alpha))])
        }
        IrActivation::Selu => cx.node(
            "Selu",
            "selu",
            vec![x],
            vec![
                ("alpha", Attr::Float(super::types::SELU_ALPHA)),
                ("gamma", Attr::Float(super::types::SELU_SCALE)),
            ],
        ),
        IrActivation::Softplus => cx.node("Softplus", "softplus", vec![x], vec![]),
        // Keras 3's relu6(x + 3) / 6 is clip(x / 6 + 1/2, 0, 1).
        IrActivation::HardSigmoid => cx.node(
            "HardSigmoid",
            "hard_sigmoid",
            vec![x],
            vec![
                ("alpha", Attr::Float(1.0 / 6.0)),
                ("beta", Attr::Float(0.5)),
            ],
        ),
        IrActivation::Relu6 => {
            let low = cx.f32_tensor("zero", vec![], vec![0.0]);
            let high = cx.f32_tensor("six", vec![], vec![6.0]);
            cx.node("Clip", "relu6", vec![x, low, high], vec![])
        }
        IrActivation::Mish if cx.opset >= 18 => cx.node("Mish", "mish", vec![x], vec![]),
        IrActivation::Mish => {
            let soft = cx.node("Softplus", "mish_softplus", vec![x.clone()], vec![]);
            let gate = cx.node("Tanh", "mish_gate", vec![soft], vec![]);
            cx.node("Mul", "mish", vec![x, gate], vec![])
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

/// PyTorch export: the activation's expression (`ops::torch::activation`), no module.
pub fn to_pytorch(op: &LayerOp) -> Result<super::torch::TorchLayer, String> {
    let LayerOp::Activation(a) = op else {
        return Err(not_mine("activation", op).to_string());
    };
    Ok(super::torch::TorchLayer {
        module: None,
        forward: super::torch::activation(*a, "{x}"),
        params: Vec::new(),
    })
}
