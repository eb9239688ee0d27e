//! `modelc train FILE` and `modelc eval FILE --weights W`: run a spec's `train` block over its
//! data pipeline, and measure trained weights on the validation data.
//!
//! `train` writes into its output folder (default `runs/NAME`), every file atomically:
//! `weights.safetensors` (the inference plan's parameters, Keras layouts), `plan.ron` (the
//! optimized inference plan), `metrics.csv`, `curves.svg` and `checkpoint.safetensors`
//! (parameters, optimizer state and progress, for `--resume`). Ctrl-C or SIGTERM finishes the
//! current step, writes the checkpoint and exits with status 130.

mod class_report;
mod finetune;
mod finish;
mod overrides;
mod progress;

use super::common::report;
use super::limits::{check_activations, Use};
use super::options::{format_parser, LimitArgs};
use super::output::Output;
use super::run_train::folder::{earlier_run, lock_run};
use super::run_train::{
    compile, fit_in, internal, largest_batch, load_data, save_run, thread_pool,
};
use super::source;
use crate::check::{train_types::CheckedTrain, types::CheckedModel, Checked};
use crate::data::loader::Dataset;
use crate::diag::{self, codes, Diagnostic, Format, SourceMap};
use crate::fit::{self, FitOptions};
use crate::passes::Mode;
use crate::plan;
use crate::runtime::metrics::ConfusionMatrix;
use crate::runtime::train::{ParamStore, Trainer};
use crate::runtime::weights;
use clap::Args;
use finish::finish;
pub use progress::epoch_line;
use progress::{Reporter, TensorBoardLog};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The `.model` file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The train block to run, when the file has several.
    #[arg(long = "train", value_name = "NAME")]
    pub train_block: Option<String>,
    /// Train for this many epochs instead of the block's `epochs`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: Option<u64>,
    /// The output folder (default `runs/NAME`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoint in the output folder.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Train from scratch into an output folder that holds an earlier run, replacing its files.
    #[arg(long)]
    pub force: bool,
    /// Start from these weights (safetensors, by `LAYER.PARAM` name; the rest keep their
    /// initializers) instead of the block's `init`, for fine-tuning.
    #[arg(long, value_name = "W.safetensors", conflicts_with = "resume")]
    pub init_weights: Option<PathBuf>,
    /// Change a setting of the train block (`optimizer=adam(lr: 3e-4)`) or of its data block
    /// (`data.batch=32`), as an experiment's line would; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Worker threads (default: the machine's cores). The same spec, seed and thread count
    /// give the same numbers bit for bit.
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Also write TensorBoard event files into DIR/NAME (NAME: the train block): per-step and
    /// per-epoch scalars, the spec as text, the hyperparameters; view with
    /// `tensorboard --logdir DIR`.
    #[arg(long, value_name = "DIR")]
    pub logdir: Option<PathBuf>,
    /// `human`: a progress bar per epoch on a terminal and a line per epoch on stderr;
    /// `json`: on stdout, one JSON object per epoch (epoch, loss, each metric, val_loss and
    /// each val_ metric, lr, samples_per_sec, data_wait_fraction), then one summary object
    /// (end, epochs, best, out, files); diagnostics as JSON lines on stderr.
    #[arg(long, value_parser = format_parser(), default_value = "human")]
    pub format: Format,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub activations: super::limits::ActivationLimitArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The `.model` file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Trained weights (safetensors), e.g. `runs/NAME/weights.safetensors`.
    #[arg(long, value_name = "W.safetensors")]
    pub weights: PathBuf,
    /// The train block whose model, data and metrics to use.
    #[arg(long = "train", value_name = "NAME")]
    pub train_block: Option<String>,
    /// Which split of the spec's pipeline to measure (`test`: the rows `split test:` holds out).
    #[arg(long, value_enum, default_value_t = Split::Validation)]
    pub split: Split,
    #[arg(long, value_parser = format_parser(), default_value = "human")]
    pub format: Format,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub activations: super::limits::ActivationLimitArgs,
}

/// A data split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    Train,
    Validation,
    /// Held out by `split test:`: neither trained on nor validated on.
    Test,
}

/// Everything both commands prepare from the spec.
struct Prepared {
    /// The spec's text in the source map.
    spec_file: diag::FileId,
    spec_hash: String,
    train: CheckedTrain,
    model: CheckedModel,
    dataset: Dataset,
}

fn prepare(
    file: &Path,
    limits: &LimitArgs,
    name: Option<&str>,
    set: &[String],
    map: &mut SourceMap,
) -> Result<Prepared, Vec<Diagnostic>> {
    let spec = source::load(map, file, &limits.limits()).map_err(|d| vec![d])?;
    if spec.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(spec.diagnostics);
    }
    let (ast, set_files) =
        overrides::apply(map, spec.file, &spec.ast, name, set, &limits.limits())?;
    let Checked {
        diagnostics,
        models,
        trains,
        pipelines,
        ..
    } = crate::check::limits::check_with_limits(spec.file, &ast, &limits.model_limits());
    let diagnostics = set_files.relocate(diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    let names: Vec<&str> = trains.iter().map(|t| t.name.as_str()).collect();
    let train = match name {
        Some(n) => trains
            .iter()
            .find(|t| t.name == n)
            .cloned()
            .ok_or_else(|| {
                let d = Diagnostic::error(
                    codes::IO_USAGE,
                    format!("the spec has no train block named `{n}`"),
                );
                vec![
                    match diag::suggest::help_for(n, names.iter().copied(), "the train blocks are")
                    {
                        Some(h) => d.help(h),
                        None => d,
                    },
                ]
            })?,
        None => match trains.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(vec![Diagnostic::error(
                    codes::IO_USAGE,
                    "the spec has no train block",
                )
                .help(
                    "add one: `train Model on Data { loss ..., optimizer ..., epochs ... }`",
                )])
            }
            _ => {
                return Err(vec![Diagnostic::error(
                    codes::IO_USAGE,
                    format!("the spec has {} train blocks", trains.len()),
                )
                .help(format!(
                    "choose one with `--train NAME`: {}",
                    names.join(", ")
                ))])
            }
        },
    };
    let model = models
        .into_iter()
        .find(|m| m.name == train.model)
        .ok_or_else(|| vec![internal("the train block's model did not check")])?;
    let pipeline = pipelines
        .into_iter()
        .find(|p| p.name == train.data)
        .ok_or_else(|| vec![internal("the train block's data did not check")])?;
    let dataset = load_data(map, spec.file, file, &pipeline)?;
    // The hash is of the spec's meaning (its canonical print: `fmt` and comments keep a run
    // resumable), and overrides change the run: a checkpoint of another `--set` is not this
    // run's.
    let mut hashed = crate::syntax::format::print_file(&spec.ast);
    for text in set {
        hashed.push_str("\n--set ");
        hashed.push_str(text);
    }
    let spec_hash = plan::spec_hash(hashed.as_bytes());
    Ok(Prepared {
        spec_file: spec.file,
        spec_hash,
        train,
        model,
        dataset,
    })
}

/// Runs `train`; returns the exit status.
pub fn run_train(args: &TrainArgs, out: &Output) -> u8 {
    let mut map = SourceMap::new();
    let p = match prepare(
        &args.file,
        &args.limits,
        args.train_block.as_deref(),
        &args.set,
        &mut map,
    ) {
        Ok(p) => p,
        Err(d) => return report(out, &map, d),
    };
    let (train_plan, infer_plan) = match (
        compile(&p.model, Mode::Train, &p.spec_hash),
        compile(&p.model, Mode::Infer, &p.spec_hash),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(d), _) | (_, Err(d)) => return report(out, &map, vec![d]),
    };
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&p.train.name));
    if !args.resume && !args.force {
        if let Some(found) = earlier_run(&dir) {
            let d = Diagnostic::error(
                codes::IO_USAGE,
                format!(
                    "{} holds an earlier run ({found}); training would replace it",
                    dir.display()
                ),
            )
            .help("add `--resume` to continue that run, `--force` to replace it, or choose another `--out`");
            return report(out, &map, vec![d]);
        }
    }
    if let Err(e) = std::fs::create_dir_all(&dir) {
        let d = Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot create {}: {e}", dir.display()),
        );
        return report(out, &map, vec![d]);
    }
    // Held until this function returns: a second training in `dir` is refused meanwhile.
    let _lock = match lock_run(&dir) {
        Ok(l) => l,
        Err(d) => return report(out, &map, vec![d]),
    };
    let checkpoint = dir.join("checkpoint.safetensors");
    if args.resume && !checkpoint.exists() {
        let d = Diagnostic::error(
            codes::IO_READ,
            format!("there is no checkpoint to resume from in {}", dir.display()),
        )
        .help("run without `--resume` first, or point `--out` at the folder of an earlier run");
        return report(out, &map, vec![d]);
    }
    let batch = largest_batch(&p.dataset);
    let limit = args.activations.max_activation_bytes;
    if let Err(d) = check_activations(&train_plan, batch, Use::Training, limit) {
        return report(out, &map, vec![d]);
    }
    let mut params = match ParamStore::init(&train_plan, p.train.seed) {
        Ok(x) => x,
        Err(e) => return report(out, &map, vec![fit::train_error(&e)]),
    };
    if let Some(w) = finetune::init_path(args.init_weights.as_deref(), &args.file, &p.train)
        .filter(|_| !args.resume)
    {
        let cap = args.limits.max_param_bytes;
        params = match finetune::start_from(out, &w, cap, &train_plan, params) {
            Ok(x) => x,
            Err(d) => return report(out, &map, d),
        };
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupt);
        // A second handler (in tests that call this twice) is refused; the first one stays.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let options = FitOptions {
        epochs: args.epochs,
        checkpoint: Some(checkpoint.clone()),
        best: p
            .train
            .early_stopping
            .as_ref()
            .map(|_| dir.join("best.safetensors")),
        resume: args.resume,
        spec_hash: p.spec_hash.clone(),
        interrupt: Some(Arc::clone(&interrupt)),
    };
    let n_train = p.dataset.train.features.len();
    let n_val = p.dataset.validation.features.len();
    let n_test = match p.dataset.test.features.len() {
        0 => String::new(),
        n => format!(", {n} test"),
    };
    out.status(
        "Training",
        &format!(
            "{} on {} ({n_train} training, {n_val} validation{n_test} samples) → {}",
            p.train.model,
            p.train.data,
            dir.display()
        ),
    );
    let terminal = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let log = match args.logdir.as_deref() {
        Some(logdir) => match open_log(logdir, &p, &map) {
            Ok(log) => Some(log),
            Err(d) => return report(out, &map, vec![d]),
        },
        None => None,
    };
    let mut reporter = Reporter::new(args.format, terminal, log);
    let pool = match thread_pool(args.threads) {
        Ok(pool) => pool,
        Err(d) => return report(out, &map, vec![d]),
    };
    let result = fit_in(
        pool.as_ref(),
        train_plan,
        params,
        &p.train,
        &p.dataset,
        &options,
        &mut reporter,
    );
    let fitted = match result {
        Ok(f) => f,
        Err(d) => {
            return report(
                out,
                &map,
                vec![d.note(format!(
                    "the last checkpoint, if any, is in {}",
                    checkpoint.display()
                ))],
            )
        }
    };
    let log_file = reporter.log.as_ref().map(|l| l.writer.path().to_path_buf());
    if let Some(d) = reporter.log.and_then(|l| l.failed) {
        out.diagnostics(&map, &[d]);
    }
    let fitted = match save_run(&dir, infer_plan, &p.dataset, fitted, &p.train.name) {
        Ok(saved) => saved,
        Err(d) => return report(out, &map, vec![d]),
    };
    finish(out, args.format, &fitted, &dir, log_file.as_deref())
}

/// Opens the TensorBoard log of this run in `logdir/NAME` and writes what is known before
/// training: the spec's text and the hyperparameters. E0820 when it cannot be written.
fn open_log(logdir: &Path, p: &Prepared, map: &SourceMap) -> Result<TensorBoardLog, Diagnostic> {
    let dir = logdir.join(&p.train.name);
    let fail = |path: &Path, e: &std::io::Error| {
        Diagnostic::error(
            codes::TENSORBOARD_WRITE,
            format!(
                "cannot write the TensorBoard log in {}: {e}",
                path.display()
            ),
        )
        .at_external(path.display().to_string(), 0, 0)
        .help("point `--logdir` at a folder you can write to, or leave it out")
    };
    let mut writer = fit::tensorboard::EventWriter::create(&dir).map_err(|e| fail(&dir, &e))?;
    let wall = fit::tensorboard::now();
    let text = map.text(p.spec_file);
    let mut settings = serde_json::to_value(&p.train).unwrap_or_default();
    if let Some(obj) = settings.as_object_mut() {
        obj.remove("span");
        obj.remove("name");
        obj.insert("batch".into(), p.dataset.spec.batch.size.into());
    }
    let values = fit::tensorboard::flatten_hparams(&settings);
    let mut table = String::from("| hyperparameter | value |\n|---|---|\n");
    for (k, v) in &values {
        let shown = v
            .string_value
            .clone()
            .or_else(|| v.number_value.map(|n| n.to_string()))
            .unwrap_or_default();
        let _ = writeln!(table, "| {k} | {shown} |");
    }
    let events = [
        fit::tensorboard::text(
            fit::tensorboard::SPEC_TAG,
            &format!("```\n{text}\n```"),
            wall,
        ),
        fit::tensorboard::text("hyperparameters", &table, wall),
        fit::tensorboard::hparams(&p.train.name, values, wall),
    ];
    writer.write(&events).map_err(|e| fail(writer.path(), &e))?;
    Ok(TensorBoardLog {
        writer,
        failed: None,
    })
}

/// Runs `eval`; returns the exit status.
pub fn run_eval(args: &EvalArgs, out: &Output) -> u8 {
    let mut map = SourceMap::new();
    let p = match prepare(
        &args.file,
        &args.limits,
        args.train_block.as_deref(),
        &[],
        &mut map,
    ) {
        Ok(p) => p,
        Err(d) => return report(out, &map, d),
    };
    let train_plan = match compile(&p.model, Mode::Train, &p.spec_hash) {
        Ok(t) => t,
        Err(d) => return report(out, &map, vec![d]),
    };
    let limit = args.activations.max_activation_bytes;
    let batch = largest_batch(&p.dataset);
    if let Err(d) = check_activations(&train_plan, batch, Use::Running, limit) {
        return report(out, &map, vec![d]);
    }
    // The weights file holds the inference plan's stored parameters, which are every parameter
    // of the training plan that inference reads; the rest start from their initializers.
    let init = match ParamStore::init(&train_plan, p.train.seed) {
        Ok(x) => x,
        Err(e) => return report(out, &map, vec![fit::train_error(&e)]),
    };
    let infer_plan = match compile(&p.model, Mode::Infer, &p.spec_hash) {
        Ok(i) => i,
        Err(d) => return report(out, &map, vec![d]),
    };
    let loaded = match weights::load_weights(&args.weights, &infer_plan) {
        Ok(w) => w,
        Err(d) => return report(out, &map, d),
    };
    let names: Vec<String> = init.names().to_vec();
    let tensors: Vec<ndarray::ArrayD<f32>> = names
        .iter()
        .zip(init.into_tensors())
        .map(|(n, t)| loaded.by_name(n).cloned().unwrap_or(t))
        .collect();
    let params = match ParamStore::from_tensors(&train_plan, tensors) {
        Ok(x) => x,
        Err(e) => return report(out, &map, vec![fit::train_error(&e)]),
    };
    let input_dtype = train_plan
        .inputs
        .first()
        .and_then(|&v| train_plan.values.get(v as usize))
        .map(|v| v.fact.dtype);
    let mut trainer = match Trainer::new(train_plan, params, p.train.seed) {
        Ok(t) => t,
        Err(e) => return report(out, &map, vec![fit::train_error(&e)]),
    };
    let loader = match args.split {
        Split::Train => p.dataset.train_loader(),
        Split::Validation => p.dataset.validation_loader(),
        Split::Test => p.dataset.test_loader(),
    };
    if loader.is_empty() {
        let setting = if args.split == Split::Test {
            "test"
        } else {
            "validation"
        };
        let d = Diagnostic::error(codes::IO_USAGE, "that split has no samples").help(format!(
            "the data block needs `split {setting}: 0.2` for a {setting} split; or use `--split train`"
        ));
        return report(out, &map, vec![d]);
    }
    let objective = fit::setup::objective(&p.train);
    let metrics = fit::setup::metrics(&p.train);
    // a classifier's confusion counts, for the per-class report (none for an autoencoder)
    let task = match p.train.target {
        crate::check::train_types::Target::Labels => {
            crate::runtime::metrics::Task::of(objective.loss)
        }
        crate::check::train_types::Target::Inputs => None,
    };
    let mut confusion: Option<ConfusionMatrix> = None;
    let mut observe = |y: &ndarray::ArrayViewD<f32>, t: &crate::runtime::loss::Targets| {
        let Some(task) = task else { return Ok(()) };
        let batch = ConfusionMatrix::of_batch(task, y, t);
        let added = match (&mut confusion, batch) {
            (Some(m), Ok(b)) => m.add(&b),
            (slot, Ok(b)) => {
                *slot = Some(b);
                Ok(())
            }
            (_, Err(e)) => Err(e),
        };
        added.map_err(|e| Diagnostic::error(codes::TRAIN_FAILED, e.to_string()))
    };
    let kinds = (metrics.as_slice(), input_dtype);
    let batches = loader.epoch(0);
    // Several outputs: the total, then each output's loss and metrics (no per-class report).
    let result = match fit::outputs::Outputs::of(&p.train) {
        Some(m) => m.evaluate(&mut trainer, batches, input_dtype),
        None => fit::evaluate_observed(&mut trainer, batches, objective, kinds, &mut observe),
    };
    match result {
        Ok((l, m)) => {
            let confusion = confusion.as_ref();
            if args.format == Format::Json {
                let mut obj = serde_json::Map::new();
                obj.insert("samples".into(), loader.len().into());
                obj.insert("loss".into(), l.into());
                for (k, v) in &m {
                    obj.insert(k.clone(), (*v).into());
                }
                if let Some(c) = confusion {
                    obj.insert("report".into(), class_report::json(c));
                }
                Output::stdout(&format!("{}\n", serde_json::Value::Object(obj)));
            } else {
                let mut line = format!("{} samples: loss {l:.4}", loader.len());
                for (k, v) in &m {
                    let _ = write!(line, " - {k} {v:.4}");
                }
                if let Some(c) = confusion {
                    let _ = write!(line, "\n\n{}", class_report::human(c));
                }
                Output::stdout(&format!("{}\n", line.trim_end()));
            }
            0
        }
        Err(d) => report(out, &map, vec![d]),
    }
}
