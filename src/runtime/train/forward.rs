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

use ndarray::{ArrayViewMutD, Axis, Ix1, Ix2, Ix3, Ix4, Slice};
use rand_chacha::ChaCha8Rng;

use super::context::{self, Ctx, Env, StepState};
use super::error::TrainError;
use super::fused;
use super::input::Input;
use super::params::ParamStore;
use crate::ir::{Activation, DType, Op};
use crate::plan::Step;
use crate::runtime::kernels::activation::activation_forward;
use crate::runtime::kernels::batch_norm::{
    batch_norm_inference, batch_norm_train_forward, BatchNormParams,
};
use crate::runtime::kernels::conv::ConvForward;
use crate::runtime::kernels::conv_sliced::conv2d_forward_sliced;
use crate::runtime::kernels::dense::dense_forward;
use crate::runtime::kernels::dropout::dropout_forward;
use crate::runtime::kernels::embedding::embedding_forward;
use crate::runtime::kernels::layer_norm::layer_norm_forward;
use crate::runtime::kernels::pool::{global_pool_forward, pool2d_forward_par, PoolKind};
use crate::runtime::kernels::rnn::{rnn_forward_sliced, RnnParams};

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
fn copy_flat(
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

/// Runs `step` forward into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_step(
    step: &Step,
    env: &Env<'_, '_>,
    params: &ParamStore,
    state: &mut StepState,
    semantics: Semantics<'_>,
    out: &mut ArrayViewMutD<'_, f32>,
) -> Result<(), TrainError> {
    let ctx = Ctx::of(step);
    let ctx = &ctx;
    let x = || env.f32(ctx.arg(step, 0)?);
    let k = |e| ctx.kernel(e);
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => {
            let xv = ctx.rank::<f32, Ix4>(x()?)?;
            let geom = context::conv_geometry(ctx, window, xv.dim().1, xv.dim().2)?;
            let kv = ctx.rank::<f32, Ix4>(param(ctx, params, *kernel)?)?;
            let bv = match bias {
                Some(b) => Some(ctx.rank::<f32, Ix1>(param(ctx, params, *b)?)?),
                None => None,
            };
            let StepState::Conv { workspace: ws, .. } = state else {
                return Err(ctx.internal("missing conv workspace"));
            };
            // Relu runs in the convolution's store, as `fused::apply` would after it.
            let relu = matches!(activation, Activation::Relu);
            let opts = ConvForward {
                relu,
                parallel: true,
            };
            let ov = ctx.rank_mut::<f32, Ix4>(out.view_mut())?;
            conv2d_forward_sliced(xv, kv, bv, &geom, ws, ov, opts).map_err(k)?;
            if !relu {
                fused::apply(*activation, out);
            }
        }
        Op::Dense {
            kernel,
            bias,
            activation,
            ..
        } => {
            let kv = ctx.rank::<f32, Ix2>(param(ctx, params, *kernel)?)?;
            let bv = match bias {
                Some(b) => Some(ctx.rank::<f32, Ix1>(param(ctx, params, *b)?)?),
                None => None,
            };
            dense_forward(x()?, kv, bv, out.view_mut()).map_err(k)?;
            fused::apply(*activation, out);
        }
        Op::MaxPool2d { window } | Op::AvgPool2d { window } => {
            let kind = if matches!(step.op, Op::MaxPool2d { .. }) {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let p = context::pool_params(ctx, kind, window)?;
            pool2d_forward_par(
                ctx.rank::<f32, Ix4>(x()?)?,
                &p,
                ctx.rank_mut::<f32, Ix4>(out.view_mut())?,
            )
            .map_err(k)?;
        }
        Op::GlobalAvgPool2d | Op::GlobalMaxPool2d => {
            let kind = if matches!(step.op, Op::GlobalMaxPool2d) {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            global_pool_forward(
                ctx.rank::<f32, Ix4>(x()?)?,
                kind,
                ctx.rank_mut::<f32, Ix2>(out.view_mut())?,
            )
            .map_err(k)?;
        }
        Op::Flatten | Op::Reshape { .. } => copy_flat(ctx, &x()?, out)?,
        Op::BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            epsilon,
            ..
        } => {
            let p = BatchNormParams {
                gamma: ctx.rank::<f32, Ix1>(param(ctx, params, *gamma)?)?,
                beta: ctx.rank::<f32, Ix1>(param(ctx, params, *beta)?)?,
                epsilon: *epsilon,
            };
            match semantics {
                Semantics::Train(_) => {
                    let StepState::BatchNorm(stats) = state else {
                        return Err(ctx.internal("missing batch statistics"));
                    };
                    batch_norm_train_forward(x()?, &p, stats, out.view_mut()).map_err(k)?;
                }
                Semantics::Infer => {
                    let mm = ctx.rank::<f32, Ix1>(param(ctx, params, *mean)?)?;
                    let mv = ctx.rank::<f32, Ix1>(param(ctx, params, *variance)?)?;
                    batch_norm_inference(x()?, &p, mm, mv, out.view_mut()).map_err(k)?;
                }
            }
        }
        Op::LayerNorm {
            gamma,
            beta,
            epsilon,
        } => {
            let g = ctx.rank::<f32, Ix1>(param(ctx, params, *gamma)?)?;
            let b = ctx.rank::<f32, Ix1>(param(ctx, params, *beta)?)?;
            layer_norm_forward(x()?, g, b, *epsilon, out.view_mut()).map_err(k)?;
        }
        Op::Dropout { rate } => {
            let StepState::Dropout { mask, active } = state else {
                return Err(ctx.internal("missing dropout mask"));
            };
            match semantics {
                Semantics::Train(rng) if *rate > 0.0 => {
                    dropout_forward(x()?, *rate, rng, mask.view_mut(), out.view_mut())
                        .map_err(k)?;
                    *active = true;
                }
                _ => {
                    copy_flat(ctx, &x()?, out)?;
                    *active = false;
                }
            }
        }
        Op::Embedding { table } => {
            let t = ctx.rank::<f32, Ix2>(param(ctx, params, *table)?)?;
            match env.input(ctx.arg(step, 0)?) {
                Some(Input::I32(ids)) => embedding_forward(ids.view(), t, out.view_mut()),
                Some(Input::I64(ids)) => embedding_forward(ids.view(), t, out.view_mut()),
                _ => {
                    return Err(ctx.unsupported(
                        "embedding ids must be an integer model input (not a computed value)",
                    ))
                }
            }
            .map_err(k)?;
        }
        Op::Rnn {
            cell,
            return_sequences,
            kernel,
            recurrent,
            bias,
            ..
        } => {
            let p = RnnParams {
                kernel: ctx.rank::<f32, Ix2>(param(ctx, params, *kernel)?)?,
                recurrent: ctx.rank::<f32, Ix2>(param(ctx, params, *recurrent)?)?,
                bias: param(ctx, params, *bias)?,
            };
            let StepState::Rnn(cache) = state else {
                return Err(ctx.internal("missing recurrent cache"));
            };
            let xv = ctx.rank::<f32, Ix3>(x()?)?;
            rnn_forward_sliced(
                context::rnn_cell(*cell),
                xv,
                &p,
                *return_sequences,
                cache,
                out.view_mut(),
            )
            .map_err(k)?;
        }
        Op::EmbeddedRnn { .. } => return Err(ctx.internal(super::INFERENCE_ONLY)),
        Op::Activation(a) => {
            let xv = x()?;
            let act = context::activation(*a, xv.ndim());
            activation_forward(act, xv, out.view_mut()).map_err(k)?;
        }
        Op::Add => {
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
        }
        Op::Concat { axis } => {
            let axis = context::concat_axis(ctx, *axis, out.ndim())?;
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
        }
        Op::Cast { to } => {
            if *to != DType::F32 {
                return Err(ctx.unsupported("casts to integer types inside a training plan"));
            }
            let v = ctx.arg(step, 0)?;
            match env.input(v) {
                Some(Input::I32(ids)) => out
                    .iter_mut()
                    .zip(ids.iter())
                    .for_each(|(o, &i)| *o = i as f32),
                Some(Input::I64(ids)) => out
                    .iter_mut()
                    .zip(ids.iter())
                    .for_each(|(o, &i)| *o = i as f32),
                _ => copy_flat(ctx, &env.f32(v)?, out)?,
            }
        }
        Op::Affine { scale, shift } => {
            copy_flat(ctx, &x()?, out)?;
            let c = scale.len();
            let Some(o) = out.as_slice_mut().filter(|_| c > 0) else {
                return Err(ctx.internal("affine output not contiguous or no channels"));
            };
            for row in o.chunks_exact_mut(c) {
                for ((v, &a), &b) in row.iter_mut().zip(scale).zip(shift) {
                    *v = *v * a + b;
                }
            }
        }
    }
    Ok(())
}
