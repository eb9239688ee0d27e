//! Normalizations: batch norm (per channel, the last axis) and layer norm (per sample, over
//! the last axis).
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the op's parameters.
//! Output: the step's value (inference, training forward) or its gradients (backward).
//! Invariants: batch norm normalizes with the moving statistics in inference and in the
//! trainer's inference semantics, with the batch statistics (kept in the step's state for
//! backward) in training; the moving-average update is the trainer's, after the step is known
//! to be finite. Backward differentiates through the batch statistics.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Ix1};

use crate::ir::{Op, ParamId};
use crate::runtime::interp::elementwise::batch_norm_in_place;
use crate::runtime::interp::exec::{copy_first, last_dim, plan_err, view, view_mut, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::batch_norm::{
    batch_norm_backward, batch_norm_inference, batch_norm_train_forward, BatchNormParams,
};
use crate::runtime::kernels::error::shape_err;
use crate::runtime::kernels::layer_norm::{layer_norm_backward, layer_norm_forward};
use crate::runtime::kernels::{batch_ranges, row_parts};
use crate::runtime::pool;
use crate::runtime::train::backward::{input_target, BackwardStep};
use crate::runtime::train::context::StepState;
use crate::runtime::train::forward::{param, ForwardStep, Semantics};
use crate::runtime::train::TrainError;

/// A batch norm's parameters: `gamma`, `beta`, moving `mean` and `variance`, and `epsilon`.
#[derive(Clone, Copy)]
pub(crate) struct BatchNormIds {
    pub gamma: ParamId,
    pub beta: ParamId,
    pub mean: ParamId,
    pub variance: ParamId,
    pub epsilon: f32,
}

impl BatchNormIds {
    /// The parameters of an `Op::BatchNorm`.
    fn of(op: &Op) -> Option<Self> {
        let Op::BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            epsilon,
            ..
        } = op
        else {
            return None;
        };
        Some(Self {
            gamma: *gamma,
            beta: *beta,
            mean: *mean,
            variance: *variance,
            epsilon: *epsilon,
        })
    }
}

/// Inference of batch norm: in place over input 0's copy, with the moving statistics.
pub(crate) fn infer_batch_norm(s: InferStep<'_, '_>, p: BatchNormIds) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        out_b,
        dst,
        ..
    } = s;
    copy_first(ctx, memory, out_b, dst)?;
    let c = last_dim(ctx)?;
    let (g, b, m, v) = (
        ctx.vector(p.gamma)?,
        ctx.vector(p.beta)?,
        ctx.vector(p.mean)?,
        ctx.vector(p.variance)?,
    );
    if [g.len(), b.len(), m.len(), v.len()] != [c; 4] {
        return Err(plan_err(
            ctx.step,
            "batch norm parameters do not match the channels",
        ));
    }
    batch_norm_in_place(dst, g, b, m, v, p.epsilon);
    Ok(())
}

/// Training forward of batch norm: batch statistics in training semantics (kept for
/// backward), the moving ones in inference semantics.
pub(crate) fn forward_batch_norm(
    f: ForwardStep<'_, '_, '_>,
    p: BatchNormIds,
) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        state,
        semantics,
        out,
    } = f;
    let x = || env.f32(ctx.arg(step, 0)?);
    let bp = BatchNormParams {
        gamma: ctx.rank::<f32, Ix1>(param(ctx, params, p.gamma)?)?,
        beta: ctx.rank::<f32, Ix1>(param(ctx, params, p.beta)?)?,
        epsilon: p.epsilon,
    };
    match semantics {
        Semantics::Train(_) => {
            let StepState::BatchNorm(stats) = state else {
                return Err(ctx.internal("missing batch statistics"));
            };
            batch_norm_train_forward(x()?, &bp, stats, out.view_mut())
                .map_err(|e| ctx.kernel(e))?;
        }
        Semantics::Infer => {
            let mm = ctx.rank::<f32, Ix1>(param(ctx, params, p.mean)?)?;
            let mv = ctx.rank::<f32, Ix1>(param(ctx, params, p.variance)?)?;
            batch_norm_inference(x()?, &bp, mm, mv, out.view_mut()).map_err(|e| ctx.kernel(e))?;
        }
    }
    Ok(())
}

/// Backward of batch norm through the batch statistics: `dx` (when needed), `dgamma`, `dbeta`.
pub(crate) fn backward_batch_norm(
    b: BackwardStep<'_, '_, '_, '_>,
    p: BatchNormIds,
) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        params,
        state,
        dy,
        grads,
        ..
    } = b;
    let v = ctx.arg(step, 0)?;
    let xv = env.f32(v)?;
    let bp = BatchNormParams {
        gamma: ctx.rank::<f32, Ix1>(param(ctx, params, p.gamma)?)?,
        beta: ctx.rank::<f32, Ix1>(param(ctx, params, p.beta)?)?,
        epsilon: p.epsilon,
    };
    let StepState::BatchNorm(stats) = state else {
        return Err(ctx.internal("missing batch statistics"));
    };
    let needed = grads.needs(v);
    let mut dx = grads.take_value(v)?;
    let mut dg = grads.take_param(p.gamma)?;
    let mut db = grads.take_param(p.beta)?;
    batch_norm_backward(
        xv,
        dy.view(),
        &bp,
        stats,
        input_target(&mut dx, needed)?,
        ctx.rank_mut::<f32, Ix1>(dg.target()?)?,
        ctx.rank_mut::<f32, Ix1>(db.target()?)?,
    )
    .map_err(|e| ctx.kernel(e))?;
    grads.put_value(v, dx, needed);
    grads.put_param(p.gamma, dg);
    grads.put_param(p.beta, db);
    Ok(())
}

/// Inference of layer norm.
pub(crate) fn infer_layer_norm(
    s: InferStep<'_, '_>,
    gamma: ParamId,
    beta: ParamId,
    epsilon: f32,
) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let out_shape = ctx.shape(ctx.step.output)?;
    let x = ctx.input(0)?;
    let (xs, x_shape) = (ctx.read(&memory.buffers, x)?, ctx.shape(x)?);
    let g = ArrayView1::from(ctx.vector(gamma)?);
    let b = ArrayView1::from(ctx.vector(beta)?);
    let d = x_shape.last().copied().unwrap_or(0);
    let slices = layer_norm_slices(xs.len(), d);
    let jobs = (slices.len() > 1 && dst.len() == xs.len())
        .then(|| row_parts(xs, d, &mut *dst, d, &slices))
        .flatten();
    if let Some(jobs) = jobs {
        // A slice of rows per thread (intra-op pool), each a whole call on its thread: every
        // row is computed alone, so the bits are one call's.
        return ctx.kernel(pool::try_run_each(jobs, |(n, xp, op)| {
            let xv = ArrayView2::from_shape((n, d), xp)
                .map_err(|e| shape_err("layer_norm", e.to_string()))?;
            let ov = ArrayViewMut2::from_shape((n, d), op)
                .map_err(|e| shape_err("layer_norm", e.to_string()))?;
            layer_norm_forward(xv.into_dyn(), g, b, epsilon, ov.into_dyn())
        }));
    }
    let xv = view(xs, x_shape, ctx)?;
    ctx.kernel(layer_norm_forward(
        xv,
        g,
        b,
        epsilon,
        view_mut(dst, out_shape, ctx)?,
    ))
}

/// The row ranges an inference layer norm of `len` values in rows of `d` splits between the
/// intra-op pool's threads: one per thread when the call has at least 2^15 values and every
/// thread gets a row, else one.
fn layer_norm_slices(len: usize, d: usize) -> Vec<(usize, usize)> {
    const SLICE_MIN_VALUES: usize = 1 << 15;
    let rows = len / d.max(1);
    let threads = pool::threads();
    if threads < 2 || d == 0 || rows < threads || len < SLICE_MIN_VALUES {
        return vec![(0, rows)];
    }
    batch_ranges(rows, threads)
}

/// Training forward of layer norm (the same in both semantics).
pub(crate) fn forward_layer_norm(
    f: ForwardStep<'_, '_, '_>,
    gamma: ParamId,
    beta: ParamId,
    epsilon: f32,
) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        out,
        ..
    } = f;
    let g = ctx.rank::<f32, Ix1>(param(ctx, params, gamma)?)?;
    let b = ctx.rank::<f32, Ix1>(param(ctx, params, beta)?)?;
    layer_norm_forward(env.f32(ctx.arg(step, 0)?)?, g, b, epsilon, out.view_mut())
        .map_err(|e| ctx.kernel(e))
}

/// Backward of layer norm: `dx` (when needed), `dgamma`, `dbeta`.
pub(crate) fn backward_layer_norm(
    b: BackwardStep<'_, '_, '_, '_>,
    gamma: ParamId,
    beta: ParamId,
    epsilon: f32,
) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        params,
        dy,
        grads,
        ..
    } = b;
    let v = ctx.arg(step, 0)?;
    let xv = env.f32(v)?;
    let gv = ctx.rank::<f32, Ix1>(param(ctx, params, gamma)?)?;
    let needed = grads.needs(v);
    let mut dx = grads.take_value(v)?;
    let mut dg = grads.take_param(gamma)?;
    let mut db = grads.take_param(beta)?;
    layer_norm_backward(
        xv,
        dy.view(),
        gv,
        epsilon,
        input_target(&mut dx, needed)?,
        ctx.rank_mut::<f32, Ix1>(dg.target()?)?,
        ctx.rank_mut::<f32, Ix1>(db.target()?)?,
    )
    .map_err(|e| ctx.kernel(e))?;
    grads.put_value(v, dx, needed);
    grads.put_param(gamma, dg);
    grads.put_param(beta, db);
    Ok(())
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match (&step.op, BatchNormIds::of(&step.op)) {
        (Op::Affine { scale, shift }, _) => super::affine::infer(s, scale, shift),
        (Op::BatchNorm { .. }, Some(p)) => infer_batch_norm(s, p),
        (
            Op::LayerNorm {
                gamma,
                beta,
                epsilon,
            },
            _,
        ) => infer_layer_norm(s, *gamma, *beta, *epsilon),
        (other, _) => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match (&step.op, BatchNormIds::of(&step.op)) {
        (Op::Affine { scale, shift }, _) => super::affine::forward(f, scale, shift),
        (Op::BatchNorm { .. }, Some(p)) => forward_batch_norm(f, p),
        (
            Op::LayerNorm {
                gamma,
                beta,
                epsilon,
            },
            _,
        ) => forward_layer_norm(f, *gamma, *beta, *epsilon),
        (other, _) => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match (&step.op, BatchNormIds::of(&step.op)) {
        (Op::Affine { scale, .. }, _) => super::affine::backward(b, scale),
        (Op::BatchNorm { .. }, Some(p)) => backward_batch_norm(b, p),
        (
            Op::LayerNorm {
                gamma,
                beta,
                epsilon,
            },
            _,
        ) => backward_layer_norm(b, *gamma, *beta, *epsilon),
        (other, _) => Err(super::misrouted_train(step, other)),
    }
}

/// The trainer's state for a normalization step: batch norm's batch statistics.
pub(crate) fn train_state(op: &Op) -> StepState {
    match op {
        Op::BatchNorm { .. } => {
            StepState::BatchNorm(crate::runtime::kernels::batch_norm::BatchNormStats::default())
        }
        _ => StepState::Stateless,
    }
}
