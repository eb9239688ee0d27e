//! The command-line grammar (clap derive).

use crate::diag::Format;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// modelc: compile, check and run declarative neural-network specs.
#[derive(Debug, Parser)]
#[command(name = "modelc", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// When to use colour in human output.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour on a terminal, unless NO_COLOR is set or TERM is dumb.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check specs for syntax, name, type and shape errors without running anything.
    Check(CheckArgs),
    /// Print the explanation of a diagnostic code, with a failing example and its fix.
    Explain(ExplainArgs),
    /// Print a model's layers, output shapes, parameter counts and FLOPs (like Keras's summary).
    Summary(SummaryArgs),
    /// Compile a model to an optimized execution plan (RON).
    Compile(CompileArgs),
    /// Train a spec's `train` block on its data; write weights, plan, metrics and curves.
    Train(super::train::TrainArgs),
    /// Measure trained weights on a spec's validation (or training) data.
    Eval(super::train::EvalArgs),
    /// Run a model (plan or spec) on `.npy` inputs with a weights file.
    Run(super::run::RunArgs),
    /// Measure inference or training throughput of a model on synthetic data.
    Bench(super::bench::BenchArgs),
    /// Print a plan: signature, steps, parameters, buffers, memory and the pass log.
    Inspect(super::inspect::InspectArgs),
    /// Look at a data pipeline: statistics, or a picture of augmented samples.
    Data(super::data::DataArgs),
    /// Rewrite specs in the canonical style, keeping every comment (`--check`: only show).
    Fmt(super::fmt::FmtArgs),
    /// Panics on purpose (tests of the panic hook).
    #[command(name = "__internal-panic", hide = true)]
    InternalPanic,
}

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
    /// The `.model` file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The model to compile, when the file defines several.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Which plan: inference (every rewrite) or training (keeps batch norm and dropout).
    #[arg(long, value_enum, default_value_t = crate::passes::Mode::Infer)]
    pub mode: crate::passes::Mode,
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
    #[arg(long, value_enum, default_value_t = Format::Human)]
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

/// Limits on what the front end reads; raise them for unusual specs.
#[derive(Clone, Copy, Debug, Args)]
pub struct LimitArgs {
    /// Largest spec file read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_source_bytes: u64,
    /// Deepest nesting of brackets and block comments.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_nesting: u32,
    /// Most errors reported per file.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_errors: u32,
    /// Most layers in one model.
    #[arg(long, value_name = "N", default_value_t = crate::util::limits::DEFAULT_MAX_LAYERS)]
    pub max_layers: u64,
    /// Most bytes of parameters in one model (f32: 4 bytes each).
    #[arg(long, value_name = "BYTES", default_value_t = crate::util::limits::DEFAULT_MAX_PARAM_BYTES)]
    pub max_param_bytes: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> crate::syntax::Limits {
        crate::syntax::Limits {
            max_source_bytes: self.max_source_bytes,
            max_nesting: self.max_nesting as usize,
            max_errors: self.max_errors as usize,
        }
    }

    pub fn model_limits(&self) -> crate::check::limits::ModelLimits {
        crate::check::limits::ModelLimits {
            max_layers: self.max_layers,
            max_param_bytes: self.max_param_bytes,
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The `.model` files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format for diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors (exit status 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as E0104; without one, lists every code.
    pub code: Option<String>,
}

/// Output formats of `summary`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// A table for people.
    Human,
    /// One JSON object.
    Json,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The `.model` file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The model to summarize (default: the first in the file).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Human)]
    pub format: SummaryFormat,
    #[command(flatten)]
    pub limits: LimitArgs,
}
