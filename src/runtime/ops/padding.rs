//! The padding mask a step reads (`ops::mask`): its inputs after the data input are integer
//! ids `[N, T]`, and a step is kept when any of them is non-zero there (Keras's mask of an
//! `embedding(..., mask_zero: true)`, ORed over merged inputs). Shared by the recurrent
//! layers, `bidirectional` and `global_avg_pool1d`.
//!
//! Input: the step and the interpreter's memory or the trainer's values. Output: the kept
//! steps `[N·T]` in time order, or `None` for a step without mask inputs.

use crate::plan::Step;
use crate::runtime::interp::exec::{plan_err, Ctx, Memory};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::rnn::keep_from_ids;
use crate::runtime::train::context::{Ctx as TrainCtx, Env};
use crate::runtime::train::{Input, TrainError};

/// The interpreter's view: the ids are in `memory.ints`.
pub(crate) fn infer_keep(ctx: &Ctx<'_>, memory: &Memory) -> Result<Option<Vec<bool>>, RunError> {
    let step = ctx.step;
    let Some(masks) = step.inputs.get(1..).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    let want: usize = ctx.shape(ctx.input(0)?)?.iter().take(2).product();
    let ids = masks
        .iter()
        .map(|&v| {
            memory
                .ints
                .get(v as usize)
                .map(Vec::as_slice)
                .filter(|ids| ids.len() == want)
                .ok_or_else(|| plan_err(step, "padding mask ids missing"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut keep = Vec::new();
    keep_from_ids(&ids, &mut keep);
    Ok(Some(keep))
}

/// The trainer's view: the ids are integer model inputs, as an embedding's are.
pub(crate) fn train_keep(
    step: &Step,
    ctx: &TrainCtx<'_>,
    env: &Env<'_, '_>,
) -> Result<Option<Vec<bool>>, TrainError> {
    let Some(masks) = step.inputs.get(1..).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    let mut ids = Vec::with_capacity(masks.len());
    for &v in masks {
        let flat: Vec<i64> = match env.input(v) {
            Some(Input::I32(a)) => a.iter().map(|&i| i64::from(i)).collect(),
            Some(Input::I64(a)) => a.iter().copied().collect(),
            _ => {
                return Err(ctx.unsupported(
                    "a padding mask must come from integer ids that are a model input",
                ))
            }
        };
        ids.push(flat);
    }
    let views: Vec<&[i64]> = ids.iter().map(Vec::as_slice).collect();
    let mut keep = Vec::new();
    keep_from_ids(&views, &mut keep);
    Ok(Some(keep))
}
