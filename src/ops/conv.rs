//! `conv2d(filters, kernel, strides:, padding:, dilation:, use_bias:, activation:)`: Keras's
//! Conv2D, channels-last; `conv1d(filters, kernel, strides: 1, padding: valid | same | causal,
//! dilation: 1, use_bias:, activation:)`: Keras's Conv1D over `[N, T, C]`.
//!
//! Conv1D weights: `kernel [k, in, filters]`, `bias [filters]`. Its rule, kernels and IR window
//! are conv2d's over `[N, 1, T, C]` with a `[1, k, in, filters]` kernel (the same memory), a
//! causal padding being `dilation·(k − 1)` explicit zeros on the left. Export: ONNX `Conv`
//! (1-D, `pads` `[left, right]`) between `[N, T, C]`↔`[N, C, T]` `Transpose`s; PyTorch
//! `nn.Conv1d` (kernel `[filters, in, k]`), causal as `F.pad` on the left first.
//!
//! `depthwise_conv2d(kernel, depth_multiplier: 1, strides: 1, padding: valid, dilation: 1,
//! use_bias: true, activation: linear)`: Keras's DepthwiseConv2D. Weights `kernel [kh, kw, in,
//! multiplier]` (Glorot uniform), `bias [in·multiplier]`; output channel `c·multiplier + m`.
//! FLOPs `2·kh·kw (+ 1)` per output element. Export: ONNX `Conv` with `group = in` (kernel
//! `[in·multiplier, 1, kh, kw]`); PyTorch `nn.Conv2d(groups=in)`.
//!
//! `separable_conv2d`: `ops::separable` (its rule, lowering and export; this file forwards).
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
    known, mul, need_float, need_rank, one, window_output_hw, Inferred, Rule, RuleError, RANK3,
    RANK4,
};
use super::signature::{
    kw, pos, BoundArgs, Default, Kind, LayerSpec, Param, ACTIVATION, PADDING, SIZE, USE_BIAS,
};
use super::types::{Activation, Dim, Fact, Padding, Padding1d};

pub const LAYERS: &[LayerSpec] = &[
    super::signature::layer(
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
    .with_input_help(super::signature::IMAGES_HELP),
    // Issue 15.
    super::signature::layer(
        "conv1d",
        &[
            pos("filters", SIZE, Default::Required),
            Param {
                aliases: &["kernel_size"],
                ..pos("kernel", SIZE, Default::Required)
            },
            Param {
                aliases: &["stride"],
                ..kw("strides", SIZE, Default::Int(1))
            },
            kw(
                "padding",
                Kind::Choice(&["valid", "same", "causal"]),
                Default::Name("valid"),
            ),
            Param {
                aliases: &["dilation_rate"],
                ..kw("dilation", SIZE, Default::Int(1))
            },
            USE_BIAS,
            ACTIVATION,
        ],
    )
    .with_input_help(super::signature::SEQUENCES_HELP),
    super::signature::layer(
        "depthwise_conv2d",
        &[
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
    .with_input_help(super::signature::IMAGES_HELP),
];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    if name == "separable_conv2d" {
        return Some(super::separable::build(args));
    }
    if name == "conv1d" {
        return Some(LayerOp::Conv1d {
            filters: args.size("filters"),
            kernel: args.size("kernel"),
            strides: args.size("strides"),
            padding: Padding1d::from_name(args.name("padding")).unwrap_or(Padding1d::Valid),
            dilation: args.size("dilation"),
            use_bias: args.bool("use_bias"),
            activation: Activation::from_name(args.name("activation"))
                .unwrap_or(Activation::Linear),
        });
    }
    let pair = |n: &str| args.pair(n).unwrap_or((1, 1));
    if name == "depthwise_conv2d" {
        return Some(LayerOp::DepthwiseConv2d {
            kernel: pair("kernel"),
            depth_multiplier: args.size("depth_multiplier"),
            strides: pair("strides"),
            padding: args.padding("padding"),
            dilation: pair("dilation"),
            use_bias: args.bool("use_bias"),
            activation: Activation::from_name(args.name("activation"))
                .unwrap_or(Activation::Linear),
        });
    }
    if name != "conv2d" {
        return None;
    }
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
        LayerOp::Conv1d {
            filters,
            kernel,
            strides,
            padding,
            dilation,
            use_bias,
            ..
        } => rule_1d(
            first(inputs)?,
            *filters,
            &window_1d(*kernel, *strides, *dilation, *padding)?,
            *use_bias,
        ),
        LayerOp::DepthwiseConv2d {
            kernel,
            depth_multiplier,
            strides,
            padding,
            dilation,
            use_bias,
            ..
        } => depthwise_rule(
            first(inputs)?,
            *depth_multiplier,
            &window(*kernel, *strides, *dilation, *padding),
            *use_bias,
        ),
        LayerOp::SeparableConv2d { .. } => super::separable::infer(op, inputs),
        other => Err(not_mine("conv", other)),
    }
}

/// The shape rule of depthwise_conv2d: `[N, H, W, C] → [N, OH, OW, C·multiplier]`.
pub fn depthwise_rule(x: &Fact, multiplier: usize, window: &Window, use_bias: bool) -> Rule {
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
    let channels = mul(c, multiplier)?;
    let mut params = vec![ParamInfo::new(
        "kernel",
        vec![kh, kw, c, multiplier],
        Init::GlorotUniform,
    )];
    if use_bias {
        params.push(ParamInfo::new("bias", vec![channels], Init::Zeros));
    }
    let per_element = mul(2, mul(kh, kw)?)?
        .checked_add(usize::from(use_bias))
        .ok_or_else(|| RuleError::Size("depthwise_conv2d flops overflow".into()))?;
    let dims = vec![
        x.dims[0].clone(),
        Dim::Known(oh),
        Dim::Known(ow),
        Dim::Known(channels),
    ];
    let elements = super::rule::per_sample(&dims)?;
    Ok(Inferred {
        output: Fact::new(x.dtype, dims),
        params,
        flops: mul(elements, per_element)? as u64,
    })
}

/// A `[N, T, C]` fact as the `[N, 1, T, C]` one its 2-D twin sees (rank and dtype checked).
pub fn as_image(x: &Fact) -> Result<Fact, RuleError> {
    need_float(x)?;
    need_rank(x, 3, RANK3)?;
    let mut dims = x.dims.clone();
    dims.insert(1, Dim::Known(1));
    Ok(Fact::new(x.dtype, dims))
}

/// A 2-D rule's answer over `[N, 1, T, C]` as the 1-D one's: axis 1 dropped from the output,
/// a window error's axis renumbered (time is axis 1 of `[N, T, C]`).
pub fn from_image(rule: Rule) -> Rule {
    let renumber = |axis: usize| axis.saturating_sub(1).max(1);
    let mut inferred = rule.map_err(|e| match e {
        RuleError::Window {
            axis,
            input,
            needed,
        } => RuleError::Window {
            axis: renumber(axis),
            input,
            needed,
        },
        RuleError::Unknown { axis, symbol } => RuleError::Unknown {
            axis: renumber(axis),
            symbol,
        },
        other => other,
    })?;
    inferred.output.dims.remove(1);
    Ok(inferred)
}

/// The shape rule of conv1d: `[N, T, C] → [N, OT, filters]`, conv2d's over `[N, 1, T, C]`
/// with the kernel `[k, in, filters]`.
pub fn rule_1d(x: &Fact, filters: usize, window: &Window, use_bias: bool) -> Rule {
    let mut inferred = from_image(rule(&as_image(x)?, filters, window, use_bias))?;
    if let Some(kernel) = inferred.params.first_mut() {
        kernel.shape.remove(0);
    }
    Ok(inferred)
}

/// The IR window of a conv1d or 1-D pool: height 1; `causal` is `dilation·(kernel − 1)`
/// zeros on the left.
pub fn window_1d(
    kernel: usize,
    strides: usize,
    dilation: usize,
    padding: Padding1d,
) -> Result<Window, RuleError> {
    let padding = match padding {
        Padding1d::Valid => Padding::Valid,
        Padding1d::Same => Padding::Same,
        Padding1d::Causal => {
            let left = kernel
                .checked_sub(1)
                .and_then(|k| k.checked_mul(dilation))
                .ok_or_else(|| RuleError::Size("the causal padding overflows".into()))?;
            Padding::Explicit([0, 0, left, 0])
        }
    };
    Ok(Window {
        size: [1, kernel],
        strides: [1, strides],
        dilation: [1, dilation],
        padding,
    })
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
    if matches!(op, Op::SeparableConv2d { .. }) {
        return super::separable::verify(op, inputs, params);
    }
    if let Op::DepthwiseConv2d {
        multiplier,
        window,
        bias,
        ..
    } = op
    {
        let x = one(inputs).map_err(|e| e.to_string())?;
        return op::checked(
            depthwise_rule(x, *multiplier, window, bias.is_some()),
            params,
        );
    }
    let (Op::Conv2d {
        filters,
        window,
        bias,
        ..
    }
    | Op::Conv1d {
        filters,
        window,
        bias,
        ..
    }) = op
    else {
        return Err(op::not_mine("conv", op.kind()));
    };
    let x = one(inputs).map_err(|e| e.to_string())?;
    let inferred = if matches!(op, Op::Conv1d { .. }) {
        rule_1d(x, *filters, window, bias.is_some())
    } else {
        rule(x, *filters, window, bias.is_some())
    };
    op::checked(inferred, params)
}

/// The IR op and the activation node to follow it.
pub fn lower(op: &LayerOp, params: &[ParamId], rank: usize) -> Result<(Op, IrActivation), String> {
    if matches!(op, LayerOp::SeparableConv2d { .. }) {
        return super::separable::lower(op, params, rank);
    }
    if let LayerOp::DepthwiseConv2d {
        kernel,
        depth_multiplier,
        strides,
        padding,
        dilation,
        use_bias,
        activation,
    } = *op
    {
        let bias = if use_bias {
            Some(param(params, 1)?)
        } else {
            None
        };
        let then = lower_activation(activation, rank)?;
        return Ok((
            Op::DepthwiseConv2d {
                multiplier: depth_multiplier,
                window: window(kernel, strides, dilation, padding),
                kernel: param(params, 0)?,
                bias,
                activation: IrActivation::Linear,
            },
            then,
        ));
    }
    if let LayerOp::Conv1d {
        filters,
        kernel,
        strides,
        padding,
        dilation,
        use_bias,
        activation,
    } = *op
    {
        let window = window_1d(kernel, strides, dilation, padding).map_err(|e| e.to_string())?;
        let bias = if use_bias {
            Some(param(params, 1)?)
        } else {
            None
        };
        let then = lower_activation(activation, rank)?;
        return Ok((
            Op::Conv1d {
                filters,
                window,
                kernel: param(params, 0)?,
                bias,
                activation: IrActivation::Linear,
            },
            then,
        ));
    }
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

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export: `Conv` on the channels-first form (a run of convs and pools shares one pair of
/// transposes), the kernel transposed once to `[out, in, kh, kw]`, Keras's `same` padding as
/// explicit pads (the odd pixel after), then the fused activation. `conv1d` and
/// `depthwise_conv2d`: `ops::window_onnx`.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::{Attr, Layout};
    let Op::Conv2d {
        filters,
        window,
        bias,
        activation,
        ..
    } = op
    else {
        return match op {
            Op::Conv1d { .. } => super::window_onnx::conv1d(op, cx),
            Op::DepthwiseConv2d { .. } => super::window_onnx::depthwise(op, cx),
            Op::SeparableConv2d { .. } => super::separable::to_onnx(op, cx),
            other => Err(op::not_mine("conv", other.kind())),
        };
    };
    let pads = onnx_pads(cx.input_fact(0)?, window)?;
    let x = cx.input(0, Layout::Nchw)?;
    let kernel = cx.param(0)?;
    let [kh, kw] = window.size;
    let cin = kernel.shape.get(2).copied().unwrap_or(0);
    let mut w = vec![0.0f32; kernel.data.len()];
    // [kh, kw, in, out] → [out, in, kh, kw]
    for (i, &v) in kernel.data.iter().enumerate() {
        let o = i % filters;
        let c = (i / filters) % cin.max(1);
        let kx = (i / (filters * cin.max(1))) % kw;
        let ky = i / (filters * cin.max(1) * kw);
        if let Some(slot) = w.get_mut(((o * cin + c) * kh + ky) * kw + kx) {
            *slot = v;
        }
    }
    let mut inputs = vec![x, cx.f32_tensor("kernel", vec![*filters, cin, kh, kw], w)];
    if bias.is_some() {
        let b = cx.param(1)?;
        let (shape, data) = (b.shape.to_vec(), b.data.to_vec());
        inputs.push(cx.f32_tensor("bias", shape, data));
    }
    let ints = |v: [usize; 2]| Attr::Ints(v.iter().map(|&n| n as i64).collect());
    let mut y = cx.node(
        "Conv",
        "conv",
        inputs,
        vec![
            ("kernel_shape", ints(window.size)),
            ("strides", ints(window.strides)),
            ("dilations", ints(window.dilation)),
            ("pads", Attr::Ints(pads)),
        ],
    );
    if *activation != IrActivation::Linear {
        y = super::activation::onnx_activation(cx, *activation, y);
    }
    cx.set_output(y, Layout::Nchw);
    Ok(())
}

/// ONNX's `pads` (`[top, left, bottom, right]`) of `window` over the channels-last input `x`.
pub fn onnx_pads(x: &Fact, window: &Window) -> Result<Vec<i64>, String> {
    let mut before = [0i64; 2];
    let mut after = [0i64; 2];
    for axis in 0..2 {
        let input = x.dim(axis as isize + 1).ok_or_else(|| {
            format!("the input's spatial size is not known ({x}), so its padding is not fixed")
        })?;
        let (b, a) = super::window::padding_amounts(
            &window.padding,
            axis,
            input,
            window.size[axis],
            window.strides[axis],
            window.dilation[axis],
        )
        .map_err(|e| format!("its window does not fit the input: {e:?}"))?;
        before[axis] = b as i64;
        after[axis] = a as i64;
    }
    Ok(vec![before[0], before[1], after[0], after[1]])
}
