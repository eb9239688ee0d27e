//! `modelc compile FILE`: check a spec, lower one model to IR, optimize it, write the plan.
//! `--emit ast|ir|plan` and `--stop-after PASS` show any stage, for debugging and bug reports.

use super::common::{choose_model, report, same_file, spec_hash};
use super::options::{format_parser, mode_parser, LimitArgs};
use super::output::Output;
use super::source;
use crate::diag::{self, codes, Diagnostic, Format, SourceMap};
use crate::passes::{self, PassOptions};
use crate::{ir, plan, util};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// A stage `compile` can print instead of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The syntax tree, as parsed.
    Ast,
    /// The IR after the passes (or after `--stop-after`).
    Ir,
    /// The execution plan (RON).
    Plan,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The `.model` file (not needed with `--list-passes`).
    #[arg(value_name = "FILE", required_unless_present = "list_passes")]
    pub file: Option<PathBuf>,
    /// The model to compile, when the file defines several.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Which plan: inference (every rewrite) or training (keeps batch norm and dropout).
    #[arg(long, value_parser = mode_parser(), default_value = "infer")]
    pub mode: passes::Mode,
    /// Run no optimization pass.
    #[arg(short = 'O', value_name = "LEVEL", value_parser = clap::builder::PossibleValuesParser::new(["0", "1"]))]
    pub opt_level: Option<String>,
    /// Switch a pass off by name (repeatable); see `--list-passes`.
    #[arg(long, value_name = "PASS")]
    pub disable_pass: Vec<String>,
    /// Stop after this pass.
    #[arg(long, value_name = "PASS")]
    pub stop_after: Option<String>,
    /// Print a stage instead of writing the plan.
    #[arg(long, value_enum, conflicts_with = "output")]
    pub emit: Option<Emit>,
    /// Where to write the plan (atomically); without it the plan goes to stdout.
    #[arg(short, long, value_name = "PLAN.ron")]
    pub output: Option<PathBuf>,
    /// List the passes, in order, and exit.
    #[arg(long)]
    pub list_passes: bool,
    /// Output format for diagnostics.
    #[arg(long, value_parser = format_parser(), default_value = "human")]
    pub format: Format,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl CompileArgs {
    /// `-O0`.
    pub fn no_optimize(&self) -> bool {
        self.opt_level.as_deref() == Some("0")
    }
}

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
    let Some(file) = args.file.as_deref() else {
        // clap requires FILE unless `--list-passes`, answered above.
        let d = Diagnostic::error(codes::IO_USAGE, "no `.model` file given")
            .help("name the spec to compile: `modelc compile FILE`");
        return report(out, &SourceMap::new(), vec![d]);
    };
    let limits = args.limits.limits();
    let mut map = SourceMap::new();
    let spec = match source::load(&mut map, file, &limits) {
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
    let compiled = match plan::compile(graph, args.mode, &options, spec_hash(&spec.ast)) {
        // An inference plan carries the pipeline's `map` steps and source, as `train`'s does,
        // so `run` takes the same raw input from either.
        Ok(mut p) => {
            p.output_names = model.output_names();
            let pipeline = super::run_input::training_pipeline(&checked, &model.name);
            if let (passes::Mode::Infer, Some(pipeline)) = (args.mode, pipeline) {
                super::run_input::attach(&mut p, pipeline);
            }
            p
        }
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
            if same_file(path, file) {
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
