//! `bidirectional(lstm(32, return_sequences: true), merge: concat)`: Keras's Bidirectional
//! over a `simple_rnn`, `lstm` or `gru` (part of the recurrent family).
//!
//! The wrapped layer runs twice over the same input: forwards as written, and backwards (its
//! `go_backwards` flipped), each with its own weights, `forward.kernel`,
//! `forward.recurrent_kernel`, `forward.bias` and `backward.*` (Keras's variable paths below
//! the wrapper with the cell dropped). With `return_sequences` the backward outputs are put
//! back in time order; the two are merged by `concat` (Keras's default: `[N, ..., 2U]`),
//! `sum`, `mul` or `ave` (`[N, ..., U]`). Parameters and FLOPs are twice the wrapped layer's.
//! Export: ONNX `LSTM`/`GRU`/`RNN` with `direction="bidirectional"` and the merge after it;
//! PyTorch `bidirectional=True` (concat).

use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::{ParamId, ParamInfo, ParamRef};
use super::recurrent::{self, RnnOptions};
use super::rule::{mul, Inferred, Rule, RuleError};
use super::signature::{kw, layer, pos, BoundArgs, Default, Kind, LayerSpec, SEQUENCES_HELP};
use super::types::{DType, Dim, Fact, RnnCell};
use serde::{Deserialize, Serialize};

/// How the two directions' outputs are combined (Keras's `merge_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BiMerge {
    Concat,
    Sum,
    Mul,
    Ave,
}

impl BiMerge {
    pub const NAMES: &'static [&'static str] = &["concat", "sum", "mul", "ave"];

    fn of(name: &str) -> Self {
        match name {
            "sum" => Self::Sum,
            "mul" => Self::Mul,
            "ave" => Self::Ave,
            _ => Self::Concat,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Concat => "concat",
            Self::Sum => "sum",
            Self::Mul => "mul",
            Self::Ave => "ave",
        }
    }
}

/// The weights of one direction in the IR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RnnWeights {
    pub kernel: ParamId,
    pub recurrent: ParamId,
    pub bias: ParamId,
}

/// The layers `bidirectional` wraps.
pub const WRAPPED: &[&str] = &["lstm", "gru", "simple_rnn"];

pub const LAYER: LayerSpec = layer(
    "bidirectional",
    &[
        pos("layer", Kind::Layer(WRAPPED), Default::Required),
        kw(
            "merge",
            Kind::Choice(BiMerge::NAMES),
            Default::Name("concat"),
        ),
    ],
)
.with_input_help(SEQUENCES_HELP);

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    if name != "bidirectional" {
        return None;
    }
    let (inner, inner_args) = args.layer("layer")?;
    let LayerOp::Rnn {
        cell,
        units,
        return_sequences,
        options,
    } = recurrent::build(inner, inner_args)?
    else {
        return None;
    };
    Some(LayerOp::Bidirectional {
        cell,
        units,
        return_sequences,
        options,
        merge: BiMerge::of(args.name("merge")),
    })
}

/// Keras's name of a wrapped layer's parameter in direction `forward` or `backward`.
fn direction_name(forward: bool, name: &str) -> &'static str {
    match (forward, name) {
        (true, "kernel") => "forward.kernel",
        (true, "recurrent_kernel") => "forward.recurrent_kernel",
        (true, _) => "forward.bias",
        (false, "kernel") => "backward.kernel",
        (false, "recurrent_kernel") => "backward.recurrent_kernel",
        (false, _) => "backward.bias",
    }
}

/// The shape rule: the wrapped layer's, its parameters twice (forward, then backward), its
/// last axis doubled by `concat`.
pub fn rule(
    x: &Fact,
    (cell, units, return_sequences): (RnnCell, usize, bool),
    options: &RnnOptions,
    merge: BiMerge,
) -> Rule {
    let one_way = recurrent::rule(x, cell, units, return_sequences, options)?;
    let width = if merge == BiMerge::Concat {
        mul(2, units)?
    } else {
        units
    };
    let mut params = Vec::with_capacity(2 * one_way.params.len());
    for forward in [true, false] {
        params.extend(one_way.params.iter().map(|p| ParamInfo {
            name: direction_name(forward, p.name),
            ..p.clone()
        }));
    }
    let mut dims: Vec<Dim> = one_way.output.dims;
    if let Some(last) = dims.last_mut() {
        *last = Dim::Known(width);
    }
    Ok(Inferred {
        output: Fact::new(DType::F32, dims),
        params,
        flops: one_way
            .flops
            .checked_mul(2)
            .ok_or_else(|| RuleError::Size("FLOPs overflow".into()))?,
    })
}

/// The checker's entry: [`rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::Bidirectional {
            cell,
            units,
            return_sequences,
            options,
            merge,
        } => rule(
            first(inputs)?,
            (*cell, *units, *return_sequences),
            options,
            *merge,
        ),
        other => Err(not_mine("recurrent", other)),
    }
}

/// The IR verifier's entry: [`rule`] over the one input.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let x = super::mask::data_input(inputs)?;
    match op {
        Op::Bidirectional {
            cell,
            units,
            return_sequences,
            options,
            merge,
            ..
        } => op::checked(
            rule(x, (*cell, *units, *return_sequences), options, *merge),
            params,
        ),
        other => Err(op::not_mine("recurrent", other.kind())),
    }
}

/// The IR op: parameters in [`rule`]'s order (forward's three, then backward's).
pub fn lower(op: &LayerOp, params: &[ParamId]) -> Result<(Op, IrActivation), String> {
    let LayerOp::Bidirectional {
        cell,
        units,
        return_sequences,
        options,
        merge,
    } = *op
    else {
        return Err(not_mine("recurrent", op).to_string());
    };
    let weights = |at: usize| -> Result<RnnWeights, String> {
        Ok(RnnWeights {
            kernel: param(params, at)?,
            recurrent: param(params, at + 1)?,
            bias: param(params, at + 2)?,
        })
    };
    Ok((
        Op::Bidirectional {
            cell,
            units,
            return_sequences,
            options,
            merge,
            forward: weights(0)?,
            backward: weights(3)?,
        },
        IrActivation::Linear,
    ))
}

/// `--emit ir`'s attributes: the wrapped layer's, then the merge.
pub fn attributes_text(
    units: usize,
    return_sequences: bool,
    options: &RnnOptions,
    merge: BiMerge,
) -> String {
    let mut text = recurrent::attributes_text(units, return_sequences, options);
    text.pop();
    text.push_str(", merge: ");
    text.push_str(merge.name());
    text.push('}');
    text
}
