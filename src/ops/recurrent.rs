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
use super::rule::{known, mul, need_float, need_rank, Inferred, Rule, RANK3};
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
/// Inputs after the first are the ids of a padding mask (`ops::mask`).
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let x = super::mask::data_input(inputs)?;
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

/// ONNX export: ONNX `RNN` / `LSTM` / `GRU`, one direction, reversed, or bidirectional with the
/// merge after it (`ops::recurrent_onnx`).
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    super::mask::refuse_onnx(cx)?;
    super::recurrent_onnx::to_onnx(op, cx)
}

// ---- PyTorch export ----------------------------------------------------------------------

/// The `torch.nn` module of one direction and its kernel and bias layouts.
fn torch_module(
    cell: RnnCell,
    f: usize,
    units: usize,
    options: RnnOptions,
) -> Result<(String, &'static str, &'static str), String> {
    if options.recurrent_dropout > 0.0 {
        return Err("Keras's `recurrent_dropout` masks the state inside the cell, which `torch.nn`'s recurrent modules do not do".into());
    }
    if cell == RnnCell::Gru && !options.reset_after {
        return Err(
            "PyTorch's GRU applies the reset gate after the recurrent product (`reset_after: true`)"
                .into(),
        );
    }
    let (class, extra, kernel, bias) = match cell {
        RnnCell::SimpleRnn => (
            "nn.RNN",
            ", nonlinearity=\"tanh\"",
            "rnn_kernel",
            "rnn_bias",
        ),
        RnnCell::Lstm => ("nn.LSTM", "", "rnn_kernel", "rnn_bias"),
        RnnCell::Gru => ("nn.GRU", "", "gru_kernel", "gru_bias"),
    };
    Ok((
        format!("{class}({f}, {units}{extra}, batch_first=True)"),
        kernel,
        bias,
    ))
}

/// PyTorch export: `nn.RNN` (tanh) / `nn.LSTM` / `nn.GRU`, `batch_first`, one layer. Kernels
/// `[F, G·U]` and `[U, G·U]` become `weight_ih_l0 [G·U, F]`, `weight_hh_l0 [G·U, U]`; an LSTM's
/// gates i, f, c, o are PyTorch's i, f, g, o as they are, a GRU's z, r, h become r, z, n. One
/// Keras bias becomes `bias_ih_l0` with `bias_hh_l0` held at zero; a GRU's two (`reset_after`)
/// are the two. `dropout` is Keras's one input mask per sequence (`_rnn`, training only).
/// `bidirectional` is two modules (`_Bidirectional`: Keras's `forward.*` and `backward.*`,
/// each direction with its own dropout mask) merged as Keras does. A padding mask (`{mask}`,
/// filled in by the exporter) runs the module step by step, a masked step keeping the state
/// and outputting the previous output (`bidirectional`: zeros), as Keras. Refused: a GRU without
/// `reset_after` (PyTorch's GRU resets after the product) and `recurrent_dropout`.
pub fn to_pytorch(op: &LayerOp, inputs: &[&Fact]) -> Result<super::torch::TorchLayer, String> {
    use super::torch::{float32, last_dim, TorchLayer, TorchParam};
    let py = super::dense::py_bool;
    let f = last_dim(inputs)?;
    let params = |prefix: &str, kernel: &'static str, bias: &'static str| {
        let names = |n: &str| format!("{prefix}{n}");
        let (ki, kh) = (names("weight_ih_l0"), names("weight_hh_l0"));
        let (bi, bh) = (names("bias_ih_l0"), names("bias_hh_l0"));
        vec![
            TorchParam::new("kernel", &[&ki], kernel),
            TorchParam::new("recurrent_kernel", &[&kh], kernel),
            TorchParam::new("bias", &[&bi, &bh], bias),
        ]
    };
    match *op {
        LayerOp::Rnn {
            cell,
            units,
            return_sequences,
            options,
        } => {
            let (module, kernel, bias) = torch_module(cell, f, units, options)?;
            Ok(TorchLayer {
                module: Some(module),
                forward: format!(
                    "_rnn({{m}}, {{x}}, {}, {}, {}, self.training{{mask}})",
                    py(return_sequences),
                    py(options.go_backwards),
                    float32(options.dropout)
                ),
                params: params("", kernel, bias),
            })
        }
        LayerOp::Bidirectional {
            cell,
            units,
            return_sequences,
            options,
            merge,
        } => {
            let (module, kernel, bias) = torch_module(cell, f, units, options)?;
            let merge = match merge {
                super::bidirectional::BiMerge::Concat => "concat",
                super::bidirectional::BiMerge::Sum => "sum",
                super::bidirectional::BiMerge::Mul => "mul",
                super::bidirectional::BiMerge::Ave => "ave",
            };
            let mut all = params("forward_rnn.", kernel, bias);
            for p in params("backward_rnn.", kernel, bias) {
                all.push(TorchParam {
                    keras: match p.keras {
                        "kernel" => "backward.kernel",
                        "recurrent_kernel" => "backward.recurrent_kernel",
                        _ => "backward.bias",
                    },
                    ..p
                });
            }
            for p in all.iter_mut().take(3) {
                p.keras = match p.keras {
                    "kernel" => "forward.kernel",
                    "recurrent_kernel" => "forward.recurrent_kernel",
                    _ => "forward.bias",
                };
            }
            Ok(TorchLayer {
                module: Some(format!(
                    "_Bidirectional({module}, {module}, \"{merge}\", {})",
                    py(options.go_backwards)
                )),
                forward: format!(
                    "{{m}}({{x}}, {}, {}{{mask}})",
                    py(return_sequences),
                    float32(options.dropout)
                ),
                params: all,
            })
        }
        ref other => Err(not_mine("recurrent", other).to_string()),
    }
}
