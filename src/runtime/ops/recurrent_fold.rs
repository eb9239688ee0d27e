//! The trainer's fold of an embedding into the recurrent layer that alone reads it: the
//! training form of `fold-embedding-projection` (which rewrites inference plans only).
//!
//! Input: a training plan ([`embedding_folds`] finds the pairs once, in `Trainer::new`), then
//! a recurrent step's [`ForwardStep`] or [`BackwardStep`] with its [`RnnTrainState`]. Output:
//! the layer's value, computed from the token ids and the embedding's table
//! (`kernels::rnn::rnn_forward_tokens_sliced`), and its backward, which writes the table's
//! gradient itself and none for the embedding's output, so the embedding's own backward does
//! not run. Invariants: a pair folds only when the embedding's output has no other reader
//! and is not a model output, and the layer has no input dropout and does not go backwards
//! (the fold never forms `x_t`); each batch folds only when its token count is at least the
//! vocabulary (`kernels::rnn::fold_pays`), and its backward follows what its forward did.
//! The embedding's forward still runs (its gather is cheap), so the plan's values stay whole.

use ndarray::Ix2;

use crate::ir::{Op, ParamId};
use crate::plan::ExecutionPlan;
use crate::runtime::kernels::embedding::EmbeddingId;
use crate::runtime::kernels::rnn::{
    fold_pays, rnn_backward_tokens_sliced, rnn_forward_tokens_sliced, FoldedGrads, FoldedParams,
    RnnParams, SlicedRnn, SlicedRun,
};
use crate::runtime::train::backward::BackwardStep;
use crate::runtime::train::context::StepState as TrainState;
use crate::runtime::train::forward::{param, ForwardStep, Semantics};
use crate::runtime::train::{Input, TrainError, ValueLinks};

use super::recurrent::RnnIds;

/// A recurrent step's training state: its sliced workspaces, and the embedding folded into
/// it, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct RnnTrainState {
    pub workspace: SlicedRnn,
    pub fold: Option<EmbeddingFold>,
}

/// An embedding a recurrent step reads alone: its table, the token ids it looks up (a model
/// input) and its output (the layer's input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EmbeddingFold {
    pub table: ParamId,
    pub ids: u32,
    pub embedded: u32,
}

/// Per plan step: the embedding a recurrent step can fold (see the module doc); linear in
/// the plan's size (`train::ValueLinks`).
pub(crate) fn embedding_folds(plan: &ExecutionPlan) -> Vec<Option<EmbeddingFold>> {
    let links = ValueLinks::of(plan);
    plan.steps
        .iter()
        .map(|step| {
            let Op::Rnn { options, .. } = &step.op else {
                return None;
            };
            if options.dropout > 0.0 || options.go_backwards {
                return None;
            }
            let &embedded = step.inputs.first()?;
            let alone = links.read_once(embedded);
            let source = plan.steps.get(links.producer(embedded)?)?;
            match (&source.op, source.inputs.as_slice()) {
                (Op::Embedding { table }, &[ids]) if alone => Some(EmbeddingFold {
                    table: *table,
                    ids,
                    embedded,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Gives each recurrent step's state the embedding it folds ([`embedding_folds`]).
pub(crate) fn fold_embeddings(plan: &ExecutionPlan, states: &mut [TrainState]) {
    for (fold, state) in embedding_folds(plan).into_iter().zip(states) {
        if let (Some(fold), TrainState::Rnn(rnn)) = (fold, state) {
            rnn.fold = Some(fold);
        }
    }
}

/// The folded training forward, when this batch folds; `None` leaves it to the unfolded
/// layer.
pub(super) fn forward(
    f: &mut ForwardStep<'_, '_, '_>,
    p: RnnIds,
    fold: EmbeddingFold,
) -> Option<Result<(), TrainError>> {
    let ctx = f.ctx;
    let table = param(ctx, f.params, fold.table)
        .and_then(|t| ctx.rank::<f32, Ix2>(t))
        .ok()?;
    let ids = f.env.input(fold.ids)?;
    let &[n, t] = ids.shape() else {
        return None;
    };
    if !fold_pays(table.nrows(), (n, t)) {
        return None;
    }
    Some(forward_tokens(f, p, &table, ids))
}

fn forward_tokens(
    f: &mut ForwardStep<'_, '_, '_>,
    p: RnnIds,
    table: &ndarray::ArrayView2<'_, f32>,
    ids: &Input<'_>,
) -> Result<(), TrainError> {
    let ctx = f.ctx;
    let w = FoldedParams {
        table: table.view(),
        layer: layer_params(f.ctx, f.params, p)?,
    };
    let keep = super::padding::train_keep(f.step, ctx, f.env)?;
    let run = SlicedRun {
        go_backwards: false,
        dropout: 0.0,
        recurrent_dropout: p.options.recurrent_dropout,
        rng: match &mut f.semantics {
            Semantics::Train(rng) => Some(&mut **rng),
            Semantics::Infer => None,
        },
        keep: keep.as_deref(),
        zero_masked_outputs: false,
    };
    let TrainState::Rnn(state) = &mut *f.state else {
        return Err(ctx.internal("missing recurrent cache"));
    };
    let out = f.out.view_mut();
    let (cell, seqs, ws) = (p.kernel_cell(), p.return_sequences, &mut state.workspace);
    match ids {
        Input::I32(ids) => run_forward(cell, ids.view(), &w, run, seqs, ws, out),
        Input::I64(ids) => run_forward(cell, ids.view(), &w, run, seqs, ws, out),
        Input::F32(_) => return Err(ctx.internal("folded embedding ids are not integers")),
    }
    .map_err(|e| ctx.kernel(e))
}

fn run_forward<I: EmbeddingId>(
    cell: crate::runtime::kernels::rnn::RnnCell,
    ids: ndarray::ArrayViewD<'_, I>,
    w: &FoldedParams<'_>,
    run: SlicedRun<'_>,
    return_sequences: bool,
    state: &mut SlicedRnn,
    out: ndarray::ArrayViewMutD<'_, f32>,
) -> crate::runtime::kernels::KernelResult<()> {
    let ids = ids
        .into_dimensionality::<Ix2>()
        .map_err(|e| crate::runtime::kernels::error::shape_err("rnn", e.to_string()))?;
    rnn_forward_tokens_sliced(cell, ids, w, run, return_sequences, state, out)
}

/// The layer's own weights.
fn layer_params<'p>(
    ctx: &crate::runtime::train::context::Ctx<'_>,
    params: &'p crate::runtime::train::ParamStore,
    p: RnnIds,
) -> Result<RnnParams<'p>, TrainError> {
    Ok(RnnParams {
        kernel: ctx.rank::<f32, Ix2>(param(ctx, params, p.kernel)?)?,
        recurrent: ctx.rank::<f32, Ix2>(param(ctx, params, p.recurrent)?)?,
        bias: param(ctx, params, p.bias)?,
    })
}

/// The folded backward of a batch whose forward folded: the layer's weight gradients and,
/// when the table is trained, the table's; the embedding's output gets no gradient.
pub(super) fn backward(
    b: BackwardStep<'_, '_, '_, '_>,
    p: RnnIds,
    fold: EmbeddingFold,
) -> Result<(), TrainError> {
    let BackwardStep {
        ctx,
        params,
        state,
        dy,
        grads,
        ..
    } = b;
    let w = FoldedParams {
        table: ctx.rank::<f32, Ix2>(param(ctx, params, fold.table)?)?,
        layer: layer_params(ctx, params, p)?,
    };
    let TrainState::Rnn(state) = state else {
        return Err(ctx.internal("missing recurrent cache"));
    };
    // The table's gradient, when it is trained (a frozen table's slot is left alone).
    let mut dt = if grads.needs(fold.embedded) {
        Some(grads.take_param(fold.table)?)
    } else {
        None
    };
    let mut dk = grads.take_param(p.kernel)?;
    let mut dr = grads.take_param(p.recurrent)?;
    let mut db = grads.take_param(p.bias)?;
    let g = FoldedGrads {
        dtable: match dt.as_mut() {
            Some(slot) => Some(ctx.rank_mut::<f32, Ix2>(slot.target()?)?),
            None => None,
        },
        dkernel: ctx.rank_mut::<f32, Ix2>(dk.target()?)?,
        drecurrent: ctx.rank_mut::<f32, Ix2>(dr.target()?)?,
        dbias: db.target()?,
    };
    rnn_backward_tokens_sliced(p.kernel_cell(), &w, &mut state.workspace, dy.view(), g)
        .map_err(|e| ctx.kernel(e))?;
    if let Some(dt) = dt {
        grads.put_param(fold.table, dt);
    }
    grads.put_param(p.kernel, dk);
    grads.put_param(p.recurrent, dr);
    grads.put_param(p.bias, db);
    Ok(())
}
