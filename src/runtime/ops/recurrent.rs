//! Recurrent layers (simple RNN, LSTM, GRU over `[N, T, F]` features; `bidirectional` in
//! `super::bidirectional` over the same sliced paths), and their form over
//! token ids (`Op::EmbeddedRnn`, the `fold-embedding-projection` rewrite of an embedding and
//! the recurrent layer reading it, inference only).
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the layer's
//! attributes ([`RnnIds`]). Output: the step's value (all steps or the last one) or its
//! gradients (backward). Invariants: inference and training both split the batch into one
//! contiguous slice per rayon thread, each with its own cache; samples are independent and
//! each GEMM row is computed alone, so the slicing does not change results. A bad token id of
//! an embedded layer is reported under the folded embedding's layer name, as the unfolded plan
//! does. The trainer refuses `Op::EmbeddedRnn` (a training plan never holds one).

use ndarray::{ArrayView2, ArrayView3, Ix2, Ix3};

use crate::ir::{Op, ParamId, ParamSource, Recipe, RnnCell};
use crate::ops::recurrent::RnnOptions;
use crate::plan::ExecutionPlan;
use crate::runtime::interp::exec::{plan_err, view_mut, Ctx, InferStep, StepState};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::rnn::{
    self, rnn_backward_sliced, rnn_forward_sliced, RnnGrads, SlicedRun,
};
use crate::runtime::kernels::KernelError;
use crate::runtime::train::backward::{input_target, BackwardStep};
use crate::runtime::train::context::{self, StepState as TrainState};
use crate::runtime::train::forward::{param, ForwardStep, Semantics};
use crate::runtime::train::{TrainError, INFERENCE_ONLY};

use super::recurrent_fold::RnnTrainState;

/// A recurrent layer's attributes: its cell, whether it returns every step, its Keras options
/// (the defaults for `Op::EmbeddedRnn`), and its parameters (`kernel` is the input kernel of
/// `Op::Rnn` or the projection of `Op::EmbeddedRnn`).
#[derive(Clone, Copy)]
pub(crate) struct RnnIds {
    pub cell: RnnCell,
    pub return_sequences: bool,
    pub options: RnnOptions,
    pub kernel: ParamId,
    pub recurrent: ParamId,
    pub bias: ParamId,
}

impl RnnIds {
    /// The attributes of an `Op::Rnn` or `Op::EmbeddedRnn`.
    fn of(op: &Op) -> Option<Self> {
        let (cell, return_sequences, options, kernel, recurrent, bias) = match op {
            Op::Rnn {
                cell,
                return_sequences,
                options,
                kernel,
                recurrent,
                bias,
                ..
            } => (cell, return_sequences, *options, kernel, recurrent, bias),
            Op::EmbeddedRnn {
                cell,
                return_sequences,
                projection,
                recurrent,
                bias,
                ..
            } => (
                cell,
                return_sequences,
                RnnOptions::default(),
                projection,
                recurrent,
                bias,
            ),
            _ => return None,
        };
        Some(Self {
            cell: *cell,
            return_sequences: *return_sequences,
            options,
            kernel: *kernel,
            recurrent: *recurrent,
            bias: *bias,
        })
    }

    /// The kernels' cell: the IR's, a GRU's by its `reset_after`.
    pub(super) fn kernel_cell(&self) -> rnn::RnnCell {
        kernel_cell(self.cell, &self.options)
    }
}

/// The kernels' cell for the IR's and a layer's options (a GRU's by its `reset_after`).
pub(super) fn kernel_cell(cell: RnnCell, options: &RnnOptions) -> rnn::RnnCell {
    match cell {
        RnnCell::SimpleRnn => rnn::RnnCell::SimpleRnn,
        RnnCell::Lstm => rnn::RnnCell::Lstm,
        RnnCell::Gru if options.reset_after => rnn::RnnCell::Gru,
        RnnCell::Gru => rnn::RnnCell::GruResetBefore,
    }
}

/// Inference of a recurrent layer over features, one batch slice per thread.
pub(crate) fn infer(s: InferStep<'_, '_>, p: RnnIds) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        dst,
        state,
        ..
    } = s;
    let step = ctx.step;
    let out_shape = ctx.shape(step.output)?;
    let x = ctx.input(0)?;
    let StepState::Rnn(caches) = state else {
        return Err(plan_err(step, "recurrent step without cache"));
    };
    let input = RnnInput::Features {
        xs: ctx.read(&memory.buffers, x)?,
        params: rnn::RnnParams {
            kernel: ctx.matrix(p.kernel)?,
            recurrent: ctx.matrix(p.recurrent)?,
            bias: ctx.param(p.bias)?.view(),
        },
    };
    let keep = super::padding::infer_keep(ctx, memory)?;
    let layer = RnnLayer {
        cell: p.kernel_cell(),
        return_sequences: p.return_sequences,
        go_backwards: p.options.go_backwards,
        in_shape: ctx.shape(x)?,
        out_shape,
        keep: keep.as_deref(),
        zero_masked: false,
    };
    rnn_sliced(ctx, &layer, &input, caches, dst)
}

/// Inference of a recurrent layer over token ids (`p.kernel` is the folded projection).
pub(crate) fn infer_embedded(s: InferStep<'_, '_>, p: RnnIds) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        dst,
        state,
        ..
    } = s;
    let step = ctx.step;
    let out_shape = ctx.shape(step.output)?;
    let x = ctx.input(0)?;
    let StepState::Rnn(caches) = state else {
        return Err(plan_err(step, "recurrent step without cache"));
    };
    let input = RnnInput::Tokens {
        ids: memory
            .ints
            .get(x as usize)
            .ok_or_else(|| plan_err(step, "ids missing"))?,
        params: rnn::RnnTokenParams {
            projection: ctx.matrix(p.kernel)?,
            recurrent: ctx.matrix(p.recurrent)?,
            bias: ctx.param(p.bias)?.view(),
        },
    };
    let keep = super::padding::infer_keep(ctx, memory)?;
    let layer = RnnLayer {
        cell: p.kernel_cell(),
        return_sequences: p.return_sequences,
        go_backwards: false,
        in_shape: ctx.shape(x)?,
        out_shape,
        keep: keep.as_deref(),
        zero_masked: false,
    };
    rnn_sliced(ctx, &layer, &input, caches, dst).map_err(|e| match e {
        // A bad token is the folded embedding's error: name that layer, as the
        // unfolded plan does (parameters are named `LAYER.PARAM`).
        RunError::TokenOutOfRange {
            id,
            position,
            vocab,
            ..
        } => RunError::TokenOutOfRange {
            step: folded_embedding(ctx.plan, p.kernel).unwrap_or_else(|| step.name.clone()),
            id,
            position,
            vocab,
        },
        e => e,
    })
}

/// Training forward over features: the sliced layer, its caches kept for backward.
pub(crate) fn forward(mut f: ForwardStep<'_, '_, '_>, p: RnnIds) -> Result<(), TrainError> {
    if let TrainState::Rnn(RnnTrainState {
        fold: Some(fold), ..
    }) = f.state
    {
        let fold = *fold;
        if let Some(done) = super::recurrent_fold::forward(&mut f, p, fold) {
            return done;
        }
    }
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        state,
        semantics,
        out,
    } = f;
    let rp = rnn::RnnParams {
        kernel: ctx.rank::<f32, Ix2>(param(ctx, params, p.kernel)?)?,
        recurrent: ctx.rank::<f32, Ix2>(param(ctx, params, p.recurrent)?)?,
        bias: param(ctx, params, p.bias)?,
    };
    let TrainState::Rnn(RnnTrainState {
        workspace: cache, ..
    }) = state
    else {
        return Err(ctx.internal("missing recurrent cache"));
    };
    let xv = ctx.rank::<f32, Ix3>(env.f32(ctx.arg(step, 0)?)?)?;
    let keep = super::padding::train_keep(step, ctx, env)?;
    let run = SlicedRun {
        go_backwards: p.options.go_backwards,
        dropout: p.options.dropout,
        recurrent_dropout: p.options.recurrent_dropout,
        rng: match semantics {
            Semantics::Train(rng) => Some(rng),
            Semantics::Infer => None,
        },
        keep: keep.as_deref(),
        zero_masked_outputs: false,
    };
    rnn_forward_sliced(
        p.kernel_cell(),
        xv,
        &rp,
        run,
        p.return_sequences,
        cache,
        out.view_mut(),
    )
    .map_err(|e| ctx.kernel(e))
}

/// Backward through time from the kept caches: `dx` (when needed), `dkernel`, `drecurrent`,
/// `dbias`.
pub(crate) fn backward(b: BackwardStep<'_, '_, '_, '_>, p: RnnIds) -> Result<(), TrainError> {
    // A batch whose forward folded its embedding runs the folded backward.
    if let TrainState::Rnn(RnnTrainState {
        fold: Some(fold),
        workspace,
    }) = &*b.state
    {
        if workspace.folded() {
            let fold = *fold;
            return super::recurrent_fold::backward(b, p, fold);
        }
    }
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
    let v = ctx.arg(step, 0)?;
    let xv = ctx.rank::<f32, Ix3>(env.f32(v)?)?;
    let rp = rnn::RnnParams {
        kernel: ctx.rank::<f32, Ix2>(param(ctx, params, p.kernel)?)?,
        recurrent: ctx.rank::<f32, Ix2>(param(ctx, params, p.recurrent)?)?,
        bias: param(ctx, params, p.bias)?,
    };
    let TrainState::Rnn(RnnTrainState {
        workspace: cache, ..
    }) = state
    else {
        return Err(ctx.internal("missing recurrent cache"));
    };
    let needed = grads.needs(v);
    let mut dx = grads.take_value(v)?;
    let mut dk = grads.take_param(p.kernel)?;
    let mut dr = grads.take_param(p.recurrent)?;
    let mut db = grads.take_param(p.bias)?;
    let g = RnnGrads {
        dx: ctx.rank_mut::<f32, Ix3>(input_target(&mut dx, needed)?)?,
        dkernel: ctx.rank_mut::<f32, Ix2>(dk.target()?)?,
        drecurrent: ctx.rank_mut::<f32, Ix2>(dr.target()?)?,
        dbias: db.target()?,
    };
    rnn_backward_sliced(p.kernel_cell(), xv, &rp, cache, dy.view(), g)
        .map_err(|e| ctx.kernel(e))?;
    grads.put_value(v, dx, needed);
    grads.put_param(p.kernel, dk);
    grads.put_param(p.recurrent, dr);
    grads.put_param(p.bias, db);
    Ok(())
}

/// The trainer's forward or backward of an `Op::EmbeddedRnn`: an internal error, since
/// `fold-embedding-projection` runs on inference plans only.
pub(crate) fn train_embedded(ctx: &context::Ctx<'_>) -> Result<(), TrainError> {
    Err(ctx.internal(INFERENCE_ONLY))
}

/// A recurrent step's attributes and concrete shapes.
pub(super) struct RnnLayer<'a> {
    pub cell: rnn::RnnCell,
    pub return_sequences: bool,
    pub go_backwards: bool,
    /// `[N, T, F]` features or `[N, T]` token ids.
    pub in_shape: &'a [usize],
    pub out_shape: &'a [usize],
    /// `[N·T]`: the steps a padding mask keeps (`ops::mask`; none: all), and whether masked
    /// steps output zeros (Keras's `zero_output_for_mask`, which `Bidirectional` sets).
    pub keep: Option<&'a [bool]>,
    pub zero_masked: bool,
}

/// The layer of the embedding table a projection was derived from
/// (`fold-embedding-projection`).
fn folded_embedding(plan: &ExecutionPlan, projection: ParamId) -> Option<String> {
    let ParamSource::Derived(Recipe::EmbeddingProjection { table, .. }) =
        &plan.params.get(projection.index())?.source
    else {
        return None;
    };
    let name = &plan.params.get(table.index())?.name;
    Some(
        name.rsplit_once('.')
            .map_or(name.as_str(), |(layer, _)| layer)
            .to_string(),
    )
}

/// What a recurrent step reads: features (`Op::Rnn`) or token ids (`Op::EmbeddedRnn`), with
/// the weights of that form.
pub(super) enum RnnInput<'a> {
    Features {
        xs: &'a [f32],
        params: rnn::RnnParams<'a>,
    },
    Tokens {
        ids: &'a [i64],
        params: rnn::RnnTokenParams<'a>,
    },
}

/// A recurrent layer over slices of the batch in parallel (one cache per slice). Samples are
/// independent and each GEMM row is computed alone, so the slicing does not change results.
pub(super) fn rnn_sliced(
    ctx: &Ctx<'_>,
    layer: &RnnLayer<'_>,
    input: &RnnInput<'_>,
    caches: &mut Vec<rnn::RnnCache>,
    dst: &mut [f32],
) -> Result<(), RunError> {
    let (n, t, f) = match (input, layer.in_shape) {
        (RnnInput::Features { .. }, &[n, t, f]) => (n, t, f),
        (RnnInput::Tokens { .. }, &[n, t]) => (n, t, 1),
        _ => {
            return Err(plan_err(
                ctx.step,
                "recurrent input is not [N, T, F] or [N, T]",
            ))
        }
    };
    let out_sample: usize = layer.out_shape.iter().skip(1).product();
    let ranges = crate::runtime::kernels::batch_ranges(n, crate::runtime::pool::threads());
    caches.resize_with(ranges.len(), rnn::RnnCache::default);
    let mut jobs = Vec::with_capacity(ranges.len());
    let mut rest = dst;
    for (&(a, b), cache) in ranges.iter().zip(caches.iter_mut()) {
        let (mine, later) = std::mem::take(&mut rest).split_at_mut((b - a) * out_sample);
        rest = later;
        jobs.push((a, b, mine, cache));
    }
    let short = || plan_err(ctx.step, "recurrent input too short");
    let run = |(a, b, out, cache): (usize, usize, &mut [f32], &mut rnn::RnnCache)| {
        let count = b - a;
        let mut shape = layer.out_shape.to_vec();
        if let Some(first) = shape.first_mut() {
            *first = count;
        }
        let ov = view_mut(out, &shape, ctx)?;
        let (cell, sequences) = (layer.cell, layer.return_sequences);
        let keep = match layer.keep {
            Some(k) => Some(k.get(a * t..b * t).ok_or_else(short)?),
            None => None,
        };
        let run = rnn::RnnRun {
            go_backwards: layer.go_backwards,
            keep,
            zero_masked_outputs: layer.zero_masked,
            ..rnn::RnnRun::default()
        };
        match input {
            RnnInput::Features { xs, params } => {
                let x = xs.get(a * t * f..b * t * f).ok_or_else(short)?;
                let xv = ArrayView3::from_shape((count, t, f), x)
                    .map_err(|e| plan_err(ctx.step, &e.to_string()))?;
                let forward =
                    || rnn::rnn_infer_masked(cell, xv, params, &run, sequences, cache, ov);
                ctx.kernel(crate::runtime::kernels::linalg::serial(forward))
            }
            RnnInput::Tokens { ids, params } => {
                let x = ids.get(a * t..b * t).ok_or_else(short)?;
                let xv = ArrayView2::from_shape((count, t), x)
                    .map_err(|e| plan_err(ctx.step, &e.to_string()))?;
                let forward =
                    || rnn::rnn_infer_tokens(cell, xv, params, (sequences, keep), cache, ov);
                // An id's position counts from the start of the batch, as the embedding's does.
                let result =
                    crate::runtime::kernels::linalg::serial(forward).map_err(|e| match e {
                        KernelError::IdOutOfRange {
                            id,
                            position,
                            vocab,
                        } => KernelError::IdOutOfRange {
                            id,
                            position: position + a * t,
                            vocab,
                        },
                        e => e,
                    });
                ctx.kernel(result)
            }
        }
    };
    crate::runtime::pool::try_run_each(jobs, run)
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match (&step.op, RnnIds::of(&step.op)) {
        (Op::Rnn { .. }, Some(p)) => infer(s, p),
        (Op::EmbeddedRnn { .. }, Some(p)) => infer_embedded(s, p),
        (Op::Bidirectional { .. }, _) => super::bidirectional::infer(s),
        (other, _) => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match (&step.op, RnnIds::of(&step.op)) {
        (Op::Rnn { .. }, Some(p)) => forward(f, p),
        (Op::EmbeddedRnn { .. }, _) => train_embedded(f.ctx),
        (Op::Bidirectional { .. }, _) => super::bidirectional::forward(f),
        (other, _) => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match (&step.op, RnnIds::of(&step.op)) {
        (Op::Rnn { .. }, Some(p)) => backward(b, p),
        (Op::EmbeddedRnn { .. }, _) => train_embedded(b.ctx),
        (Op::Bidirectional { .. }, _) => super::bidirectional::backward(b),
        (other, _) => Err(super::misrouted_train(step, other)),
    }
}

/// The interpreter's scratch for a recurrent step: one cache per batch slice.
pub(crate) fn infer_state(op: &Op) -> StepState {
    match op {
        Op::Rnn { .. } | Op::EmbeddedRnn { .. } => StepState::Rnn(Vec::new()),
        Op::Bidirectional { .. } => super::bidirectional::infer_state(),
        _ => StepState::None,
    }
}

/// The trainer's state for a recurrent step: its sliced workspaces.
pub(crate) fn train_state(op: &Op) -> TrainState {
    match op {
        Op::Rnn { .. } => TrainState::Rnn(RnnTrainState::default()),
        Op::Bidirectional { .. } => super::bidirectional::train_state(),
        _ => TrainState::Stateless,
    }
}
