//! Dense (fully connected) layers: `y = act(x·kernel + bias)` over the last axis.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the op's attributes.
//! Output: the step's value (inference, training forward) or its gradients (backward).
//! Invariants: the activation is applied in place on the output after the product, and in
//! backward differentiated from `y` first; inference splits a large product's rows between
//! the pool's threads ([`row_slices`], the same bits as one call); an input that needs no gradient skips the
//! `dy·kernelᵀ` product ([`weight_grads`]).
//!
//! Fast path: a plan that is one linear dense step under the mse loss trains through
//! `kernels::dense_mse` (predictions, loss and weight gradients in one pass) instead of
//! [`forward`] + loss + [`backward`]; see `Trainer::dense_mse_forward` and the `## Fast paths`
//! table of ARCHITECTURE.md (proved equal by `train::tests::dense_mse`).

use ndarray::{ArrayViewD, ArrayViewMutD, Ix1, Ix2};

use crate::ir::{Activation, Op, ParamId};
use crate::runtime::interp::elementwise::bias_activation;
use crate::runtime::interp::exec::{view, view_mut, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::dense::{dense_backward, dense_forward, DenseGrads};
use crate::runtime::kernels::error::shape_err;
use crate::runtime::kernels::linalg::{column_sums, gemm};
use crate::runtime::kernels::{batch_ranges, row_parts};
use crate::runtime::pool;
use crate::runtime::train::backward::BackwardStep;
use crate::runtime::train::context::Ctx;
use crate::runtime::train::forward::{param, ForwardStep};
use crate::runtime::train::fused;
use crate::runtime::train::TrainError;

/// Inference: the product into the output, then bias and activation in one pass.
pub(crate) fn infer(
    s: InferStep<'_, '_>,
    kernel: ParamId,
    bias: Option<ParamId>,
    activation: Activation,
    units: usize,
) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let out_shape = ctx.shape(ctx.step.output)?;
    let x = ctx.input(0)?;
    let x_shape = ctx.shape(x)?;
    let xs = ctx.read(&memory.buffers, x)?;
    let k = ctx.matrix(kernel)?;
    let b = bias.map(|b| ctx.vector(b)).transpose()?;
    let (inp, width) = k.dim();
    let rows = dst.len() / units.max(1);
    let slices = row_slices(rows, inp.saturating_mul(width));
    let jobs = (slices.len() > 1 && xs.len() == rows * inp && x_shape.last() == Some(&inp))
        .then(|| row_parts(xs, inp, &mut *dst, units, &slices))
        .flatten();
    if let Some(jobs) = jobs {
        // A slice of rows per thread (intra-op pool), each a whole product on its thread: the
        // same bits as one call (every output element is one multiply-add chain in `k` order).
        return ctx.kernel(pool::try_run_each(jobs, |(n, xp, op)| {
            let xv = ndarray::ArrayView2::from_shape((n, inp), xp)
                .map_err(|e| shape_err("dense", e.to_string()))?;
            let ov = ndarray::ArrayViewMut2::from_shape((n, units), &mut *op)
                .map_err(|e| shape_err("dense", e.to_string()))?;
            dense_forward(xv.into_dyn(), k, None, ov.into_dyn())?;
            bias_activation(op, b, activation, units);
            Ok(())
        }));
    }
    let xv = view(xs, x_shape, ctx)?;
    ctx.kernel(dense_forward(xv, k, None, view_mut(dst, out_shape, ctx)?))?;
    bias_activation(dst, b, activation, units);
    Ok(())
}

/// The row ranges an inference dense step splits between the pool's threads: one per thread
/// when the product is large (at least 2^20 multiply-adds) and every slice keeps two rows or
/// more (a one-row product is a matrix-vector loop, which sums in another order), else one.
fn row_slices(rows: usize, macs_per_row: usize) -> Vec<(usize, usize)> {
    const SLICE_MIN_MACS: usize = 1 << 20;
    let threads = pool::threads();
    if threads < 2 || rows < 2 * threads || rows.saturating_mul(macs_per_row) < SLICE_MIN_MACS {
        return vec![(0, rows)];
    }
    batch_ranges(rows, threads)
}

/// Training forward: the product with its bias, then the activation in place.
pub(crate) fn forward(
    f: ForwardStep<'_, '_, '_>,
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
    let kv = ctx.rank::<f32, Ix2>(param(ctx, params, kernel)?)?;
    let bv = match bias {
        Some(b) => Some(ctx.rank::<f32, Ix1>(param(ctx, params, b)?)?),
        None => None,
    };
    let x = env.f32(ctx.arg(step, 0)?)?;
    dense_forward(x, kv, bv, out.view_mut()).map_err(|e| ctx.kernel(e))?;
    fused::apply(activation, out);
    Ok(())
}

/// Backward: the activation's derivative from `y`, then `dkernel`, `dbias` and (when input 0
/// needs it) `dx`.
pub(crate) fn backward(
    b: BackwardStep<'_, '_, '_, '_>,
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
    let xv = env.f32(v)?;
    let kv = ctx.rank::<f32, Ix2>(param(ctx, params, kernel)?)?;
    let needed = grads.needs(v);
    let mut dk = grads.take_param(kernel)?;
    let mut db = bias.map(|b| grads.take_param(b)).transpose()?;
    let dbias = match db.as_mut() {
        Some(s) => Some(s.target()?),
        None => None,
    };
    if needed {
        let mut dx = grads.take_value(v)?;
        let g = DenseGrads {
            dx: dx.target()?,
            dkernel: ctx.rank_mut::<f32, Ix2>(dk.target()?)?,
            dbias: match dbias {
                Some(d) => Some(ctx.rank_mut::<f32, Ix1>(d)?),
                None => None,
            },
        };
        dense_backward(xv, kv, dy.view(), g).map_err(|e| ctx.kernel(e))?;
        grads.put_value(v, dx, true);
    } else {
        weight_grads(ctx, &xv, &dy.view(), dk.target()?, dbias)?;
    }
    grads.put_param(kernel, dk);
    if let (Some(b), Some(s)) = (bias, db) {
        grads.put_param(b, s);
    }
    Ok(())
}

/// `dkernel = xᵀ·dy`, `dbias = Σ dy` for a dense step whose input needs no gradient.
fn weight_grads(
    ctx: &Ctx<'_>,
    x: &ArrayViewD<'_, f32>,
    dy: &ArrayViewD<'_, f32>,
    dkernel: ArrayViewMutD<'_, f32>,
    dbias: Option<ArrayViewMutD<'_, f32>>,
) -> Result<(), TrainError> {
    let mut dk = ctx.rank_mut::<f32, Ix2>(dkernel)?;
    let (inp, units) = dk.dim();
    let rows = x.len() / inp.max(1);
    let xs = x
        .as_slice()
        .ok_or_else(|| ctx.internal("x not contiguous"))?;
    let ds = dy
        .as_slice()
        .ok_or_else(|| ctx.internal("dy not contiguous"))?;
    let xm = ndarray::ArrayView2::from_shape((rows, inp), xs).map_err(|e| ctx.internal(e))?;
    let dm = ndarray::ArrayView2::from_shape((rows, units), ds).map_err(|e| ctx.internal(e))?;
    gemm("dense", 1.0, &xm.t(), &dm, 0.0, &mut dk).map_err(|e| ctx.internal(e))?;
    if let Some(db) = dbias {
        let mut db = ctx.rank_mut::<f32, Ix1>(db)?;
        let b = db
            .as_slice_mut()
            .ok_or_else(|| ctx.internal("dbias not contiguous"))?;
        column_sums(ds, units, b);
    }
    Ok(())
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Dense {
            kernel,
            bias,
            activation,
            units,
        } => infer(s, *kernel, *bias, *activation, *units),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Dense {
            kernel,
            bias,
            activation,
            ..
        } => forward(f, *kernel, *bias, *activation),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Dense {
            kernel,
            bias,
            activation,
            ..
        } => backward(b, *kernel, *bias, *activation),
        other => Err(super::misrouted_train(step, other)),
    }
}
