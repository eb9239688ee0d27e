//! Affine: `y = x·scale + shift` per channel (the last axis), with constant `scale` and
//! `shift` stored in the op (what `fold-batch-norm` leaves of a batch norm with no layer to
//! fold into).
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the constants.
//! Output: the step's value, or `dy·scale` for input 0. Invariants: no parameters, so no
//! parameter gradient; inference runs in place over input 0's copy.

use crate::runtime::interp::elementwise::affine_in_place;
use crate::runtime::interp::exec::{copy_first, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::train::backward::{unary, BackwardStep};
use crate::runtime::train::forward::{copy_flat, ForwardStep};
use crate::runtime::train::TrainError;

/// Inference: input 0's copy scaled and shifted in place.
pub(crate) fn infer(s: InferStep<'_, '_>, scale: &[f32], shift: &[f32]) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        out_b,
        dst,
        ..
    } = s;
    copy_first(ctx, memory, out_b, dst)?;
    affine_in_place(dst, scale, shift);
    Ok(())
}

/// Training forward: a copy of input 0, then `v·scale + shift` per channel.
pub(crate) fn forward(
    f: ForwardStep<'_, '_, '_>,
    scale: &[f32],
    shift: &[f32],
) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        out,
        ..
    } = f;
    copy_flat(ctx, &env.f32(ctx.arg(step, 0)?)?, out)?;
    let c = scale.len();
    let Some(o) = out.as_slice_mut().filter(|_| c > 0) else {
        return Err(ctx.internal("affine output not contiguous or no channels"));
    };
    for row in o.chunks_exact_mut(c) {
        for ((v, &a), &b) in row.iter_mut().zip(scale).zip(shift) {
            *v = *v * a + b;
        }
    }
    Ok(())
}

/// Backward: `dx = dy·scale` per channel.
pub(crate) fn backward(b: BackwardStep<'_, '_, '_, '_>, scale: &[f32]) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        dy,
        grads,
        ..
    } = b;
    let c = scale.len();
    unary(ctx, step, grads, |mut dx| {
        let (Some(d), Some(g)) = (dx.as_slice_mut(), dy.as_slice()) else {
            return Err(ctx.internal("affine gradient not contiguous"));
        };
        for (drow, grow) in d.chunks_exact_mut(c.max(1)).zip(g.chunks_exact(c.max(1))) {
            for ((o, &gv), &s) in drow.iter_mut().zip(grow).zip(scale) {
                *o = gv * s;
            }
        }
        Ok(())
    })
}
