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

use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Ix1, Ix2, Ix3, Ix4, Slice};

use super::context::{self, Ctx, Env, StepState};
use super::error::TrainError;
use super::forward::param;
use super::fused;
use super::input::Input;
use super::params::ParamStore;
use super::slot::GradSlot;
use crate::ir::{Op, ParamId};
use crate::plan::Step;
use crate::runtime::kernels::activation::activation_backward;
use crate::runtime::kernels::batch_norm::{batch_norm_backward, BatchNormParams};
use crate::runtime::kernels::conv::Conv2dGrads;
use crate::runtime::kernels::conv_sliced::conv2d_backward_sliced;
use crate::runtime::kernels::dense::{dense_backward, DenseGrads};
use crate::runtime::kernels::dropout::dropout_backward;
use crate::runtime::kernels::embedding::embedding_backward;
use crate::runtime::kernels::layer_norm::layer_norm_backward;
use crate::runtime::kernels::linalg::{column_sums, gemm};
use crate::runtime::kernels::pool::{
    global_pool_backward, pool2d_backward_par, PoolBackward, PoolKind,
};
use crate::runtime::kernels::rnn::{rnn_backward_sliced, RnnGrads, RnnParams};

/// The gradient buffers a step writes into.
pub(crate) struct Grads<'g> {
    pub values: &'g mut [GradSlot],
    pub params: &'g mut [GradSlot],
    /// Which values need a gradient.
    pub needs: &'g [bool],
}

impl Grads<'_> {
    fn needs(&self, v: u32) -> bool {
        self.needs.get(v as usize).copied().unwrap_or(false)
    }

    /// Takes a value's slot out (to hold it alongside others); [`Self::put_value`] returns it.
    fn take_value(&mut self, v: u32) -> Result<GradSlot, TrainError> {
        self.values
            .get_mut(v as usize)
            .map(std::mem::take)
            .ok_or_else(|| TrainError::Internal(format!("no gradient slot for value {v}")))
    }

    fn put_value(&mut self, v: u32, mut slot: GradSlot, contributed: bool) {
        if contributed {
            slot.commit();
        }
        if let Some(s) = self.values.get_mut(v as usize) {
            *s = slot;
        }
    }

    fn take_param(&mut self, p: ParamId) -> Result<GradSlot, TrainError> {
        self.params
            .get_mut(p.index())
            .map(std::mem::take)
            .ok_or_else(|| TrainError::Internal(format!("no gradient slot for parameter {}", p.0)))
    }

    fn put_param(&mut self, p: ParamId, mut slot: GradSlot) {
        slot.commit();
        if let Some(s) = self.params.get_mut(p.index()) {
            *s = slot;
        }
    }
}

/// The write target of an input's slot: counted when the input needs a gradient.
fn input_target(slot: &mut GradSlot, needed: bool) -> Result<ArrayViewMutD<'_, f32>, TrainError> {
    if needed {
        slot.target()
    } else {
        slot.discard_target()
    }
}

/// Runs a single-input, parameter-free backward `f(x, dx)` for input 0, if it needs a gradient.
fn unary(
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

/// `dkernel = xᵀ·dy`, `dbias = Σ dy` for a dense step whose input needs no gradient.
fn dense_weight_grads(
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

/// Runs `step` backward given its output `y` and output gradient `dy`.
#[allow(clippy::too_many_arguments)]
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
    let ctx = &ctx;
    let k = |e| ctx.kernel(e);
    let p = |id| param(ctx, params, id);
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => {
            let StepState::Conv {
                workspace: ws,
                relu_in_pool,
            } = state
            else {
                return Err(ctx.internal("missing conv workspace"));
            };
            if !*relu_in_pool {
                fused::differentiate(*activation, y, dy);
            }
            let v = ctx.arg(step, 0)?;
            let xv = ctx.rank::<f32, Ix4>(env.f32(v)?)?;
            let geom = context::conv_geometry(ctx, window, xv.dim().1, xv.dim().2)?;
            let kv = ctx.rank::<f32, Ix4>(p(*kernel)?)?;
            let needed = grads.needs(v);
            let mut dx = grads.take_value(v)?;
            let mut dk = grads.take_param(*kernel)?;
            let mut db = bias.map(|b| grads.take_param(b)).transpose()?;
            let dbias = match db.as_mut() {
                Some(s) => Some(ctx.rank_mut::<f32, Ix1>(s.target()?)?),
                None => None,
            };
            let g = Conv2dGrads {
                dx: if needed {
                    Some(ctx.rank_mut::<f32, Ix4>(dx.target()?)?)
                } else {
                    None
                },
                dkernel: ctx.rank_mut::<f32, Ix4>(dk.target()?)?,
                dbias,
            };
            let dy4 = ctx.rank::<f32, Ix4>(dy.view())?;
            conv2d_backward_sliced(xv, kv, dy4, &geom, ws, g).map_err(k)?;
            grads.put_value(v, dx, needed);
            grads.put_param(*kernel, dk);
            if let (Some(b), Some(s)) = (bias, db) {
                grads.put_param(*b, s);
            }
        }
        Op::Dense {
            kernel,
            bias,
            activation,
            ..
        } => {
            fused::differentiate(*activation, y, dy);
            let v = ctx.arg(step, 0)?;
            let xv = env.f32(v)?;
            let kv = ctx.rank::<f32, Ix2>(p(*kernel)?)?;
            let needed = grads.needs(v);
            let mut dk = grads.take_param(*kernel)?;
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
                dense_backward(xv, kv, dy.view(), g).map_err(k)?;
                grads.put_value(v, dx, true);
            } else {
                dense_weight_grads(ctx, &xv, &dy.view(), dk.target()?, dbias)?;
            }
            grads.put_param(*kernel, dk);
            if let (Some(b), Some(s)) = (bias, db) {
                grads.put_param(*b, s);
            }
        }
        Op::MaxPool2d { window } | Op::AvgPool2d { window } => {
            let kind = if matches!(step.op, Op::MaxPool2d { .. }) {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let pp = context::pool_params(ctx, kind, window)?;
            let xv = ctx.rank::<f32, Ix4>(env.f32(ctx.arg(step, 0)?)?)?;
            let dy4 = ctx.rank::<f32, Ix4>(dy.view())?;
            let opts = PoolBackward {
                relu_input: matches!(state, StepState::Pool { relu_input: true }),
            };
            unary(ctx, step, grads, |dx| {
                let dx = ctx.rank_mut::<f32, Ix4>(dx)?;
                pool2d_backward_par(xv, dy4, &pp, dx, opts).map_err(k)
            })?;
        }
        Op::GlobalAvgPool2d | Op::GlobalMaxPool2d => {
            let kind = if matches!(step.op, Op::GlobalMaxPool2d) {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let xv = ctx.rank::<f32, Ix4>(env.f32(ctx.arg(step, 0)?)?)?;
            let dy2 = ctx.rank::<f32, Ix2>(dy.view())?;
            unary(ctx, step, grads, |dx| {
                global_pool_backward(xv, dy2, kind, ctx.rank_mut::<f32, Ix4>(dx)?).map_err(k)
            })?;
        }
        Op::Flatten | Op::Reshape { .. } | Op::Cast { .. } => {
            if matches!(
                env.input(ctx.arg(step, 0)?),
                Some(Input::I32(_) | Input::I64(_))
            ) {
                return Ok(());
            }
            unary(ctx, step, grads, |mut dx| {
                match (dx.as_slice_mut(), dy.as_slice()) {
                    (Some(d), Some(g)) if d.len() == g.len() => d.copy_from_slice(g),
                    _ => return Err(ctx.internal("reshape gradient of another size")),
                }
                Ok(())
            })?;
        }
        Op::BatchNorm {
            gamma,
            beta,
            epsilon,
            ..
        } => {
            let v = ctx.arg(step, 0)?;
            let xv = env.f32(v)?;
            let bp = BatchNormParams {
                gamma: ctx.rank::<f32, Ix1>(p(*gamma)?)?,
                beta: ctx.rank::<f32, Ix1>(p(*beta)?)?,
                epsilon: *epsilon,
            };
            let StepState::BatchNorm(stats) = state else {
                return Err(ctx.internal("missing batch statistics"));
            };
            let needed = grads.needs(v);
            let mut dx = grads.take_value(v)?;
            let mut dg = grads.take_param(*gamma)?;
            let mut db = grads.take_param(*beta)?;
            batch_norm_backward(
                xv,
                dy.view(),
                &bp,
                stats,
                input_target(&mut dx, needed)?,
                ctx.rank_mut::<f32, Ix1>(dg.target()?)?,
                ctx.rank_mut::<f32, Ix1>(db.target()?)?,
            )
            .map_err(k)?;
            grads.put_value(v, dx, needed);
            grads.put_param(*gamma, dg);
            grads.put_param(*beta, db);
        }
        Op::LayerNorm {
            gamma,
            beta,
            epsilon,
        } => {
            let v = ctx.arg(step, 0)?;
            let xv = env.f32(v)?;
            let gv = ctx.rank::<f32, Ix1>(p(*gamma)?)?;
            let needed = grads.needs(v);
            let mut dx = grads.take_value(v)?;
            let mut dg = grads.take_param(*gamma)?;
            let mut db = grads.take_param(*beta)?;
            layer_norm_backward(
                xv,
                dy.view(),
                gv,
                *epsilon,
                input_target(&mut dx, needed)?,
                ctx.rank_mut::<f32, Ix1>(dg.target()?)?,
                ctx.rank_mut::<f32, Ix1>(db.target()?)?,
            )
            .map_err(k)?;
            grads.put_value(v, dx, needed);
            grads.put_param(*gamma, dg);
            grads.put_param(*beta, db);
        }
        Op::Dropout { .. } => {
            let StepState::Dropout { mask, active } = state else {
                return Err(ctx.internal("missing dropout mask"));
            };
            let active = *active;
            unary(ctx, step, grads, |mut dx| {
                if active {
                    dropout_backward(dy.view(), mask.view(), dx).map_err(k)
                } else {
                    dx.assign(dy);
                    Ok(())
                }
            })?;
        }
        Op::Embedding { table } => {
            let mut dt = grads.take_param(*table)?;
            let target = ctx.rank_mut::<f32, Ix2>(dt.target()?)?;
            match env.input(ctx.arg(step, 0)?) {
                Some(Input::I32(ids)) => embedding_backward(ids.view(), dy.view(), target),
                Some(Input::I64(ids)) => embedding_backward(ids.view(), dy.view(), target),
                _ => return Err(ctx.unsupported("embedding ids must be an integer model input")),
            }
            .map_err(k)?;
            grads.put_param(*table, dt);
        }
        Op::Rnn {
            cell,
            kernel,
            recurrent,
            bias,
            ..
        } => {
            let v = ctx.arg(step, 0)?;
            let xv = ctx.rank::<f32, Ix3>(env.f32(v)?)?;
            let rp = RnnParams {
                kernel: ctx.rank::<f32, Ix2>(p(*kernel)?)?,
                recurrent: ctx.rank::<f32, Ix2>(p(*recurrent)?)?,
                bias: p(*bias)?,
            };
            let StepState::Rnn(cache) = state else {
                return Err(ctx.internal("missing recurrent cache"));
            };
            let needed = grads.needs(v);
            let mut dx = grads.take_value(v)?;
            let mut dk = grads.take_param(*kernel)?;
            let mut dr = grads.take_param(*recurrent)?;
            let mut db = grads.take_param(*bias)?;
            let g = RnnGrads {
                dx: ctx.rank_mut::<f32, Ix3>(input_target(&mut dx, needed)?)?,
                dkernel: ctx.rank_mut::<f32, Ix2>(dk.target()?)?,
                drecurrent: ctx.rank_mut::<f32, Ix2>(dr.target()?)?,
                dbias: db.target()?,
            };
            rnn_backward_sliced(context::rnn_cell(*cell), xv, &rp, cache, dy.view(), g)
                .map_err(k)?;
            grads.put_value(v, dx, needed);
            grads.put_param(*kernel, dk);
            grads.put_param(*recurrent, dr);
            grads.put_param(*bias, db);
        }
        Op::EmbeddedRnn { .. } => return Err(ctx.internal(super::INFERENCE_ONLY)),
        Op::Activation(a) => {
            let xv = env.f32(ctx.arg(step, 0)?)?;
            let act = context::activation(*a, xv.ndim());
            unary(ctx, step, grads, |dx| {
                activation_backward(act, xv, y.view(), dy.view(), dx).map_err(k)
            })?;
        }
        Op::Add => {
            for &v in &step.inputs {
                if grads.needs(v) {
                    let mut slot = grads.take_value(v)?;
                    let r = slot.target().map(|mut t| t.assign(dy));
                    grads.put_value(v, slot, r.is_ok());
                    r?;
                }
            }
        }
        Op::Concat { axis } => {
            let axis = context::concat_axis(ctx, *axis, dy.ndim())?;
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
        }
        Op::Affine { scale, .. } => {
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
            })?;
        }
    }
    Ok(())
}
