//! Helpers every command shares: the diagnostics format of a `--format`, reporting
//! diagnostics with their exit status, reading bounded files, loading a plan (a plan file, or a
//! spec checked and compiled now), choosing a model of a spec, and telling whether two paths
//! name the same file.
//!
//! Input: paths and options from a command. Output: values or diagnostics. Invariant: uses no
//! command module (commands import it, never each other), so the CLI has no import circle.

use super::options::SummaryFormat;
use super::output::Output;
use super::source;
use crate::check::types::CheckedModel;
use crate::diag::{self, codes, Diagnostic, Format, SourceMap};
use crate::passes::{Mode, PassOptions};
use crate::plan::{ExecutionPlan, PlanError};
use crate::runtime::interp::plan_error_diagnostic;
use crate::{ir, plan};
use std::io::Read as _;
use std::path::Path;

/// Largest plan or `.npy` file read, in bytes (the memory budget bounds what runs anyway).
const MAX_FILE_BYTES: u64 = 4 << 30;

/// The diagnostics format matching a command's `--format`.
pub fn diag_format(format: SummaryFormat) -> Format {
    match format {
        SummaryFormat::Human => Format::Human,
        SummaryFormat::Json => Format::Json,
    }
}

/// Prints diagnostics and returns their exit status (at least 1 when any is an error).
pub fn report(out: &Output, map: &SourceMap, mut diags: Vec<Diagnostic>) -> u8 {
    diag::sort(&mut diags);
    out.diagnostics(map, &diags);
    diag::exit_status(&diags).max(u8::from(diags.iter().any(Diagnostic::is_error)))
}

/// A plan ready to run, and warnings found on the way (from the spec's checker).
pub struct LoadedPlan {
    pub plan: ExecutionPlan,
    pub warnings: Vec<Diagnostic>,
    /// FLOPs per sample of the model (from the checker; `None` for a plan file).
    pub flops_per_sample: Option<u64>,
    /// Where each layer is written, by layer name (a spec compiled now; empty for a plan file).
    pub layer_spans: Vec<(String, diag::FileId, diag::Span)>,
    /// The data pipeline of the `train` block that trains the model (a spec compiled now and
    /// trained in the file; `None` otherwise): `run` and `inspect` take their raw input from it.
    pub pipeline: Option<crate::data::PipelineSpec>,
}

/// Reads a plan file, or checks and compiles a `.model` file in `mode` with every pass.
pub fn load_plan(
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
            layer_spans: Vec::new(),
            pipeline: None,
        })
    }
}

/// Reads at most [`MAX_FILE_BYTES`] of a file (E0900 when it cannot be read).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Diagnostic> {
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
pub fn read_plan(path: &Path) -> Result<ExecutionPlan, Vec<Diagnostic>> {
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
    let checked = crate::check::limits::check_with_limits(
        spec.file,
        &spec.ast,
        &crate::check::limits::ModelLimits::default(),
    );
    if checked.has_errors() {
        return Err(checked.diagnostics);
    }
    let chosen = choose_model(&checked.models, model).map_err(|d| vec![d])?;
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
    let hash = spec_hash(&spec.ast);
    let mut compiled = plan::compile(graph, mode, &PassOptions::default(), hash).map_err(|e| {
        vec![Diagnostic::error(codes::LOWER_UNSUPPORTED, e.to_string())
            .note("this is a bug in modelc; please report it with the spec")]
    })?;
    compiled.output_names = chosen.output_names();
    let layer_spans = chosen
        .layers
        .iter()
        .map(|l| (l.name.clone(), spec.file, l.span))
        .collect();
    let pipeline = super::run_input::training_pipeline(&checked, &chosen.name).cloned();
    let mut warnings = spec.diagnostics;
    warnings.extend(checked.diagnostics);
    Ok(LoadedPlan {
        plan: compiled,
        warnings,
        flops_per_sample: Some(flops),
        layer_spans,
        pipeline,
    })
}

/// Whether two paths name the same file (canonical paths when both exist).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The model to compile: the one named, or the file's only model.
pub fn choose_model<'m>(
    models: &'m [CheckedModel],
    name: Option<&str>,
) -> Result<&'m CheckedModel, Diagnostic> {
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    match name {
        Some(n) => models.iter().find(|m| m.name == n).ok_or_else(|| {
            let d = Diagnostic::error(
                codes::IO_USAGE,
                format!("the spec has no model named `{n}`"),
            );
            match diag::suggest::help_for(n, names.iter().copied(), "the models are") {
                Some(h) => d.help(h),
                None => d,
            }
        }),
        None => match models {
            [one] => Ok(one),
            [] => Err(Diagnostic::error(
                codes::IO_USAGE,
                "the spec defines no model",
            )),
            _ => Err(Diagnostic::error(
                codes::IO_USAGE,
                format!("the spec defines {} models", models.len()),
            )
            .help(format!(
                "choose one with `--model NAME`: {}",
                names.join(", ")
            ))),
        },
    }
}

/// The hash a plan and a checkpoint record of the spec they were made from: of its meaning
/// (the canonical print of its syntax tree), not its bytes, so that `modelc fmt`, comments and
/// layout leave a run resumable and a plan's provenance unchanged.
pub fn spec_hash(ast: &crate::syntax::ast::File) -> String {
    plan::spec_hash(crate::syntax::format::print_file(ast).as_bytes())
}

/// The train block to use: the one named, else the one training `model`, else the file's only one.
pub fn choose_train<'t>(
    trains: &'t [crate::check::CheckedTrain],
    name: Option<&str>,
    model: Option<&str>,
) -> Result<&'t crate::check::CheckedTrain, Diagnostic> {
    let names: Vec<&str> = trains.iter().map(|t| t.name.as_str()).collect();
    if let Some(n) = name {
        return trains.iter().find(|t| t.name == n).ok_or_else(|| {
            let d = Diagnostic::error(
                codes::IO_USAGE,
                format!("the spec has no train block named `{n}`"),
            );
            match diag::suggest::help_for(n, names.iter().copied(), "the train blocks are") {
                Some(h) => d.help(h),
                None => d,
            }
        });
    }
    let candidates: Vec<&crate::check::CheckedTrain> = trains
        .iter()
        .filter(|t| model.is_none_or(|m| t.model == m))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(Diagnostic::error(
            codes::IO_USAGE,
            "the spec has no train block (for this model)",
        )
        .help("add one: `train Model on Data { loss ..., optimizer ..., epochs ... }`")),
        _ => Err(Diagnostic::error(
            codes::IO_USAGE,
            format!("the spec has {} train blocks", candidates.len()),
        )
        .help(format!(
            "choose one with `--train NAME`: {}",
            names.join(", ")
        ))),
    }
}
