//! Merges of several inputs of one shape (add) or along one axis (concat).
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] (and the concat axis).
//! Output: the merged value, or each input's share of `dy`. Invariants: inference may add in
//! place over input 0's buffer (a repeated input then counts as a multiple, see
//! [`infer_add`]); a negative axis counts from the end.

use ndarray::{Axis, Slice};

use crate::ir::Op;
use crate::runtime::interp::elementwise::add_in_place;
use crate::runtime::interp::exec::{copy_first, plan_err, view, view_mut, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::merge::concat_forward;
use crate::runtime::train::backward::BackwardStep;
use crate::runtime::train::context;
use crate::runtime::train::forward::ForwardStep;
use crate::runtime::train::TrainError;

/// Inference of add: input 0 copied (or already in place), the others added to it.
pub(crate) fn infer_add(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        out_b,
        dst,
        ..
    } = s;
    let step = ctx.step;
    let first = ctx.input(0)?;
    copy_first(ctx, memory, out_b, dst)?;
    let in_out = ctx.buffer(first)? == out_b;
    // `add(x, x, ..)` in place over x: the copies of x still to add are in dst itself,
    // so they are added first, as a multiple (exact for two, within an ulp beyond).
    let again = step.inputs.iter().skip(1).filter(|&&v| v == first).count();
    if in_out && again > 0 {
        let times = (again + 1) as f32;
        for d in dst.iter_mut() {
            *d *= times;
        }
    }
    for &v in step.inputs.iter().skip(1) {
        if !(in_out && v == first) {
            add_in_place(dst, ctx.read(&memory.buffers, v)?);
        }
    }
    Ok(())
}

/// Inference of concat along `axis`.
pub(crate) fn infer_concat(s: InferStep<'_, '_>, axis: i64) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let step = ctx.step;
    let out_shape = ctx.shape(step.output)?;
    let rank = out_shape.len() as i64;
    let ax = if axis < 0 { rank + axis } else { axis };
    let ax = usize::try_from(ax).map_err(|_| plan_err(step, "bad concat axis"))?;
    let inputs = step
        .inputs
        .iter()
        .map(|&v| view(ctx.read(&memory.buffers, v)?, ctx.shape(v)?, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    ctx.kernel(concat_forward(&inputs, ax, view_mut(dst, out_shape, ctx)?))
}

/// Training forward of add: the inputs summed in order.
pub(crate) fn forward_add(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        out,
        ..
    } = f;
    let mut first = true;
    for &v in &step.inputs {
        let xv = env.f32(v)?;
        if xv.shape() != out.shape() {
            return Err(ctx.internal("add inputs differ in shape"));
        }
        if first {
            out.assign(&xv);
            first = false;
        } else {
            *out += &xv;
        }
    }
    Ok(())
}

/// Training forward of concat along `axis`.
pub(crate) fn forward_concat(f: ForwardStep<'_, '_, '_>, axis: i64) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        out,
        ..
    } = f;
    let axis = context::concat_axis(ctx, axis, out.ndim())?;
    let mut at = 0usize;
    for &v in &step.inputs {
        let xv = env.f32(v)?;
        let len = xv.shape().get(axis).copied().unwrap_or(0);
        let end = at + len;
        if end > out.shape()[axis] {
            return Err(ctx.internal("concat inputs exceed the output"));
        }
        let mut dst = out.slice_axis_mut(Axis(axis), Slice::from(at..end));
        if dst.shape() != xv.shape() {
            return Err(ctx.internal("concat inputs differ off the axis"));
        }
        dst.assign(&xv);
        at = end;
    }
    Ok(())
}

/// Backward of add: `dy` to every input that needs a gradient.
pub(crate) fn backward_add(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let BackwardStep {
        step, dy, grads, ..
    } = b;
    for &v in &step.inputs {
        if grads.needs(v) {
            let mut slot = grads.take_value(v)?;
            if slot.contribute(&dy.view()) {
                grads.put_value(v, slot, false);
                continue;
            }
            let r = slot.target().map(|mut t| t.assign(dy));
            grads.put_value(v, slot, r.is_ok());
            r?;
        }
    }
    Ok(())
}

/// Backward of concat: each input's slice of `dy` along `axis`.
pub(crate) fn backward_concat(
    b: BackwardStep<'_, '_, '_, '_>,
    axis: i64,
) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        dy,
        grads,
        ..
    } = b;
    let axis = context::concat_axis(ctx, axis, dy.ndim())?;
    let mut at = 0usize;
    for &v in &step.inputs {
        let len = env.f32(v)?.shape().get(axis).copied().unwrap_or(0);
        let end = at + len;
        if end > dy.shape()[axis] {
            return Err(ctx.internal("concat inputs exceed the output"));
        }
        if grads.needs(v) {
            let part = dy.slice_axis(Axis(axis), Slice::from(at..end));
            let mut slot = grads.take_value(v)?;
            let r = slot.target().map(|mut t| t.assign(&part));
            grads.put_value(v, slot, r.is_ok());
            r?;
        }
        at = end;
    }
    Ok(())
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Add => infer_add(s),
        Op::Concat { axis } => infer_concat(s, *axis),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Add => forward_add(f),
        Op::Concat { axis } => forward_concat(f, *axis),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Add => backward_add(b),
        Op::Concat { axis } => backward_concat(b, *axis),
        other => Err(super::misrouted_train(step, other)),
    }
}
