//! `modelc experiment FILE`: runs every trial of an `experiment` block, `--jobs` at a time,
//! each in `DIR/trials/NAME/` (the run folder `train` writes, plus `trial.json`), then compares
//! them into `DIR/results.csv`, `DIR/summary.csv` and `DIR/report.html` (default `DIR`:
//! `runs/EXPERIMENT`).
//!
//! Each trial trains on its own thread pool of `--threads` threads (default 1) with its own
//! seed, so its numbers are the same bits whatever `--jobs` is. Ctrl-C or SIGTERM lets every
//! running trial finish its step and write its checkpoint, then exits with status 130;
//! `--resume` skips the finished trials (those with a `trial.json`) and continues an
//! interrupted one from its checkpoint. Files: `progress` (the bars and lines people see),
//! `results` (`trial.json` and the comparison).

mod progress;
mod results;

use super::common::report;
use super::options::{format_parser, LimitArgs};
use super::output::Output;
use super::run_train::folder::earlier_run;
use super::run_train::{load_data, train_into, Job, Saved};
use super::source;
use crate::check::experiment::{CheckedExperiment, Trial};
use crate::data::loader::Dataset;
use crate::data::PipelineSpec;
use crate::diag::{self, codes, Diagnostic, Format, SourceMap};
use crate::fit::FitEnd;
use crate::plan;
use clap::Args;
use progress::{Event, Progress};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The `.model` file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The experiment block to run, when the file has several.
    #[arg(long = "experiment", value_name = "NAME")]
    pub experiment: Option<String>,
    /// The output folder (default `runs/EXPERIMENT`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Trials run at once (default: the machine's cores divided by `--threads`).
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,
    /// Threads of each trial (default 1). A trial's numbers depend on its spec, seed and this,
    /// never on `--jobs`.
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Continue an experiment in its output folder: finished trials are kept, an interrupted
    /// one continues from its checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// `human`: a line per trial and an overall bar on stderr; `json`: one JSON object per
    /// finished trial on stdout, then the summary.
    #[arg(long, value_parser = format_parser(), default_value = "human")]
    pub format: Format,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub activations: super::limits::ActivationLimitArgs,
}

/// How one trial ended.
pub enum Outcome {
    /// Finished earlier (`--resume`): nothing ran.
    Kept,
    Ran {
        saved: Saved,
        seconds: f64,
    },
    Failed(Diagnostic),
}

/// Runs `experiment`; returns the exit status.
pub fn run(args: &ExperimentArgs, out: &Output) -> u8 {
    let mut map = SourceMap::new();
    let (spec_file, experiment) = match prepare(args, &mut map) {
        Ok(x) => x,
        Err(d) => return report(out, &map, d),
    };
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&experiment.name));
    let trials_dir = dir.join("trials");
    if !args.resume {
        let earlier = experiment
            .trials
            .iter()
            .find_map(|t| earlier_run(&trials_dir.join(&t.name)).map(|f| (t, f)));
        if let Some((t, f)) = earlier {
            let d = Diagnostic::error(
                codes::IO_USAGE,
                format!(
                    "{} holds an earlier run of this experiment (trial `{}` has {f})",
                    dir.display(),
                    t.name
                ),
            )
            .help("add `--resume` to continue it, or choose another `--out`");
            return report(out, &map, vec![d]);
        }
    }
    let datasets = match load_datasets(&map, spec_file, &args.file, &experiment) {
        Ok(d) => d,
        Err(d) => return report(out, &map, d),
    };
    let threads = args.threads.unwrap_or(1);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let jobs = args
        .jobs
        .map_or_else(|| (cores / threads as usize).max(1), |j| j as usize);
    let spec_text = map.text(spec_file).to_string();
    let spec_hash = plan::spec_hash(spec_text.as_bytes());
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupt);
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    out.status(
        "Running",
        &format!(
            "experiment {}: {} trials, {} at a time, {threads} thread{} each → {}",
            experiment.name,
            experiment.trials.len(),
            jobs.min(experiment.trials.len()),
            if threads == 1 { "" } else { "s" },
            dir.display()
        ),
    );
    let shared = Shared {
        experiment: &experiment,
        datasets: &datasets,
        spec_hash: &spec_hash,
        trials_dir: &trials_dir,
        threads,
        max_activation_bytes: args.activations.max_activation_bytes,
        interrupt: &interrupt,
        resume: args.resume,
    };
    let mut progress = Progress::new(args.format, experiment.trials.len());
    let outcomes = run_trials(&shared, jobs, &mut progress);
    progress.finish();
    let mut problems = Vec::new();
    let mut interrupted = false;
    for (trial, outcome) in experiment.trials.iter().zip(&outcomes) {
        match outcome {
            Some(Outcome::Failed(d)) => {
                problems.push(d.clone().note(format!("in trial `{}`", trial.name)));
            }
            Some(Outcome::Ran { saved, .. }) if matches!(saved.end, FitEnd::Interrupted { .. }) => {
                interrupted = true;
            }
            None => interrupted = true,
            _ => {}
        }
    }
    if !problems.is_empty() {
        diag::sort(&mut problems);
        out.diagnostics(&map, &problems);
    }
    if interrupted {
        out.status(
            "Interrupted",
            &format!(
                "checkpoints written; continue with `modelc experiment {} --resume`",
                args.file.display()
            ),
        );
        return 130;
    }
    let compared = results::compare_and_write(&dir, &experiment, &spec_text, args.format);
    match compared {
        Ok(line) => {
            out.status("Finished", &line);
            u8::from(!problems.is_empty())
        }
        Err(d) => report(out, &map, vec![d]).max(u8::from(!problems.is_empty())),
    }
}

/// Reads and checks the spec; chooses the experiment.
fn prepare(
    args: &ExperimentArgs,
    map: &mut SourceMap,
) -> Result<(diag::FileId, CheckedExperiment), Vec<Diagnostic>> {
    let spec = source::load(map, &args.file, &args.limits.limits()).map_err(|d| vec![d])?;
    if spec.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(spec.diagnostics);
    }
    let checked =
        crate::check::limits::check_with_limits(spec.file, &spec.ast, &args.limits.model_limits());
    if checked.has_errors() {
        return Err(checked.diagnostics);
    }
    let names: Vec<String> = spec
        .ast
        .items
        .iter()
        .filter_map(|i| match i {
            crate::syntax::ast::Item::Experiment(x) => Some(x.name.name.clone()),
            _ => None,
        })
        .collect();
    let mut experiments = checked.experiments;
    let chosen = match &args.experiment {
        Some(n) => experiments.into_iter().find(|x| &x.name == n).ok_or_else(|| {
            let d = Diagnostic::error(
                codes::IO_USAGE,
                format!("the spec has no experiment named `{n}`"),
            );
            match diag::suggest::help_for(n, names.iter().map(String::as_str), "the experiments are") {
                Some(h) => d.help(h),
                None => d,
            }
        }),
        None if experiments.len() == 1 => experiments.pop().ok_or_else(|| {
            Diagnostic::error(codes::IO_USAGE, "the spec has no experiment")
        }),
        None if experiments.is_empty() => Err(Diagnostic::error(
            codes::IO_USAGE,
            "the spec has no experiment block",
        )
        .help("add one: `experiment Name { base TrainBlock  vary optimizer: [sgd(lr: 0.1), adam()] }`")),
        None => Err(Diagnostic::error(
            codes::IO_USAGE,
            format!("the spec has {} experiments", experiments.len()),
        )
        .help(format!("choose one with `--experiment NAME`: {}", names.join(", ")))),
    };
    chosen.map(|x| (spec.file, x)).map_err(|d| vec![d])
}

/// Each distinct pipeline of the trials, loaded once.
fn load_datasets(
    map: &SourceMap,
    spec: diag::FileId,
    path: &Path,
    experiment: &CheckedExperiment,
) -> Result<Vec<(PipelineSpec, Dataset)>, Vec<Diagnostic>> {
    let mut loaded: Vec<(PipelineSpec, Dataset)> = Vec::new();
    for trial in &experiment.trials {
        if !loaded.iter().any(|(p, _)| *p == trial.pipeline) {
            let data = load_data(map, spec, path, &trial.pipeline)?;
            loaded.push((trial.pipeline.clone(), data));
        }
    }
    Ok(loaded)
}

/// What every worker reads.
struct Shared<'a> {
    experiment: &'a CheckedExperiment,
    /// Each distinct pipeline as checked, and its data.
    datasets: &'a [(PipelineSpec, Dataset)],
    spec_hash: &'a str,
    trials_dir: &'a Path,
    threads: u32,
    max_activation_bytes: u64,
    interrupt: &'a Arc<AtomicBool>,
    resume: bool,
}

/// Runs the trials `jobs` at a time; each trial's outcome, `None` for one never started
/// (the run was interrupted first).
fn run_trials(shared: &Shared<'_>, jobs: usize, progress: &mut Progress) -> Vec<Option<Outcome>> {
    let trials = &shared.experiment.trials;
    let next = AtomicUsize::new(0);
    let (send, receive) = mpsc::channel::<Event>();
    let mut outcomes: Vec<Option<Outcome>> = trials.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(trials.len()) {
            let send = send.clone();
            let next = &next;
            scope.spawn(move || loop {
                if shared.interrupt.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(trial) = trials.get(i) else {
                    return;
                };
                let outcome = run_trial(shared, i, trial, &send);
                if send.send(Event::Finished(i, outcome)).is_err() {
                    return;
                }
            });
        }
        drop(send);
        for event in receive {
            if let Some((i, outcome)) = progress.event(event, trials) {
                if let Some(slot) = outcomes.get_mut(i) {
                    *slot = Some(outcome);
                }
            }
        }
    });
    outcomes
}

/// Runs one trial into its folder (or keeps it, when `--resume` finds it finished).
fn run_trial(
    shared: &Shared<'_>,
    index: usize,
    trial: &Trial,
    send: &mpsc::Sender<Event>,
) -> Outcome {
    let dir = shared.trials_dir.join(&trial.name);
    if shared.resume && results::finished(&dir) {
        return Outcome::Kept;
    }
    let resume = shared.resume && dir.join("checkpoint.safetensors").is_file();
    let Some((_, dataset)) = shared.datasets.iter().find(|(p, _)| *p == trial.pipeline) else {
        return Outcome::Failed(super::run_train::internal("a trial's data was not loaded"));
    };
    let _ = send.send(Event::Started(index, resume));
    let job = Job {
        model: &trial.model,
        train: &trial.train,
        dataset,
        spec_hash: shared.spec_hash,
        dir: &dir,
        resume,
        threads: Some(shared.threads),
        max_activation_bytes: shared.max_activation_bytes,
        interrupt: Arc::clone(shared.interrupt),
    };
    let started = Instant::now();
    let mut reporter = progress::TrialReporter::new(index, send.clone());
    match train_into(&job, &mut reporter) {
        Ok(saved) => {
            let seconds = started.elapsed().as_secs_f64();
            if !matches!(saved.end, FitEnd::Interrupted { .. }) {
                if let Err(d) = results::write_trial_json(&dir, trial, seconds) {
                    return Outcome::Failed(d);
                }
            }
            Outcome::Ran { saved, seconds }
        }
        Err(d) => Outcome::Failed(d),
    }
}
