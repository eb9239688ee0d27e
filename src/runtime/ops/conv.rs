//! 2-D convolutions (NHWC input, `[kh, kw, in, out]` kernel) with a fused bias and activation,
//! and the 1-D ones (`Op::Conv1d`: `[N, T, C]` input, `[k, in, out]` kernel), which run the
//! same steps over the same memory seen as `[N, 1, T, C]` and `[1, k, in, out]` ([`as_image`],
//! [`image_dims`]; the op's window is already the 2-D one), and the depthwise ones
//! (`Op::DepthwiseConv2d`, `kernels::depthwise`, activation applied after it); the separable
//! ones (`Op::SeparableConv2d`) run in `runtime::ops::separable`.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the op's attributes.
//! Output: the step's value (inference, training forward) or its gradients (backward).
//! Invariants: every phase splits the batch into per-thread slices with their own scratch;
//! a sample's result does not depend on the slicing.
//!
//! Fast paths (see the `## Fast paths` table of ARCHITECTURE.md):
//! - sliced conv: the trainer's [`forward`] and [`backward`] always run
//!   `kernels::conv_sliced` (one contiguous slice of the batch per thread, each a whole
//!   `kernels::conv` call; one slice runs whole) rather than one `conv2d_forward_with` /
//!   `conv2d_backward` call over the batch. The output and `dx` are that call's bits; the
//!   weight and bias gradients are summed in slice order (equal to f32 rounding, the same bits
//!   for a given thread count): `kernels::tests::conv_sliced`.
//! - fused conv + pool: a conv step the `fuse-conv-pool` pass joined with the pool after it
//!   runs [`infer_conv_pool`], the conv output existing only as per-thread tiles; the bits of
//!   [`infer`] then `pool::infer`: `interp::tests::fused_conv_pool_gives_the_unfused_bits_for_every_batch_and_thread_count`.
//! - relu through pool: in training, the fused relu of a conv whose output only a max pool
//!   reads is differentiated by that pool's backward (`relu_in_pool` in the conv's state, so
//!   [`backward`] skips it); see `train::setup::relu_through_pool`, the plain path's bits:
//!   `train::tests::fast_paths::relu_through_pool_gives_the_plain_gradients_bit_for_bit`.
//! - crop to the pool's reach: in training, a conv whose output only a `valid` max or average
//!   pool reads computes only the output rows and columns that pool's windows reach (the
//!   others zero) and runs its backward's products over them alone (`crop` in the conv's
//!   state, from `train::setup::pool_crops`; `kernels::conv::conv2d_forward_reached`,
//!   `conv2d_backward_reached`), the plain path's bits:
//!   `train::tests::crop::cropped_training_gives_the_uncropped_gradients_bit_for_bit`.

use ndarray::{ArrayView1, ArrayView4, ArrayViewD, ArrayViewMut4, ArrayViewMutD, Axis, Ix1, Ix4};

use crate::ir::{Activation, Op, ParamId, Window};
use crate::plan::Step;
use crate::runtime::interp::conv::ConvPoolShapes;
use crate::runtime::interp::elementwise::activation_in_place;
use crate::runtime::interp::exec::{
    dims4, plan_err, pool_params, with_output_buffer, Ctx, InferStep, Memory, StepState,
};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::conv::{Conv2dGrads, ConvForward};
use crate::runtime::kernels::conv_sliced::{
    conv2d_backward_sliced_reached, conv2d_forward_sliced_reached,
};
use crate::runtime::kernels::depthwise::{depthwise_backward, depthwise_forward, DepthwiseGrads};
use crate::runtime::kernels::pool::{Pool2dParams, PoolKind};
use crate::runtime::train::backward::BackwardStep;
use crate::runtime::train::context::{self, StepState as TrainState};
use crate::runtime::train::forward::{param, ForwardStep};
use crate::runtime::train::fused;
use crate::runtime::train::TrainError;

/// A shape as its rank-4 image: a rank-3 one gets a unit axis at `axis` (1 for a `[N, T, C]`
/// value, 0 for a `[k, in, out]` kernel); a rank-4 one is as it is.
pub(crate) fn image_dims(s: &[usize], axis: usize, ctx: &Ctx<'_>) -> Result<[usize; 4], RunError> {
    if s.len() == 3 && axis <= 3 {
        let mut d = s.to_vec();
        d.insert(axis, 1);
        dims4(&d, ctx)
    } else {
        dims4(s, ctx)
    }
}

/// A rank-3 view with a unit axis inserted at `axis` (1 for `[N, T, C]`, 0 for a
/// `[k, in, out]` kernel); other ranks as they are.
pub(crate) fn as_image(v: ArrayViewD<'_, f32>, axis: usize) -> ArrayViewD<'_, f32> {
    if v.ndim() == 3 {
        v.insert_axis(Axis(axis))
    } else {
        v
    }
}

/// [`as_image`] for a mutable view.
pub(crate) fn as_image_mut(v: ArrayViewMutD<'_, f32>, axis: usize) -> ArrayViewMutD<'_, f32> {
    if v.ndim() == 3 {
        v.insert_axis(Axis(axis))
    } else {
        v
    }
}

/// Inference: the step's conv workspace runs the convolution with its bias and activation.
pub(crate) fn infer(
    s: InferStep<'_, '_>,
    window: &Window,
    kernel: ParamId,
    bias: Option<ParamId>,
    activation: Activation,
) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        dst,
        state,
        ..
    } = s;
    let step = ctx.step;
    let x = ctx.input(0)?;
    let xs = ctx.read(&memory.buffers, x)?;
    let StepState::Conv(conv) = state else {
        return Err(plan_err(step, "conv step without workspace"));
    };
    let k = ctx.param(kernel)?;
    let b = bias.map(|b| ctx.vector(b)).transpose()?;
    let kd = image_dims(k.shape(), 0, ctx)?;
    let ks = k
        .as_slice()
        .ok_or_else(|| plan_err(step, "kernel not contiguous"))?;
    conv.run(
        xs,
        image_dims(ctx.shape(x)?, 1, ctx)?,
        ks,
        kd,
        b,
        activation,
        window,
        dst,
    )
    .map_err(|e| RunError::kernel(&step.name, e))
}

/// Inference of a fused conv2d step (`ctx.step`) and the pool step after it
/// (`fuse-conv-pool`): the conv output exists only as per-thread tiles; the pool's output
/// buffer receives the result. Taken for every pair the pass fused (`Step::fused_with_next`);
/// the same bits as the two steps run apart
/// (`interp::tests::fused_conv_pool_gives_the_unfused_bits_for_every_batch_and_thread_count`).
pub(crate) fn infer_conv_pool(
    ctx: &Ctx<'_>,
    pool: &Step,
    memory: &mut Memory,
    state: &mut StepState,
) -> Result<(), RunError> {
    let conv = ctx.step;
    let Op::Conv2d {
        window,
        kernel,
        bias,
        activation,
        ..
    } = &conv.op
    else {
        return Err(plan_err(conv, "a fused step that is not a conv2d"));
    };
    let (kind, pool_window) = match &pool.op {
        Op::MaxPool2d { window } => (PoolKind::Max, window),
        Op::AvgPool2d { window } => (PoolKind::Avg, window),
        _ => return Err(plan_err(pool, "a fused step that is not a pool")),
    };
    let pool_ctx = Ctx {
        step: pool,
        plan: ctx.plan,
        layout: ctx.layout,
        weights: ctx.weights,
    };
    let params = pool_params(kind, pool_window, &pool_ctx)?;
    let StepState::Conv(conv_state) = state else {
        return Err(plan_err(conv, "conv step without workspace"));
    };
    let x = ctx.input(0)?;
    let k = ctx.param(*kernel)?;
    let b = bias.map(|b| ctx.vector(b)).transpose()?;
    let shapes = ConvPoolShapes {
        x: dims4(ctx.shape(x)?, ctx)?,
        kernel: dims4(k.shape(), ctx)?,
        conv_out: dims4(ctx.shape(conv.output)?, ctx)?,
        pool_out: dims4(ctx.shape(pool.output)?, ctx)?,
    };
    let ks = k
        .as_slice()
        .ok_or_else(|| plan_err(conv, "kernel not contiguous"))?;
    let out_b = pool_ctx.buffer(pool.output)?;
    let out_len = pool_ctx.len(pool.output)?;
    with_output_buffer(memory, pool, out_b, out_len, |memory, dst| {
        let xs = ctx.read(&memory.buffers, x)?;
        conv_state
            .run_pooled(xs, &shapes, ks, b, *activation, window, &params, dst)
            .map_err(|e| RunError::kernel(&conv.name, e))
    })
}

/// Training forward: the sliced convolution, relu in its store, another activation after.
pub(crate) fn forward(
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
        state,
        out,
        ..
    } = f;
    let xv = ctx.rank::<f32, Ix4>(as_image(env.f32(ctx.arg(step, 0)?)?, 1))?;
    let geom = context::conv_geometry(ctx, window, xv.dim().1, xv.dim().2)?;
    let kv = ctx.rank::<f32, Ix4>(as_image(param(ctx, params, kernel)?, 0))?;
    let bv = match bias {
        Some(b) => Some(ctx.rank::<f32, Ix1>(param(ctx, params, b)?)?),
        None => None,
    };
    let TrainState::Conv {
        workspace: ws,
        crop,
        ..
    } = state
    else {
        return Err(ctx.internal("missing conv workspace"));
    };
    // Relu runs in the convolution's store, as `fused::apply` would after it.
    let relu = matches!(activation, Activation::Relu);
    let opts = ConvForward {
        relu,
        parallel: true,
    };
    let ov = ctx.rank_mut::<f32, Ix4>(as_image_mut(out.view_mut(), 1))?;
    let reach = pool_reach(ctx, *crop, ov.dim())?;
    conv2d_forward_sliced_reached(xv, kv, bv, &geom, reach, ws, ov, opts)
        .map_err(|e| ctx.kernel(e))?;
    if !relu {
        fused::apply(activation, out);
    }
    Ok(())
}

/// The output rows and columns of a conv step that the pool `crop` alone reading it reaches,
/// when fewer than its whole `[N, OH, OW, O]` output (`None`: the whole output is computed).
fn pool_reach(
    ctx: &context::Ctx<'_>,
    crop: Option<Pool2dParams>,
    (_, oh, ow, _): (usize, usize, usize, usize),
) -> Result<Option<(usize, usize)>, TrainError> {
    let Some(pool) = crop else {
        return Ok(None);
    };
    let reach = pool.reach(oh, ow).map_err(|e| ctx.kernel(e))?;
    Ok((reach != (oh, ow)).then_some(reach))
}

/// Backward: the activation's derivative (unless the max pool after applies it), then the
/// sliced conv backward into `dx` (when needed), `dkernel` and `dbias`.
pub(crate) fn backward(
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
        state,
        y,
        dy,
        grads,
    } = b;
    let TrainState::Conv {
        workspace: ws,
        relu_in_pool,
        crop,
    } = state
    else {
        return Err(ctx.internal("missing conv workspace"));
    };
    if !*relu_in_pool {
        fused::differentiate(activation, &y, dy);
    }
    let v = ctx.arg(step, 0)?;
    let xv = ctx.rank::<f32, Ix4>(as_image(env.f32(v)?, 1))?;
    let geom = context::conv_geometry(ctx, window, xv.dim().1, xv.dim().2)?;
    let kv = ctx.rank::<f32, Ix4>(as_image(param(ctx, params, kernel)?, 0))?;
    let needed = grads.needs(v);
    let mut dx = grads.take_value(v)?;
    let mut dk = grads.take_param(kernel)?;
    let mut db = bias.map(|b| grads.take_param(b)).transpose()?;
    let dbias = match db.as_mut() {
        Some(s) => Some(ctx.rank_mut::<f32, Ix1>(s.target()?)?),
        None => None,
    };
    let g = Conv2dGrads {
        dx: if needed {
            Some(ctx.rank_mut::<f32, Ix4>(as_image_mut(dx.target()?, 1))?)
        } else {
            None
        },
        dkernel: ctx.rank_mut::<f32, Ix4>(as_image_mut(dk.target()?, 0))?,
        dbias,
    };
    let dy4 = ctx.rank::<f32, Ix4>(as_image(dy.view(), 1))?;
    let reach = pool_reach(ctx, *crop, dy4.dim())?;
    conv2d_backward_sliced_reached(xv, kv, dy4, &geom, reach, ws, g).map_err(|e| ctx.kernel(e))?;
    grads.put_value(v, dx, needed);
    grads.put_param(kernel, dk);
    if let (Some(b), Some(s)) = (bias, db) {
        grads.put_param(b, s);
    }
    Ok(())
}

/// Inference of a depthwise conv (`kernels::depthwise`), then its fused activation in place.
pub(crate) fn infer_depthwise(
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
    let geom = crate::runtime::interp::conv::geometry(window, xd[1], xd[2])
        .map_err(|e| RunError::kernel(&step.name, e))?;
    let k = ctx.param(kernel)?;
    let kv = k
        .view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| plan_err(step, &e.to_string()))?;
    let b = bias.map(|b| ctx.vector(b)).transpose()?;
    let xv = ArrayView4::from_shape(xd, ctx.read(&memory.buffers, x)?)
        .map_err(|e| plan_err(step, &e.to_string()))?;
    let ov =
        ArrayViewMut4::from_shape(od, &mut *dst).map_err(|e| plan_err(step, &e.to_string()))?;
    let bv = b.map(ArrayView1::from);
    depthwise_forward(xv, kv, bv, &geom, ov).map_err(|e| RunError::kernel(&step.name, e))?;
    activation_in_place(activation, dst, od[3]);
    Ok(())
}

/// Training forward of a depthwise conv, its activation applied after.
pub(crate) fn forward_depthwise(
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
    let geom = context::conv_geometry(ctx, window, xv.dim().1, xv.dim().2)?;
    let kv = ctx.rank::<f32, Ix4>(param(ctx, params, kernel)?)?;
    let bv = match bias {
        Some(b) => Some(ctx.rank::<f32, Ix1>(param(ctx, params, b)?)?),
        None => None,
    };
    let ov = ctx.rank_mut::<f32, Ix4>(out.view_mut())?;
    depthwise_forward(xv, kv, bv, &geom, ov).map_err(|e| ctx.kernel(e))?;
    fused::apply(activation, out);
    Ok(())
}

/// Backward of a depthwise conv: the activation's derivative, then `dx` (when needed),
/// `dkernel` and `dbias`.
pub(crate) fn backward_depthwise(
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
    let geom = context::conv_geometry(ctx, window, xv.dim().1, xv.dim().2)?;
    let kv = ctx.rank::<f32, Ix4>(param(ctx, params, kernel)?)?;
    let needed = grads.needs(v);
    let mut dx = grads.take_value(v)?;
    let mut dk = grads.take_param(kernel)?;
    let mut db = bias.map(|b| grads.take_param(b)).transpose()?;
    let dbias = match db.as_mut() {
        Some(s) => Some(ctx.rank_mut::<f32, Ix1>(s.target()?)?),
        None => None,
    };
    let g = DepthwiseGrads {
        dx: if needed {
            Some(ctx.rank_mut::<f32, Ix4>(dx.target()?)?)
        } else {
            None
        },
        dkernel: ctx.rank_mut::<f32, Ix4>(dk.target()?)?,
        dbias,
    };
    let dy4 = ctx.rank::<f32, Ix4>(dy.view())?;
    depthwise_backward(xv, kv, dy4, &geom, g).map_err(|e| ctx.kernel(e))?;
    grads.put_value(v, dx, needed);
    grads.put_param(kernel, dk);
    if let (Some(b), Some(s)) = (bias, db) {
        grads.put_param(b, s);
    }
    Ok(())
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        }
        | Op::Conv1d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => infer(s, window, *kernel, *bias, *activation),
        Op::DepthwiseConv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => infer_depthwise(s, window, *kernel, *bias, *activation),
        Op::SeparableConv2d { .. } => super::separable::infer(s),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        }
        | Op::Conv1d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => forward(f, window, *kernel, *bias, *activation),
        Op::DepthwiseConv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => forward_depthwise(f, window, *kernel, *bias, *activation),
        Op::SeparableConv2d { .. } => super::separable::forward(f),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        }
        | Op::Conv1d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => backward(b, window, *kernel, *bias, *activation),
        Op::DepthwiseConv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => backward_depthwise(b, window, *kernel, *bias, *activation),
        Op::SeparableConv2d { .. } => super::separable::backward(b),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The interpreter's scratch for a conv step (its workspace, grown on first use).
pub(crate) fn infer_state(op: &Op) -> StepState {
    match op {
        Op::Conv2d { .. } | Op::Conv1d { .. } => StepState::Conv(Box::default()),
        _ => StepState::None,
    }
}

/// The trainer's state for a conv step: its sliced workspace, and whether the max pool after
/// it applies its relu's derivative (the crop to that pool's reach is set by
/// `train::setup::step_states`).
pub(crate) fn train_state(op: &Op, relu_in_pool: bool) -> TrainState {
    match op {
        Op::Conv2d { .. } | Op::Conv1d { .. } => TrainState::Conv {
            workspace: crate::runtime::kernels::conv_sliced::SlicedConv::new(),
            relu_in_pool,
            crop: None,
        },
        _ => TrainState::Stateless,
    }
}
