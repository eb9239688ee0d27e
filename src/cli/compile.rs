//! `modelc compile FILE`: check a spec, lower one model to IR, optimize it, write the plan.
//! `--emit ast|ir|plan` and `--stop-after PASS` show any stage, for debugging and bug reports.

use super::args::{CompileArgs, Emit};
use super::output::Output;
use super::source;
use crate::check::types::CheckedModel;
use crate::diag::{self, codes, Diagnostic, SourceMap};
use crate::passes::{self, PassOptions};
use crate::{ir, plan, util};

/// Runs `compile`; returns the exit status.
pub fn run(args: &CompileArgs, out: &Output) -> u8 {
    if args.list_passes {
        Output::stdout(&format!("{}\n", passes::all_pass_names().join("\n")));
        return 0;
    }
    let known = passes::all_pass_names();
    for name in args.disable_pass.iter().chain(&args.stop_after) {
        if !known.contains(&name.as_str()) {
            let d = Diagnostic::error(codes::IO_USAGE, format!("there is no pass named `{name}`"));
            let d = match diag::suggest::help_for(name, known.iter().copied(), "the passes are") {
                Some(h) => d.help(h),
                None => d,
            };
            return report(out, &SourceMap::new(), vec![d]);
        }
    }
    let limits = args.limits.limits();
    let mut map = SourceMap::new();
    let spec = match source::load(&mut map, &args.file, &limits) {
        Ok(s) => s,
        Err(d) => return report(out, &map, vec![d]),
    };
    if spec.diagnostics.iter().any(Diagnostic::is_error) {
        return report(out, &map, spec.diagnostics);
    }
    if args.emit == Some(Emit::Ast) {
        return match ron::ser::to_string_pretty(
            &spec.ast,
            ron::ser::PrettyConfig::new().indentor("  ".to_string()),
        ) {
            Ok(text) => {
                Output::stdout(&format!("{text}\n"));
                0
            }
            Err(e) => report(
                out,
                &map,
                vec![Diagnostic::error(
                    codes::IO_WRITE,
                    format!("cannot render the AST: {e}"),
                )],
            ),
        };
    }
    let checked =
        crate::check::limits::check_with_limits(spec.file, &spec.ast, &args.limits.model_limits());
    if checked.has_errors() {
        return report(out, &map, checked.diagnostics);
    }
    let model = match choose_model(&checked.models, args.model.as_deref()) {
        Ok(m) => m,
        Err(d) => return report(out, &map, vec![d]),
    };
    let graph = match ir::lower(model) {
        Ok(g) => g,
        Err(e) => {
            let d = Diagnostic::error(
                codes::LOWER_UNSUPPORTED,
                format!("cannot compile `{}`: {}", e.layer, e.message),
            )
            .primary(spec.file, e.span, "in this layer");
            return report(out, &map, vec![d]);
        }
    };
    let options = PassOptions {
        no_optimize: args.no_optimize(),
        disabled: args.disable_pass.clone(),
        stop_after: args.stop_after.clone(),
    };
    let text = map.text(spec.file).to_string();
    let compiled = match plan::compile(graph, args.mode, &options, plan::spec_hash(text.as_bytes()))
    {
        Ok(p) => p,
        Err(e) => {
            return report(
                out,
                &map,
                vec![Diagnostic::error(codes::LOWER_UNSUPPORTED, e.to_string())
                    .note("this is a bug in modelc; please report it with the spec")],
            );
        }
    };
    if args.emit == Some(Emit::Ir) {
        Output::stdout(&ir::print(&compiled.to_graph()));
        return 0;
    }
    let ron_text = match compiled.to_ron() {
        Ok(t) => t,
        Err(e) => {
            return report(
                out,
                &map,
                vec![Diagnostic::error(
                    codes::IO_WRITE,
                    format!("cannot serialize the plan: {e}"),
                )],
            )
        }
    };
    match &args.output {
        Some(path) if args.emit.is_none() => {
            if same_file(path, &args.file) {
                let d = Diagnostic::error(
                    codes::IO_SAME_PATH,
                    format!("the output {} is the input spec", path.display()),
                )
                .help("write the plan to another path, e.g. `-o model.plan.ron`");
                return report(out, &map, vec![d]);
            }
            if let Err(e) = util::write_atomic(path, ron_text.as_bytes()) {
                let d = Diagnostic::error(
                    codes::IO_WRITE,
                    format!("cannot write {}: {e}", path.display()),
                )
                .at_external(path.display().to_string(), 0, 0);
                return report(out, &map, vec![d]);
            }
            out.status(
                "Compiled",
                &format!(
                    "{} ({} mode, {} steps, {} bytes of activations per sample) → {}",
                    compiled.model,
                    match args.mode {
                        passes::Mode::Infer => "inference",
                        passes::Mode::Train => "training",
                    },
                    compiled.steps.len(),
                    compiled.memory.peak_bytes_per_sample,
                    path.display()
                ),
            );
            0
        }
        _ => {
            Output::stdout(&format!("{ron_text}\n"));
            0
        }
    }
}

fn report(out: &Output, map: &SourceMap, mut diags: Vec<Diagnostic>) -> u8 {
    diag::sort(&mut diags);
    out.diagnostics(map, &diags);
    diag::exit_status(&diags).max(u8::from(diags.iter().any(Diagnostic::is_error)))
}

/// Whether two paths name the same file (by canonical path when the output exists).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The model to compile: the one named, or the file's only model.
pub(super) fn choose_model<'m>(
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
