//! `dropout(rate)`: Keras's Dropout. Training zeroes each element with probability `rate` and
//! scales the rest by `1 / (1 - rate)`; inference is the identity, and `remove-dropout` drops
//! the node from inference plans.
//!
//! No weights, no FLOPs counted. Export: nothing (inference plans hold no dropout).

use super::layer::{first, not_mine, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::ParamRef;
use super::rule::{need_float, one, Inferred, Rule, RuleError};
use super::signature::{float, layer, pos, BoundArgs, Default, LayerSpec, Limit, Param};
use super::types::Fact;

pub const LAYERS: &[LayerSpec] = &[layer(
    "dropout",
    &[Param {
        aliases: &["rate"],
        ..pos(
            "rate",
            float(Limit::Incl(0.0), Limit::Excl(1.0)),
            Default::Required,
        )
    }],
)];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    (name == "dropout").then(|| LayerOp::Dropout {
        rate: args.float("rate"),
    })
}

/// The checker's entry: [`rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::Dropout { .. } => rule(first(inputs)?),
        other => Err(not_mine("dropout", other)),
    }
}

/// The shape rule: the output is the input.
pub fn rule(x: &Fact) -> Rule {
    need_float(x)?;
    Ok(Inferred::plain(x.clone(), 0))
}

/// The IR verifier's entry: [`rule`], and a rate in `[0, 1)` (a loaded plan may hold any
/// number).
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let Op::Dropout { rate } = op else {
        return Err(op::not_mine("dropout", op.kind()));
    };
    if !(0.0..1.0).contains(rate) {
        return Err(RuleError::Size(format!("dropout rate {rate} is not in [0, 1)")).to_string());
    }
    op::checked(rule(one(inputs).map_err(|e| e.to_string())?), params)
}

/// The IR op of a dropout layer.
pub fn lower(op: &LayerOp) -> Result<(Op, IrActivation), String> {
    match op {
        LayerOp::Dropout { rate } => Ok((Op::Dropout { rate: *rate as f32 }, IrActivation::Linear)),
        other => Err(not_mine("dropout", other).to_string()),
    }
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export: `Identity` (inference; optimized plans have no dropout step left).
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    let Op::Dropout { .. } = op else {
        return Err(op::not_mine("dropout", op.kind()));
    };
    let (x, layout) = cx.input_any(0)?;
    let y = cx.node("Identity", "identity", vec![x], vec![]);
    cx.set_output(y, layout);
    Ok(())
}

/// PyTorch export: `nn.Dropout(rate)` (inverted dropout in training, identity in eval, as
/// Keras's).
pub fn to_pytorch(op: &LayerOp) -> Result<super::torch::TorchLayer, String> {
    let LayerOp::Dropout { rate } = *op else {
        return Err(not_mine("dropout", op).to_string());
    };
    Ok(super::torch::TorchLayer {
        module: Some(format!("nn.Dropout({})", super::torch::float(rate))),
        forward: "{m}({x})".into(),
        params: Vec::new(),
    })
}
