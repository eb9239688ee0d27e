//! `modelc fmt [FILE]...`: rewrite specs in the canonical style, or check that they are.
//!
//! Input: spec files (rewritten in place, atomically, only when formatting changes them), or
//! stdin when no file or `-` is given (formatted text to stdout, for editors). `--check` writes
//! nothing and prints, per file, the lines that would change: as a diff (`--format human`), or
//! as one E0113 diagnostic per hunk at the first line it changes (`--format json|github`: JSON
//! lines or GitHub annotations, as `check` prints them). Exit status: 0 all formatted (or
//! now formatted), 1 a file has syntax errors (it is left untouched) or `--check` found a file
//! to change, 2 usage or I/O problems.

use super::options::{format_parser, LimitArgs};
use super::output::Output;
use super::source;
use crate::diag::{self, codes, Diagnostic, FileId, Format, SourceMap, Span};
use crate::syntax::format::{changes, format_source, render_diff};
use crate::syntax::Limits;
use clap::Args;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The name stdin's spec is shown under.
const STDIN_NAME: &str = "<stdin>";

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// The `.model` files to format in place; none, or `-`, formats stdin to stdout.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Write nothing; exit 1 and show the changes when some file is not formatted.
    #[arg(long)]
    pub check: bool,
    /// Output format for diagnostics; with `--check`, `json` and `github` report each change
    /// as a diagnostic (E0113) instead of a diff.
    #[arg(long, value_parser = format_parser(), default_value = "human")]
    pub format: Format,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Runs `fmt`; returns the exit status.
pub fn run(args: &FmtArgs, out: &Output) -> u8 {
    let limits = args.limits.limits();
    let stdin_only = args.files.is_empty() || args.files.iter().all(|f| f == Path::new("-"));
    if stdin_only {
        if args.files.len() > 1 {
            return usage(out, "`-` (stdin) can be given only once");
        }
        return run_stdin(args, &limits, out);
    }
    if args.files.iter().any(|f| f == Path::new("-")) {
        return usage(out, "`-` (stdin) cannot be mixed with file names");
    }
    let mut map = SourceMap::new();
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut status = 0u8;
    let mut diffs = String::new();
    for path in &args.files {
        let (file_status, mut diags) = one_file(args, path, &limits, &mut map, &mut diffs);
        diag::sort(&mut diags);
        status = status.max(file_status).max(diag::exit_status(&diags));
        all.extend(diags);
    }
    out.diagnostics(&map, &all);
    if !diffs.is_empty() {
        Output::stdout(&diffs);
    }
    status
}

/// Formats (or checks) one file; returns its status and diagnostics.
fn one_file(
    args: &FmtArgs,
    path: &Path,
    limits: &Limits,
    map: &mut SourceMap,
    diffs: &mut String,
) -> (u8, Vec<Diagnostic>) {
    let spec = match source::load(map, path, limits) {
        Ok(spec) => spec,
        Err(d) => return (2, vec![d]),
    };
    if spec.diagnostics.iter().any(Diagnostic::is_error) {
        return (0, spec.diagnostics);
    }
    let text = map.text(spec.file).to_string();
    let formatted = match format_source(spec.file, &text, limits) {
        Ok(f) => f,
        Err(diags) => return (0, diags),
    };
    if formatted == text {
        return (0, Vec::new());
    }
    if args.check {
        if args.format == Format::Human {
            diffs.push_str(&render_diff(&path.display().to_string(), &text, &formatted));
            return (1, Vec::new());
        }
        return (1, not_formatted(map, spec.file, &text, &formatted));
    }
    match crate::util::write_atomic(path, formatted.as_bytes()) {
        Ok(()) => (0, Vec::new()),
        Err(e) => {
            let shown = path.display().to_string();
            let d = Diagnostic::error(codes::IO_WRITE, format!("cannot write {shown}: {e}"))
                .at_external(shown, 0, 0);
            (2, vec![d])
        }
    }
}

/// Formats stdin to stdout (with `--check`: prints the changes instead).
fn run_stdin(args: &FmtArgs, limits: &Limits, out: &Output) -> u8 {
    let mut map = SourceMap::new();
    let mut bytes = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(limits.max_source_bytes.saturating_add(1))
        .read_to_end(&mut bytes);
    if let Err(e) = read {
        let d = Diagnostic::error(codes::IO_READ, format!("cannot read stdin: {e}"));
        out.diagnostics(&map, &[d]);
        return 2;
    }
    let file = map.add(STDIN_NAME, String::from_utf8_lossy(&bytes).into_owned());
    if bytes.len() as u64 > limits.max_source_bytes {
        let d = Diagnostic::error(
            codes::SYNTAX_FILE_TOO_LARGE,
            format!("stdin is larger than {} bytes", limits.max_source_bytes),
        )
        .help("raise the limit with `--max-source-bytes`");
        out.diagnostics(&map, &[d]);
        return 1;
    }
    let text = match crate::syntax::decode(file, &bytes) {
        Ok(t) => t,
        Err(d) => {
            out.diagnostics(&map, &[d]);
            return 1;
        }
    };
    if args.check && args.format != Format::Human {
        return match format_source(file, text, limits) {
            Ok(formatted) => {
                let diags = not_formatted(&map, file, text, &formatted);
                out.diagnostics(&map, &diags);
                u8::from(!diags.is_empty())
            }
            Err(mut diags) => {
                diag::sort(&mut diags);
                out.diagnostics(&map, &diags);
                diag::exit_status(&diags).max(1)
            }
        };
    }
    match format_stdin(file, text, limits, args.check) {
        Ok((shown, status)) => {
            Output::stdout(&shown);
            status
        }
        Err(mut diags) => {
            diag::sort(&mut diags);
            out.diagnostics(&map, &diags);
            diag::exit_status(&diags).max(1)
        }
    }
}

/// What stdin formatting prints, and its status.
fn format_stdin(
    file: FileId,
    text: &str,
    limits: &Limits,
    check: bool,
) -> Result<(String, u8), Vec<Diagnostic>> {
    let formatted = format_source(file, text, limits)?;
    if !check {
        return Ok((formatted, 0));
    }
    let status = u8::from(formatted != text);
    Ok((render_diff(STDIN_NAME, text, &formatted), status))
}

/// One E0113 per hunk formatting would change, at the old lines it replaces, with the
/// formatted lines as a note.
fn not_formatted(map: &SourceMap, file: FileId, text: &str, formatted: &str) -> Vec<Diagnostic> {
    let starts = map.line_starts(file);
    let line_start = |line: usize| starts.get(line - 1).copied().unwrap_or(text.len());
    let line_end = |line: usize| {
        let next = starts.get(line).copied().unwrap_or(text.len());
        let body = text.get(line_start(line)..next).unwrap_or_default();
        line_start(line) + body.trim_end_matches(['\n', '\r']).len()
    };
    let shown = map.name(file).to_string();
    changes(text, formatted)
        .into_iter()
        .map(|c| {
            let lines = if c.first_line == c.last_line {
                format!("line {}", c.first_line)
            } else {
                format!("lines {}-{}", c.first_line, c.last_line)
            };
            let span = Span::new(line_start(c.first_line), line_end(c.last_line));
            let d = Diagnostic::error(
                codes::FMT_NOT_FORMATTED,
                format!("{shown} is not formatted: `modelc fmt` changes {lines}"),
            )
            .primary(file, span, "formatting changes this");
            let d = if c.formatted.is_empty() {
                d.note("formatted: these lines are removed")
            } else {
                d.note(format!("formatted:\n{}", c.formatted.join("\n")))
            };
            if shown == STDIN_NAME {
                d.help("format it with `modelc fmt -` (stdin to stdout)")
            } else {
                d.help(format!("run `modelc fmt {shown}`"))
            }
        })
        .collect()
}

fn usage(out: &Output, message: &str) -> u8 {
    let d = Diagnostic::error(codes::IO_USAGE, message.to_string())
        .help("run `modelc fmt FILE...` or `modelc fmt -`");
    out.diagnostics(&SourceMap::new(), &[d]);
    2
}
