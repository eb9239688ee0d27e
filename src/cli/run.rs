//! `modelc run PLAN.ron|FILE.model --weights W.safetensors --input X.npy [-o Y.npy]`: run a
//! model on arrays from `.npy` files.
//!
//! Input: a plan file (validated as untrusted, E070x) or a `.model` spec (checked and compiled
//! now, inference mode, every pass), a safetensors weights file (or `--random-weights SEED`),
//! and one `.npy` file per model input, in the model's input order, with any batch size.
//! Output: the model's output written atomically as `<f4` `.npy` (`-o`), or printed (a
//! numpy-like table for people, JSON with `--format json`). Exit 0 on success, 1 when the spec,
//! plan, weights or input arrays are wrong (E07xx/E08xx/E06xx), 2 on usage and I/O errors.
//!
//! Data-pipeline `map` steps (reshape, scale, resize) are not applied: the input arrays must
//! already look like the model's declared inputs. Fitted normalization folded into the plan
//! (`Affine` steps) runs as an ordinary step.

use super::args::{ColorWhen, SummaryFormat};
use super::output::Output;
use super::source;
use crate::data::npy::{read_npy, write_npy, NpyArray, NpyData};
use crate::diag::{self, codes, Diagnostic, Format, SourceMap};
use crate::passes::{Mode, PassOptions};
use crate::plan::{ExecutionPlan, PlanError};
use crate::runtime::interp::{plan_error_diagnostic, Interpreter, TensorRef};
use crate::runtime::weights::{init_weights, load_weights, WeightsError};
use crate::{ir, plan};
use clap::Args;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Outputs with at most this many values are printed in full.
const PRINT_LIMIT: usize = 200;
/// Largest plan or `.npy` file read, in bytes (the memory budget bounds what runs anyway).
const MAX_FILE_BYTES: u64 = 4 << 30;

#[derive(Debug, Args)]
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
    /// One `.npy` array per model input, in the model's input order (repeat the flag).
    #[arg(long, required = true, value_name = "X.npy")]
    pub input: Vec<PathBuf>,
    /// Where to write the output (`.npy`, float32, atomically); without it the output is printed.
    #[arg(short, long, value_name = "Y.npy")]
    pub output: Option<PathBuf>,
    /// The model to compile, when a `.model` file defines several.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Feed the inputs to the model as they are, without the plan's fitted preprocessing.
    #[arg(long)]
    pub no_preprocess: bool,
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

/// The diagnostics format matching a command's `--format`.
pub(super) fn diag_format(format: SummaryFormat) -> Format {
    match format {
        SummaryFormat::Human => Format::Human,
        SummaryFormat::Json => Format::Json,
    }
}

/// Prints diagnostics and returns their exit status (at least 1 when any is an error).
pub(super) fn report(out: &Output, map: &SourceMap, mut diags: Vec<Diagnostic>) -> u8 {
    diag::sort(&mut diags);
    out.diagnostics(map, &diags);
    diag::exit_status(&diags).max(u8::from(diags.iter().any(Diagnostic::is_error)))
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
    let plan = loaded.plan;
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
    let mut arrays = read_inputs(&plan, &args.input)?;
    if let (Some(steps), false, [single]) = (
        &plan.preprocessing,
        args.no_preprocess,
        arrays.as_mut_slice(),
    ) {
        *single = preprocess(
            steps,
            std::mem::replace(single, InputArray::F32(ArrayD::zeros(IxDyn(&[0])))),
        )?;
    }
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
        vec![d.note(format!("inputs read from {}", files.join(", ")))]
    })?;
    out.diagnostics(map, &warnings);
    let names: Vec<String> = plan
        .outputs
        .iter()
        .map(|&v| {
            plan.values
                .get(v as usize)
                .map_or_else(String::new, |p| p.name.clone())
        })
        .collect();
    if let Some(path) = &args.output {
        write_output(args, out, &plan, path, &outputs)
    } else {
        print_outputs(args.format, &plan.model, &names, &outputs);
        Ok(())
    }
}

fn write_output(
    args: &RunArgs,
    out: &Output,
    plan: &ExecutionPlan,
    path: &Path,
    outputs: &[ArrayD<f32>],
) -> Result<(), Vec<Diagnostic>> {
    let [y] = outputs else {
        return Err(vec![Diagnostic::error(
            codes::IO_USAGE,
            format!(
                "`-o` takes one array, the model has {} outputs",
                outputs.len()
            ),
        )
        .help("leave out `-o` to print every output")]);
    };
    let values: Vec<f32> = y.iter().copied().collect();
    write_npy(path, y.shape(), &values).map_err(|e| {
        vec![Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot write {}: {e}", path.display()),
        )
        .at_external(path.display().to_string(), 0, 0)]
    })?;
    if args.format == SummaryFormat::Json {
        let json = serde_json::json!({
            "model": plan.model,
            "output": path.display().to_string(),
            "shape": y.shape(),
        });
        Output::stdout(&format!("{json}\n"));
    } else {
        out.status(
            "Wrote",
            &format!(
                "{} output f32{:?} → {}",
                plan.model,
                y.shape(),
                path.display()
            ),
        );
    }
    Ok(())
}

/// A plan ready to run, and warnings found on the way (from the spec's checker).
pub(super) struct LoadedPlan {
    pub plan: ExecutionPlan,
    pub warnings: Vec<Diagnostic>,
    /// FLOPs per sample of the model (from the checker; `None` for a plan file).
    pub flops_per_sample: Option<u64>,
}

/// Reads a plan file, or checks and compiles a `.model` file in `mode` with every pass.
pub(super) fn load_plan(
    map: &mut SourceMap,
    path: &Path,
    model: Option<&str>,
    mode: Mode,
) -> Result<LoadedPlan, Vec<Diagnostic>> {
    if path.extension().is_some_and(|e| e == "model") {
        compile_spec(map, path, model, mode)
    } else {
        read_plan(path).map(|plan| LoadedPlan {
            plan,
            warnings: Vec::new(),
            flops_per_sample: None,
        })
    }
}

/// Reads at most [`MAX_FILE_BYTES`] of a file (E0900 when it cannot be read).
pub(super) fn read_bytes(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let shown = path.display().to_string();
    let fail = |msg: String| {
        Diagnostic::error(codes::IO_READ, format!("cannot read {shown}: {msg}")).at_external(
            shown.clone(),
            0,
            0,
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if meta.is_dir() {
        return Err(fail("it is a folder".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(fail(format!("it is larger than {MAX_FILE_BYTES} bytes")));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES).read_to_end(&mut bytes))
        .map_err(|e| fail(e.to_string()))?;
    Ok(bytes)
}

/// Reads and validates a plan file: E0900 when unreadable, E070x when malformed.
pub(super) fn read_plan(path: &Path) -> Result<ExecutionPlan, Vec<Diagnostic>> {
    let shown = path.display().to_string();
    let bytes = read_bytes(path).map_err(|d| vec![d])?;
    let text = String::from_utf8(bytes).map_err(|_| {
        vec![plan_error_diagnostic(
            &PlanError::Syntax("the file is not UTF-8 text".into()),
            &shown,
        )]
    })?;
    ExecutionPlan::from_ron(&text).map_err(|e| vec![plan_error_diagnostic(&e, &shown)])
}

fn compile_spec(
    map: &mut SourceMap,
    path: &Path,
    model: Option<&str>,
    mode: Mode,
) -> Result<LoadedPlan, Vec<Diagnostic>> {
    let spec = source::load(map, path, &crate::syntax::Limits::default()).map_err(|d| vec![d])?;
    if spec.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(spec.diagnostics);
    }
    let checked = super::limits::check_with_limits(
        spec.file,
        &spec.ast,
        &crate::check::limits::ModelLimits::default(),
    );
    if checked.has_errors() {
        return Err(checked.diagnostics);
    }
    let chosen = super::compile::choose_model(&checked.models, model).map_err(|d| vec![d])?;
    let flops = chosen
        .layers
        .iter()
        .fold(0u64, |a, l| a.saturating_add(l.flops_per_sample));
    let graph = ir::lower(chosen).map_err(|e| {
        vec![Diagnostic::error(
            codes::LOWER_UNSUPPORTED,
            format!("cannot compile `{}`: {}", e.layer, e.message),
        )
        .primary(spec.file, e.span, "in this layer")]
    })?;
    let hash = plan::spec_hash(map.text(spec.file).as_bytes());
    let compiled = plan::compile(graph, mode, &PassOptions::default(), hash).map_err(|e| {
        vec![Diagnostic::error(codes::LOWER_UNSUPPORTED, e.to_string())
            .note("this is a bug in modelc; please report it with the spec")]
    })?;
    let mut warnings = spec.diagnostics;
    warnings.extend(checked.diagnostics);
    Ok(LoadedPlan {
        plan: compiled,
        warnings,
        flops_per_sample: Some(flops),
    })
}

/// One input array as read, in a dtype the interpreter takes.
enum InputArray {
    F32(ArrayD<f32>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
}

impl InputArray {
    /// The leading (batch) dimension; 1 for a scalar.
    fn batch(&self) -> usize {
        let shape = match self {
            InputArray::F32(a) => a.shape(),
            InputArray::I32(a) => a.shape(),
            InputArray::I64(a) => a.shape(),
        };
        shape.first().copied().unwrap_or(1)
    }

    fn as_tensor(&self) -> TensorRef<'_> {
        match self {
            InputArray::F32(a) => TensorRef::F32(a.view()),
            InputArray::I32(a) => TensorRef::I32(a.view()),
            InputArray::I64(a) => TensorRef::I64(a.view()),
        }
    }
}

/// Applies the plan's fitted preprocessing (the training pipeline's `map` steps) to raw input,
/// as the training data went through it.
fn preprocess(
    steps: &[crate::data::spec::Step<crate::data::spec::Transform>],
    input: InputArray,
) -> Result<InputArray, Vec<Diagnostic>> {
    use crate::data::samples::{Features, Labels, Samples};
    let features = match input {
        InputArray::F32(a) => Features::F32(a),
        InputArray::I32(a) => Features::I64(a.mapv(i64::from)),
        InputArray::I64(a) => Features::I64(a),
    };
    let samples = Samples {
        features,
        labels: Labels::None,
    };
    let out = crate::data::transform::apply_fitted_steps(steps, samples).map_err(|d| {
        vec![d.help("the input must be raw data as the training pipeline's source yields it; `--no-preprocess` feeds it to the model as it is")]
    })?;
    Ok(match out.features {
        Features::F32(a) => InputArray::F32(a),
        Features::I64(a) => InputArray::I64(a),
    })
}

/// Reads one `.npy` per plan input; the interpreter checks shapes and dtypes against the plan.
fn read_inputs(
    plan: &ExecutionPlan,
    paths: &[PathBuf],
) -> Result<Vec<InputArray>, Vec<Diagnostic>> {
    let facts: Vec<(&str, &ir::Fact)> = plan
        .inputs
        .iter()
        .filter_map(|&v| plan.values.get(v as usize))
        .map(|v| (v.name.as_str(), &v.fact))
        .collect();
    if facts.len() != paths.len() {
        let names: Vec<String> = facts.iter().map(|(n, f)| format!("{n}: {f}")).collect();
        return Err(vec![Diagnostic::error(
            codes::RUN_INPUT_COUNT,
            format!(
                "the model takes {} input(s), {} `--input` file(s) given",
                facts.len(),
                paths.len()
            ),
        )
        .note(format!("the inputs are, in order: {}", names.join(", ")))]);
    }
    let mut arrays = Vec::with_capacity(paths.len());
    let mut diags = Vec::new();
    for (path, (name, fact)) in paths.iter().zip(&facts) {
        match read_input(path, name, fact) {
            Ok(a) => arrays.push(a),
            Err(d) => diags.push(d),
        }
    }
    if diags.is_empty() {
        Ok(arrays)
    } else {
        Err(diags)
    }
}

fn read_input(path: &Path, name: &str, fact: &ir::Fact) -> Result<InputArray, Diagnostic> {
    let shown = path.display().to_string();
    let bytes = read_bytes(path)?;
    let NpyArray { shape, data } = read_npy(&bytes).map_err(|e| {
        Diagnostic::error(codes::DATA_NPY_MALFORMED, format!("{shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    })?;
    let wrong_dtype = |found: &str, help: &str| {
        Diagnostic::error(
            codes::RUN_INPUT_DTYPE,
            format!("input `{name}` in {shown} has dtype {found}, the model declares {fact}"),
        )
        .at_external(shown.clone(), 0, 0)
        .help(help.to_string())
    };
    let shape = IxDyn(&shape);
    let bad_shape = |e: ndarray::ShapeError| {
        Diagnostic::error(codes::DATA_NPY_MALFORMED, format!("{shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    };
    let declared_int = fact.dtype != ir::DType::F32;
    match data {
        NpyData::F32(v) => ArrayD::from_shape_vec(shape, v)
            .map(InputArray::F32)
            .map_err(bad_shape),
        NpyData::I32(v) => ArrayD::from_shape_vec(shape, v)
            .map(InputArray::I32)
            .map_err(bad_shape),
        NpyData::I64(v) => ArrayD::from_shape_vec(shape, v)
            .map(InputArray::I64)
            .map_err(bad_shape),
        NpyData::F64(_) if declared_int => Err(wrong_dtype(
            "float64",
            "save token ids as integers: `np.save(path, x.astype(np.int64))`",
        )),
        NpyData::F64(_) => Err(wrong_dtype(
            "float64",
            "convert it: `np.save(path, x.astype(np.float32))`",
        )),
        NpyData::U8(_) => Err(wrong_dtype(
            "uint8",
            if declared_int {
                "save token ids as int32 or int64"
            } else {
                "convert and scale it: `np.save(path, (x / 255).astype(np.float32))`"
            },
        )),
    }
}

/// Whether two paths name the same file (canonical paths when both exist).
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn print_outputs(format: SummaryFormat, model: &str, names: &[String], outputs: &[ArrayD<f32>]) {
    match format {
        SummaryFormat::Json => {
            let list: Vec<serde_json::Value> = names
                .iter()
                .zip(outputs)
                .map(|(name, y)| {
                    serde_json::json!({
                        "name": name,
                        "shape": y.shape(),
                        "values": nested_json(&y.view()),
                    })
                })
                .collect();
            let json = serde_json::json!({ "model": model, "outputs": list });
            Output::stdout(&format!("{json}\n"));
        }
        SummaryFormat::Human => {
            let mut text = String::new();
            for (name, y) in names.iter().zip(outputs) {
                let _ = writeln!(text, "{name}: f32{:?}", y.shape());
                text.push_str(&array_repr(&y.view()));
                text.push('\n');
                if y.len() > PRINT_LIMIT {
                    let _ = writeln!(
                        text,
                        "({} values, shortened; write them all with `-o out.npy`)",
                        y.len()
                    );
                }
            }
            Output::stdout(&text);
        }
    }
}

/// The array as nested JSON lists (NaN and infinities become `null`).
fn nested_json(a: &ArrayViewD<'_, f32>) -> serde_json::Value {
    if a.ndim() == 0 {
        return a.iter().next().map_or(serde_json::Value::Null, |&v| {
            serde_json::Number::from_f64(f64::from(v)).map_or(serde_json::Value::Null, Into::into)
        });
    }
    serde_json::Value::Array(a.outer_iter().map(|row| nested_json(&row)).collect())
}

/// A numpy-like rendering: nested brackets, one aligned number format for the whole array;
/// past [`PRINT_LIMIT`] values every long axis shows its first and last 3 entries around `...`.
pub(super) fn array_repr(a: &ArrayViewD<'_, f32>) -> String {
    let summarize = a.len() > PRINT_LIMIT;
    let finite: Vec<f32> = a.iter().copied().filter(|v| v.is_finite()).collect();
    let max = finite.iter().fold(0f32, |m, v| m.max(v.abs()));
    let min_nonzero = finite
        .iter()
        .filter(|v| **v != 0.0)
        .fold(f32::INFINITY, |m, v| m.min(v.abs()));
    let scientific = max >= 1e6 || (min_nonzero < 1e-4 && min_nonzero.is_finite());
    let fmt = |v: f32| -> String {
        if !v.is_finite() {
            format!("{v}")
        } else if scientific {
            format!("{v:.6e}")
        } else {
            format!("{v:.6}")
        }
    };
    let width = a.iter().map(|&v| fmt(v).len()).max().unwrap_or(1);
    let mut text = String::new();
    repr_rec(a, &fmt, width, summarize, 0, &mut text);
    text
}

fn repr_rec(
    a: &ArrayViewD<'_, f32>,
    fmt: &dyn Fn(f32) -> String,
    width: usize,
    summarize: bool,
    depth: usize,
    out: &mut String,
) {
    if a.ndim() == 0 {
        if let Some(&v) = a.iter().next() {
            let _ = write!(out, "{:>width$}", fmt(v));
        }
        return;
    }
    let n = a.shape().first().copied().unwrap_or(0);
    let shown: Vec<Option<usize>> = if summarize && n > 6 {
        (0..3)
            .map(Some)
            .chain([None])
            .chain((n - 3..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    let separator = if a.ndim() == 1 {
        ", ".to_string()
    } else {
        format!(",{}\n{}", "\n".repeat(a.ndim() - 2), " ".repeat(depth + 1))
    };
    out.push('[');
    for (k, index) in shown.iter().enumerate() {
        if k > 0 {
            out.push_str(&separator);
        }
        match index {
            Some(i) => repr_rec(
                &a.index_axis(ndarray::Axis(0), *i),
                fmt,
                width,
                summarize,
                depth + 1,
                out,
            ),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::array_repr;
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
