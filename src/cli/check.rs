//! `modelc check FILE...`: parse and check every file, report every problem.

use super::options::{format_parser, LimitArgs};
use super::output::Output;
use super::source;
use crate::diag::{self, Diagnostic, Format, SourceMap};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The `.model` files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format for diagnostics.
    #[arg(long, value_parser = format_parser(), default_value = "human")]
    pub format: Format,
    /// Treat warnings as errors (exit status 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Runs `check`; returns the exit status.
pub fn run(args: &CheckArgs, out: &Output) -> u8 {
    let limits = args.limits.limits();
    let mut map = SourceMap::new();
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut status = 0u8;
    for path in &args.files {
        let mut diags = match source::load(&mut map, path, &limits) {
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
    let files = args.files.len();
    let noun = if files == 1 { "file" } else { "files" };
    if errors == 0 {
        out.status(
            "Checked",
            &format!("{files} {noun}: no errors{}", plural_warnings(warnings)),
        );
    } else {
        let e = if errors == 1 { "error" } else { "errors" };
        out.status(
            "Failed",
            &format!("{files} {noun}: {errors} {e}{}", plural_warnings(warnings)),
        );
    }
    status
}

fn plural_warnings(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    }
}
