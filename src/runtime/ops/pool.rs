//! 2-D pools (max, average) over a window, and global pools over the whole image (NHWC); the
//! 1-D ones (`Op::MaxPool1d` and friends, `[N, T, C]`) run the same steps over the same memory
//! seen as `[N, 1, T, C]` (`conv::as_image`, `conv::image_dims`).
//!
//! `global_avg_pool1d` over a padding mask (inputs after the first, `ops::mask`) takes the
//! mean of the kept steps (`kernels::masked_pool`).
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`], the pool kind and
//! window. Output: the step's value (inference, training forward) or input 0's gradient.
//! Invariants: explicit padding and dilation have no pool kernel (refused as the plan's or the
//! layer's error); a parameter-free step writes no parameter gradient.
//!
//! Fast paths (see the `## Fast paths` table of ARCHITECTURE.md):
//! - the 2 × 2 stride-2 max pool whose windows all lie inside the input has its own forward
//!   and backward in `kernels::pool` (`max_pool_2x2`, picked by `pool2d_forward` and
//!   `pool2d_backward_with`), the general window loop's bits:
//!   `kernels::tests::pool_paths::max_pool_2x2_path_gives_the_general_paths_bits`.
//! - relu through pool: a max pool that alone reads a conv's fused relu applies the relu's
//!   derivative in its own backward (`StepState::Pool { relu_input: true }`,
//!   `PoolBackward::relu_input`); see `train::setup::relu_through_pool` and `ops::conv`.

use ndarray::{ArrayView4, ArrayViewMut4, Ix2, Ix4};

use super::conv::{as_image, as_image_mut, image_dims};
use crate::ir::{Op, Window};
use crate::runtime::interp::exec::{plan_err, pool_params, view_mut, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::masked_pool::{masked_mean_backward, masked_mean_forward};
use crate::runtime::kernels::pool::{
    global_pool_backward, global_pool_forward, pool2d_backward_par, pool2d_forward,
    pool2d_forward_par, PoolBackward, PoolKind,
};
use crate::runtime::train::backward::{unary, BackwardStep};
use crate::runtime::train::context::{self, StepState};
use crate::runtime::train::forward::ForwardStep;
use crate::runtime::train::TrainError;

/// Inference of a max or average pool over `window`.
pub(crate) fn infer(s: InferStep<'_, '_>, kind: PoolKind, window: &Window) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let step = ctx.step;
    let out_shape = ctx.shape(step.output)?;
    let p = pool_params(kind, window, ctx)?;
    let x = ctx.input(0)?;
    let xv = ArrayView4::from_shape(
        image_dims(ctx.shape(x)?, 1, ctx)?,
        ctx.read(&memory.buffers, x)?,
    )
    .map_err(|e| plan_err(step, &e.to_string()))?;
    let ov = ArrayViewMut4::from_shape(image_dims(out_shape, 1, ctx)?, dst)
        .map_err(|e| plan_err(step, &e.to_string()))?;
    ctx.kernel(pool2d_forward(xv, &p, ov))
}

/// Inference of a global max or average pool: `[N, H, W, C]` to `[N, C]`.
pub(crate) fn infer_global(s: InferStep<'_, '_>, kind: PoolKind) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let step = ctx.step;
    let out_shape = ctx.shape(step.output)?;
    let x = ctx.input(0)?;
    if let Some(keep) = super::padding::infer_keep(ctx, memory)? {
        let dims =
            seq_dims(ctx.shape(x)?).ok_or_else(|| plan_err(step, "input is not [N, T, C]"))?;
        let xs = ctx.read(&memory.buffers, x)?;
        let out = dst
            .get_mut(..dims.0 * dims.2)
            .ok_or_else(|| plan_err(step, "pool output too small"))?;
        return ctx.kernel(masked_mean_forward(xs, dims, &keep, out));
    }
    let xv = ArrayView4::from_shape(
        image_dims(ctx.shape(x)?, 1, ctx)?,
        ctx.read(&memory.buffers, x)?,
    )
    .map_err(|e| plan_err(step, &e.to_string()))?;
    let ov = view_mut(dst, out_shape, ctx)?
        .into_dimensionality()
        .map_err(|e| plan_err(step, &e.to_string()))?;
    ctx.kernel(global_pool_forward(xv, kind, ov))
}

/// Training forward of a max or average pool (samples split between threads).
pub(crate) fn forward(
    f: ForwardStep<'_, '_, '_>,
    kind: PoolKind,
    window: &Window,
) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        out,
        ..
    } = f;
    let p = context::pool_params(ctx, kind, window)?;
    pool2d_forward_par(
        ctx.rank::<f32, Ix4>(as_image(env.f32(ctx.arg(step, 0)?)?, 1))?,
        &p,
        ctx.rank_mut::<f32, Ix4>(as_image_mut(out.view_mut(), 1))?,
    )
    .map_err(|e| ctx.kernel(e))
}

/// Training forward of a global pool.
pub(crate) fn forward_global(f: ForwardStep<'_, '_, '_>, kind: PoolKind) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        out,
        ..
    } = f;
    if let Some(keep) = super::padding::train_keep(step, ctx, env)? {
        let x = env.f32(ctx.arg(step, 0)?)?;
        let dims = seq_dims(x.shape()).ok_or_else(|| ctx.internal("input is not [N, T, C]"))?;
        let (Some(xs), Some(o)) = (x.as_slice(), out.as_slice_mut()) else {
            return Err(ctx.internal("pool buffers are not contiguous"));
        };
        return masked_mean_forward(xs, dims, &keep, o).map_err(|e| ctx.kernel(e));
    }
    global_pool_forward(
        ctx.rank::<f32, Ix4>(as_image(env.f32(ctx.arg(step, 0)?)?, 1))?,
        kind,
        ctx.rank_mut::<f32, Ix2>(out.view_mut())?,
    )
    .map_err(|e| ctx.kernel(e))
}

/// Backward of a max or average pool into input 0's gradient, applying the relu's derivative
/// too when the forward's input is a relu this step differentiates.
pub(crate) fn backward(
    b: BackwardStep<'_, '_, '_, '_>,
    kind: PoolKind,
    window: &Window,
) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        state,
        dy,
        grads,
        ..
    } = b;
    let pp = context::pool_params(ctx, kind, window)?;
    let xv = ctx.rank::<f32, Ix4>(as_image(env.f32(ctx.arg(step, 0)?)?, 1))?;
    let dy4 = ctx.rank::<f32, Ix4>(as_image(dy.view(), 1))?;
    let opts = PoolBackward {
        relu_input: matches!(state, StepState::Pool { relu_input: true }),
    };
    unary(ctx, step, grads, |dx| {
        let dx = ctx.rank_mut::<f32, Ix4>(as_image_mut(dx, 1))?;
        pool2d_backward_par(xv, dy4, &pp, dx, opts).map_err(|e| ctx.kernel(e))
    })
}

/// Backward of a global pool into input 0's gradient.
pub(crate) fn backward_global(
    b: BackwardStep<'_, '_, '_, '_>,
    kind: PoolKind,
) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        dy,
        grads,
        ..
    } = b;
    if let Some(keep) = super::padding::train_keep(step, ctx, env)? {
        let x = env.f32(ctx.arg(step, 0)?)?;
        let dims = seq_dims(x.shape()).ok_or_else(|| ctx.internal("input is not [N, T, C]"))?;
        let dys = dy
            .as_slice()
            .ok_or_else(|| ctx.internal("pool gradient is not contiguous"))?;
        return unary(ctx, step, grads, |mut dx| {
            let dx = dx
                .as_slice_mut()
                .ok_or_else(|| ctx.internal("pool gradient is not contiguous"))?;
            masked_mean_backward(dys, dims, &keep, dx).map_err(|e| ctx.kernel(e))
        });
    }
    let xv = ctx.rank::<f32, Ix4>(as_image(env.f32(ctx.arg(step, 0)?)?, 1))?;
    let dy2 = ctx.rank::<f32, Ix2>(dy.view())?;
    unary(ctx, step, grads, |dx| {
        global_pool_backward(
            xv,
            dy2,
            kind,
            ctx.rank_mut::<f32, Ix4>(as_image_mut(dx, 1))?,
        )
        .map_err(|e| ctx.kernel(e))
    })
}

/// `(N, T, C)` of a sequence's shape.
fn seq_dims(shape: &[usize]) -> Option<(usize, usize, usize)> {
    match shape {
        &[n, t, c] => Some((n, t, c)),
        _ => None,
    }
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::MaxPool2d { window } | Op::MaxPool1d { window } => infer(s, PoolKind::Max, window),
        Op::AvgPool2d { window } | Op::AvgPool1d { window } => infer(s, PoolKind::Avg, window),
        Op::GlobalMaxPool2d | Op::GlobalMaxPool1d => infer_global(s, PoolKind::Max),
        Op::GlobalAvgPool2d | Op::GlobalAvgPool1d => infer_global(s, PoolKind::Avg),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::MaxPool2d { window } | Op::MaxPool1d { window } => forward(f, PoolKind::Max, window),
        Op::AvgPool2d { window } | Op::AvgPool1d { window } => forward(f, PoolKind::Avg, window),
        Op::GlobalMaxPool2d | Op::GlobalMaxPool1d => forward_global(f, PoolKind::Max),
        Op::GlobalAvgPool2d | Op::GlobalAvgPool1d => forward_global(f, PoolKind::Avg),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::MaxPool2d { window } | Op::MaxPool1d { window } => backward(b, PoolKind::Max, window),
        Op::AvgPool2d { window } | Op::AvgPool1d { window } => backward(b, PoolKind::Avg, window),
        Op::GlobalMaxPool2d | Op::GlobalMaxPool1d => backward_global(b, PoolKind::Max),
        Op::GlobalAvgPool2d | Op::GlobalAvgPool1d => backward_global(b, PoolKind::Avg),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The trainer's state for a pool step: whether its backward applies the relu derivative of
/// the conv before it (relu through pool).
pub(crate) fn train_state(op: &Op, relu_input: bool) -> StepState {
    match op {
        Op::MaxPool2d { .. }
        | Op::AvgPool2d { .. }
        | Op::MaxPool1d { .. }
        | Op::AvgPool1d { .. } => StepState::Pool { relu_input },
        _ => StepState::Stateless,
    }
}
