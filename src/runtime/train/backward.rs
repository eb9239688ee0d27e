//! Backward of one plan step: from the gradient of its output to the gradients of its f32
//! inputs and of its parameters.
//!
//! Input: the step, the values of the last training forward ([`Env`]), the output `y` and its
//! complete gradient `dy` (every consumer of the output has already run, since steps are
//! visited in reverse plan order), and the state the forward kept. Output: contributions to
//! the input and parameter [`GradSlot`]s (overwritten on first write, added after). An input
//! that does not need a gradient (a model input, a value upstream of no trainable parameter)
//! gets none: dense skips the `dy·kernelᵀ` GEMM for it; kernels that always produce `dx`
//! write it into the slot without marking it written. Batch norm differentiates through the
//! batch statistics (training mode); fused activations are differentiated from `y` first.
//!
//! Each op's backward is its family's, in `runtime::ops` (dispatched by
//! `ops::backward_step`); this module holds the [`BackwardStep`] context and the gradient
//! slot plumbing ([`Grads`], [`unary`], [`input_target`]) they share.

use ndarray::{ArrayViewD, ArrayViewMutD};

use super::context::{Ctx, Env, StepState};
use super::error::TrainError;
use super::params::ParamStore;
use super::slot::GradSlot;
use crate::ir::ParamId;
use crate::plan::Step;

/// The gradient buffers a step writes into.
pub(crate) struct Grads<'g> {
    pub values: &'g mut [GradSlot],
    pub params: &'g mut [GradSlot],
    /// Which values need a gradient.
    pub needs: &'g [bool],
}

impl Grads<'_> {
    /// Whether value `v` needs a gradient.
    pub fn needs(&self, v: u32) -> bool {
        self.needs.get(v as usize).copied().unwrap_or(false)
    }

    /// Takes a value's slot out (to hold it alongside others); [`Self::put_value`] returns it.
    pub fn take_value(&mut self, v: u32) -> Result<GradSlot, TrainError> {
        self.values
            .get_mut(v as usize)
            .map(std::mem::take)
            .ok_or_else(|| TrainError::Internal(format!("no gradient slot for value {v}")))
    }

    pub fn put_value(&mut self, v: u32, mut slot: GradSlot, contributed: bool) {
        if contributed {
            slot.commit();
        }
        if let Some(s) = self.values.get_mut(v as usize) {
            *s = slot;
        }
    }

    pub fn take_param(&mut self, p: ParamId) -> Result<GradSlot, TrainError> {
        self.params
            .get_mut(p.index())
            .map(std::mem::take)
            .ok_or_else(|| TrainError::Internal(format!("no gradient slot for parameter {}", p.0)))
    }

    pub fn put_param(&mut self, p: ParamId, mut slot: GradSlot) {
        slot.commit();
        if let Some(s) = self.params.get_mut(p.index()) {
            *s = slot;
        }
    }
}

/// The write target of an input's slot: counted when the input needs a gradient.
pub(crate) fn input_target(
    slot: &mut GradSlot,
    needed: bool,
) -> Result<ArrayViewMutD<'_, f32>, TrainError> {
    if needed {
        slot.target()
    } else {
        slot.discard_target()
    }
}

/// Runs a single-input, parameter-free backward `f(x, dx)` for input 0, if it needs a gradient.
pub(crate) fn unary(
    ctx: &Ctx<'_>,
    step: &Step,
    grads: &mut Grads<'_>,
    f: impl FnOnce(ArrayViewMutD<'_, f32>) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let v = ctx.arg(step, 0)?;
    if !grads.needs(v) {
        return Ok(());
    }
    let mut slot = grads.take_value(v)?;
    let r = slot.target().and_then(f);
    grads.put_value(v, slot, r.is_ok());
    r
}

/// What one step's backward reads and writes: the step and its error [`Ctx`], the values of
/// the last training forward, the parameters, the state the forward kept, the output `y`, its
/// complete gradient `dy` (fused activations differentiate it in place) and the gradient
/// slots.
pub(crate) struct BackwardStep<'s, 'i, 'd, 'g> {
    pub step: &'s Step,
    pub ctx: &'s Ctx<'s>,
    pub env: &'s Env<'s, 'i>,
    pub params: &'s ParamStore,
    pub state: &'s mut StepState,
    pub y: ArrayViewD<'s, f32>,
    pub dy: &'s mut ArrayViewMutD<'d, f32>,
    pub grads: &'s mut Grads<'g>,
}

/// Runs `step` backward given its output `y` and output gradient `dy` (its family's
/// backward, see `runtime::ops`).
pub(crate) fn backward_step(
    step: &Step,
    env: &Env<'_, '_>,
    params: &ParamStore,
    state: &mut StepState,
    y: &ArrayViewD<'_, f32>,
    dy: &mut ArrayViewMutD<'_, f32>,
    grads: &mut Grads<'_>,
) -> Result<(), TrainError> {
    let ctx = Ctx::of(step);
    crate::runtime::ops::backward_step(BackwardStep {
        step,
        ctx: &ctx,
        env,
        params,
        state,
        y: y.view(),
        dy,
        grads,
    })
}
