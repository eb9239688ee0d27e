//! Pooling: `max_pool2d` / `avg_pool2d(pool: 2, strides:, padding:)` and
//! `global_max_pool2d()` / `global_avg_pool2d()`: Keras's MaxPooling2D, AveragePooling2D and
//! the global poolings, channels-last.
//!
//! No weights. Strides default to the pool size. An average over a `same`-padded window counts
//! only the positions inside the input (Keras). FLOPs: one per window element and channel.
//! Window arithmetic: `ops::window`.
//! Export: ONNX `MaxPool` / `AveragePool` (`count_include_pad = 0`) / `GlobalMaxPool` /
//! `GlobalAveragePool` between NHWC↔NCHW `Transpose`s; PyTorch `nn.MaxPool2d` and friends.
//!
//! The 1-D pools `max_pool1d` / `avg_pool1d(pool: 2, strides: pool, padding: valid | same)`
//! and `global_max_pool1d()` / `global_avg_pool1d()` (Keras's MaxPooling1D, AveragePooling1D,
//! GlobalMaxPooling1D, GlobalAveragePooling1D) over `[N, T, C]` are their 2-D twins over
//! `[N, 1, T, C]` (the same memory; see `conv::as_image`). Export: the 1-D ONNX pools, PyTorch
//! `nn.MaxPool1d` and friends, between `[N, T, C]`↔`[N, C, T]` transposes.

use super::conv::{as_image, from_image, window_1d};
use super::layer::{first, not_mine, LayerOp};
use super::op::{self, Activation as IrActivation, Op, Window};
use super::param::ParamRef;
use super::rule::RuleError;
use super::rule::{
    known, mul, need_float, need_rank, one, per_sample, window_output_hw, Inferred, Rule, RANK4,
};
use super::signature::{
    kw, layer, pos, BoundArgs, Default, Kind, LayerSpec, Param, IMAGES_HELP, NONE, PADDING,
    SEQUENCES_HELP, SIZE,
};
use super::types::{Dim, Fact, Padding, Padding1d, PoolKind};

const POOL: &[Param] = &[
    Param {
        aliases: &["pool_size"],
        ..pos("pool", Kind::Pair, Default::Int(2))
    },
    Param {
        aliases: &["stride"],
        ..kw("strides", Kind::Pair, Default::Absent)
    },
    PADDING,
];

pub const LAYERS: &[LayerSpec] = &[
    layer("max_pool2d", POOL).with_input_help(IMAGES_HELP),
    layer("avg_pool2d", POOL).with_input_help(IMAGES_HELP),
    layer("global_avg_pool2d", NONE).with_input_help(IMAGES_HELP),
    layer("global_max_pool2d", NONE).with_input_help(IMAGES_HELP),
    // Issue 15.
    layer("max_pool1d", POOL_1D).with_input_help(SEQUENCES_HELP),
    layer("avg_pool1d", POOL_1D).with_input_help(SEQUENCES_HELP),
    layer("global_avg_pool1d", NONE).with_input_help(SEQUENCES_HELP),
    layer("global_max_pool1d", NONE).with_input_help(SEQUENCES_HELP),
];

const POOL_1D: &[Param] = &[
    Param {
        aliases: &["pool_size"],
        ..pos("pool", SIZE, Default::Int(2))
    },
    Param {
        aliases: &["stride"],
        ..kw("strides", SIZE, Default::Absent)
    },
    kw(
        "padding",
        Kind::Choice(&["valid", "same"]),
        Default::Name("valid"),
    ),
];

pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    Some(match name {
        "max_pool2d" | "avg_pool2d" => {
            let pool = args.pair("pool").unwrap_or((2, 2));
            LayerOp::Pool2d {
                kind: if name == "max_pool2d" {
                    PoolKind::Max
                } else {
                    PoolKind::Avg
                },
                pool,
                strides: args.pair("strides").unwrap_or(pool),
                padding: args.padding("padding"),
            }
        }
        "global_avg_pool2d" => LayerOp::GlobalPool2d {
            kind: PoolKind::Avg,
        },
        "global_max_pool2d" => LayerOp::GlobalPool2d {
            kind: PoolKind::Max,
        },
        "max_pool1d" | "avg_pool1d" => {
            let pool = args.size("pool");
            LayerOp::Pool1d {
                kind: if name == "max_pool1d" {
                    PoolKind::Max
                } else {
                    PoolKind::Avg
                },
                pool,
                strides: match args.int("strides") {
                    0 => pool,
                    _ => args.size("strides"),
                },
                padding: Padding1d::from_name(args.name("padding")).unwrap_or(Padding1d::Valid),
            }
        }
        "global_avg_pool1d" => LayerOp::GlobalPool1d {
            kind: PoolKind::Avg,
        },
        "global_max_pool1d" => LayerOp::GlobalPool1d {
            kind: PoolKind::Max,
        },
        _ => return None,
    })
}

/// The window of a pool as the IR holds it.
pub fn window(pool: (usize, usize), strides: (usize, usize), padding: Padding) -> Window {
    Window {
        size: [pool.0, pool.1],
        strides: [strides.0, strides.1],
        dilation: [1, 1],
        padding,
    }
}

/// The shape rule of a windowed pool: `[N, H, W, C] → [N, OH, OW, C]`.
pub fn rule(x: &Fact, window: &Window) -> Rule {
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
    let dims = vec![
        x.dims[0].clone(),
        Dim::Known(oh),
        Dim::Known(ow),
        Dim::Known(c),
    ];
    let _ = per_sample(&dims)?;
    let per_position = mul(mul(window.size[0], window.size[1])?, c)?;
    Ok(Inferred::plain(
        Fact::new(x.dtype, dims),
        mul(mul(oh, ow)?, per_position)? as u64,
    ))
}

/// The shape rule of a global pool: `[N, H, W, C] → [N, C]`.
pub fn global_rule(x: &Fact) -> Rule {
    need_float(x)?;
    need_rank(x, 4, RANK4)?;
    let c = known(&x.dims, 3)?;
    Ok(Inferred::plain(
        Fact::new(x.dtype, vec![x.dims[0].clone(), Dim::Known(c)]),
        per_sample(&x.dims)? as u64,
    ))
}

/// The checker's entry: [`rule`] or [`global_rule`] over the first input.
pub fn infer(op: &LayerOp, inputs: &[Fact]) -> Rule {
    let x = first(inputs)?;
    match op {
        LayerOp::Pool2d {
            pool,
            strides,
            padding,
            ..
        } => rule(x, &window(*pool, *strides, *padding)),
        LayerOp::GlobalPool2d { .. } => global_rule(x),
        LayerOp::Pool1d {
            pool,
            strides,
            padding,
            ..
        } => rule_1d(x, &pool_window_1d(*pool, *strides, *padding)?),
        LayerOp::GlobalPool1d { .. } => global_rule_1d(x),
        other => Err(not_mine("pool", other)),
    }
}

/// The IR verifier's entry: [`rule`] (a window) or [`global_rule`] (none) over the one input.
/// `global_avg_pool1d`'s inputs after the first are the ids of a padding mask (`ops::mask`).
pub fn verify(op: &Op, inputs: &[&Fact], params: &[ParamRef<'_>]) -> Result<Fact, String> {
    let x = if matches!(op, Op::GlobalAvgPool1d) {
        super::mask::data_input(inputs)?
    } else {
        one(inputs).map_err(|e| e.to_string())?
    };
    let inferred = match op {
        Op::MaxPool2d { window } | Op::AvgPool2d { window } => rule(x, window),
        Op::GlobalAvgPool2d | Op::GlobalMaxPool2d => global_rule(x),
        Op::MaxPool1d { window } | Op::AvgPool1d { window } => rule_1d(x, window),
        Op::GlobalAvgPool1d | Op::GlobalMaxPool1d => global_rule_1d(x),
        other => return Err(op::not_mine("pool", other.kind())),
    };
    op::checked(inferred, params)
}

/// The IR op of a pool layer.
pub fn lower(op: &LayerOp) -> Result<(Op, IrActivation), String> {
    let op = match op {
        LayerOp::Pool2d {
            kind,
            pool,
            strides,
            padding,
        } => {
            let window = window(*pool, *strides, *padding);
            match kind {
                PoolKind::Max => Op::MaxPool2d { window },
                PoolKind::Avg => Op::AvgPool2d { window },
            }
        }
        LayerOp::GlobalPool2d {
            kind: PoolKind::Max,
        } => Op::GlobalMaxPool2d,
        LayerOp::GlobalPool2d {
            kind: PoolKind::Avg,
        } => Op::GlobalAvgPool2d,
        LayerOp::Pool1d {
            kind,
            pool,
            strides,
            padding,
        } => {
            let window = pool_window_1d(*pool, *strides, *padding).map_err(|e| e.to_string())?;
            match kind {
                PoolKind::Max => Op::MaxPool1d { window },
                PoolKind::Avg => Op::AvgPool1d { window },
            }
        }
        LayerOp::GlobalPool1d {
            kind: PoolKind::Max,
        } => Op::GlobalMaxPool1d,
        LayerOp::GlobalPool1d {
            kind: PoolKind::Avg,
        } => Op::GlobalAvgPool1d,
        other => return Err(not_mine("pool", other).to_string()),
    };
    Ok((op, IrActivation::Linear))
}

/// The IR window of a 1-D pool (`valid` or `same`; a causal pool does not exist in Keras).
pub fn pool_window_1d(
    pool: usize,
    strides: usize,
    padding: Padding1d,
) -> Result<Window, RuleError> {
    if padding == Padding1d::Causal {
        return Err(RuleError::Size(
            "a pool takes `valid` or `same` padding".into(),
        ));
    }
    window_1d(pool, strides, 1, padding)
}

/// The shape rule of a 1-D pool: `[N, T, C] → [N, OT, C]`, the 2-D rule over `[N, 1, T, C]`.
pub fn rule_1d(x: &Fact, window: &Window) -> Rule {
    from_image(rule(&as_image(x)?, window))
}

/// The shape rule of a 1-D global pool: `[N, T, C] → [N, C]`.
pub fn global_rule_1d(x: &Fact) -> Rule {
    let image = as_image(x)?;
    let mut inferred = global_rule(&image)?;
    // The 2-D rule dropped axes 1 and 2; nothing to remove here.
    inferred.output.dims.truncate(2);
    Ok(inferred)
}

// ---- ONNX export -------------------------------------------------------------------------

/// ONNX export: `MaxPool` / `AveragePool` (`count_include_pad = 0`, Keras's `same` average)
/// on the channels-first form with `same` as explicit pads; the global pools as `ReduceMax` /
/// `ReduceMean` over the spatial axes of whichever form the input has. Explicit pool padding
/// and dilated pools, which modelc does not run, are refused.
pub fn to_onnx(op: &Op, cx: &mut super::onnx::NodeCx<'_>) -> Result<(), String> {
    use super::onnx::{Attr, Layout};
    super::mask::refuse_onnx(cx)?;
    let (op_type, window) = match op {
        Op::MaxPool2d { window } => ("MaxPool", window),
        Op::AvgPool2d { window } => ("AveragePool", window),
        Op::GlobalAvgPool2d | Op::GlobalMaxPool2d => {
            let reduce = if matches!(op, Op::GlobalAvgPool2d) {
                "ReduceMean"
            } else {
                "ReduceMax"
            };
            let (x, layout) = cx.input_any(0)?;
            let axes: &[i64] = if layout == Layout::Nchw {
                &[2, 3]
            } else {
                &[1, 2]
            };
            let y = cx.reduce(reduce, "pool", x, axes, false);
            cx.set_output(y, Layout::Nhwc);
            return Ok(());
        }
        Op::MaxPool1d { .. } | Op::AvgPool1d { .. } | Op::GlobalAvgPool1d | Op::GlobalMaxPool1d => {
            return super::window_onnx::pool1d(op, cx)
        }
        other => return Err(op::not_mine("pool", other.kind())),
    };
    if matches!(window.padding, Padding::Explicit(p) if p != [0; 4]) {
        return Err(
            "modelc runs pools with `valid` or `same` padding only, so explicit padding has no meaning to export"
                .into(),
        );
    }
    if window.dilation != [1, 1] {
        return Err("modelc does not run dilated pools, so one has no meaning to export".into());
    }
    let pads = super::conv::onnx_pads(cx.input_fact(0)?, window)?;
    let x = cx.input(0, Layout::Nchw)?;
    let ints = |v: [usize; 2]| Attr::Ints(v.iter().map(|&n| n as i64).collect());
    let mut attributes = vec![
        ("kernel_shape", ints(window.size)),
        ("strides", ints(window.strides)),
        ("pads", Attr::Ints(pads)),
    ];
    if op_type == "AveragePool" {
        attributes.push(("count_include_pad", Attr::Int(0)));
    }
    let y = cx.node(op_type, "pool", vec![x], attributes);
    cx.set_output(y, Layout::Nchw);
    Ok(())
}
