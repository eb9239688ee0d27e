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

mod inputs;
mod print;

use inputs::{preprocess, read_inputs, InputArray};
use print::print_outputs;

use super::common::{diag_format, load_plan, report, same_file};
use super::options::{ColorWhen, SummaryFormat};
use super::output::Output;
use crate::data::npy::write_npy;
use crate::diag::{codes, Diagnostic, SourceMap};
use crate::passes::Mode;
use crate::plan::ExecutionPlan;
use crate::runtime::interp::Interpreter;
use crate::runtime::weights::{init_weights, load_weights, WeightsError};
use clap::Args;
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::print::array_repr;
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
