//! `modelc summary FILE [--model NAME] [--format human|json]`: a Keras-style table of a model's
//! layers, output shapes, parameter counts and FLOPs. Exit 1 (with the diagnostics, as `check`
//! prints them) when the spec has errors.

use super::options::{ColorWhen, LimitArgs, SummaryFormat};
use super::output::Output;
use super::source;
use crate::check::summary;
use crate::diag::{self, codes, Diagnostic, Format, SourceMap};
use clap::Args;
use std::path::PathBuf;

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

/// Runs `summary`; returns the exit status.
pub fn run(args: &SummaryArgs, color: ColorWhen) -> u8 {
    let diag_format = match args.format {
        SummaryFormat::Human => Format::Human,
        SummaryFormat::Json => Format::Json,
    };
    let out = Output::new(color, diag_format);
    let limits = args.limits.limits();
    let mut map = SourceMap::new();
    let spec = match source::load(&mut map, &args.file, &limits) {
        Ok(s) => s,
        Err(d) => {
            out.diagnostics(&map, &[d]);
            return 2;
        }
    };
    let mut diags = spec.diagnostics;
    let checked = if diags.iter().any(Diagnostic::is_error) {
        None
    } else {
        let c = crate::check::limits::check_with_limits(
            spec.file,
            &spec.ast,
            &args.limits.model_limits(),
        );
        diags.extend(c.diagnostics.iter().cloned());
        Some(c)
    };
    diag::sort(&mut diags);
    let status = diag::exit_status(&diags);
    if status != 0 {
        out.diagnostics(&map, &diags);
        return status;
    }
    let Some(checked) = checked else { return 1 };
    let model = match &args.model {
        Some(name) => checked.models.iter().find(|m| &m.name == name),
        None => checked.models.first(),
    };
    let Some(model) = model else {
        let names: Vec<&str> = checked.models.iter().map(|m| m.name.as_str()).collect();
        let what = args.model.as_ref().map_or_else(
            || "the file defines no model".to_string(),
            |n| format!("no model `{n}` in {}", args.file.display()),
        );
        let mut d = Diagnostic::error(codes::CHECK_UNKNOWN_MODEL, what);
        if let Some(n) = &args.model {
            if let Some(h) = diag::suggest::help_for(n, names.iter().copied(), "the models are") {
                d = d.help(h);
            }
        }
        out.diagnostics(&map, &[d]);
        return 1;
    };
    // Warnings are still shown (on stderr for people).
    if args.format == SummaryFormat::Human {
        out.diagnostics(&map, &diags);
    }
    let s = summary::summarize(model);
    let text = match args.format {
        SummaryFormat::Human => summary::render_human(&s),
        SummaryFormat::Json => summary::render_json(&s) + "\n",
    };
    Output::stdout(&text);
    0
}
