//! `modelc run PLAN.ron|FILE.model --weights W.safetensors --input X [-o OUT]`: predict.
//!
//! Input: a plan file (validated as untrusted, E070x) or a `.model` spec (checked and compiled
//! now, inference mode, every pass), a safetensors weights file (or `--random-weights SEED`),
//! and one input per model input, in the model's input order, with any batch size: an `.npy`
//! array, a CSV file, a PNG/JPEG image or a folder of them (see [`inputs`]).
//! The one rule ([`super::run_input`]): inputs are raw data as the data block's source reads it, and the
//! pipeline's `map` steps (carried by the plan, whether `train` or `compile` wrote it, or taken
//! from the spec) make the model input; `--model-input` feeds model-shaped arrays as they are.
//! Output: for a classifier (softmax or sigmoid output) each row's top `--top-k` classes and
//! probabilities; otherwise the output values (a numpy-like table); JSON with `--format json`;
//! `-o preds.csv` writes the table as CSV, `-o out.npy` the raw outputs as `<f4`, atomically; a
//! model with several outputs writes one file per output (`out.digit.npy`, `out.parity.npy`).
//! Exit 0 on success, 1 when the spec, plan, weights or inputs are wrong (E07xx/E08xx/E06xx),
//! 2 on usage and I/O errors.

mod image;
mod inputs;
mod predictions;
mod print;

use inputs::{preprocess, read_inputs, InputArray};
use predictions::{classifier_head, top_k, Ranked};
use print::print_outputs;

use super::common::{diag_format, load_plan, report, same_file};
use super::options::{ColorWhen, SummaryFormat};
use super::output::Output;
use super::run_input;
use crate::data::npy::write_npy;
use crate::diag::{codes, Diagnostic, SourceMap};
use crate::passes::Mode;
use crate::plan::ExecutionPlan;
use crate::runtime::interp::Interpreter;
use crate::runtime::weights::{init_weights, load_weights, WeightsError};
use clap::Args;
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

/// The input rule `run --help` states; a macro so `args.rs` can put it before the examples
/// of the long help (`after_long_help` replaces `after_help` there).
macro_rules! run_input_rule {
    () => {
        "\
Inputs are raw data, as the data block's source reads it: CSV rows (by the source's column rules; \
the label column may be there or not), PNG/JPEG images or a folder of them (sorted by name; pixel \
values 0-255, gray or RGB by the model's channels), or .npy arrays of such rows (float64 is \
converted to float32). `run` applies the pipeline's `map` steps (reshape, scale, resize, fitted \
standardize/normalize) to make the model input, for a plan from `train` or `compile` and for a \
.model file alike. With --model-input, arrays go to the model as they are. `modelc inspect` shows \
the raw input, the steps and the model input."
    };
}
pub(crate) use run_input_rule;

const INPUT_RULE: &str = run_input_rule!();

#[derive(Debug, Args)]
#[command(after_help = INPUT_RULE)]
pub struct RunArgs {
    /// A plan (`modelc compile -o PLAN.ron`) or a `.model` spec, compiled on the fly.
    #[arg(value_name = "PLAN.ron|FILE.model")]
    pub file: PathBuf,
    /// The weights (safetensors, one tensor per stored parameter, named LAYER.PARAM).
    #[arg(long, value_name = "W.safetensors", conflicts_with = "random_weights")]
    pub weights: Option<PathBuf>,
    /// Run with freshly initialized weights drawn from this seed instead of a weights file.
    #[arg(long, value_name = "SEED")]
    pub random_weights: Option<u64>,
    /// One input per model input, in the model's input order (repeat the flag): an `.npy`
    /// array, a `.csv` file, a `.png`/`.jpg` image or a folder of images.
    #[arg(long, required = true, value_name = "X.npy|X.csv|IMAGE|FOLDER")]
    pub input: Vec<PathBuf>,
    /// Where to write the output, atomically: `.csv` (the predictions or values as printed, one
    /// line per row) or `.npy` (the raw outputs, float32); without it the output is printed.
    /// A model with several outputs writes one file each, its name before the extension
    /// (`-o y.npy` → `y.digit.npy`, `y.parity.npy`).
    #[arg(short, long, value_name = "PREDS.csv|Y.npy")]
    pub output: Option<PathBuf>,
    /// For a classifier: show each row's K most probable classes (default 1).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub top_k: Option<u64>,
    /// The model to compile, when a `.model` file defines several.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Feed the inputs to the model as they are (shaped and scaled as its input), without the
    /// pipeline's `map` steps.
    #[arg(long, alias = "no-preprocess")]
    pub model_input: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Human)]
    pub format: SummaryFormat,
    #[command(flatten)]
    pub activations: super::limits::ActivationLimitArgs,
}

/// Runs `run`; returns the exit status.
pub fn run(args: &RunArgs, color: ColorWhen) -> u8 {
    let out = Output::new(color, diag_format(args.format));
    let mut map = SourceMap::new();
    match execute(args, &out, &mut map) {
        Ok(()) => 0,
        Err(diags) => report(&out, &map, diags),
    }
}

fn execute(args: &RunArgs, out: &Output, map: &mut SourceMap) -> Result<(), Vec<Diagnostic>> {
    if args.weights.is_none() && args.random_weights.is_none() {
        return Err(vec![Diagnostic::error(
            codes::IO_USAGE,
            "`run` needs the model's weights",
        )
        .help("pass `--weights W.safetensors`, or `--random-weights SEED` to try the model with fresh weights")]);
    }
    if let Some(o) = &args.output {
        let inputs = args.input.iter().chain(&args.weights).chain([&args.file]);
        if let Some(clash) = inputs.into_iter().find(|p| same_file(o, p)) {
            return Err(vec![Diagnostic::error(
                codes::IO_SAME_PATH,
                format!(
                    "the output {} is also an input ({})",
                    o.display(),
                    clash.display()
                ),
            )
            .help("write the output to another path, e.g. `-o out.npy`")]);
        }
    }
    let loaded = load_plan(map, &args.file, args.model.as_deref(), Mode::Infer)?;
    let warnings = loaded.warnings;
    let mut plan = loaded.plan;
    if let Some(p) = &loaded.pipeline {
        run_input::attach(&mut plan, p);
    }
    let head = classifier_head(&plan);
    if let (Some(k), None) = (args.top_k, head) {
        return Err(vec![Diagnostic::error(
            codes::IO_USAGE,
            format!(
                "`--top-k {k}` ranks classes, and {} is not a classifier",
                plan.model
            ),
        )
        .note("a classifier's output is a softmax or sigmoid of [N, classes]")
        .help("leave out `--top-k` to print the output values")]);
    }
    let per_input = run_input::steps_per_input(&plan, args.model_input);
    for steps in &per_input {
        run_input::check_fitted(steps, &args.file.display().to_string()).map_err(|d| vec![d])?;
    }
    let weights = match (&args.weights, args.random_weights) {
        (Some(path), _) => load_weights(path, &plan)?,
        (None, seed) => init_weights(&plan, seed.unwrap_or(0)).map_err(|e| match e {
            // The plan's own sizes: a problem in the user's plan file.
            WeightsError::TooLarge { .. } => {
                vec![e.to_diagnostic(&args.file.display().to_string())]
            }
            _ => vec![Diagnostic::error(codes::RUN_KERNEL, e.to_string())
                .note("this is a bug in modelc; please report it with the plan file")],
        })?,
    };
    let read = read_inputs(&plan, &args.input, &per_input)?;
    let mut arrays = read.arrays;
    for (array, steps) in arrays.iter_mut().zip(&per_input) {
        if !steps.is_empty() {
            *array = preprocess(
                steps,
                std::mem::replace(array, InputArray::F32(ArrayD::zeros(IxDyn(&[0])))),
            )?;
        }
    }
    let no_steps = per_input.iter().all(Vec::is_empty);
    let tensors = arrays.iter().map(InputArray::as_tensor).collect::<Vec<_>>();
    let batch = arrays.first().map_or(1, InputArray::batch) as u64;
    let limit = args.activations.max_activation_bytes;
    super::limits::check_activations(&plan, batch, super::limits::Use::Running, limit)
        .map_err(|d| vec![d])?;
    let mut interp = Interpreter::new(&plan, weights).map_err(|e| vec![e.to_diagnostic()])?;
    interp.set_memory_budget(limit);
    let outputs = interp.run(&tensors).map_err(|e| {
        let d = e.to_diagnostic();
        let files: Vec<String> = args.input.iter().map(|p| p.display().to_string()).collect();
        let d = d.note(format!("inputs read from {}", files.join(", ")));
        vec![if no_steps {
            d
        } else {
            d.note("after the pipeline's steps; `modelc inspect` shows the raw input they take")
        }]
    })?;
    out.diagnostics(map, &warnings);
    for note in &read.notes {
        out.status("Note", note);
    }
    let names: Vec<String> = if plan.output_names.is_empty() {
        plan.outputs
            .iter()
            .map(|&v| {
                plan.values
                    .get(v as usize)
                    .map_or_else(String::new, |p| p.name.clone())
            })
            .collect()
    } else {
        plan.output_names.clone()
    };
    let k = usize::try_from(args.top_k.unwrap_or(1)).unwrap_or(usize::MAX);
    let ranked = match (head, outputs.first()) {
        (Some(h), Some(y)) => Some(top_k(y, h, k)),
        _ => None,
    };
    let shown = Shown {
        names: &names,
        ranked: ranked.as_deref(),
        row_names: read.row_names.as_deref(),
    };
    if let Some(path) = &args.output {
        write_output(args, out, &plan, path, &outputs, &shown)
    } else {
        print_outputs(args.format, &plan.model, &outputs, &shown);
        Ok(())
    }
}

/// What is shown of the outputs besides their values: output names, a classifier's ranked
/// classes per row (of the first output), and a name per row when the rows are image files.
struct Shown<'a> {
    names: &'a [String],
    ranked: Option<&'a [Vec<Ranked>]>,
    row_names: Option<&'a [String]>,
}

fn write_output(
    args: &RunArgs,
    out: &Output,
    plan: &ExecutionPlan,
    path: &Path,
    outputs: &[ArrayD<f32>],
    shown: &Shown<'_>,
) -> Result<(), Vec<Diagnostic>> {
    // One output: the file asked for. Several: one file each, the output's name before the
    // extension (`preds.npy` → `preds.digit.npy`, `preds.parity.npy`).
    let targets: Vec<(PathBuf, &str, &ArrayD<f32>)> = match outputs {
        [y] => vec![(
            path.to_path_buf(),
            shown.names.first().map_or("output", String::as_str),
            y,
        )],
        _ => shown
            .names
            .iter()
            .zip(outputs)
            .map(|(name, y)| (per_output_path(path, name), name.as_str(), y))
            .collect(),
    };
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    for (target, name, y) in targets {
        let ranked = shown.ranked.filter(|_| outputs.len() == 1);
        let written = if is_csv {
            let text = match ranked {
                Some(rows) => predictions::csv(rows, shown.row_names),
                None => predictions::values_csv(name, y, shown.row_names),
            };
            crate::util::write_atomic(&target, text.as_bytes())
        } else {
            let values: Vec<f32> = y.iter().copied().collect();
            write_npy(&target, y.shape(), &values)
        };
        written.map_err(|e| {
            vec![Diagnostic::error(
                codes::IO_WRITE,
                format!("cannot write {}: {e}", target.display()),
            )
            .at_external(target.display().to_string(), 0, 0)]
        })?;
        let what = match (is_csv, ranked) {
            (true, Some(_)) => "predictions",
            (true, None) => "values",
            (false, _) => "output",
        };
        if args.format == SummaryFormat::Json {
            let mut json = serde_json::json!({
                "model": plan.model,
                "output": target.display().to_string(),
                "written": what,
                "shape": y.shape(),
            });
            if outputs.len() > 1 {
                json["name"] = serde_json::Value::from(name);
            }
            Output::stdout(&format!("{json}\n"));
        } else {
            let label = if outputs.len() > 1 {
                format!("{} `{name}`", plan.model)
            } else {
                plan.model.clone()
            };
            out.status(
                "Wrote",
                &format!("{label} {what} f32{:?} → {}", y.shape(), target.display()),
            );
        }
    }
    Ok(())
}

/// Where output `name` of a model with several goes when `-o` is `path`: the name before the
/// extension (`preds.npy` → `preds.digit.npy`).
fn per_output_path(path: &Path, name: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let file = match path.extension() {
        Some(ext) => format!("{stem}.{name}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{name}"),
    };
    path.with_file_name(file)
}

#[cfg(test)]
mod tests {
    use super::per_output_path;
    use super::print::array_repr;
    use std::path::Path;

    #[test]
    fn each_output_of_several_goes_to_its_own_file_named_before_the_extension() {
        let p = |s: &str, name: &str| per_output_path(Path::new(s), name);
        assert_eq!(p("out/y.npy", "digit"), Path::new("out/y.digit.npy"));
        assert_eq!(p("preds.csv", "parity"), Path::new("preds.parity.csv"));
        assert_eq!(p("raw", "a"), Path::new("raw.a"));
    }
    use ndarray::ArrayD;

    #[test]
    fn repr_aligns_nests_and_shortens_like_numpy() {
        let a = ArrayD::from_shape_vec(vec![2, 2], vec![1.0f32, -0.5, 10.25, 0.0]).unwrap();
        assert_eq!(
            array_repr(&a.view()),
            "[[ 1.000000, -0.500000],\n [10.250000,  0.000000]]"
        );
        let b = ArrayD::from_shape_vec(vec![201], (0..201).map(|i| i as f32).collect()).unwrap();
        assert_eq!(
            array_repr(&b.view()),
            "[  0.000000,   1.000000,   2.000000, ..., 198.000000, 199.000000, 200.000000]"
        );
        let c = ArrayD::from_shape_vec(vec![1], vec![1e-6f32]).unwrap();
        assert_eq!(array_repr(&c.view()), "[1.000000e-6]");
    }
}
