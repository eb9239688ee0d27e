//! The attention family's runtime: multi-head attention and position embedding, inference,
//! training forward and backward side by side.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`]. Output: the step's value,
//! or its contributions to the gradients. Invariants: multi-head attention's inputs are
//! `[query, value]` or `[query, value, key]` (the key is the value when absent); the
//! interpreter keeps per-slice scratch in its step state, the trainer a [`MhaCache`] (the
//! projections, probabilities and dropout mask of the last training forward); dropout draws
//! from the step's ChaCha stream only in training semantics. An input read twice (self
//! attention) receives the sum of its gradients through its slot. Position embedding may run
//! in place over its input.

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::ir::{Op, ParamId};
use crate::runtime::interp::exec::{copy_first, plan_err, InferStep, StepState as InferState};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::attention::backward::{
    core_backward, output_backward, projection_backward, OutputGrads, ProjectionGrads, Which,
};
use crate::runtime::kernels::attention::{
    mha_forward, position_backward, position_forward, MhaCache, MhaInputs, MhaScratch, MhaShape,
    MhaStore, MhaWeights, Projection,
};
use crate::runtime::train::backward::{unary, BackwardStep};
use crate::runtime::train::context::{Ctx, StepState as TrainState};
use crate::runtime::train::forward::{param, ForwardStep, Semantics};
use crate::runtime::train::ParamStore;
use crate::runtime::train::TrainError;

/// The attributes of a multi-head attention op the runtime reads.
#[derive(Clone, Copy, Debug)]
struct Attn {
    heads: usize,
    key_dim: usize,
    value_dim: usize,
    dropout: f32,
    causal: bool,
    /// query, key, value and output kernels and biases, in that order.
    params: [ParamId; 8],
}

fn attn(op: &Op) -> Option<Attn> {
    let Op::MultiHeadAttention {
        heads,
        key_dim,
        value_dim,
        dropout,
        causal,
        query_kernel,
        query_bias,
        key_kernel,
        key_bias,
        value_kernel,
        value_bias,
        output_kernel,
        output_bias,
    } = *op
    else {
        return None;
    };
    Some(Attn {
        heads,
        key_dim,
        value_dim,
        dropout,
        causal,
        params: [
            query_kernel,
            query_bias,
            key_kernel,
            key_bias,
            value_kernel,
            value_bias,
            output_kernel,
            output_bias,
        ],
    })
}

/// The input positions of query, key and value among the step's inputs.
fn input_slots(count: usize) -> Option<[usize; 3]> {
    match count {
        2 => Some([0, 1, 1]),
        3 => Some([0, 2, 1]),
        _ => None,
    }
}

/// The call's sizes from the three inputs' shapes (`[N, T, d]` each).
fn mha_shape(a: &Attn, q: &[usize], k: &[usize], v: &[usize]) -> Option<MhaShape> {
    let (&[n, tq, dq], &[_, tv, dk], &[_, _, dv]) = (q, k, v) else {
        return None;
    };
    Some(MhaShape {
        batch: n,
        tq,
        tv,
        dq,
        dk,
        dv,
        heads: a.heads,
        key_dim: a.key_dim,
        value_dim: a.value_dim,
    })
}

fn weights_from<'w>(p: &[&'w [f32]; 8]) -> MhaWeights<'w> {
    let proj = |i: usize| Projection {
        kernel: p[i],
        bias: p[i + 1],
    };
    MhaWeights {
        query: proj(0),
        key: proj(2),
        value: proj(4),
        output: proj(6),
    }
}

/// Inference of multi-head attention.
fn infer_mha(s: InferStep<'_, '_>, a: Attn) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        dst,
        state,
        ..
    } = s;
    let step = ctx.step;
    let [iq, ik, iv] =
        input_slots(step.inputs.len()).ok_or_else(|| plan_err(step, "attention input count"))?;
    let (q, k, v) = (ctx.input(iq)?, ctx.input(ik)?, ctx.input(iv)?);
    let shape = mha_shape(&a, ctx.shape(q)?, ctx.shape(k)?, ctx.shape(v)?)
        .ok_or_else(|| plan_err(step, "attention inputs are not [N, T, d]"))?;
    let mut p: [&[f32]; 8] = [&[]; 8];
    for (slot, &id) in p.iter_mut().zip(&a.params) {
        *slot = ctx.vector(id)?;
    }
    let x = MhaInputs {
        query: ctx.read(&memory.buffers, q)?,
        key: ctx.read(&memory.buffers, k)?,
        value: ctx.read(&memory.buffers, v)?,
    };
    if !matches!(state, InferState::Attention(_)) {
        *state = InferState::Attention(Box::default());
    }
    let InferState::Attention(scratch) = state else {
        return Err(plan_err(step, "attention scratch missing"));
    };
    let store = MhaStore::Infer(scratch);
    ctx.kernel(mha_forward(
        &shape,
        &weights_from(&p),
        &x,
        a.causal,
        store,
        dst,
    ))
}

/// A flat view of a standard-layout array, or an internal error.
fn flat<'v>(ctx: &Ctx<'_>, a: &'v ArrayViewD<'_, f32>) -> Result<&'v [f32], TrainError> {
    a.as_slice()
        .ok_or_else(|| ctx.internal("a tensor is not contiguous"))
}

fn flat_mut<'v>(
    ctx: &Ctx<'_>,
    a: &'v mut ArrayViewMutD<'_, f32>,
) -> Result<&'v mut [f32], TrainError> {
    a.as_slice_mut()
        .ok_or_else(|| ctx.internal("a tensor is not contiguous"))
}

/// The eight parameters as views.
fn param_views<'p>(
    ctx: &Ctx<'_>,
    params: &'p ParamStore,
    ids: &[ParamId; 8],
) -> Result<Vec<ArrayViewD<'p, f32>>, TrainError> {
    ids.iter().map(|&id| param(ctx, params, id)).collect()
}

fn as_eight<'a>(
    ctx: &Ctx<'_>,
    views: &'a [ArrayViewD<'_, f32>],
) -> Result<[&'a [f32]; 8], TrainError> {
    let mut out: [&[f32]; 8] = [&[]; 8];
    for (o, v) in out.iter_mut().zip(views) {
        *o = flat(ctx, v)?;
    }
    Ok(out)
}

/// Training forward of multi-head attention (dropout only in training semantics).
fn forward_mha(f: ForwardStep<'_, '_, '_>, a: Attn) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        state,
        semantics,
        out,
    } = f;
    let [iq, ik, iv] =
        input_slots(step.inputs.len()).ok_or_else(|| ctx.internal("attention input count"))?;
    let (q, k, v) = (
        env.f32(ctx.arg(step, iq)?)?,
        env.f32(ctx.arg(step, ik)?)?,
        env.f32(ctx.arg(step, iv)?)?,
    );
    let shape = mha_shape(&a, q.shape(), k.shape(), v.shape())
        .ok_or_else(|| ctx.internal("attention inputs are not [N, T, d]"))?;
    let views = param_views(ctx, params, &a.params)?;
    let p = as_eight(ctx, &views)?;
    let x = MhaInputs {
        query: flat(ctx, &q)?,
        key: flat(ctx, &k)?,
        value: flat(ctx, &v)?,
    };
    let TrainState::Attention(cache) = state else {
        return Err(ctx.internal("missing attention cache"));
    };
    let dropout = match semantics {
        Semantics::Train(rng) if a.dropout > 0.0 => Some((a.dropout, rng)),
        _ => None,
    };
    let store = MhaStore::Train { cache, dropout };
    let o = flat_mut(ctx, out)?;
    mha_forward(&shape, &weights_from(&p), &x, a.causal, store, o).map_err(|e| ctx.kernel(e))
}

/// Backward of multi-head attention: every parameter's gradient, and each input's that needs
/// one (an input read as two of query, key and value gets both contributions).
fn backward_mha(b: BackwardStep<'_, '_, '_, '_>, a: Attn) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        params,
        state,
        dy,
        grads,
        ..
    } = b;
    let TrainState::Attention(cache) = state else {
        return Err(ctx.internal("missing attention cache"));
    };
    let views = param_views(ctx, params, &a.params)?;
    let p = as_eight(ctx, &views)?;
    let w = weights_from(&p);
    let dyv = dy.view();
    let dys = flat(ctx, &dyv)?;
    let [wq, bq, wk, bk, wv, bv, wo, bo] = a.params;
    {
        let mut dk = grads.take_param(wo)?;
        let mut db = grads.take_param(bo)?;
        let (mut tk, mut tb) = (dk.target()?, db.target()?);
        let g = OutputGrads {
            dkernel: flat_mut(ctx, &mut tk)?,
            dbias: flat_mut(ctx, &mut tb)?,
        };
        let r = output_backward(cache, w.output.kernel, dys, g).map_err(|e| ctx.kernel(e));
        grads.put_param(wo, dk);
        grads.put_param(bo, db);
        r?;
    }
    core_backward(cache).map_err(|e| ctx.kernel(e))?;
    let [iq, ik, iv] =
        input_slots(step.inputs.len()).ok_or_else(|| ctx.internal("attention input count"))?;
    for (which, slot, kernel, bias, proj) in [
        (Which::Query, iq, wq, bq, w.query),
        (Which::Key, ik, wk, bk, w.key),
        (Which::Value, iv, wv, bv, w.value),
    ] {
        let v = ctx.arg(step, slot)?;
        let x = env.f32(v)?;
        let mut dk = grads.take_param(kernel)?;
        let mut db = grads.take_param(bias)?;
        let mut dx = if grads.needs(v) {
            Some(grads.take_value(v)?)
        } else {
            None
        };
        let r = (|| {
            let (mut tk, mut tb) = (dk.target()?, db.target()?);
            let mut tx = dx.as_mut().map(|s| s.target()).transpose()?;
            let g = ProjectionGrads {
                dkernel: flat_mut(ctx, &mut tk)?,
                dbias: flat_mut(ctx, &mut tb)?,
                dx: match tx.as_mut() {
                    Some(t) => Some(flat_mut(ctx, t)?),
                    None => None,
                },
            };
            projection_backward(cache, which, flat(ctx, &x)?, proj, g).map_err(|e| ctx.kernel(e))
        })();
        grads.put_param(kernel, dk);
        grads.put_param(bias, db);
        if let Some(s) = dx {
            grads.put_value(v, s, r.is_ok());
        }
        r?;
    }
    Ok(())
}

/// The `(T, d)` of a `[N, T, d]` shape.
fn sequence_dims(shape: &[usize]) -> Option<(usize, usize)> {
    match *shape {
        [_, t, d] => Some((t, d)),
        _ => None,
    }
}

/// Inference of position embedding: the input (copied, or already in place) plus the rows.
fn infer_position(s: InferStep<'_, '_>, table: ParamId) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        out_b,
        dst,
        ..
    } = s;
    let step = ctx.step;
    copy_first(ctx, memory, out_b, dst)?;
    let dims = sequence_dims(ctx.shape(step.output)?)
        .ok_or_else(|| plan_err(step, "position embedding input is not [N, T, d]"))?;
    ctx.kernel(position_forward(None, ctx.vector(table)?, dims, dst))
}

/// Training forward of position embedding.
fn forward_position(f: ForwardStep<'_, '_, '_>, table: ParamId) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        out,
        ..
    } = f;
    let x = env.f32(ctx.arg(step, 0)?)?;
    let dims = sequence_dims(x.shape())
        .ok_or_else(|| ctx.internal("position embedding input is not [N, T, d]"))?;
    let t = param(ctx, params, table)?;
    let (xs, ts) = (flat(ctx, &x)?, flat(ctx, &t)?);
    position_forward(Some(xs), ts, dims, flat_mut(ctx, out)?).map_err(|e| ctx.kernel(e))
}

/// Backward of position embedding: `dx = dy`, the table's rows the sums over the batch.
fn backward_position(b: BackwardStep<'_, '_, '_, '_>, table: ParamId) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        dy,
        grads,
        ..
    } = b;
    let dims = sequence_dims(dy.shape())
        .ok_or_else(|| ctx.internal("position embedding gradient is not [N, T, d]"))?;
    {
        let mut slot = grads.take_param(table)?;
        let r = slot.target().and_then(|mut t| {
            let dyv = dy.view();
            position_backward(flat(ctx, &dyv)?, dims, flat_mut(ctx, &mut t)?)
                .map_err(|e| ctx.kernel(e))
        });
        grads.put_param(table, slot);
        r?;
    }
    unary(ctx, step, grads, |mut dx| {
        dx.assign(dy);
        Ok(())
    })
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        op @ Op::MultiHeadAttention { .. } => match attn(op) {
            Some(a) => infer_mha(s, a),
            None => Err(super::misrouted_run(step, op)),
        },
        Op::PositionEmbedding { table } => infer_position(s, *table),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        op @ Op::MultiHeadAttention { .. } => match attn(op) {
            Some(a) => forward_mha(f, a),
            None => Err(super::misrouted_train(step, op)),
        },
        Op::PositionEmbedding { table } => forward_position(f, *table),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        op @ Op::MultiHeadAttention { .. } => match attn(op) {
            Some(a) => backward_mha(b, a),
            None => Err(super::misrouted_train(step, op)),
        },
        Op::PositionEmbedding { table } => backward_position(b, *table),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The values of scratch every multi-head attention step of `plan` keeps in the interpreter on
/// `threads` threads (`shape_of` gives a value's concrete shape), or `None` on overflow.
pub(crate) fn inference_scratch_len(
    plan: &crate::plan::ExecutionPlan,
    shape_of: impl Fn(u32) -> Option<Vec<usize>>,
    threads: usize,
) -> Option<u64> {
    plan.steps.iter().try_fold(0u64, |total, step| {
        let Some(a) = attn(&step.op) else {
            return Some(total);
        };
        let shape = input_slots(step.inputs.len()).and_then(|[iq, ik, iv]| {
            let shape = |i: usize| step.inputs.get(i).and_then(|&v| shape_of(v));
            mha_shape(&a, &shape(iq)?, &shape(ik)?, &shape(iv)?)
        });
        match shape {
            Some(s) => total.checked_add(s.inference_scratch_len(threads)? as u64),
            None => Some(total),
        }
    })
}

/// The interpreter's scratch for a step of `op` (per-slice buffers, sized on first use).
pub(crate) fn infer_state(op: &Op) -> InferState {
    match op {
        Op::MultiHeadAttention { .. } => InferState::Attention(Box::<MhaScratch>::default()),
        _ => InferState::None,
    }
}

/// The trainer's state for a step of `op`: multi-head attention's cache.
pub(crate) fn train_state(op: &Op) -> TrainState {
    match op {
        Op::MultiHeadAttention { .. } => TrainState::Attention(Box::<MhaCache>::default()),
        _ => TrainState::Stateless,
    }
}
