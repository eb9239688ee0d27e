//! `separable_conv2d(filters, kernel, depth_multiplier: 1, strides: 1, padding: valid,
//! dilation: 1, use_bias: true, activation: linear)`: Keras's SeparableConv2D, a member of the
//! conv family (`ops::conv` hands it here): a depthwise convolution (`depthwise_conv2d`'s, no
//! bias) then a 1 × 1 convolution to `filters` channels with the bias and activation.
//!
//! Weights: `depthwise_kernel [kh, kw, in, depth_multiplier]`, `pointwise_kernel [1, 1,
//! in·depth_multiplier, filters]` (both Glorot uniform), `bias [filters]`. Output `[N, OH, OW,
//! filters]` with conv2d's window arithmetic. FLOPs: the depthwise part's (`2·kh·kw` per
//! intermediate element) plus the pointwise one's (`2·in·depth_multiplier·filters (+ filters)`
//! per output position). Export: two ONNX `Conv`s (the first with `group = in`, no bias);
//! PyTorch `nn.Conv2d(groups=in)` then a 1 × 1 `nn.Conv2d`.

use super::activation::lower_activation;
use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op, Window};
use super::param::{ParamId, ParamRef};
use super::rule::{one, Inferred, Rule, RuleError};
use super::signature::{
    kw, pos, BoundArgs, Default, Kind, LayerSpec, Param, ACTIVATION, PADDING, SIZE, USE_BIAS,
};
use super::types::{Activation, Fact, Padding};

pub const LAYERS: &[LayerSpec] = &[super::signature::layer(
    "separable_conv2d",
    &[
        pos("filters", SIZE, Default::Required),
        Param {
            aliases: &["kernel_size"],
            ..pos("kernel", Kind::Pair, Default::Required)
        },
        kw("depth_multiplier", SIZE, Default::Int(1)),
        Param {
            aliases: &["stride"],
            ..kw("strides", Kind::Pair, Default::Int(1))
        },
        PADDING,
        Param {
            aliases: &["dilation_rate"],
            ..kw("dilation", Kind::Pair, Default::Int(1))
        },
        USE_BIAS,
        ACTIVATION,
    ],
)
.with_input_help(super::signature::IMAGES_HELP)];

pub fn build(args: &BoundArgs) -> LayerOp {
    let pair = |n: &str| args.pair(n).unwrap_or((1, 1));
    LayerOp::SeparableConv2d {
        filters: args.size("filters"),
        kernel: pair("kernel"),
        depth_multiplier: args.size("depth_multiplier"),
        strides: pair("strides"),
        padding: args.padding("padding"),
        dilation: pair("dilation"),
        use_bias: args.bool("use_bias"),
        activation: Activation::from_name(args.name("activation")).unwrap_or(Activation::Linear),
    }
}

/// The 1 × 1 window of the pointwise part.
const POINTWISE: Window = Window {
    size: [1, 1],
    strides: [1, 1],
    dilation: [1, 1],
    padding: Padding::Valid,
};

/// The shape rule: `[N, H, W, C] → [N, OH, OW, filters]`, depthwise_conv2d's rule (without
/// bias) then conv2d's 1 × 1 one, the kernels renamed as Keras names them.
pub fn rule(x: &Fact, filters: usize, multiplier: usize, window: &Window, use_bias: bool) -> Rule {
    let depthwise = super::conv::depthwise_rule(x, multiplier, window, false)?;
    let pointwise = super::conv::rule(&depthwise.output, filters, &POINTWISE, use_bias)?;
    let mut params = depthwise.params;
    params.extend(pointwise.params);
    let names = ["depthwise_kernel", "pointwise_kernel", "bias"];
    for (p, name) in params.iter_mut().zip(names) {
        p.name = name;
    }
    Ok(Inferred {
        output: pointwise.output,
        params,
        flops: depthwise
            .flops
            .checked_add(pointwise.flops)
            .ok_or_else(|| RuleError::Size("separable_conv2d flops overflow".into()))?,
    })
}

/// The checker's entry.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    let LayerOp::SeparableConv2d {
        filters,
        kernel,
        depth_multiplier,
        strides,
        padding,
        dilation,
        use_bias,
        ..
    } = *op
    else {
        return Err(not_mine("conv", op));
    };
    let window = super::conv::window(kernel, strides, dilation, padding);
    rule(first(inputs)?, filters, depth_multiplier, &window, use_bias)
}

/// The IR verifier's entry.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let Op::SeparableConv2d {
        filters,
        multiplier,
        window,
        bias,
        ..
    } = op
    else {
        return Err(op::not_mine("conv", op.kind()));
    };
    let x = one(inputs).map_err(|e| e.to_string())?;
    op::checked(
        rule(x, *filters, *multiplier, window, bias.is_some()),
        params,
    )
}

/// The IR op and the activation node to follow it.
pub fn lower(op: &LayerOp, params: &[ParamId], rank: usize) -> Result<(Op, IrActivation), String> {
    let LayerOp::SeparableConv2d {
        filters,
        kernel,
        depth_multiplier,
        strides,
        padding,
        dilation,
        use_bias,
        activation,
    } = *op
    else {
        return Err(not_mine("conv", op).to_string());
    };
    let bias = if use_bias {
        Some(param(params, 2)?)
    } else {
        None
    };
    Ok((
        Op::SeparableConv2d {
            filters,
            multiplier: depth_multiplier,
            window: super::conv::window(kernel, strides, dilation, padding),
            depthwise_kernel: param(params, 0)?,
            pointwise_kernel: param(params, 1)?,
            bias,
            activation: IrActivation::Linear,
        },
        lower_activation(activation, rank)?,
    ))
}

// ---- ONNX export -------------------------------------------------------------------------

/// Two `Conv`s on the channels-first form: the depthwise one (`group = C`, kernel `[C·M, 1,
/// kh, kw]`, no bias), then the 1 × 1 one (kernel `[filters, C·M, 1, 1]`) with the bias, then
/// the fused activation.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::{Attr, Layout};
    let Op::SeparableConv2d {
        filters,
        multiplier,
        window,
        bias,
        activation,
        ..
    } = op
    else {
        return Err(op::not_mine("conv", op.kind()));
    };
    let pads = super::conv::onnx_pads(cx.input_fact(0)?, window)?;
    let depthwise = cx.param(0)?;
    let &[kh, kw, c, m] = depthwise.shape else {
        return Err(format!("internal: depthwise kernel {:?}", depthwise.shape));
    };
    if m != *multiplier {
        return Err(format!("internal: depthwise kernel {:?}", depthwise.shape));
    }
    let cm = c * m;
    // [kh, kw, C, M] → [C·M, 1, kh, kw]
    let mut dw = vec![0.0f32; depthwise.data.len()];
    for (i, &v) in depthwise.data.iter().enumerate() {
        let (ch, kx, ky) = (i % cm, (i / cm) % kw, i / (cm * kw));
        if let Some(slot) = dw.get_mut((ch * kh + ky) * kw + kx) {
            *slot = v;
        }
    }
    // [1, 1, C·M, F] → [F, C·M, 1, 1]
    let pointwise = cx.param(1)?;
    let mut pw = vec![0.0f32; pointwise.data.len()];
    for (i, &v) in pointwise.data.iter().enumerate() {
        if let Some(slot) = pw.get_mut((i % filters) * cm + i / filters) {
            *slot = v;
        }
    }
    let ints = |v: [usize; 2]| Attr::Ints(v.iter().map(|&n| n as i64).collect());
    let x = cx.input(0, Layout::Nchw)?;
    let dw = cx.f32_tensor("depthwise_kernel", vec![cm, 1, kh, kw], dw);
    let mid = cx.node(
        "Conv",
        "depthwise",
        vec![x, dw],
        vec![
            ("group", Attr::Int(c as i64)),
            ("kernel_shape", ints(window.size)),
            ("strides", ints(window.strides)),
            ("dilations", ints(window.dilation)),
            ("pads", Attr::Ints(pads)),
        ],
    );
    let pw = cx.f32_tensor("pointwise_kernel", vec![*filters, cm, 1, 1], pw);
    let mut inputs = vec![mid, pw];
    if bias.is_some() {
        let b = cx.param(2)?;
        let (shape, data) = (b.shape.to_vec(), b.data.to_vec());
        inputs.push(cx.f32_tensor("bias", shape, data));
    }
    let mut y = cx.node(
        "Conv",
        "pointwise",
        inputs,
        vec![("kernel_shape", ints([1, 1]))],
    );
    if *activation != IrActivation::Linear {
        y = super::activation::onnx_activation(cx, *activation, y);
    }
    cx.set_output(y, Layout::Nchw);
    Ok(())
}
