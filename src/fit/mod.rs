//! The training loop: a checked `train` block, a loaded data set and a training plan become
//! trained parameters and a history, epoch by epoch, like Keras's `fit`.
//!
//! Input: an [`ExecutionPlan`] compiled with `Mode::Train`, a [`CheckedTrain`], a [`Dataset`].
//! Output: [`Fitted`] (parameters, history, how it ended). Invariants: the same plan, data, seed
//! and thread count give the same numbers bit for bit, and so does a run resumed from a
//! checkpoint (batches are a pure function of the seed and the epoch; dropout masks of the seed
//! and the step); a non-finite loss or gradient stops training with a diagnostic naming the step
//! and the layer, before any parameter takes a bad value.

mod batch;
pub mod checkpoint;
pub mod class_weight;
pub mod curves;
pub mod early_stopping;
mod epoch_metrics;
pub mod init_weights;
pub mod outputs;
pub mod plateau;
pub mod report;
mod resume;
pub mod setup;
pub mod tensorboard;

use crate::check::train_types::CheckedTrain;
use crate::data::loader::{Batch, Dataset};
use crate::diag::{codes, Diagnostic};
use crate::plan::ExecutionPlan;
use crate::runtime::loss::{LossError, Targets};
use crate::runtime::metrics::MetricAccumulator;
use crate::runtime::train::{ParamStore, TrainError, Trainer};
use batch::with_batch;
use checkpoint::TrainState;
pub use early_stopping::BestEpoch;
use serde::{Deserialize, Serialize};
use setup::Objective;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: u64,
    pub loss: f64,
    /// `(name, value)` for each metric, on the training batches (before each update).
    pub metrics: Vec<(String, f64)>,
    pub val_loss: Option<f64>,
    pub val_metrics: Vec<(String, f64)>,
    /// The learning rate at the epoch's last step.
    pub lr: f64,
    pub samples_per_sec: f64,
    /// The share of the epoch's training time spent waiting for the data pipeline's next batch
    /// (batches are prepared on a background thread; near 0 means the model never waits).
    #[serde(default)]
    pub data_wait_fraction: f64,
    /// Each training step's batch loss, in order (the curves' smoothed per-step line and the
    /// TensorBoard step scalars). Empty in checkpoints written before it was recorded.
    #[serde(default)]
    pub step_losses: Vec<f32>,
}

/// How training ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitEnd {
    Completed,
    /// Early stopping: the monitored value did not improve for `patience` epochs.
    EarlyStopped {
        epoch: u64,
    },
    /// Interrupted (Ctrl-C, SIGTERM); a checkpoint was written.
    Interrupted {
        epoch: u64,
    },
}

/// What training produced.
pub struct Fitted {
    pub params: ParamStore,
    pub history: Vec<EpochRecord>,
    pub end: FitEnd,
    /// The best epoch, when the block stops early.
    pub best: Option<BestEpoch>,
    /// Writing a checkpoint failed, which ended the run there: the parameters trained so far are
    /// still here, for the caller to write before it reports this error.
    pub checkpoint_error: Option<Diagnostic>,
}

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct FitOptions {
    /// Overrides the train block's `epochs`.
    pub epochs: Option<u64>,
    /// Where the checkpoint file lives (`None`: no checkpoints).
    pub checkpoint: Option<PathBuf>,
    /// Where the save-best checkpoint lives (`None`: kept in memory only).
    pub best: Option<PathBuf>,
    /// Continue from the checkpoint.
    pub resume: bool,
    /// The spec's hash, recorded in checkpoints and checked on resume.
    pub spec_hash: String,
    /// Set by a signal handler: finish the current step, checkpoint, stop.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// What the loop reports as it goes.
pub trait Progress {
    /// An epoch starts; `batches` batches follow.
    fn epoch_start(&mut self, _epoch: u64, _epochs: u64, _batches: u64) {}
    /// A batch finished with this running mean loss.
    fn batch(&mut self, _done: u64, _running_loss: f64) {}
    /// Whether [`Progress::running_metrics`] should be called after this batch (computing the
    /// metrics so far costs a pass over their accumulators).
    fn wants_running_metrics(&mut self) -> bool {
        false
    }
    /// The epoch's metrics so far, on the training batches done.
    fn running_metrics(&mut self, _metrics: &[(String, f64)]) {}
    /// The epoch's training batches are done; measuring on the validation split starts.
    fn validation_start(&mut self) {}
    /// An epoch finished.
    fn epoch_end(&mut self, _record: &EpochRecord) {}
}

/// Trains. `params` are the starting parameters (ignored when resuming).
pub fn fit(
    plan: ExecutionPlan,
    params: ParamStore,
    train: &CheckedTrain,
    dataset: &Dataset,
    options: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<Fitted, Diagnostic> {
    let objective = setup::objective(train);
    let loss = objective.loss;
    let multi = outputs::Outputs::of(train);
    let metric_kinds = multi
        .as_ref()
        .map_or_else(|| setup::metrics(train), outputs::Outputs::metric_kinds);
    let clip = setup::clip(train);
    let class_weights = train
        .class_weight
        .as_ref()
        .map(|w| class_weight::per_class(w, &dataset.train.labels));
    let train_loader = dataset.train_loader();
    let val_loader = (!dataset.validation.features.is_empty()).then(|| dataset.validation_loader());
    let batches = train_loader.batches_per_epoch() as u64;
    let schedule = setup::schedule(train, batches).map_err(|e| failed(&e.to_string()))?;
    let epochs = options.epochs.unwrap_or(train.epochs);
    let input_dtype = plan
        .inputs
        .first()
        .and_then(|&v| plan.values.get(v as usize))
        .map(|v| v.fact.dtype);

    let optimizer = setup::optimizer(train).map_err(|e| failed(&e.to_string()))?;
    let mut state = TrainState::fresh(options.spec_hash.clone(), train.name.clone(), optimizer);
    state.plateau = plateau::start(&schedule);
    let mut params = params;
    if options.resume {
        (state, params) = resume::resume(options, train, &plan, &params)?;
        resume::check_resumable(options, &state, batches, &schedule)?;
    }
    let mut trainer = Trainer::new(plan, params, train.seed).map_err(|e| train_error(&e))?;
    trainer.resume_at(state.steps_done);
    let mut best_params: Option<ParamStore> = None;
    let mut end = FitEnd::Completed;
    let mut checkpoint_error = None;

    while state.epoch < epochs {
        let epoch = state.epoch;
        progress.epoch_start(epoch + 1, epochs, batches);
        let mut accs = epoch_metrics::start(options, &metric_kinds, &mut state)?;
        let started = Instant::now();
        let mut samples_this_run = 0u64;
        let mut lr = schedule.lr_at(state.steps_done, state.plateau.as_ref());
        let mut interrupted = false;
        let mut waited = std::time::Duration::ZERO;
        let mut batches_iter = train_loader.epoch(epoch).enumerate();
        loop {
            let asked = Instant::now();
            let Some((b, batch)) = batches_iter.next() else {
                break;
            };
            waited += asked.elapsed();
            let b = b as u64;
            if b < state.next_batch {
                continue;
            }
            let batch = batch?;
            let n = batch.indices.len() as u64;
            lr = schedule.lr_at(state.steps_done, state.plateau.as_ref());
            let report = if let Some(m) = &multi {
                let opt = &mut state.optimizer;
                let sums = &mut state.partial_output_losses;
                m.train_batch(
                    &mut trainer,
                    &batch,
                    input_dtype,
                    opt,
                    (lr, clip),
                    &mut accs,
                    sums,
                )?
            } else {
                with_batch(&batch, input_dtype, &objective, |inputs, targets, truth| {
                    let weights = class_weights
                        .as_deref()
                        .map(|w| class_weight::per_sample(w, truth))
                        .transpose()?;
                    let opt = &mut state.optimizer;
                    let w = weights.as_deref();
                    let r = trainer.train_step_weighted(inputs, targets, loss, opt, (lr, clip), w);
                    if r.is_ok() {
                        if let Some(out) = trainer.last_output() {
                            for a in &mut accs {
                                let _ = a.update(&out, truth);
                            }
                        }
                    }
                    r.map_err(|e| train_error(&e))
                })?
            };
            state.steps_done = trainer.steps_done();
            state.partial_loss_sum += f64::from(report.loss) * n as f64;
            state.partial_samples += n;
            state.partial_step_losses.push(report.loss);
            samples_this_run += n;
            state.next_batch = b + 1;
            progress.batch(
                b + 1,
                state.partial_loss_sum / state.partial_samples.max(1) as f64,
            );
            if progress.wants_running_metrics() {
                progress.running_metrics(&epoch_results(multi.as_ref(), &accs, &state));
            }
            if options
                .interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst))
            {
                interrupted = true;
                break;
            }
        }
        if interrupted {
            state.partial_metrics = accs.iter().map(MetricAccumulator::save).collect();
            end = FitEnd::Interrupted { epoch: epoch + 1 };
            checkpoint_error = save_checkpoint(options, &trainer, &state).err();
            break;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let (val_loss, val_metrics) = match &val_loader {
            Some(vl) => {
                progress.validation_start();
                let batches = vl.epoch(0);
                let (l, m) = match &multi {
                    Some(m) => m.evaluate(&mut trainer, batches, input_dtype)?,
                    None => evaluate(&mut trainer, batches, objective, &metric_kinds, input_dtype)?,
                };
                (Some(l), m)
            }
            None => (None, Vec::new()),
        };
        let record = EpochRecord {
            epoch: epoch + 1,
            loss: state.partial_loss_sum / state.partial_samples.max(1) as f64,
            metrics: epoch_results(multi.as_ref(), &accs, &state),
            val_loss,
            val_metrics,
            lr: f64::from(lr),
            samples_per_sec: over_time(samples_this_run as f64, elapsed),
            data_wait_fraction: over_time(waited.as_secs_f64(), elapsed),
            step_losses: std::mem::take(&mut state.partial_step_losses),
        };
        progress.epoch_end(&record);
        state.history.push(record);
        state.epoch += 1;
        state.next_batch = 0;
        state.partial_loss_sum = 0.0;
        state.partial_samples = 0;
        state.partial_output_losses.clear();
        // Early stopping's and the plateau rule's records go into the checkpoint written below,
        // so that a resumed run makes the same decisions.
        plateau::after_epoch(train, &schedule, &mut state);
        if let Some(es) = &train.early_stopping {
            if early_stopping::record(es, &mut state) {
                if es.restore_best {
                    best_params = Some(trainer.params().clone());
                }
                save_best(options, &trainer, &state)?;
            }
        }
        if train
            .checkpoint_every
            .is_some_and(|k| k > 0 && state.epoch.is_multiple_of(k))
            || state.epoch == epochs
        {
            checkpoint_error = save_checkpoint(options, &trainer, &state).err();
            if checkpoint_error.is_some() {
                break;
            }
        }
        if let Some(es) = &train.early_stopping {
            if early_stopping::exhausted(es, &state) {
                end = FitEnd::EarlyStopped { epoch: state.epoch };
                checkpoint_error = save_checkpoint(options, &trainer, &state).err();
                break;
            }
        }
    }
    let best = best_epoch(train, &state);
    let restore = best.as_ref().is_some_and(|b| b.restored);
    let plan = trainer.plan().clone();
    let mut params = trainer.into_params();
    if restore {
        params = early_stopping::best_weights(best_params, options.best.as_deref(), &plan)
            .ok_or_else(|| {
                failed("the best epoch's weights are lost: its save-best checkpoint cannot be read")
            })?;
    }
    Ok(Fitted {
        params,
        history: state.history,
        end,
        best,
        checkpoint_error,
    })
}

/// The epoch's metrics so far: each metric's value, or for a model with several outputs each
/// output's loss and metrics (`digit_loss`, `digit_accuracy`, ...).
fn epoch_results(
    multi: Option<&outputs::Outputs>,
    accs: &[MetricAccumulator],
    state: &TrainState,
) -> Vec<(String, f64)> {
    match multi {
        Some(m) => m.results(accs, &state.partial_output_losses, state.partial_samples),
        None => epoch_metrics::results(accs),
    }
}

/// The best epoch of a run with early stopping; `restored` when `restore_best` ends the run with
/// its weights (a later epoch was the last).
fn best_epoch(train: &CheckedTrain, state: &TrainState) -> Option<BestEpoch> {
    let es = train.early_stopping.as_ref()?;
    let epoch = state.best_epoch?;
    Some(BestEpoch {
        epoch,
        monitor: es.monitor.clone(),
        value: state.best?,
        restored: es.restore_best && epoch != state.epoch,
    })
}

/// Writes the save-best checkpoint (the best epoch's parameters and state), when asked for.
fn save_best(
    options: &FitOptions,
    trainer: &Trainer,
    state: &TrainState,
) -> Result<(), Diagnostic> {
    let Some(path) = &options.best else {
        return Ok(());
    };
    let params = trainer.params();
    checkpoint::save(path, params.names(), params.tensors(), state).map_err(|e| {
        Diagnostic::error(
            codes::IO_WRITE,
            format!(
                "cannot write the best epoch's checkpoint {}: {e}",
                path.display()
            ),
        )
        .at_external(path.display().to_string(), 0, 0)
    })
}

/// `amount / seconds` (a rate, or a share of the time), 0 when no time passed.
fn over_time(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        amount / seconds
    } else {
        0.0
    }
}

fn save_checkpoint(
    options: &FitOptions,
    trainer: &Trainer,
    state: &TrainState,
) -> Result<(), Diagnostic> {
    let Some(path) = &options.checkpoint else {
        return Ok(());
    };
    let params = trainer.params();
    checkpoint::save(path, params.names(), params.tensors(), state).map_err(|e| {
        Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot write the checkpoint {}: {e}", path.display()),
        )
        .at_external(path.display().to_string(), 0, 0)
        .note("the previous checkpoint, if any, is intact")
    })
}

/// Loss and metrics over a loader, in inference semantics.
pub fn evaluate(
    trainer: &mut Trainer,
    batches: impl Iterator<Item = Result<Batch, Diagnostic>>,
    objective: Objective,
    metric_kinds: &[crate::runtime::metrics::Metric],
    input_dtype: Option<crate::ir::DType>,
) -> Result<(f64, Vec<(String, f64)>), Diagnostic> {
    evaluate_observed(
        trainer,
        batches,
        objective,
        (metric_kinds, input_dtype),
        &mut |_, _| Ok(()),
    )
}

/// What [`evaluate_observed`] shows each batch's output and targets to.
pub type Observer<'a> =
    dyn FnMut(&ndarray::ArrayViewD<f32>, &Targets) -> Result<(), Diagnostic> + 'a;

/// [`evaluate`], also showing each batch's output and (unsmoothed) targets to `observe`
/// (`modelc eval`'s confusion matrix).
pub fn evaluate_observed(
    trainer: &mut Trainer,
    batches: impl Iterator<Item = Result<Batch, Diagnostic>>,
    objective: Objective,
    (metric_kinds, input_dtype): (&[crate::runtime::metrics::Metric], Option<crate::ir::DType>),
    observe: &mut Observer<'_>,
) -> Result<(f64, Vec<(String, f64)>), Diagnostic> {
    let mut accs: Vec<MetricAccumulator> = metric_kinds
        .iter()
        .map(|&m| MetricAccumulator::new(m))
        .collect();
    let mut sum = 0.0f64;
    let mut count = 0u64;
    for batch in batches {
        let batch = batch?;
        let n = batch.indices.len() as u64;
        let value = with_batch(&batch, input_dtype, &objective, |inputs, targets, truth| {
            let out = trainer.evaluate(inputs).map_err(|e| train_error(&e))?;
            for a in &mut accs {
                let _ = a.update(&out, truth);
            }
            observe(&out, truth)?;
            objective
                .loss
                .evaluate(&out, targets)
                .map(|r| r.loss)
                .map_err(|e| failed(&e.to_string()))
        })?;
        sum += f64::from(value) * n as f64;
        count += n;
    }
    Ok((sum / count.max(1) as f64, epoch_metrics::results(&accs)))
}

pub(crate) fn failed(message: &str) -> Diagnostic {
    Diagnostic::error(codes::TRAIN_FAILED, message.to_string())
}

/// A trainer error as a diagnostic: divergence names the step and layer.
pub fn train_error(e: &TrainError) -> Diagnostic {
    let text = e.to_string();
    match e {
        TrainError::NonFiniteLoss { .. }
        | TrainError::NonFiniteGradient { .. }
        | TrainError::NonFiniteParam { .. } => Diagnostic::error(
            codes::TRAIN_DIVERGED,
            format!("training diverged: {text}"),
        )
        .help(
            "lower the learning rate, clip gradients (`clipnorm: 1.0`), or standardize the inputs",
        ),
        // The data holds a class id the model has no score for: a problem of the data file
        // (its source did not declare `classes:`, so `check` could not know).
        TrainError::Loss(LossError::LabelOutOfRange { classes, .. }) => {
            Diagnostic::error(codes::DATA_LABEL_RANGE, text).help(format!(
                "the model scores {classes} classes: declare the data's classes (`classes: K`) so that `check` compares them, or give the last layer more units"
            ))
        }
        _ => Diagnostic::error(codes::TRAIN_FAILED, text),
    }
}
