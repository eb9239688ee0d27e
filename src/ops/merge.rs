//! Merging branches: `add(a, b, ...)` (Keras's Add) and `concat(a, b, ..., axis: -1)` (Keras's
//! Concatenate).
//!
//! No weights. FLOPs: one per element per extra input (add), none (concat). The inputs' dims
//! are unified, so a symbol such as `D` binds to the size it meets (the checker reports a
//! conflict at the layer).
//! Export: ONNX `Sum` (or `Add`) and `Concat` (the axis moved to NCHW where a transpose
//! precedes); PyTorch `torch.add` / `torch.cat`.

use super::layer::{not_mine, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::ParamRef;
use super::rule::{
    known, mul, need_float, per_sample, same_dtype, unify, Inferred, Rule, RuleError,
};
use super::signature::{multi_input, BoundArgs, LayerSpec, AXIS, NONE};
use super::symbols::Symbols;
use super::types::{Dim, Fact};
use crate::diag::Span;

pub const LAYERS: &[LayerSpec] = &[multi_input("add", NONE), multi_input("concat", &[AXIS])];

/// The layer; `concat`'s axis is normalized against the input rank by the checker
/// ([`concat_axis`] is the axis as written).
pub fn build(name: &str, _args: &BoundArgs) -> Option<LayerOp> {
    match name {
        "add" => Some(LayerOp::Add),
        "concat" => Some(LayerOp::Concat { axis: 0 }),
        _ => None,
    }
}

/// The checker's entry: [`add_rule`] or [`concat_rule`].
pub fn infer(op: &LayerOp, inputs: &[Fact], symbols: &mut Symbols, at: Span) -> Rule {
    match op {
        LayerOp::Add => add_rule(inputs, symbols, at),
        LayerOp::Concat { axis } => concat_rule(inputs, *axis, symbols, at),
        other => Err(not_mine("merge", other)),
    }
}

/// `concat`'s axis as written (`-1` by default).
pub fn concat_axis(args: &BoundArgs) -> i64 {
    args.int("axis")
}

fn at_least_two(inputs: &[Fact]) -> Result<&Fact, RuleError> {
    match inputs {
        [x, _, ..] => Ok(x),
        _ => Err(RuleError::InputCount {
            found: inputs.len(),
        }),
    }
}

fn same_rank(x: &Fact, y: &Fact, input: usize) -> Result<(), RuleError> {
    if y.rank() == x.rank() {
        Ok(())
    } else {
        Err(RuleError::ShapeMismatch {
            axis: usize::MAX,
            first: Dim::Known(x.rank()),
            other: Dim::Known(y.rank()),
            input,
        })
    }
}

/// The shape rule of `add`: every input the first's type, dims unified.
pub fn add_rule(inputs: &[Fact], symbols: &mut Symbols, at: Span) -> Rule {
    let x = inputs.first().ok_or(RuleError::InputCount { found: 0 })?;
    need_float(x)?;
    at_least_two(inputs)?;
    for (i, y) in inputs.iter().enumerate().skip(1) {
        same_dtype(x, y, i)?;
        same_rank(x, y, i)?;
        for axis in 0..x.rank() {
            unify(symbols, &x.dims[axis], &y.dims[axis], axis, i, at)?;
        }
    }
    let dims = symbols.resolve_all(&x.dims);
    let n = per_sample(&dims)?;
    Ok(Inferred::plain(
        Fact::new(x.dtype, dims),
        mul(n, inputs.len() - 1)? as u64,
    ))
}

/// The shape rule of `concat` along `axis` (already normalized): sizes on `axis` add up, every
/// other dim unified.
pub fn concat_rule(inputs: &[Fact], axis: usize, symbols: &mut Symbols, at: Span) -> Rule {
    let x = at_least_two(inputs)?;
    let mut total = known(&symbols.resolve_all(&x.dims), axis)?;
    for (i, y) in inputs.iter().enumerate().skip(1) {
        same_dtype(x, y, i)?;
        same_rank(x, y, i)?;
        for a in 0..x.rank() {
            if a == axis {
                total = total
                    .checked_add(known(&symbols.resolve_all(&y.dims), a)?)
                    .ok_or_else(|| RuleError::Size("the concatenated size overflows".into()))?;
            } else {
                unify(symbols, &x.dims[a], &y.dims[a], a, i, at)?;
            }
        }
    }
    let mut dims = symbols.resolve_all(&x.dims);
    if let Some(d) = dims.get_mut(axis) {
        *d = Dim::Known(total);
    }
    Ok(Inferred::plain(Fact::new(x.dtype, dims), 0))
}

/// The IR rules: the checker's, after checking that the inputs agree exactly (an IR graph has
/// no symbols left to bind) but on a concat's axis, which must not be the batch axis.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let concat_axis = match op {
        Op::Add => None,
        Op::Concat { axis } => Some(*axis),
        other => return Err(op::not_mine("merge", other.kind())),
    };
    let facts: Vec<Fact> = inputs.iter().map(|f| (*f).clone()).collect();
    let first = facts.first().ok_or("a merge needs inputs")?;
    let mut symbols = Symbols::default();
    let inferred = match concat_axis {
        None => {
            if facts.iter().any(|f| f != first) {
                return Err("add needs two or more inputs of the same type".to_string());
            }
            add_rule(&facts, &mut symbols, Span::default())
        }
        Some(axis) => {
            let rank = first.rank();
            let ax = super::rule::normalize_axis(axis, rank)
                .ok()
                .filter(|&a| a > 0)
                .ok_or_else(|| {
                    format!("concat axis {axis} is not a non-batch axis of rank {rank}")
                })?;
            for f in &facts {
                let differs = f.rank() != rank
                    || f.dims
                        .iter()
                        .zip(&first.dims)
                        .enumerate()
                        .any(|(i, (a, b))| i != ax && a != b);
                if differs {
                    return Err("concat inputs differ in rank or in a dim off the axis".to_string());
                }
            }
            concat_rule(&facts, ax, &mut symbols, Span::default())
        }
    };
    op::checked(inferred, params)
}

/// The IR op of a merge layer.
pub fn lower(op: &LayerOp) -> Result<(Op, IrActivation), String> {
    match op {
        LayerOp::Add => Ok((Op::Add, IrActivation::Linear)),
        LayerOp::Concat { axis } => Ok((Op::Concat { axis: *axis as i64 }, IrActivation::Linear)),
        other => Err(not_mine("merge", other).to_string()),
    }
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export: `add` as a chain of `Add`s in input order (modelc's summation order), in the
/// inputs' common layout; `concat` as `Concat` on the channels-last forms.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::{Attr, Layout};
    match op {
        Op::Add => {
            let n = cx.inputs.len();
            let layouts: Vec<Layout> = (0..n)
                .map(|i| cx.input_any(i).map(|(_, l)| l))
                .collect::<Result<_, _>>()?;
            let layout = match layouts.first() {
                Some(&l) if layouts.iter().all(|&m| m == l) => l,
                _ => Layout::Nhwc,
            };
            let mut sum = cx.input(0, layout)?;
            for i in 1..n {
                let x = cx.input(i, layout)?;
                sum = cx.node("Add", "add", vec![sum, x], vec![]);
            }
            cx.set_output(sum, layout);
            Ok(())
        }
        Op::Concat { axis } => {
            let xs = (0..cx.inputs.len())
                .map(|i| cx.input(i, Layout::Nhwc))
                .collect::<Result<Vec<_>, _>>()?;
            let y = cx.node("Concat", "concat", xs, vec![("axis", Attr::Int(*axis))]);
            cx.set_output(y, Layout::Nhwc);
            Ok(())
        }
        other => Err(op::not_mine("merge", other.kind())),
    }
}

/// PyTorch export: `+` of the inputs, or `torch.cat` along the same axis (channels-last values,
/// so the axis is modelc's).
pub fn to_pytorch(op: &LayerOp, inputs: &[&Fact]) -> Result<super::torch::TorchLayer, String> {
    let names: Vec<String> = (0..inputs.len()).map(|i| format!("{{x{i}}}")).collect();
    let forward = match op {
        LayerOp::Add => names.join(" + "),
        LayerOp::Concat { axis } => format!("torch.cat([{}], dim={axis})", names.join(", ")),
        other => return Err(not_mine("merge", other).to_string()),
    };
    Ok(super::torch::TorchLayer {
        module: None,
        forward,
        params: Vec::new(),
    })
}
