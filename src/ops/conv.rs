//! `conv2d(filters, kernel, strides:, padding:, dilation:, use_bias:, activation:)`: Keras's
//! Conv2D, channels-last.
//!
//! Weights: `kernel [kh, kw, in, filters]` (Glorot uniform), `bias [filters]` (zeros). FLOPs:
//! `2·kh·kw·in·filters (+ filters)` per output position. Window arithmetic: `ops::window`.
//! Lowering: an IR `Conv2d` with a linear activation, the layer's `activation:` following as its
//! own node (fused back by `fuse-activation`).
//! Export: ONNX `Conv` between NHWC↔NCHW `Transpose`s, the kernel as `[out, in, kh, kw]`;
//! PyTorch `nn.Conv2d` likewise.

use super::activation::lower_activation;
use super::layer::{first, not_mine, param, LayerOp};
use super::op::{self, Activation as IrActivation, Op, Window};
use super::param::{Init, ParamId, ParamInfo, ParamRef};
use super::rule::{
    known, mul, need_float, need_rank, one, window_output_hw, Inferred, Rule, RuleError, RANK4,
};
use super::signature::{
    kw, pos, BoundArgs, Default, Kind, LayerSpec, Param, ACTIVATION, PADDING, SIZE, USE_BIAS,
};
use super::types::{Activation, Dim, Fact, Padding};

pub const LAYERS: &[LayerSpec] = &[super::signature::layer(
    "conv2d",
    &[
        pos("filters", SIZE, Default::Required),
        Param {
            aliases: &["kernel_size"],
            ..pos("kernel", Kind::Pair, Default::Required)
        },
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

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    if name != "conv2d" {
        return None;
    }
    let pair = |n: &str| args.pair(n).unwrap_or((1, 1));
    Some(LayerOp::Conv2d {
        filters: args.size("filters"),
        kernel: pair("kernel"),
        strides: pair("strides"),
        padding: args.padding("padding"),
        dilation: pair("dilation"),
        use_bias: args.bool("use_bias"),
        activation: Activation::from_name(args.name("activation")).unwrap_or(Activation::Linear),
    })
}

/// The checker's entry: [`rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    match op {
        LayerOp::Conv2d {
            filters,
            kernel,
            strides,
            padding,
            dilation,
            use_bias,
            ..
        } => rule(
            first(inputs)?,
            *filters,
            &window(*kernel, *strides, *dilation, *padding),
            *use_bias,
        ),
        other => Err(not_mine("conv", other)),
    }
}

/// The shape rule: `[N, H, W, C] → [N, OH, OW, filters]`.
pub fn rule(x: &Fact, filters: usize, window: &Window, use_bias: bool) -> Rule {
    need_float(x)?;
    need_rank(x, 4, RANK4)?;
    let c = known(&x.dims, 3)?;
    let (oh, ow) = window_output_hw(
        x,
        window.size,
        window.strides,
        window.dilation,
        &window.padding,
    )?;
    let [kh, kw] = window.size;
    let mut params = vec![ParamInfo::new(
        "kernel",
        vec![kh, kw, c, filters],
        Init::GlorotUniform,
    )];
    if use_bias {
        params.push(ParamInfo::new("bias", vec![filters], Init::Zeros));
    }
    let per_position = mul(mul(2, mul(mul(kh, kw)?, c)?)?, filters)?
        .checked_add(if use_bias { filters } else { 0 })
        .ok_or_else(|| RuleError::Size("conv2d flops overflow".into()))?;
    let dims = vec![
        x.dims[0].clone(),
        Dim::Known(oh),
        Dim::Known(ow),
        Dim::Known(filters),
    ];
    let _ = super::rule::per_sample(&dims)?;
    Ok(Inferred {
        output: Fact::new(x.dtype, dims),
        params,
        flops: mul(mul(oh, ow)?, per_position)? as u64,
    })
}

/// The window of a conv2d as the IR holds it.
pub fn window(
    kernel: (usize, usize),
    strides: (usize, usize),
    dilation: (usize, usize),
    padding: Padding,
) -> Window {
    Window {
        size: [kernel.0, kernel.1],
        strides: [strides.0, strides.1],
        dilation: [dilation.0, dilation.1],
        padding,
    }
}

/// The IR verifier's entry: [`rule`] over the op's one input.
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let Op::Conv2d {
        filters,
        window,
        bias,
        ..
    } = op
    else {
        return Err(op::not_mine("conv", op.kind()));
    };
    let x = one(inputs).map_err(|e| e.to_string())?;
    op::checked(rule(x, *filters, window, bias.is_some()), params)
}

/// The IR op and the activation node to follow it.
pub fn lower(op: &LayerOp, params: &[ParamId], rank: usize) -> Result<(Op, IrActivation), String> {
    let LayerOp::Conv2d {
        filters,
        kernel,
        strides,
        padding,
        dilation,
        use_bias,
        activation,
    } = *op
    else {
        return Err(not_mine("conv", op).to_string());
    };
    let window = window(kernel, strides, dilation, padding);
    let bias = if use_bias {
        Some(param(params, 1)?)
    } else {
        None
    };
    let then = lower_activation(activation, rank)?;
    Ok((
        Op::Conv2d {
            filters,
            window,
            kernel: param(params, 0)?,
            bias,
            activation: IrActivation::Linear,
        },
        then,
    ))
}
