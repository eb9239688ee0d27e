//! Recurrent layers: `simple_rnn`, `lstm`, `gru(units, return_sequences: false)`: Keras's
//! SimpleRNN, LSTM (gates i, f, c, o) and GRU (`reset_after=True`, gates z, r, h).
//!
//! Weights: `kernel [F, G·U]` (Glorot uniform), `recurrent_kernel [U, G·U]` (orthogonal),
//! `bias [G·U]` (zeros; an LSTM's forget slice ones), a GRU's `[2, G·U]`. FLOPs:
//! `2·(F + U)·G·U` per step. At inference an embedding read only by this layer is folded into
//! its input projection: the IR-only op `EmbeddedRnn` over token ids (`fold-embedding-projection`).
//! Export: ONNX `LSTM` / `GRU` / `RNN` with the gates reordered (ONNX: i, o, f, c; z, r, h) and
//! the kernels transposed; PyTorch `nn.LSTM` / `nn.GRU` / `nn.RNN` (i, f, g, o; r, z, n).

use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::{expect_params, Init, ParamId, ParamInfo, ParamRef};
use super::rule::{known, mul, need_float, need_rank, one, Inferred, Rule, RANK3};
use super::signature::{
    kw, layer, pos, BoundArgs, Default, Kind, LayerSpec, Param, SEQUENCES_HELP, SIZE,
};
use super::types::{DType, Dim, Fact, RnnCell};

const RNN: &[Param] = &[
    pos("units", SIZE, Default::Required),
    kw("return_sequences", Kind::Bool, Default::Bool(false)),
];

pub const LAYERS: &[LayerSpec] = &[
    layer("simple_rnn", RNN).with_input_help(SEQUENCES_HELP),
    layer("lstm", RNN).with_input_help(SEQUENCES_HELP),
    layer("gru", RNN).with_input_help(SEQUENCES_HELP),
];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    let cell = match name {
        "simple_rnn" => RnnCell::SimpleRnn,
        "lstm" => RnnCell::Lstm,
        "gru" => RnnCell::Gru,
        _ => return None,
    };
    Some(LayerOp::Rnn {
        cell,
        units: args.size("units"),
        return_sequences: args.bool("return_sequences"),
    })
}

/// The recurrent kernel and bias of a cell with `units` units: `([U, G·U], bias)`.
fn state_params(cell: RnnCell, units: usize) -> Result<Vec<ParamInfo>, super::rule::RuleError> {
    let g = mul(cell.gates(), units)?;
    let (bias, init) = match cell {
        RnnCell::Gru => (vec![2, g], Init::Zeros),
        RnnCell::Lstm => (vec![g], Init::UnitForgetBias),
        RnnCell::SimpleRnn => (vec![g], Init::Zeros),
    };
    Ok(vec![
        ParamInfo::new("recurrent_kernel", vec![units, g], Init::Orthogonal),
        ParamInfo::new("bias", bias, init),
    ])
}

/// `[N, T, U]` with `return_sequences`, else `[N, U]`, over an input `[N, T, ...]`.
fn output(x: &Fact, units: usize, return_sequences: bool) -> Fact {
    let mut dims = vec![x.dims[0].clone()];
    if return_sequences {
        dims.push(x.dims[1].clone());
    }
    dims.push(Dim::Known(units));
    Fact::new(DType::F32, dims)
}

/// The shape rule: `[N, T, F] → [N, T, U]` or `[N, U]`.
pub fn rule(x: &Fact, cell: RnnCell, units: usize, return_sequences: bool) -> Rule {
    need_float(x)?;
    need_rank(x, 3, RANK3)?;
    let f = known(&x.dims, 2)?;
    let g = mul(cell.gates(), units)?;
    let mut params = vec![ParamInfo::new("kernel", vec![f, g], Init::GlorotUniform)];
    params.extend(state_params(cell, units)?);
    let steps = x.dims[1].known().unwrap_or(1);
    let per_step = mul(2, mul(f.saturating_add(units), g)?)?;
    Ok(Inferred {
        output: output(x, units, return_sequences),
        params,
        flops: mul(steps, per_step)? as u64,
    })
}

/// The checker's entry: [`rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::Rnn {
            cell,
            units,
            return_sequences,
        } => rule(first(inputs)?, *cell, *units, *return_sequences),
        other => Err(not_mine("recurrent", other)),
    }
}

/// The IR verifier's entry: [`rule`] over the one input (`Rnn`), or [`embedded_rule`].
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let x = one(inputs).map_err(|e| e.to_string())?;
    match op {
        Op::Rnn {
            cell,
            units,
            return_sequences,
            ..
        } => op::checked(rule(x, *cell, *units, *return_sequences), params),
        Op::EmbeddedRnn {
            cell,
            units,
            return_sequences,
            ..
        } => embedded_rule(x, *cell, *units, *return_sequences, params),
        other => Err(op::not_mine("recurrent", other.kind())),
    }
}

/// The rule of the IR-only `EmbeddedRnn` op: integer ids `[N, T]`, a projection
/// `[vocab, G·U]`, then the recurrent kernel and bias of [`rule`].
pub fn embedded_rule(
    ids: &Fact,
    cell: RnnCell,
    units: usize,
    return_sequences: bool,
    params: &[ParamRef<'_>],
) -> Result<Fact, String> {
    if !ids.dtype.is_integer() || ids.rank() != 2 {
        return Err(format!(
            "a recurrent layer over token ids needs [N, T] integer ids, got {ids}"
        ));
    }
    let state = state_params(cell, units).map_err(|e| e.to_string())?;
    let g = state[0].shape[1];
    let (projection, rest) = params
        .split_first()
        .ok_or_else(|| "a recurrent layer over token ids has no projection".to_string())?;
    match projection.shape {
        [vocab, cols] if *vocab > 0 && *cols == g => {}
        _ => {
            return Err(format!(
                "projection {} has shape {:?}, expected [vocab, {g}]",
                projection.name, projection.shape
            ))
        }
    }
    expect_params(&state, rest)?;
    Ok(output(ids, units, return_sequences))
}

/// The IR op of a recurrent layer.
pub fn lower(op: &LayerOp, params: &[ParamId]) -> Result<(Op, IrActivation), String> {
    let LayerOp::Rnn {
        cell,
        units,
        return_sequences,
    } = *op
    else {
        return Err(not_mine("recurrent", op).to_string());
    };
    Ok((
        Op::Rnn {
            cell,
            units,
            return_sequences,
            kernel: param(params, 0)?,
            recurrent: param(params, 1)?,
            bias: param(params, 2)?,
        },
        IrActivation::Linear,
    ))
}
