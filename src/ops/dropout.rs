//! `dropout(rate)`: Keras's Dropout. Training zeroes each element with probability `rate` and
//! scales the rest by `1 / (1 - rate)`; inference is the identity, and `remove-dropout` drops
//! the node from inference plans.
//!
//! No weights, no FLOPs counted. Export: nothing (inference plans hold no dropout).

use super::layer::LayerOp;
use super::op::{Activation as IrActivation, Op};
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

pub fn build(args: &BoundArgs) -> LayerOp {
    LayerOp::Dropout {
        rate: args.float("rate"),
    }
}

/// The shape rule: the output is the input.
pub fn rule(x: &Fact) -> Rule {
    need_float(x)?;
    Ok(Inferred::plain(x.clone(), 0))
}

/// The IR op's rule: [`rule`], and a rate in `[0, 1)` (a loaded plan may hold any number).
pub fn ir_rule(inputs: &[&Fact], rate: f32, params: &[ParamRef<'_>]) -> Result<Fact, String> {
    if !(0.0..1.0).contains(&rate) {
        return Err(RuleError::Size(format!("dropout rate {rate} is not in [0, 1)")).to_string());
    }
    super::op::checked(rule(one(inputs).map_err(|e| e.to_string())?), params)
}

pub fn lower(rate: f64) -> (Op, IrActivation) {
    (Op::Dropout { rate: rate as f32 }, IrActivation::Linear)
}
