//! Dropout: in training, each element zeroed with probability `rate` and the rest scaled by
//! `1 / (1 − rate)`; in inference, the identity.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the rate. Output:
//! the step's value, or `dy` through the kept mask. Invariants: the mask is drawn from the
//! step's own ChaCha8 stream (`Semantics::Train`), kept in `StepState::Dropout` for backward,
//! with `active` false when the forward was the identity (inference semantics or rate 0).

use crate::ir::Op;
use crate::runtime::interp::exec::InferStep;
use crate::runtime::interp::RunError;
use crate::runtime::kernels::dropout::{dropout_backward, dropout_forward};
use crate::runtime::train::backward::{unary, BackwardStep};
use crate::runtime::train::context::StepState;
use crate::runtime::train::forward::{copy_flat, ForwardStep, Semantics};
use crate::runtime::train::TrainError;

/// Inference: the identity (a copy unless in place).
pub(crate) fn infer(s: InferStep<'_, '_>) -> Result<(), RunError> {
    super::reshape::infer(s)
}

/// Training forward: a fresh mask in training semantics with `rate > 0`, else a copy.
pub(crate) fn forward(f: ForwardStep<'_, '_, '_>, rate: f32) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        state,
        semantics,
        out,
        ..
    } = f;
    let x = || env.f32(ctx.arg(step, 0)?);
    let StepState::Dropout { mask, active } = state else {
        return Err(ctx.internal("missing dropout mask"));
    };
    match semantics {
        Semantics::Train(rng) if rate > 0.0 => {
            dropout_forward(x()?, rate, rng, mask.view_mut(), out.view_mut())
                .map_err(|e| ctx.kernel(e))?;
            *active = true;
        }
        _ => {
            copy_flat(ctx, &x()?, out)?;
            *active = false;
        }
    }
    Ok(())
}

/// Backward: `dy` through the mask of the last forward (or unchanged when it was inactive).
pub(crate) fn backward(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        state,
        dy,
        grads,
        ..
    } = b;
    let StepState::Dropout { mask, active } = state else {
        return Err(ctx.internal("missing dropout mask"));
    };
    let active = *active;
    unary(ctx, step, grads, |mut dx| {
        if active {
            dropout_backward(dy.view(), mask.view(), dx).map_err(|e| ctx.kernel(e))
        } else {
            dx.assign(dy);
            Ok(())
        }
    })
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Dropout { .. } => infer(s),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Dropout { rate } => forward(f, *rate),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Dropout { .. } => backward(b),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The trainer's state for a dropout step: its mask, drawn each training step.
pub(crate) fn train_state(op: &Op) -> StepState {
    match op {
        Op::Dropout { .. } => StepState::Dropout {
            mask: ndarray::ArrayD::zeros(ndarray::IxDyn(&[0])),
            active: false,
        },
        _ => StepState::Stateless,
    }
}
