//! The fused dense + mse training step, a fast path of the dense family (`ops::dense`).
//!
//! Taken when the plan is one linear dense step from an f32 model input to the output, the
//! loss is mse and input gradients are not asked for (the linear regression of
//! `specs/linear_regression.model`): `kernels::dense_mse` computes the predictions (into the
//! output's buffer), the loss and the kernel and bias gradients in one pass over the input,
//! instead of a forward that reads it, the loss, and a backward that reads it again. The
//! numbers are the unfused ones up to f32 summation order (fixed, so still deterministic):
//! `train::tests::dense_mse::fused_step_matches_the_unfused_forward_loss_and_backward`. The
//! gradients land in the parameters' slots only once the loss is known to be finite, as with
//! backward. A batch the kernel cannot take (a strided input, targets of another shape or
//! kind, an empty batch) runs unfused, which reports the problem as usual.
//!
//! Input: the trainer, the batch and its targets. Output: the loss and the parameters'
//! gradients, or `None` (nothing computed) when the plan, loss or batch do not fit.

use ndarray::{Ix1, Ix2};

use super::context::Ctx;
use super::error::{internal, TrainError};
use super::forward;
use super::input::Input;
use super::run::zero_unreached;
use super::slot::GradSlot;
use super::Trainer;
use crate::ir::{Activation, Op, ParamId};
use crate::runtime::kernels::dense_mse::{dense_mse_step, DenseMse, DenseMseOut};
use crate::runtime::loss::{Loss, Targets};

/// The parameters of a fused dense + mse step, and its loss.
pub(super) struct DenseMseStep {
    pub loss: f32,
    kernel: ParamId,
    bias: Option<ParamId>,
}

impl Trainer {
    /// The fused dense + mse forward (see the module doc) when the plan, loss and batch fit
    /// it: predictions into the output's buffer, gradients into `dense_mse_grads`. `None`
    /// (nothing computed) when they do not.
    pub(super) fn dense_mse_forward(
        &mut self,
        inputs: &[Input<'_>],
        targets: &Targets<'_>,
        loss: Loss,
    ) -> Result<Option<DenseMseStep>, TrainError> {
        let (Targets::Dense(t), Loss::MeanSquaredError, true) =
            (targets, loss, self.fuse_dense_mse)
        else {
            return Ok(None);
        };
        let [step] = self.plan.steps.as_slice() else {
            return Ok(None);
        };
        let (
            Op::Dense {
                kernel,
                bias,
                activation: Activation::Linear,
                ..
            },
            &[v],
        ) = (&step.op, step.inputs.as_slice())
        else {
            return Ok(None);
        };
        let (kernel, bias, v, o) = (*kernel, *bias, v as usize, step.output as usize);
        let plain_input = self.input_pos.get(v).copied().flatten().is_some()
            && !self.needs.get(v).copied().unwrap_or(true);
        if step.output != self.output || !plain_input {
            return Ok(None);
        }
        self.prepare(inputs)?;
        self.trained_forward = false;
        let Self {
            plan,
            params,
            values,
            input_pos,
            dense_mse_grads,
            ..
        } = self;
        let x = input_pos
            .get(v)
            .copied()
            .flatten()
            .and_then(|k| inputs.get(k));
        let Some(Input::F32(x)) = x else {
            return Ok(None);
        };
        let step = plan
            .steps
            .first()
            .ok_or_else(|| internal("the dense step is gone"))?;
        let ctx = Ctx::of(step);
        let kv = ctx.rank::<f32, Ix2>(forward::param(&ctx, params, kernel)?)?;
        let bv = match bias {
            Some(b) => Some(ctx.rank::<f32, Ix1>(forward::param(&ctx, params, b)?)?),
            None => None,
        };
        let (features, units) = kv.dim();
        let Some(out) = values.get_mut(o).and_then(Option::as_mut) else {
            return Err(internal("the output has no buffer"));
        };
        // Row-major rows of `features` and targets shaped like the output; anything else runs
        // unfused (which reports what is wrong with it).
        let rows = out.len() / units.max(1);
        let fits = x.shape().last() == Some(&features)
            && x.len() == rows * features
            && out.shape().last() == Some(&units)
            && t.shape() == out.shape()
            && !out.is_empty()
            && x.is_standard_layout()
            && t.is_standard_layout();
        let (Some(xs), Some(ts), Some(ps), true) =
            (x.as_slice(), t.as_slice(), out.as_slice_mut(), fits)
        else {
            return Ok(None);
        };
        let mat = |data| ndarray::ArrayView2::from_shape((rows, features), data);
        let shaped = |e: ndarray::ShapeError| ctx.internal(e);
        dense_mse_grads.clear();
        dense_mse_grads.resize(features * units + units, 0.0);
        let (dk, db) = dense_mse_grads.split_at_mut(features * units);
        let input = DenseMse {
            x: mat(xs).map_err(shaped)?,
            kernel: kv,
            bias: bv,
            targets: ndarray::ArrayView2::from_shape((rows, units), ts).map_err(shaped)?,
        };
        let grads = DenseMseOut {
            pred: ndarray::ArrayViewMut2::from_shape((rows, units), ps).map_err(shaped)?,
            dkernel: ndarray::ArrayViewMut2::from_shape((features, units), dk).map_err(shaped)?,
            dbias: bias.map(|_| ndarray::ArrayViewMut1::from(db)),
        };
        let loss = dense_mse_step(&input, grads).map_err(|e| ctx.kernel(e))?;
        self.trained_forward = true;
        Ok(Some(DenseMseStep { loss, kernel, bias }))
    }

    /// Puts the fused dense + mse gradients into the parameters' slots, where backward would.
    pub(super) fn commit_dense_mse(&mut self, fused: &DenseMseStep) -> Result<(), TrainError> {
        self.value_grads.iter_mut().for_each(GradSlot::reset);
        self.param_grads.iter_mut().for_each(GradSlot::reset);
        let len = self
            .plan
            .params
            .get(fused.kernel.index())
            .map_or(0, |p| p.shape.iter().product());
        let (dk, db) = self
            .dense_mse_grads
            .split_at_checked(len)
            .ok_or_else(|| internal("fused dense + mse gradients missing"))?;
        let parts = [Some((fused.kernel, dk)), fused.bias.map(|b| (b, db))];
        for (p, g) in parts.into_iter().flatten() {
            let slot = self
                .param_grads
                .get_mut(p.index())
                .ok_or_else(|| internal("no gradient slot for a dense parameter"))?;
            match slot.target()?.as_slice_mut() {
                Some(d) if d.len() == g.len() => d.copy_from_slice(g),
                _ => return Err(internal("fused dense + mse gradient of another size")),
            }
            slot.commit();
        }
        zero_unreached(&mut self.param_grads, &self.trainable);
        Ok(())
    }
}
