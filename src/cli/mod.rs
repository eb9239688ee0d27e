//! The command line: the only module that touches files, terminals and exit codes.
//!
//! Exit codes: 0 clean, 1 problems in the user's spec/data/weights/plan, 2 usage or I/O,
//! 101 an internal error (a bug: the panic hook asks for a report).

mod args;
mod bench;
mod check;
mod common;
mod compare;
mod compile;
mod data;
mod experiment;
mod explain;
mod export;
mod fmt;
mod hook;
mod inspect;
mod limits;
mod lsp;
mod options;
mod output;
mod run;
mod run_input;
mod run_train;
mod source;
mod summary;
mod train;

pub use args::Cli;

use crate::diag::{codes, Diagnostic, Format, SourceMap};
use clap::Parser;
use output::Output;
use std::process::ExitCode;

/// Runs the `modelc` command line.
pub fn main() -> ExitCode {
    hook::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    ExitCode::from(dispatch(&cli))
}

fn dispatch(cli: &Cli) -> u8 {
    match &cli.command {
        args::Command::Check(a) => check::run(a, &Output::new(cli.color, a.format)),
        args::Command::Explain(a) => explain::run(a),
        args::Command::Summary(a) => summary::run(a, cli.color),
        args::Command::Compile(a) => compile::run(a, &Output::new(cli.color, a.format)),
        args::Command::Train(a) => train::run_train(a, &Output::new(cli.color, a.format)),
        args::Command::Experiment(a) => experiment::run(a, &Output::new(cli.color, a.format)),
        args::Command::Eval(a) => train::run_eval(a, &Output::new(cli.color, a.format)),
        args::Command::Run(a) => run::run(a, cli.color),
        args::Command::Export(a) => export::run(a, cli.color),
        args::Command::Bench(a) => bench::run(a, cli.color),
        args::Command::Inspect(a) => inspect::run(a, cli.color),
        args::Command::Data(a) => data::run(a, cli.color),
        args::Command::Fmt(a) => fmt::run(a, &Output::new(cli.color, a.format)),
        args::Command::Compare(a) => compare::run(a, &compare::output(a, cli.color)),
        args::Command::Lsp(a) => lsp::run(a),
        args::Command::InternalPanic => hook::deliberate_panic(),
    }
}

/// A command line clap could not parse: clap's message (exit 2), or one JSON diagnostic when
/// `--format json` was asked for, so CI parsers always get JSON.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                2
            } else {
                0
            },
        );
    }
    if wants_json() {
        let message = e.kind().as_str().map_or_else(
            || {
                e.to_string()
                    .lines()
                    .next()
                    .unwrap_or("invalid command line")
                    .trim_start_matches("error: ")
                    .to_string()
            },
            str::to_string,
        );
        let d = Diagnostic::error(codes::IO_USAGE, message)
            .help("run `modelc help` for the commands and their flags");
        Output::new(options::ColorWhen::Never, Format::Json).diagnostics(&SourceMap::new(), &[d]);
        return ExitCode::from(2);
    }
    let _ = e.print();
    ExitCode::from(2)
}

/// Whether the raw arguments ask for JSON output. Arguments are read as `OsString`s: one that
/// is not UTF-8 (a file name, say) is simply not `--format json`, never a panic.
fn wants_json() -> bool {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    argv.iter().any(|a| a == "--format=json")
        || argv
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json")
}
