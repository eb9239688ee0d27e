//! Shape and dtype changes that move no numbers: `flatten()`, `reshape(d1, d2, ...)` (one
//! `-1` allowed) and `cast(dtype)`.
//!
//! No weights, no FLOPs. Flatten and reshape are views (the plan aliases their buffer).
//! Export: ONNX `Flatten` / `Reshape` (the target shape as an initializer, batch `0`) / `Cast`;
//! PyTorch `torch.flatten` / `reshape` / `.to(dtype)`.

use super::layer::{first, not_mine, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::ParamRef;
use super::rule::{known, mul, need_rank_at_least, one, Inferred, Rule, RuleError};
use super::signature::{layer, pos, BoundArgs, Default, Inputs, Kind, LayerSpec, Signature, NONE};
use super::types::{DType, Dim, Fact};

pub const LAYERS: &[LayerSpec] = &[
    layer("flatten", NONE),
    LayerSpec {
        name: "reshape",
        signature: Signature { params: NONE },
        inputs: Inputs::Reshape,
        input_help: None,
    },
];

/// `cast` is listed after the activations, as it always was.
pub const CAST_LAYERS: &[LayerSpec] = &[layer(
    "cast",
    &[pos(
        "dtype",
        Kind::Choice(&["f32", "i32", "i64"]),
        Default::Required,
    )],
)];

/// `flatten` and `cast`; `reshape` is built by the checker, whose target needs the input shape.
pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    match name {
        "flatten" => Some(LayerOp::Flatten),
        "cast" => Some(LayerOp::Cast {
            to: DType::from_name(args.name("dtype"))?,
        }),
        _ => None,
    }
}

/// The shape rule of `flatten`: `[N, d1, d2, ...] → [N, d1·d2·...]`.
pub fn flatten_rule(x: &Fact) -> Rule {
    need_rank_at_least(x, 2, "at least 2 ([batch, ...])")?;
    let mut n = 1usize;
    for axis in 1..x.rank() {
        n = mul(n, known(&x.dims, axis)?)?;
    }
    Ok(Inferred::plain(
        Fact::new(x.dtype, vec![x.dims[0].clone(), Dim::Known(n)]),
        0,
    ))
}

/// The shape rule of `reshape`: the per-sample target, at most one `-1` standing for what is
/// left; the element count must not change.
pub fn reshape_rule(x: &Fact, target: &[i64]) -> Rule {
    let bad = || RuleError::Reshape(format!("cannot reshape {x} into {target:?}"));
    let total = x.elements_per_sample().ok_or_else(bad)?;
    let mut known_product = 1usize;
    let mut free = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if free.is_none() => free = Some(i),
            d if d > 0 => known_product = mul(known_product, d as usize)?,
            _ => return Err(bad()),
        }
    }
    let mut dims = vec![x.dims.first().cloned().unwrap_or(Dim::Known(1))];
    for (i, &d) in target.iter().enumerate() {
        if Some(i) == free {
            if total % known_product != 0 {
                return Err(bad());
            }
            dims.push(Dim::Known(total / known_product));
        } else {
            dims.push(Dim::Known(d as usize));
        }
    }
    if free.is_none() && known_product != total {
        return Err(bad());
    }
    Ok(Inferred::plain(Fact::new(x.dtype, dims), 0))
}

/// The shape rule of `cast`: same dims, dtype `to`.
pub fn cast_rule(x: &Fact, to: DType) -> Rule {
    Ok(Inferred::plain(Fact::new(to, x.dims.clone()), 0))
}

/// The checker's entry: the rule of the op over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    let x = first(inputs)?;
    match op {
        LayerOp::Flatten => flatten_rule(x),
        LayerOp::Reshape { shape } => {
            let target: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            reshape_rule(x, &target)
        }
        LayerOp::Cast { to } => cast_rule(x, *to),
        other => Err(not_mine("reshape", other)),
    }
}

/// The IR verifier's entry: the same rules over the one input.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let x = one(inputs).map_err(|e| e.to_string())?;
    let inferred = match op {
        Op::Flatten => flatten_rule(x),
        Op::Reshape { shape } => reshape_rule(x, shape),
        Op::Cast { to } => cast_rule(x, *to),
        other => return Err(op::not_mine("reshape", other.kind())),
    };
    op::checked(inferred, params)
}

/// The IR op of a reshape layer.
pub fn lower(op: &LayerOp) -> Result<(Op, IrActivation), String> {
    let op = match op {
        LayerOp::Flatten => Op::Flatten,
        LayerOp::Reshape { shape } => Op::Reshape {
            shape: shape.iter().map(|&d| d as i64).collect(),
        },
        LayerOp::Cast { to } => Op::Cast { to: *to },
        other => return Err(not_mine("reshape", other).to_string()),
    };
    Ok((op, IrActivation::Linear))
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export: `Flatten` (axis 1) and `Reshape` (target `[0, ...]`: the batch copied) read the
/// channels-last form, so elements keep Keras's order; `Cast` keeps its input's layout.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::{onnx_dtype, Attr, Layout};
    match op {
        Op::Flatten => {
            let x = cx.input(0, Layout::Nhwc)?;
            let y = cx.node("Flatten", "flatten", vec![x], vec![("axis", Attr::Int(1))]);
            cx.set_output(y, Layout::Nhwc);
        }
        Op::Reshape { shape } => {
            let x = cx.input(0, Layout::Nhwc)?;
            let target = cx.i64_vector(
                "shape",
                std::iter::once(0).chain(shape.iter().copied()).collect(),
            );
            let y = cx.node("Reshape", "reshape", vec![x, target], vec![]);
            cx.set_output(y, Layout::Nhwc);
        }
        Op::Cast { to } => {
            let (x, layout) = cx.input_any(0)?;
            let to = i64::from(onnx_dtype(*to));
            let y = cx.node("Cast", "cast", vec![x], vec![("to", Attr::Int(to))]);
            cx.set_output(y, layout);
        }
        other => return Err(op::not_mine("reshape", other.kind())),
    }
    Ok(())
}

/// PyTorch export: `flatten(1)` (channels-last values, so Keras's element order), `reshape`
/// with the batch axis `-1`, or a dtype conversion.
pub fn to_pytorch(op: &LayerOp, _inputs: &[&Fact]) -> Result<super::torch::TorchLayer, String> {
    let forward = match op {
        LayerOp::Flatten => "{x}.flatten(1)".to_string(),
        LayerOp::Reshape { shape } => {
            let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
            format!("{{x}}.reshape(-1, {})", dims.join(", "))
        }
        LayerOp::Cast { to } => format!(
            "{{x}}.to({})",
            match to {
                DType::F32 => "torch.float32",
                DType::I32 => "torch.int32",
                DType::I64 => "torch.int64",
            }
        ),
        other => return Err(not_mine("reshape", other).to_string()),
    };
    Ok(super::torch::TorchLayer {
        module: None,
        forward,
        params: Vec::new(),
    })
}
