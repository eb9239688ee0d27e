//! `modelc check PATH...`: parse and check every spec, report every problem. A path may be a
//! file, a folder (every `.model` file below it, in sorted order) or `-` (standard input,
//! shown as `--stdin-filename`); `--watch` re-checks whenever a file changes.
//!
//! Files: `inputs` (what the paths name), `watch` (the polling loop).

mod inputs;
mod watch;

use super::options::{format_parser_with_sarif, LimitArgs};
use super::output::Output;
use super::source;
use crate::diag::{self, Diagnostic, Format, SourceMap};
use clap::Args;
use inputs::Input;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The `.model` files to check; a folder checks every `.model` file below it; `-` reads
    /// one spec from standard input.
    #[arg(required = true, value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// The name standard input's spec is shown under in diagnostics (with `-`).
    #[arg(long, value_name = "NAME", default_value = "<stdin>")]
    pub stdin_filename: String,
    /// Keep running: check again whenever a file changes (Ctrl-C stops).
    #[arg(long)]
    pub watch: bool,
    /// Output format for diagnostics (`sarif`: one SARIF 2.1.0 log on stdout, for code scanning).
    #[arg(long, value_parser = format_parser_with_sarif(), default_value = "human")]
    pub format: Format,
    /// Treat warnings as errors (exit status 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Runs `check`; returns the exit status.
pub fn run(args: &CheckArgs, out: &Output) -> u8 {
    if args.watch {
        if args.format == Format::Sarif {
            let d = Diagnostic::error(
                diag::codes::IO_USAGE,
                "`--watch` cannot write SARIF: a SARIF log is one document",
            )
            .help("use `--format json` or `--format github` with `--watch`");
            return super::common::report(out, &SourceMap::new(), vec![d]);
        }
        return watch::run(args, out);
    }
    match inputs::expand(&args.files) {
        Ok(inputs) => check_inputs(args, out, &inputs, ""),
        Err(d) => super::common::report(out, &SourceMap::new(), vec![d]),
    }
}

/// Checks every input, prints its diagnostics and one summary line (ending in `suffix`);
/// returns the exit status.
fn check_inputs(args: &CheckArgs, out: &Output, inputs: &[Input], suffix: &str) -> u8 {
    let limits = args.limits.limits();
    let mut map = SourceMap::new();
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut status = 0u8;
    for input in inputs {
        let loaded = match input {
            Input::Stdin => source::load_stdin(&mut map, &args.stdin_filename, &limits),
            Input::File(path) => source::load(&mut map, path, &limits),
        };
        let mut diags = match loaded {
            Ok(spec) => {
                let mut diags = spec.diagnostics;
                if !diags.iter().any(Diagnostic::is_error) {
                    diags.extend(
                        crate::check::limits::check_with_limits(
                            spec.file,
                            &spec.ast,
                            &args.limits.model_limits(),
                        )
                        .diagnostics,
                    );
                }
                diags
            }
            Err(d) => vec![d],
        };
        diag::sort(&mut diags);
        status = status.max(diag::exit_status(&diags));
        if args.deny_warnings && status == 0 && !diags.is_empty() {
            status = 1;
        }
        all.extend(diags);
    }
    out.diagnostics(&map, &all);
    let errors = all.iter().filter(|d| d.is_error()).count();
    let warnings = all.len() - errors;
    let line = summary_line(inputs.len(), errors, warnings) + suffix;
    out.status(if errors == 0 { "Checked" } else { "Failed" }, &line);
    status
}

/// `3 files: no errors, 1 warning`.
fn summary_line(files: usize, errors: usize, warnings: usize) -> String {
    let noun = if files == 1 { "file" } else { "files" };
    if errors == 0 {
        format!("{files} {noun}: no errors{}", plural_warnings(warnings))
    } else {
        let e = if errors == 1 { "error" } else { "errors" };
        format!("{files} {noun}: {errors} {e}{}", plural_warnings(warnings))
    }
}

fn plural_warnings(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    }
}
