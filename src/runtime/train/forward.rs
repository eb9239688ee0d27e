//! Forward of one plan step into its (pre-sized) output buffer, in training or inference
//! semantics.
//!
//! Input: the step, the values it reads ([`Env`]), the parameters and the step's state.
//! Output: the step's value written into `out`, and in training mode whatever backward needs
//! kept in [`StepState`] (conv workspace, recurrent cache, batch statistics, dropout mask).
//! Training semantics: batch norm normalizes with the batch statistics (the moving-average
//! update is left to the caller, after the step is known to be finite), dropout draws its mask
//! from `rng`. Inference semantics: batch norm uses the moving statistics, dropout is the
//! identity. Fused conv/dense activations are applied in place on the output.
//!
//! Each op's forward is its family's, in `runtime::ops` (dispatched by
//! `ops::forward_step`); this module holds what every op's forward shares: the
//! [`ForwardStep`] context, parameter views and the flat copy.

use ndarray::ArrayViewMutD;
use rand_chacha::ChaCha8Rng;

use super::context::{Ctx, Env, StepState};
use super::error::TrainError;
use super::params::ParamStore;
use crate::plan::Step;

/// Training (with the step's dropout stream) or inference.
pub(crate) enum Semantics<'r> {
    Train(&'r mut ChaCha8Rng),
    Infer,
}

/// A parameter's view, or an internal error.
pub(crate) fn param<'p>(
    ctx: &Ctx<'_>,
    params: &'p ParamStore,
    id: crate::ir::ParamId,
) -> Result<ndarray::ArrayViewD<'p, f32>, TrainError> {
    params
        .view(id.index())
        .ok_or_else(|| ctx.internal(format!("parameter {} does not exist", id.0)))
}

/// Copies `src` into `out` element by element (row-major); shapes may differ, counts may not.
pub(crate) fn copy_flat(
    ctx: &Ctx<'_>,
    src: &ndarray::ArrayViewD<'_, f32>,
    out: &mut ArrayViewMutD<'_, f32>,
) -> Result<(), TrainError> {
    if src.len() != out.len() {
        return Err(ctx.internal(format!("{} elements into {}", src.len(), out.len())));
    }
    match (src.as_slice(), out.as_slice_mut()) {
        (Some(s), Some(o)) => o.copy_from_slice(s),
        _ => out.iter_mut().zip(src.iter()).for_each(|(o, &v)| *o = v),
    }
    Ok(())
}

/// What one step's training forward reads and writes: the step and its error [`Ctx`], the
/// values computed so far, the parameters, the step's kept state, the semantics and the
/// step's (pre-sized) output.
pub(crate) struct ForwardStep<'s, 'i, 'o> {
    pub step: &'s Step,
    pub ctx: &'s Ctx<'s>,
    pub env: &'s Env<'s, 'i>,
    pub params: &'s ParamStore,
    pub state: &'s mut StepState,
    pub semantics: Semantics<'s>,
    pub out: &'s mut ArrayViewMutD<'o, f32>,
}

/// Runs `step` forward into `out` (its family's forward, see `runtime::ops`).
pub(crate) fn forward_step(
    step: &Step,
    env: &Env<'_, '_>,
    params: &ParamStore,
    state: &mut StepState,
    semantics: Semantics<'_>,
    out: &mut ArrayViewMutD<'_, f32>,
) -> Result<(), TrainError> {
    let ctx = Ctx::of(step);
    crate::runtime::ops::forward_step(ForwardStep {
        step,
        ctx: &ctx,
        env,
        params,
        state,
        semantics,
        out,
    })
}
