//! The command-line grammar (clap derive): the top-level [`Cli`] and one [`Command`] per
//! subcommand, each with its arguments defined beside the command that runs it, and each
//! command's "Examples:" section (shown by `--help`, not `-h`): real command lines, run from
//! the repository's root, that work with the shipped specs (`tests/cli_ci_formats.rs` runs
//! some of them).

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
    #[command(after_long_help = CHECK_EXAMPLES)]
    Check(super::check::CheckArgs),
    /// Print the explanation of a diagnostic code, with a failing example and its fix.
    #[command(after_long_help = EXPLAIN_EXAMPLES)]
    Explain(super::explain::ExplainArgs),
    /// Print a model's layers, output shapes, parameter counts and FLOPs (like Keras's summary).
    #[command(after_long_help = SUMMARY_EXAMPLES)]
    Summary(super::summary::SummaryArgs),
    /// Compile a model to an optimized execution plan (RON).
    #[command(after_long_help = COMPILE_EXAMPLES)]
    Compile(super::compile::CompileArgs),
    /// Train a spec's `train` block on its data; write weights, plan, metrics and curves.
    #[command(after_long_help = TRAIN_EXAMPLES)]
    Train(super::train::TrainArgs),
    /// Run an `experiment` block's trials and compare them: results.csv, summary.csv, report.html.
    #[command(after_long_help = EXPERIMENT_EXAMPLES)]
    Experiment(super::experiment::ExperimentArgs),
    /// Measure trained weights on a spec's validation (or training) data.
    #[command(after_long_help = EVAL_EXAMPLES)]
    Eval(super::train::EvalArgs),
    /// Run a model (plan or spec) on raw data (CSV, images, `.npy`) and print its predictions.
    #[command(after_long_help = RUN_EXAMPLES)]
    Run(super::run::RunArgs),
    /// Export a model (plan or spec) with its weights to ONNX, for ONNX Runtime and friends.
    #[command(after_long_help = EXPORT_EXAMPLES)]
    Export(super::export::ExportArgs),
    /// Measure inference or training throughput of a model on synthetic data.
    #[command(after_long_help = BENCH_EXAMPLES)]
    Bench(super::bench::BenchArgs),
    /// Print a plan: signature, steps, parameters, buffers, memory and the pass log.
    #[command(after_long_help = INSPECT_EXAMPLES)]
    Inspect(super::inspect::InspectArgs),
    /// Look at a data pipeline: statistics, or a picture of augmented samples.
    #[command(after_long_help = DATA_EXAMPLES)]
    Data(super::data::DataArgs),
    /// Rewrite specs in the canonical style, keeping every comment (`--check`: only show).
    #[command(after_long_help = FMT_EXAMPLES)]
    Fmt(super::fmt::FmtArgs),
    /// Rank run folders by a metric: a table, and results.csv, summary.csv and report.html.
    #[command(after_long_help = COMPARE_EXAMPLES)]
    Compare(super::compare::CompareArgs),
    /// Run the language server on stdin/stdout (for editors: diagnostics, hovers, completion).
    #[command(after_long_help = LSP_EXAMPLES)]
    Lsp(super::lsp::LspArgs),
    /// Panics on purpose (tests of the panic hook).
    #[command(name = "__internal-panic", hide = true)]
    InternalPanic,
}

// Each command's examples, run from the repository's root.
const CHECK_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc check specs/seed_cnn.model\n",
    "  modelc check specs\n",
    "  modelc check specs --format github\n",
    "  modelc check specs --format sarif > modelc.sarif\n",
    "  modelc check - --stdin-filename seed_cnn.model < specs/seed_cnn.model\n",
);
const EXPLAIN_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc explain E0200\n",
    "  modelc explain conv2d\n",
    "  modelc explain layers\n",
);
const SUMMARY_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc summary specs/seed_cnn.model\n",
    "  modelc summary specs/seed_rnn.model --format json\n",
);
const COMPILE_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc compile specs/seed_cnn.model -o seed_cnn.plan.ron\n",
    "  modelc compile specs/seed_cnn.model --emit ir\n",
    "  modelc compile specs/seed_cnn.model --mode train -O 0 --emit plan\n",
    "  modelc compile --list-passes\n",
);
const TRAIN_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc train specs/linear_regression.model --epochs 5 --out runs/linreg\n",
    "  modelc train specs/seed_cnn.model --out runs/cnn --threads 2\n",
    "  modelc train specs/seed_cnn.model --out runs/cnn --set 'optimizer=adam(lr: 3e-4)' --force\n",
    "  modelc train specs/seed_cnn.model --out runs/cnn --resume\n",
);
const EXPERIMENT_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc experiment specs/compare_optimizers.model --out runs/optimizers\n",
    "  modelc experiment specs/compare_optimizers.model --out runs/optimizers --resume\n",
);
const EVAL_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc eval specs/seed_cnn.model --weights runs/cnn/weights.safetensors\n",
    "  modelc eval specs/seed_cnn.model --weights runs/cnn/weights.safetensors --split train\n",
);
const RUN_EXAMPLES: &str = concat!(
    super::run::run_input_rule!(),
    "\n\nExamples:\n",
    "  modelc run runs/cnn/plan.ron --weights runs/cnn/weights.safetensors --input data/digits.csv\n",
    "  modelc run runs/cnn/plan.ron --weights runs/cnn/weights.safetensors --input data/digit_images\n",
    "  modelc run specs/linear_regression.model --random-weights 1 --input x.npy\n",
    "  modelc run runs/cnn/plan.ron --weights runs/cnn/weights.safetensors --input x.npy -o y.npy\n",
);
const EXPORT_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc export specs/seed_cnn.model --random-weights 1 --to onnx-text\n",
    "  modelc export runs/cnn/plan.ron --weights runs/cnn/weights.safetensors -o cnn.onnx\n",
    "  modelc export specs/seed_cnn.model --to pytorch -o seed_cnn_torch\n",
);
const BENCH_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc bench specs/seed_cnn.model --batch 32 --iterations 5\n",
    "  modelc bench specs/seed_rnn.model --mode train --threads 1\n",
);
const INSPECT_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc inspect specs/seed_cnn.model\n",
    "  modelc inspect seed_cnn.plan.ron --batch 1 --format json\n",
);
const DATA_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc data stats specs/seed_cnn.model\n",
    "  modelc data preview specs/seed_cnn.model -o grid.png --count 16\n",
);
const FMT_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc fmt specs/seed_cnn.model\n",
    "  modelc fmt --check specs/seed_cnn.model specs/seed_rnn.model\n",
    "  modelc fmt --check --format github specs/seed_cnn.model\n",
    "  modelc fmt - < specs/seed_cnn.model\n",
);
const COMPARE_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc compare runs/linreg runs/cnn\n",
    "  modelc compare runs/optimizers/trials/* --select max val_accuracy -o report\n",
);
const LSP_EXAMPLES: &str = concat!(
    "Examples:\n",
    "  modelc lsp    # started by an editor; see editors/ for the VS Code set-up\n",
);
