//! What `train` and `experiment` share: compiling a checked model's training and inference
//! plans, loading a pipeline's data set, a thread pool of a chosen size, the run folder
//! (`folder`: its files, its lock, writing its outputs), and one whole training of a checked
//! train block into a folder ([`train_into`]), as each trial of an experiment runs.
//!
//! Input: checked blocks and options from a command. Output: fitted runs, written run
//! folders, or diagnostics. Invariant: uses no command module (commands import it, never each
//! other), and prints nothing: the commands report.

pub mod folder;

use super::limits::{check_activations, Use};
use crate::check::{train_types::CheckedTrain, types::CheckedModel};
use crate::data::loader::{load_dataset, Dataset};
use crate::data::PipelineSpec;
use crate::diag::{codes, Diagnostic, FileId, SourceMap};
use crate::fit::{self, FitOptions, Fitted, Progress};
use crate::ir;
use crate::passes::{Mode, PassOptions};
use crate::plan::{self, ExecutionPlan};
use crate::runtime::train::ParamStore;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// An internal error of training (a bug: the user is asked to report it).
pub fn internal(what: &str) -> Diagnostic {
    Diagnostic::error(codes::TRAIN_FAILED, format!("internal error: {what}"))
        .note("this is a bug in modelc; please report it with the spec")
}

/// Lowers a checked model and compiles it for `mode` with every pass.
pub fn compile(model: &CheckedModel, mode: Mode, hash: &str) -> Result<ExecutionPlan, Diagnostic> {
    let graph = ir::lower(model).map_err(|e| {
        Diagnostic::error(
            codes::LOWER_UNSUPPORTED,
            format!("cannot compile `{}`: {}", e.layer, e.message),
        )
    })?;
    let mut compiled = plan::compile(graph, mode, &PassOptions::default(), hash.to_string())
        .map_err(|e| internal(&e.to_string()))?;
    compiled.output_names = model.output_names();
    Ok(compiled)
}

/// The most samples one batch of the pipeline holds (`batch all`: the larger split).
pub fn largest_batch(dataset: &Dataset) -> u64 {
    let samples = dataset
        .train
        .features
        .len()
        .max(dataset.validation.features.len());
    dataset.spec.batch.size.min(samples) as u64
}

/// Loads a pipeline's data, paths relative to the spec's folder; an error says which
/// pipeline of which spec was loading, with its place, as rustc's "note: in this expansion".
pub fn load_data(
    map: &SourceMap,
    spec: FileId,
    spec_path: &Path,
    pipeline: &PipelineSpec,
) -> Result<Dataset, Vec<Diagnostic>> {
    let base = spec_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    load_dataset(pipeline, base).map_err(|d| {
        let at = map.line_col(spec, pipeline.source.span.start);
        vec![d.note(format!(
            "while loading the source of data `{}` ({}:{}:{})",
            pipeline.name,
            map.name(spec),
            at.line,
            at.column
        ))]
    })
}

/// A rayon pool of `threads` threads (`None`: the global pool, the machine's cores).
pub fn thread_pool(threads: Option<u32>) -> Result<Option<rayon::ThreadPool>, Diagnostic> {
    let Some(t) = threads else {
        return Ok(None);
    };
    // matrixmultiply (the GEMM of CPUs without AVX2 + FMA) reads this before its first call.
    std::env::set_var("MATMUL_NUM_THREADS", t.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(t as usize)
        .build()
        .map(Some)
        .map_err(|e| Diagnostic::error(codes::IO_USAGE, format!("cannot start {t} threads: {e}")))
}

/// Runs `fit` inside `pool` (or the global pool).
pub fn fit_in(
    pool: Option<&rayon::ThreadPool>,
    plan: ExecutionPlan,
    params: ParamStore,
    train: &CheckedTrain,
    dataset: &Dataset,
    options: &FitOptions,
    progress: &mut (dyn Progress + Send),
) -> Result<Fitted, Diagnostic> {
    let run = |progress: &mut (dyn Progress + Send)| {
        fit::fit(
            plan,
            params,
            train,
            dataset,
            options,
            &mut ProgressRef(progress),
        )
    };
    match pool {
        Some(pool) => pool.install(|| run(progress)),
        None => run(progress),
    }
}

/// A `&mut dyn Progress` as a sized `Progress`.
struct ProgressRef<'p>(&'p mut (dyn Progress + Send));

impl Progress for ProgressRef<'_> {
    fn epoch_start(&mut self, epoch: u64, epochs: u64, batches: u64) {
        self.0.epoch_start(epoch, epochs, batches);
    }
    fn batch(&mut self, done: u64, running_loss: f64) {
        self.0.batch(done, running_loss);
    }
    fn wants_running_metrics(&mut self) -> bool {
        self.0.wants_running_metrics()
    }
    fn running_metrics(&mut self, metrics: &[(String, f64)]) {
        self.0.running_metrics(metrics);
    }
    fn validation_start(&mut self) {
        self.0.validation_start();
    }
    fn epoch_end(&mut self, record: &fit::EpochRecord) {
        self.0.epoch_end(record);
    }
}

/// Writes a fitted run's weights, plan (with the pipeline's fitted preprocessing), metrics and
/// curves into `dir`.
pub fn save_run(
    dir: &Path,
    mut infer_plan: ExecutionPlan,
    dataset: &Dataset,
    fitted: Fitted,
    title: &str,
) -> Result<Saved, Diagnostic> {
    if !dataset.spec.preprocess.is_empty() {
        infer_plan.preprocessing = Some(dataset.spec.preprocess.clone());
    }
    infer_plan.source = Some(dataset.spec.source.clone());
    infer_plan.input_groups.clone_from(&dataset.spec.inputs);
    let Fitted {
        params,
        history,
        end,
        best,
        checkpoint_error,
    } = fitted;
    // The weights are written first, whatever happened to the checkpoint: a failure to write
    // one never discards the other.
    if let Err(d) = folder::write_outputs(dir, &infer_plan, params, &history, title) {
        // The checkpoint failed first (it ended the run); the weights' failure is its note.
        return Err(match checkpoint_error {
            Some(c) => c.note(format!("writing the weights failed too: {}", d.message)),
            None => d,
        });
    }
    if let Some(d) = checkpoint_error {
        return Err(d.note(format!(
            "training stopped there; the weights trained so far and the metrics are in {}",
            dir.display()
        )));
    }
    Ok(Saved { history, end, best })
}

/// A run written to its folder: what callers report.
pub struct Saved {
    pub history: Vec<fit::EpochRecord>,
    pub end: fit::FitEnd,
    /// The best epoch, when the block stops early.
    pub best: Option<fit::BestEpoch>,
}

/// One training of a checked block into a folder, as an experiment's trial runs it.
pub struct Job<'a> {
    pub model: &'a CheckedModel,
    pub train: &'a CheckedTrain,
    pub dataset: &'a Dataset,
    pub spec_hash: &'a str,
    pub dir: &'a Path,
    /// Continue from the folder's checkpoint.
    pub resume: bool,
    pub threads: Option<u32>,
    pub max_activation_bytes: u64,
    pub interrupt: Arc<AtomicBool>,
}

/// Trains `job` into its folder (locked meanwhile) and writes the run's outputs; the
/// history and how the run ended come back.
pub fn train_into(
    job: &Job<'_>,
    progress: &mut (dyn Progress + Send),
) -> Result<Saved, Diagnostic> {
    let train_plan = compile(job.model, Mode::Train, job.spec_hash)?;
    let infer_plan = compile(job.model, Mode::Infer, job.spec_hash)?;
    std::fs::create_dir_all(job.dir).map_err(|e| {
        Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot create {}: {e}", job.dir.display()),
        )
    })?;
    let _lock = folder::lock_run(job.dir)?;
    check_activations(
        &train_plan,
        largest_batch(job.dataset),
        Use::Training,
        job.max_activation_bytes,
    )?;
    let params = ParamStore::init(&train_plan, job.train.seed).map_err(|e| fit::train_error(&e))?;
    let options = FitOptions {
        epochs: None,
        checkpoint: Some(job.dir.join("checkpoint.safetensors")),
        best: job
            .train
            .early_stopping
            .as_ref()
            .map(|_| job.dir.join("best.safetensors")),
        resume: job.resume,
        spec_hash: job.spec_hash.to_string(),
        interrupt: Some(Arc::clone(&job.interrupt)),
    };
    let pool = thread_pool(job.threads)?;
    let fitted = fit_in(
        pool.as_ref(),
        train_plan,
        params,
        job.train,
        job.dataset,
        &options,
        progress,
    )?;
    save_run(job.dir, infer_plan, job.dataset, fitted, &job.train.name)
}
