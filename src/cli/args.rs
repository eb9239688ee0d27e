//! The command-line grammar (clap derive): the top-level [`Cli`] and one [`Command`] per
//! subcommand, each with its arguments defined beside the command that runs it.

use super::options::ColorWhen;
use clap::{Parser, Subcommand};

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check specs for syntax, name, type and shape errors without running anything.
    Check(super::check::CheckArgs),
    /// Print the explanation of a diagnostic code, with a failing example and its fix.
    Explain(super::explain::ExplainArgs),
    /// Print a model's layers, output shapes, parameter counts and FLOPs (like Keras's summary).
    Summary(super::summary::SummaryArgs),
    /// Compile a model to an optimized execution plan (RON).
    Compile(super::compile::CompileArgs),
    /// Train a spec's `train` block on its data; write weights, plan, metrics and curves.
    Train(super::train::TrainArgs),
    /// Run an `experiment` block's trials and compare them: results.csv, summary.csv, report.html.
    Experiment(super::experiment::ExperimentArgs),
    /// Measure trained weights on a spec's validation (or training) data.
    Eval(super::train::EvalArgs),
    /// Run a model (plan or spec) on `.npy` inputs with a weights file.
    Run(super::run::RunArgs),
    /// Export a model (plan or spec) with its weights to ONNX, for ONNX Runtime and friends.
    Export(super::export::ExportArgs),
    /// Measure inference or training throughput of a model on synthetic data.
    Bench(super::bench::BenchArgs),
    /// Print a plan: signature, steps, parameters, buffers, memory and the pass log.
    Inspect(super::inspect::InspectArgs),
    /// Look at a data pipeline: statistics, or a picture of augmented samples.
    Data(super::data::DataArgs),
    /// Rewrite specs in the canonical style, keeping every comment (`--check`: only show).
    Fmt(super::fmt::FmtArgs),
    /// Rank run folders by a metric: a table, and results.csv, summary.csv and report.html.
    Compare(super::compare::CompareArgs),
    /// Run the language server on stdin/stdout (for editors: diagnostics, hovers, completion).
    Lsp(super::lsp::LspArgs),
    /// Panics on purpose (tests of the panic hook).
    #[command(name = "__internal-panic", hide = true)]
    InternalPanic,
}
