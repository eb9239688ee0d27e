//! Recurrent layers: `simple_rnn`, `lstm`, `gru(units, return_sequences: false, go_backwards:
//! false, dropout: 0, recurrent_dropout: 0)`: Keras's SimpleRNN, LSTM (gates i, f, c, o) and
//! GRU (gates z, r, h; `reset_after: true`, Keras's default, or `false`). [`RnnOptions`] holds
//! the options past the size; `dropout` and `recurrent_dropout` act in training only.
//!
//! Weights: `kernel [F, G·U]` (Glorot uniform), `recurrent_kernel [U, G·U]` (orthogonal),
//! `bias [G·U]` (zeros; an LSTM's forget slice ones), a GRU's `[2, G·U]` with `reset_after`
//! (input and recurrent biases) or `[G·U]` without. FLOPs:
//! `2·(F + U)·G·U` per step. At inference an embedding read only by this layer is folded into
//! its input projection: the IR-only op `EmbeddedRnn` over token ids (`fold-embedding-projection`).
//! Export: ONNX `LSTM` / `GRU` / `RNN` with the gates reordered (ONNX: i, o, f, c; z, r, h) and
//! the kernels transposed; PyTorch `nn.LSTM` / `nn.GRU` / `nn.RNN` (i, f, g, o; r, z, n).

use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::{expect_params, Init, ParamId, ParamInfo, ParamRef};
use super::rule::{known, mul, need_float, need_rank, one, Inferred, Rule, RANK3};
use super::signature::{
    float, kw, layer, pos, BoundArgs, Default, Kind, LayerSpec, Limit, Param, SEQUENCES_HELP, SIZE,
};
use super::types::{DType, Dim, Fact, RnnCell};
use serde::{Deserialize, Serialize};

/// A dropout rate, as Keras takes it: `[0, 1)`.
const RATE: Kind = float(Limit::Incl(0.0), Limit::Excl(1.0));

const RNN: &[Param] = &[
    pos("units", SIZE, Default::Required),
    kw("return_sequences", Kind::Bool, Default::Bool(false)),
    kw("go_backwards", Kind::Bool, Default::Bool(false)),
    kw("dropout", RATE, Default::Float(0.0)),
    kw("recurrent_dropout", RATE, Default::Float(0.0)),
];

const GRU: &[Param] = &[
    pos("units", SIZE, Default::Required),
    kw("return_sequences", Kind::Bool, Default::Bool(false)),
    kw("go_backwards", Kind::Bool, Default::Bool(false)),
    kw("dropout", RATE, Default::Float(0.0)),
    kw("recurrent_dropout", RATE, Default::Float(0.0)),
    kw("reset_after", Kind::Bool, Default::Bool(true)),
];

pub const LAYERS: &[LayerSpec] = &[
    layer("simple_rnn", RNN).with_input_help(SEQUENCES_HELP),
    layer("lstm", RNN).with_input_help(SEQUENCES_HELP),
    layer("gru", GRU).with_input_help(SEQUENCES_HELP),
    super::bidirectional::LAYER,
];

/// A recurrent layer's options past its size, Keras's arguments with Keras's defaults.
/// `go_backwards` runs the sequence from its last step to its first and returns the outputs in
/// that order; `dropout` and `recurrent_dropout` are training-only rates of the masks on the
/// inputs and on the recurrent state (one mask per sequence, per gate when `recurrent_dropout`
/// is set, as Keras 3); `reset_after` is a GRU's convention (`false`: the reset gate scales the
/// state before its product with the recurrent kernel, and the bias is one vector).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RnnOptions {
    pub go_backwards: bool,
    pub dropout: f32,
    pub recurrent_dropout: f32,
    pub reset_after: bool,
}

impl std::default::Default for RnnOptions {
    fn default() -> Self {
        Self {
            go_backwards: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            reset_after: true,
        }
    }
}

impl RnnOptions {
    /// Whether every option has its default (plans then omit them).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the bias is Keras's `[2, 3U]` (a GRU with `reset_after`).
    pub fn two_biases(&self, cell: RnnCell) -> bool {
        cell == RnnCell::Gru && self.reset_after
    }
}

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    let cell = match name {
        "simple_rnn" => RnnCell::SimpleRnn,
        "lstm" => RnnCell::Lstm,
        "gru" => RnnCell::Gru,
        _ => return super::bidirectional::build(name, args),
    };
    #[allow(clippy::cast_possible_truncation)] // rates are in [0, 1)
    let options = RnnOptions {
        go_backwards: args.bool("go_backwards"),
        dropout: args.float("dropout") as f32,
        recurrent_dropout: args.float("recurrent_dropout") as f32,
        reset_after: cell != RnnCell::Gru || args.bool("reset_after"),
    };
    Some(LayerOp::Rnn {
        cell,
        units: args.size("units"),
        return_sequences: args.bool("return_sequences"),
        options,
    })
}

/// The recurrent kernel and bias of a cell with `units` units: `([U, G·U], bias)`.
fn state_params(
    cell: RnnCell,
    units: usize,
    options: &RnnOptions,
) -> Result<Vec<ParamInfo>, super::rule::RuleError> {
    let g = mul(cell.gates(), units)?;
    let (bias, init) = match cell {
        RnnCell::Gru if options.two_biases(cell) => (vec![2, g], Init::Zeros),
        RnnCell::Gru => (vec![g], Init::Zeros),
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
pub fn rule(
    x: &Fact,
    cell: RnnCell,
    units: usize,
    return_sequences: bool,
    options: &RnnOptions,
) -> Rule {
    need_float(x)?;
    need_rank(x, 3, RANK3)?;
    let f = known(&x.dims, 2)?;
    let g = mul(cell.gates(), units)?;
    let mut params = vec![ParamInfo::new("kernel", vec![f, g], Init::GlorotUniform)];
    params.extend(state_params(cell, units, options)?);
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
            options,
        } => rule(first(inputs)?, *cell, *units, *return_sequences, options),
        LayerOp::Bidirectional { .. } => super::bidirectional::infer(op, inputs),
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
            options,
            ..
        } => op::checked(rule(x, *cell, *units, *return_sequences, options), params),
        Op::EmbeddedRnn {
            cell,
            units,
            return_sequences,
            ..
        } => embedded_rule(x, *cell, *units, *return_sequences, params),
        Op::Bidirectional { .. } => super::bidirectional::verify(op, inputs, params),
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
    // A folded layer has the default options (`fold-embedding-projection` skips the others).
    let state = state_params(cell, units, &RnnOptions::default()).map_err(|e| e.to_string())?;
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
    if let LayerOp::Bidirectional { .. } = op {
        return super::bidirectional::lower(op, params);
    }
    let LayerOp::Rnn {
        cell,
        units,
        return_sequences,
        options,
    } = *op
    else {
        return Err(not_mine("recurrent", op).to_string());
    };
    Ok((
        Op::Rnn {
            cell,
            units,
            return_sequences,
            options,
            kernel: param(params, 0)?,
            recurrent: param(params, 1)?,
            bias: param(params, 2)?,
        },
        IrActivation::Linear,
    ))
}

/// `--emit ir`'s attributes of an `Op::Rnn`: the size, then each option that is not Keras's
/// default.
pub fn attributes_text(units: usize, return_sequences: bool, options: &RnnOptions) -> String {
    let mut text = format!(" {{units: {units}, return_sequences: {return_sequences}");
    let d = RnnOptions::default();
    if options.go_backwards != d.go_backwards {
        text.push_str(", go_backwards: true");
    }
    if options.dropout > 0.0 {
        text.push_str(", dropout: ");
        text.push_str(&options.dropout.to_string());
    }
    if options.recurrent_dropout > 0.0 {
        text.push_str(", recurrent_dropout: ");
        text.push_str(&options.recurrent_dropout.to_string());
    }
    if options.reset_after != d.reset_after {
        text.push_str(", reset_after: false");
    }
    text.push('}');
    text
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export: ONNX `RNN` / `LSTM` / `GRU` (forward, default activations: Keras's tanh and
/// sigmoid) over the time-major transpose of the batch-major input, the gates reordered
/// (Keras i, f, c, o → ONNX i, o, f, c; GRU z, r, h as they are, `linear_before_reset = 1`
/// for Keras's `reset_after`) and the kernels transposed to `[1, G·U, in]`; the sequence `Y`
/// back to `[N, T, U]`, or the last state `Y_h` to `[N, U]`. An `EmbeddedRnn` is a `Gather` of
/// its projection rows followed by the layer with a 0/1 gate-permutation matrix as `W` (exact:
/// each output is one row element times one) and the input bias already in the rows.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::{Attr, Layout};
    let (cell, units, return_sequences, embedded) = match op {
        Op::Rnn { options, .. } if options.go_backwards || !options.reset_after => {
            return Err(
                "`go_backwards: true` and `gru(reset_after: false)` have no ONNX export yet".into(),
            )
        }
        Op::Bidirectional { .. } => {
            return Err("`bidirectional` has no ONNX export yet".into());
        }
        Op::Rnn {
            cell,
            units,
            return_sequences,
            ..
        } => (*cell, *units, *return_sequences, false),
        Op::EmbeddedRnn {
            cell,
            units,
            return_sequences,
            ..
        } => (*cell, *units, *return_sequences, true),
        other => return Err(op::not_mine("recurrent", other.kind())),
    };
    let g = cell.gates() * units;
    let x = cx.input(0, Layout::Nhwc)?;
    let (x, w, features) = if embedded {
        let projection = cx.param(0)?;
        let (shape, data) = (projection.shape.to_vec(), projection.data.to_vec());
        let rows = cx.f32_tensor("projection", shape, data);
        let gathered = cx.node(
            "Gather",
            "gather",
            vec![rows, x],
            vec![("axis", Attr::Int(0))],
        );
        let mut identity = vec![0.0f32; g * g];
        for i in 0..g {
            if let Some(slot) = identity.get_mut(i * g + i) {
                *slot = 1.0;
            }
        }
        (gathered, onnx_gate_matrix(&identity, g, cell, units), g)
    } else {
        let kernel = cx.param(0)?;
        let f = kernel.shape.first().copied().unwrap_or(0);
        (x, onnx_gate_matrix(kernel.data, f, cell, units), f)
    };
    let recurrent = cx.param(1)?;
    let r = onnx_gate_matrix(recurrent.data, units, cell, units);
    let bias = cx.param(2)?.data;
    let (input_bias, recurrent_bias) = match (cell, embedded) {
        (RnnCell::Gru, _) => (
            if embedded {
                vec![0.0; g]
            } else {
                bias.get(..g).unwrap_or_default().to_vec()
            },
            bias.get(g..).unwrap_or_default().to_vec(),
        ),
        (_, true) => (vec![0.0; g], vec![0.0; g]),
        (_, false) => (bias.to_vec(), vec![0.0; g]),
    };
    if input_bias.len() != g || recurrent_bias.len() != g {
        return Err(format!(
            "internal: {} has a bias of {} numbers",
            cx.step,
            bias.len()
        ));
    }
    let mut b = onnx_gate_vector(&input_bias, cell, units);
    b.extend(onnx_gate_vector(&recurrent_bias, cell, units));
    let w = cx.f32_tensor("W", vec![1, g, features], w);
    let r = cx.f32_tensor("R", vec![1, g, units], r);
    let b = cx.f32_tensor("B", vec![1, 2 * g], b);
    let time_major = cx.node(
        "Transpose",
        "time_major",
        vec![x],
        vec![("perm", Attr::Ints(vec![1, 0, 2]))],
    );
    let (op_type, mut attributes) = match cell {
        RnnCell::SimpleRnn => ("RNN", vec![]),
        RnnCell::Lstm => ("LSTM", vec![]),
        RnnCell::Gru => ("GRU", vec![("linear_before_reset", Attr::Int(1))]),
    };
    attributes.push(("hidden_size", Attr::Int(units as i64)));
    let sequence = cx.graph.fresh(&cx.base("Y"));
    let last = cx.graph.fresh(&cx.base("Y_h"));
    cx.graph.node_with_outputs(
        op_type,
        vec![time_major, w, r, b],
        vec![sequence.clone(), last.clone()],
        attributes,
    );
    let y = if return_sequences {
        let axis = cx.i64_vector("direction_axis", vec![1]);
        let squeezed = cx.node("Squeeze", "sequence", vec![sequence, axis], vec![]);
        cx.node(
            "Transpose",
            "batch_major",
            vec![squeezed],
            vec![("perm", Attr::Ints(vec![1, 0, 2]))],
        )
    } else {
        let axis = cx.i64_vector("direction_axis", vec![0]);
        cx.node("Squeeze", "last_state", vec![last, axis], vec![])
    };
    cx.set_output(y, Layout::Nhwc);
    Ok(())
}

/// For each ONNX gate slot, the Keras gate it takes (LSTM: ONNX i, o, f, c from Keras i, f, c,
/// o; GRU z, r, h and the simple RNN's one gate as they are).
fn onnx_gate_order(cell: RnnCell) -> &'static [usize] {
    match cell {
        RnnCell::Lstm => &[0, 3, 1, 2],
        RnnCell::Gru => &[0, 1, 2],
        RnnCell::SimpleRnn => &[0],
    }
}

/// A Keras `[rows, G·U]` matrix as ONNX's `[G·U, rows]` with the gates reordered.
fn onnx_gate_matrix(m: &[f32], rows: usize, cell: RnnCell, units: usize) -> Vec<f32> {
    let g = cell.gates() * units;
    let mut out = vec![0.0f32; g * rows];
    for (slot, &keras) in onnx_gate_order(cell).iter().enumerate() {
        for u in 0..units {
            for r in 0..rows {
                if let (Some(&v), Some(dst)) = (
                    m.get(r * g + keras * units + u),
                    out.get_mut((slot * units + u) * rows + r),
                ) {
                    *dst = v;
                }
            }
        }
    }
    out
}

/// A Keras `[G·U]` bias with the gates reordered.
fn onnx_gate_vector(v: &[f32], cell: RnnCell, units: usize) -> Vec<f32> {
    onnx_gate_order(cell)
        .iter()
        .flat_map(|&keras| v.iter().skip(keras * units).take(units).copied())
        .collect()
}
