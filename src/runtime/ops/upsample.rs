//! The upsampling family's runtime: `Op::Conv2dTranspose` (`kernels::conv_transpose`, its bias
//! inside the kernel, its fused activation applied after) and `Op::UpSampling2d`
//! (`kernels::upsample`, no parameters).
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the op's attributes.
//! Output: the step's value (inference, training forward) or its gradients (backward).
//! Invariants: inference and the training forward run the same kernel, so they give the same
//! bits; backward differentiates the fused activation from `y` first, as conv2d's does.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut4, Ix1, Ix4};

use crate::ir::{Activation, Op, ParamId, Window};
use crate::ops::types::Padding;
use crate::ops::upsample::{transpose_axis, Interpolation};
use crate::runtime::interp::elementwise::activation_in_place;
use crate::runtime::interp::exec::{dims4, plan_err, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::conv_transpose::{
    conv_transpose_backward, conv_transpose_forward, TransposeGeometry, TransposeGrads,
};
use crate::runtime::kernels::upsample::{upsample_backward, upsample_forward};
use crate::runtime::train::backward::{unary, BackwardStep};
use crate::runtime::train::forward::{param, ForwardStep};
use crate::runtime::train::fused;
use crate::runtime::train::TrainError;

/// The kernel's geometry of a transposed conv over an `h × w` input: its strides and the
/// top/left padding of the convolution it transposes (`None` on sizes that overflow).
fn geometry(window: &Window, h: usize, w: usize) -> Option<TransposeGeometry> {
    let same = window.padding == Padding::Same;
    let (_, (top, _)) = transpose_axis(h, window.size[0], window.strides[0], same)?;
    let (_, (left, _)) = transpose_axis(w, window.size[1], window.strides[1], same)?;
    Some(TransposeGeometry {
        stride: (window.strides[0], window.strides[1]),
        pad: (top, left),
    })
}

/// Inference of a transposed conv, then its fused activation in place.
fn infer_transpose(
    s: InferStep<'_, '_>,
    window: &Window,
    kernel: ParamId,
    bias: Option<ParamId>,
    activation: Activation,
) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let step = ctx.step;
    let x = ctx.input(0)?;
    let xd = dims4(ctx.shape(x)?, ctx)?;
    let od = dims4(ctx.shape(step.output)?, ctx)?;
    let geom =
        geometry(window, xd[1], xd[2]).ok_or_else(|| plan_err(step, "its sizes overflow"))?;
    let kv = ctx
        .param(kernel)?
        .view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| plan_err(step, &e.to_string()))?;
    let b = bias.map(|b| ctx.vector(b)).transpose()?;
    let xv = ArrayView4::from_shape(xd, ctx.read(&memory.buffers, x)?)
        .map_err(|e| plan_err(step, &e.to_string()))?;
    let ov =
        ArrayViewMut4::from_shape(od, &mut *dst).map_err(|e| plan_err(step, &e.to_string()))?;
    ctx.kernel(conv_transpose_forward(
        xv,
        kv,
        b.map(ArrayView1::from),
        &geom,
        ov,
    ))?;
    activation_in_place(activation, dst, od[3]);
    Ok(())
}

/// Training forward of a transposed conv, its activation applied after.
fn forward_transpose(
    f: ForwardStep<'_, '_, '_>,
    window: &Window,
    kernel: ParamId,
    bias: Option<ParamId>,
    activation: Activation,
) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        out,
        ..
    } = f;
    let xv = ctx.rank::<f32, Ix4>(env.f32(ctx.arg(step, 0)?)?)?;
    let geom = geometry(window, xv.dim().1, xv.dim().2)
        .ok_or_else(|| ctx.internal("its sizes overflow"))?;
    let kv = ctx.rank::<f32, Ix4>(param(ctx, params, kernel)?)?;
    let bv = match bias {
        Some(b) => Some(ctx.rank::<f32, Ix1>(param(ctx, params, b)?)?),
        None => None,
    };
    let ov = ctx.rank_mut::<f32, Ix4>(out.view_mut())?;
    conv_transpose_forward(xv, kv, bv, &geom, ov).map_err(|e| ctx.kernel(e))?;
    fused::apply(activation, out);
    Ok(())
}

/// Backward of a transposed conv: the activation's derivative, then `dx` (when needed),
/// `dkernel` and `dbias`.
fn backward_transpose(
    b: BackwardStep<'_, '_, '_, '_>,
    window: &Window,
    kernel: ParamId,
    bias: Option<ParamId>,
    activation: Activation,
) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        params,
        y,
        dy,
        grads,
        ..
    } = b;
    fused::differentiate(activation, &y, dy);
    let v = ctx.arg(step, 0)?;
    let xv = ctx.rank::<f32, Ix4>(env.f32(v)?)?;
    let geom = geometry(window, xv.dim().1, xv.dim().2)
        .ok_or_else(|| ctx.internal("its sizes overflow"))?;
    let kv = ctx.rank::<f32, Ix4>(param(ctx, params, kernel)?)?;
    let needed = grads.needs(v);
    let mut dx = grads.take_value(v)?;
    let mut dk = grads.take_param(kernel)?;
    let mut db = bias.map(|b| grads.take_param(b)).transpose()?;
    let dbias = match db.as_mut() {
        Some(s) => Some(ctx.rank_mut::<f32, Ix1>(s.target()?)?),
        None => None,
    };
    let g = TransposeGrads {
        dx: if needed {
            Some(ctx.rank_mut::<f32, Ix4>(dx.target()?)?)
        } else {
            None
        },
        dkernel: ctx.rank_mut::<f32, Ix4>(dk.target()?)?,
        dbias,
    };
    let dy4 = ctx.rank::<f32, Ix4>(dy.view())?;
    conv_transpose_backward(xv, kv, dy4, &geom, g).map_err(|e| ctx.kernel(e))?;
    grads.put_value(v, dx, needed);
    grads.put_param(kernel, dk);
    if let (Some(b), Some(s)) = (bias, db) {
        grads.put_param(b, s);
    }
    Ok(())
}

/// Inference of an upsampling.
fn infer_upsampling(
    s: InferStep<'_, '_>,
    size: [usize; 2],
    bilinear: bool,
) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let step = ctx.step;
    let x = ctx.input(0)?;
    let xd = dims4(ctx.shape(x)?, ctx)?;
    let od = dims4(ctx.shape(step.output)?, ctx)?;
    let xv = ArrayView4::from_shape(xd, ctx.read(&memory.buffers, x)?)
        .map_err(|e| plan_err(step, &e.to_string()))?;
    let ov = ArrayViewMut4::from_shape(od, dst).map_err(|e| plan_err(step, &e.to_string()))?;
    ctx.kernel(upsample_forward(xv, size, bilinear, ov))
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Conv2dTranspose {
            window,
            kernel,
            bias,
            activation,
            ..
        } => infer_transpose(s, window, *kernel, *bias, *activation),
        Op::UpSampling2d {
            size,
            interpolation,
        } => infer_upsampling(s, *size, *interpolation == Interpolation::Bilinear),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Conv2dTranspose {
            window,
            kernel,
            bias,
            activation,
            ..
        } => forward_transpose(f, window, *kernel, *bias, *activation),
        Op::UpSampling2d {
            size,
            interpolation,
        } => {
            let ForwardStep {
                step,
                ctx,
                env,
                out,
                ..
            } = f;
            let xv = ctx.rank::<f32, Ix4>(env.f32(ctx.arg(step, 0)?)?)?;
            let ov = ctx.rank_mut::<f32, Ix4>(out.view_mut())?;
            let bilinear = *interpolation == Interpolation::Bilinear;
            upsample_forward(xv, *size, bilinear, ov).map_err(|e| ctx.kernel(e))
        }
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Conv2dTranspose {
            window,
            kernel,
            bias,
            activation,
            ..
        } => backward_transpose(b, window, *kernel, *bias, *activation),
        Op::UpSampling2d {
            size,
            interpolation,
        } => {
            let BackwardStep {
                step,
                ctx,
                dy,
                grads,
                ..
            } = b;
            let bilinear = *interpolation == Interpolation::Bilinear;
            let dy4 = ctx.rank::<f32, Ix4>(dy.view())?;
            unary(ctx, step, grads, |dx| {
                let dx4 = ctx.rank_mut::<f32, Ix4>(dx)?;
                upsample_backward(dy4, *size, bilinear, dx4).map_err(|e| ctx.kernel(e))
            })
        }
        other => Err(super::misrouted_train(step, other)),
    }
}
