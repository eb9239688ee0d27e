//! `modelc check FILE...`: parse and check every file, report every problem.

use super::args::CheckArgs;
use super::output::Output;
use super::source;
use crate::diag::{self, Diagnostic, SourceMap};

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
