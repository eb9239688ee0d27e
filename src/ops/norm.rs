//! Normalization over the last axis: `batch_norm(momentum: 0.99, epsilon: 1e-3)` (Keras's
//! BatchNormalization) and `layer_norm(epsilon: 1e-3)` (Keras's LayerNormalization).
//!
//! Weights: `gamma [C]` (ones), `beta [C]` (zeros); batch norm also `moving_mean [C]` (zeros)
//! and `moving_variance [C]` (ones), non-trainable. FLOPs: 2 per element (batch norm, an affine
//! map at inference) or 5 (layer norm). Batch norm is folded into a preceding conv2d or dense
//! by `fold-batch-norm` at inference. The IR-only `Affine` op (fitted preprocessing: a
//! per-channel scale and shift) belongs here too.
//! Export: ONNX `BatchNormalization` (when not folded) and `LayerNormalization` (opset 17);
//! PyTorch `nn.BatchNorm*d` (its momentum is `1 - momentum`) and `nn.LayerNorm`.

use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op};
use super::param::{Init, ParamId, ParamInfo, ParamRef};
use super::rule::{known, mul, need_float, need_rank_at_least, one, per_sample, Inferred, Rule};
use super::signature::{float, kw, layer, BoundArgs, Default, LayerSpec, Limit};
use super::types::Fact;

const EPSILON: super::signature::Param = kw(
    "epsilon",
    float(Limit::Excl(0.0), Limit::None),
    Default::Float(1e-3),
);

pub const LAYERS: &[LayerSpec] = &[
    layer(
        "batch_norm",
        &[
            kw(
                "momentum",
                float(Limit::Incl(0.0), Limit::Excl(1.0)),
                Default::Float(0.99),
            ),
            EPSILON,
        ],
    ),
    layer("layer_norm", &[EPSILON]),
];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    Some(match name {
        "batch_norm" => LayerOp::BatchNorm {
            momentum: args.float("momentum"),
            epsilon: args.float("epsilon"),
        },
        "layer_norm" => LayerOp::LayerNorm {
            epsilon: args.float("epsilon"),
        },
        _ => return None,
    })
}

/// Which normalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    Batch,
    Layer,
}

/// The shape rule: the output is the input; one `[C]` vector per parameter.
pub fn rule(x: &Fact, norm: Norm) -> Rule {
    need_float(x)?;
    need_rank_at_least(x, 2, "at least 2 ([batch, ..., features])")?;
    let c = known(&x.dims, x.rank() - 1)?;
    let mut params = vec![
        ParamInfo::new("gamma", vec![c], Init::Ones),
        ParamInfo::new("beta", vec![c], Init::Zeros),
    ];
    let per_element = match norm {
        Norm::Batch => {
            params.push(ParamInfo::state("moving_mean", vec![c], Init::Zeros));
            params.push(ParamInfo::state("moving_variance", vec![c], Init::Ones));
            2
        }
        Norm::Layer => 5,
    };
    Ok(Inferred {
        output: x.clone(),
        params,
        flops: mul(per_sample(&x.dims)?, per_element)? as u64,
    })
}

/// The checker's entry: [`rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::BatchNorm { .. } => rule(first(inputs)?, Norm::Batch),
        LayerOp::LayerNorm { .. } => rule(first(inputs)?, Norm::Layer),
        other => Err(not_mine("norm", other)),
    }
}

/// The IR verifier's entry: [`rule`] over the one input, or [`affine_rule`].
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let x = one(inputs).map_err(|e| e.to_string())?;
    match op {
        Op::BatchNorm { .. } => op::checked(rule(x, Norm::Batch), params),
        Op::LayerNorm { .. } => op::checked(rule(x, Norm::Layer), params),
        Op::Affine { scale, shift } => affine_rule(x, scale, shift),
        other => Err(op::not_mine("norm", other.kind())),
    }
}

/// The IR op of a normalization layer.
pub fn lower(op: &LayerOp, params: &[ParamId]) -> Result<(Op, IrActivation), String> {
    let op = match op {
        LayerOp::BatchNorm { momentum, epsilon } => Op::BatchNorm {
            gamma: param(params, 0)?,
            beta: param(params, 1)?,
            mean: param(params, 2)?,
            variance: param(params, 3)?,
            epsilon: *epsilon as f32,
            momentum: *momentum as f32,
        },
        LayerOp::LayerNorm { epsilon } => Op::LayerNorm {
            gamma: param(params, 0)?,
            beta: param(params, 1)?,
            epsilon: *epsilon as f32,
        },
        other => return Err(not_mine("norm", other).to_string()),
    };
    Ok((op, IrActivation::Linear))
}

/// The rule of the IR-only `Affine` op (fitted preprocessing carried into a plan: `x * scale +
/// shift` per channel): a float input whose last axis has one scale and one shift per channel.
pub fn affine_rule(x: &Fact, scale: &[f32], shift: &[f32]) -> Result<Fact, String> {
    need_float(x).map_err(|e| e.to_string())?;
    let c = x.dim(-1).ok_or("affine needs a known last axis")?;
    if scale.len() != c || shift.len() != c {
        return Err(format!(
            "affine has {} scales and {} shifts for {c} channels",
            scale.len(),
            shift.len()
        ));
    }
    Ok(x.clone())
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export. Batch norm (when not folded) and `Affine` are a per-channel `Mul` + `Add`
/// (batch norm's `γ / √(var + ε)` and `β − mean · that` computed once into initializers),
/// shaped `[C, 1, 1]` on a channels-first input; layer norm is `LayerNormalization` (axis
/// −1) from opset 17, before it its decomposition (mean, centred mean square, `Sqrt`, `Div`).
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    match op {
        Op::BatchNorm { epsilon, .. } => {
            let [g, b, m, v] = [0, 1, 2, 3].map(|i| cx.param(i).map(|p| p.data.to_vec()));
            let (g, b, m, v) = (g?, b?, m?, v?);
            let scale: Vec<f32> = g
                .iter()
                .zip(&v)
                .map(|(g, v)| g / (v + epsilon).sqrt())
                .collect();
            let shift: Vec<f32> = b
                .iter()
                .zip(&m)
                .zip(&scale)
                .map(|((b, m), s)| b - m * s)
                .collect();
            onnx_channel_affine(cx, scale, shift)
        }
        Op::Affine { scale, shift } => onnx_channel_affine(cx, scale.clone(), shift.clone()),
        Op::LayerNorm { epsilon, .. } => onnx_layer_norm(cx, *epsilon),
        other => Err(op::not_mine("norm", other.kind())),
    }
}

/// `x · scale + shift` per channel, in the input's layout.
fn onnx_channel_affine(
    cx: &mut super::onnx::NodeCx<'_>,
    scale: Vec<f32>,
    shift: Vec<f32>,
) -> Result<(), String> {
    use super::onnx::Layout;
    let (x, layout) = cx.input_any(0)?;
    let c = scale.len();
    let dims = if layout == Layout::Nchw {
        vec![c, 1, 1]
    } else {
        vec![c]
    };
    let s = cx.f32_tensor("scale", dims.clone(), scale);
    let t = cx.f32_tensor("shift", dims, shift);
    let y = cx.node("Mul", "scale", vec![x, s], vec![]);
    let y = cx.node("Add", "shift", vec![y, t], vec![]);
    cx.set_output(y, layout);
    Ok(())
}

/// Layer norm over the last axis, on the channels-last form.
fn onnx_layer_norm(cx: &mut super::onnx::NodeCx<'_>, epsilon: f32) -> Result<(), String> {
    use super::onnx::{Attr, Layout};
    let x = cx.input(0, Layout::Nhwc)?;
    let (g, b) = (cx.param(0)?, cx.param(1)?);
    let (gs, gd, bs, bd) = (
        g.shape.to_vec(),
        g.data.to_vec(),
        b.shape.to_vec(),
        b.data.to_vec(),
    );
    let gamma = cx.f32_tensor("gamma", gs, gd);
    let beta = cx.f32_tensor("beta", bs, bd);
    let y = if cx.opset >= 17 {
        cx.node(
            "LayerNormalization",
            "layer_norm",
            vec![x, gamma, beta],
            vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(epsilon))],
        )
    } else {
        let mean = cx.reduce("ReduceMean", "mean", x.clone(), &[-1], true);
        let centred = cx.node("Sub", "centred", vec![x, mean], vec![]);
        let square = cx.node(
            "Mul",
            "square",
            vec![centred.clone(), centred.clone()],
            vec![],
        );
        let var = cx.reduce("ReduceMean", "variance", square, &[-1], true);
        let eps = cx.f32_tensor("epsilon", vec![], vec![epsilon]);
        let var = cx.node("Add", "variance_eps", vec![var, eps], vec![]);
        let std = cx.node("Sqrt", "std", vec![var], vec![]);
        let normed = cx.node("Div", "normalized", vec![centred, std], vec![]);
        let scaled = cx.node("Mul", "gamma_mul", vec![normed, gamma], vec![]);
        cx.node("Add", "beta_add", vec![scaled, beta], vec![])
    };
    cx.set_output(y, Layout::Nhwc);
    Ok(())
}

/// PyTorch export: `nn.BatchNorm1d` / `nn.LayerNorm` over the last axis (`_last_axis_norm`
/// folds the other axes into rows, which is the set of positions Keras's statistics cover);
/// `gamma`, `beta` become `weight`, `bias`, the moving statistics `running_mean`/`running_var`;
/// Keras's momentum `m` (`moving = m·moving + (1−m)·batch`) is PyTorch's `1 − m`. PyTorch's
/// running variance uses the unbiased batch variance, Keras's the biased one.
pub fn to_pytorch(op: &LayerOp, inputs: &[&Fact]) -> Result<super::torch::TorchLayer, String> {
    use super::torch::{float, last_dim, TorchLayer, TorchParam};
    let c = last_dim(inputs)?;
    let mut params = vec![
        TorchParam::same("gamma", "weight"),
        TorchParam::same("beta", "bias"),
    ];
    let module = match *op {
        LayerOp::BatchNorm { momentum, epsilon } => {
            params.push(TorchParam::same("moving_mean", "running_mean"));
            params.push(TorchParam::same("moving_variance", "running_var"));
            format!(
                "nn.BatchNorm1d({c}, eps={}, momentum={})",
                float(epsilon),
                float(1.0 - momentum)
            )
        }
        LayerOp::LayerNorm { epsilon } => format!("nn.LayerNorm({c}, eps={})", float(epsilon)),
        ref other => return Err(not_mine("norm", other).to_string()),
    };
    Ok(TorchLayer {
        module: Some(module),
        forward: "_last_axis_norm({m}, {x})".into(),
        params,
    })
}
