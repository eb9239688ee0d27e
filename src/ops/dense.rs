//! `dense(units, activation:, use_bias:)`: Keras's Dense over the last axis.
//!
//! Weights: `kernel [in, units]` (Glorot uniform), `bias [units]` (zeros). FLOPs: `2·in·units
//! (+ units)` per position. Lowering: an IR `Dense` with a linear activation, the layer's
//! `activation:` following as its own node (fused back by `fuse-activation`).
//! Export: ONNX `MatMul` + `Add` (`Gemm` on rank 2); PyTorch `nn.Linear` with the kernel
//! transposed.

use super::activation::lower_activation;
use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::{Init, ParamId, ParamInfo, ParamRef};
use super::rule::{
    known, mul, need_float, need_rank_at_least, one, per_sample, Inferred, Rule, RuleError,
};
use super::signature::{layer, pos, BoundArgs, Default, LayerSpec, ACTIVATION, SIZE, USE_BIAS};
use super::types::{Activation, Dim, Fact};

pub const LAYERS: &[LayerSpec] = &[layer(
    "dense",
    &[pos("units", SIZE, Default::Required), ACTIVATION, USE_BIAS],
)];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    (name == "dense").then(|| LayerOp::Dense {
        units: args.size("units"),
        use_bias: args.bool("use_bias"),
        activation: Activation::from_name(args.name("activation")).unwrap_or(Activation::Linear),
    })
}

/// The checker's entry: [`rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::Dense {
            units, use_bias, ..
        } => rule(first(inputs)?, *units, *use_bias),
        other => Err(not_mine("dense", other)),
    }
}

/// The shape rule: `[N, ..., in] → [N, ..., units]`.
pub fn rule(x: &Fact, units: usize, use_bias: bool) -> Rule {
    need_float(x)?;
    need_rank_at_least(x, 2, "at least 2 ([batch, ..., features])")?;
    let last = x.rank() - 1;
    let inputs = known(&x.dims, last)?;
    let mut params = vec![ParamInfo::new(
        "kernel",
        vec![inputs, units],
        Init::GlorotUniform,
    )];
    if use_bias {
        params.push(ParamInfo::new("bias", vec![units], Init::Zeros));
    }
    let positions = per_sample(&x.dims[..last])?;
    let per_position = mul(mul(2, inputs)?, units)?
        .checked_add(if use_bias { units } else { 0 })
        .ok_or_else(|| RuleError::Size("dense flops overflow".into()))?;
    let mut dims = x.dims.clone();
    dims[last] = Dim::Known(units);
    Ok(Inferred {
        output: Fact::new(x.dtype, dims),
        params,
        flops: mul(positions, per_position)? as u64,
    })
}

/// The IR verifier's entry: [`rule`] over the op's one input.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let Op::Dense { units, bias, .. } = op else {
        return Err(op::not_mine("dense", op.kind()));
    };
    op::checked(
        rule(
            one(inputs).map_err(|e| e.to_string())?,
            *units,
            bias.is_some(),
        ),
        params,
    )
}

/// The IR op and the activation node to follow it.
pub fn lower(op: &LayerOp, params: &[ParamId], rank: usize) -> Result<(Op, IrActivation), String> {
    let LayerOp::Dense {
        units,
        use_bias,
        activation,
    } = *op
    else {
        return Err(not_mine("dense", op).to_string());
    };
    let bias = if use_bias {
        Some(param(params, 1)?)
    } else {
        None
    };
    let then = lower_activation(activation, rank)?;
    Ok((
        Op::Dense {
            units,
            kernel: param(params, 0)?,
            bias,
            activation: IrActivation::Linear,
        },
        then,
    ))
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export: `MatMul` with the kernel `[in, units]` as it is (it broadcasts over leading
/// axes, as Keras's Dense does), `Add` of the bias, then the fused activation.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::Layout;
    let Op::Dense {
        activation, bias, ..
    } = op
    else {
        return Err(op::not_mine("dense", op.kind()));
    };
    let x = cx.input(0, Layout::Nhwc)?;
    let kernel = cx.param(0)?;
    let (shape, data) = (kernel.shape.to_vec(), kernel.data.to_vec());
    let w = cx.f32_tensor("kernel", shape, data);
    let mut y = cx.node("MatMul", "matmul", vec![x, w], vec![]);
    if bias.is_some() {
        let b = cx.param(1)?;
        let (shape, data) = (b.shape.to_vec(), b.data.to_vec());
        let b = cx.f32_tensor("bias", shape, data);
        y = cx.node("Add", "bias_add", vec![y, b], vec![]);
    }
    if *activation != IrActivation::Linear {
        y = super::activation::onnx_activation(cx, *activation, y);
    }
    cx.set_output(y, Layout::Nhwc);
    Ok(())
}

// ---- PyTorch export ----------------------------------------------------------------------

/// PyTorch export: `nn.Linear` (it reads the last axis, as Keras's Dense does) with the kernel
/// `[in, units]` transposed to `weight [units, in]`, then the activation.
pub fn to_pytorch(op: &LayerOp, inputs: &[&Fact]) -> Result<super::torch::TorchLayer, String> {
    use super::torch::{activation, last_dim, TorchLayer, TorchParam};
    let LayerOp::Dense {
        units,
        use_bias,
        activation: a,
    } = *op
    else {
        return Err(not_mine("dense", op).to_string());
    };
    let inputs = last_dim(inputs)?;
    let mut params = vec![TorchParam::new("kernel", &["weight"], "dense_kernel")];
    if use_bias {
        params.push(TorchParam::same("bias", "bias"));
    }
    Ok(TorchLayer {
        module: Some(format!(
            "nn.Linear({inputs}, {units}, bias={})",
            py_bool(use_bias)
        )),
        forward: activation(a, "{m}({x})"),
        params,
    })
}

/// A Python boolean literal.
pub fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}
