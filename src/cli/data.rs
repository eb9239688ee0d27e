//! `modelc data preview|stats FILE [--data NAME]`: look at a data pipeline before training.
//!
//! Input: a spec and one of its `data` blocks (the named one, or the file's only one); data
//! files resolve against the spec file's folder. The pipeline is loaded as training would load
//! it (source, `map` steps fitted on the training rows, split). Output: `stats` prints sample
//! counts, feature shape and moments and the class balance per split (JSON with `--format
//! json`); `preview` writes a PNG grid of the first training samples after augmentation at one
//! epoch (a line plot for series), atomically. Exit 1 for problems in the spec or the data
//! (E06xx), 2 for usage and I/O.

use super::common::{diag_format, report, same_file};
use super::options::{ColorWhen, SummaryFormat};
use super::output::Output;
use super::source;
use crate::data::loader::{load_dataset, Dataset};
use crate::data::preview::preview_png;
use crate::data::spec::{ColumnRef, SourceKind};
use crate::data::stats::{stats, SplitStats};
use crate::diag::suggest::help_for;
use crate::diag::{codes, Diagnostic, SourceMap};
use clap::{Args, Subcommand};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a PNG grid of training samples as the model will see them (after augmentation).
    Preview(PreviewArgs),
    /// Print sample counts, shapes, value statistics and class balance per split.
    Stats(StatsArgs),
}

/// Which pipeline of which spec.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The `.model` file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The `data` block (default: the file's only one).
    #[arg(long = "data", value_name = "NAME")]
    pub data: Option<String>,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Where to write the PNG (atomically).
    #[arg(short, long, value_name = "grid.png")]
    pub output: PathBuf,
    /// How many samples to show.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub count: u32,
    /// The epoch whose augmentation to show.
    #[arg(long, value_name = "E", default_value_t = 0)]
    pub epoch: u64,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Human)]
    pub format: SummaryFormat,
}

/// Runs `data`; returns the exit status.
pub fn run(args: &DataArgs, color: ColorWhen) -> u8 {
    match &args.command {
        DataCommand::Preview(a) => preview(a, color),
        DataCommand::Stats(a) => run_stats(a, color),
    }
}

/// Checks the spec and loads the chosen pipeline.
fn load(map: &mut SourceMap, args: &PipelineArgs) -> Result<Dataset, Vec<Diagnostic>> {
    let spec =
        source::load(map, &args.file, &crate::syntax::Limits::default()).map_err(|d| vec![d])?;
    if spec.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(spec.diagnostics);
    }
    let checked = crate::check::limits::check_with_limits(
        spec.file,
        &spec.ast,
        &crate::check::limits::ModelLimits::default(),
    );
    if checked.has_errors() {
        return Err(checked.diagnostics);
    }
    let names: Vec<&str> = checked.pipelines.iter().map(|p| p.name.as_str()).collect();
    let pipeline = match (&args.data, checked.pipelines.as_slice()) {
        (Some(name), all) => all.iter().find(|p| &p.name == name).ok_or_else(|| {
            let d = Diagnostic::error(
                codes::IO_USAGE,
                format!("the spec has no data block named `{name}`"),
            );
            vec![
                match help_for(name, names.iter().copied(), "the data blocks are") {
                    Some(h) => d.help(h),
                    None => d,
                },
            ]
        })?,
        (None, [one]) => one,
        (None, []) => {
            return Err(vec![Diagnostic::error(
                codes::IO_USAGE,
                "the spec defines no data block",
            )])
        }
        (None, all) => {
            return Err(vec![Diagnostic::error(
                codes::IO_USAGE,
                format!("the spec defines {} data blocks", all.len()),
            )
            .help(format!(
                "choose one with `--data NAME`: {}",
                names.join(", ")
            ))])
        }
    };
    let base = args
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    load_dataset(pipeline, base).map_err(|d| vec![d])
}

fn preview(args: &PreviewArgs, color: ColorWhen) -> u8 {
    let out = Output::new(color, crate::diag::Format::Human);
    let mut map = SourceMap::new();
    if same_file(&args.output, &args.pipeline.file) {
        let d = Diagnostic::error(
            codes::IO_SAME_PATH,
            format!("the output {} is the input spec", args.output.display()),
        )
        .help("write the picture to another path, e.g. `-o grid.png`");
        return report(&out, &map, vec![d]);
    }
    let result = load(&mut map, &args.pipeline).and_then(|ds| {
        let png = preview_png(&ds, args.count as usize, args.epoch).map_err(|d| vec![d])?;
        crate::util::write_atomic(&args.output, &png).map_err(|e| {
            vec![Diagnostic::error(
                codes::IO_WRITE,
                format!("cannot write {}: {e}", args.output.display()),
            )
            .at_external(args.output.display().to_string(), 0, 0)]
        })?;
        Ok(ds.spec.name.clone())
    });
    match result {
        Ok(name) => {
            out.status(
                "Wrote",
                &format!(
                    "{name}: {} training sample(s), epoch {} → {}",
                    args.count,
                    args.epoch,
                    args.output.display()
                ),
            );
            0
        }
        Err(diags) => report(&out, &map, diags),
    }
}

fn run_stats(args: &StatsArgs, color: ColorWhen) -> u8 {
    let out = Output::new(color, diag_format(args.format));
    let mut map = SourceMap::new();
    let ds = match load(&mut map, &args.pipeline) {
        Ok(ds) => ds,
        Err(diags) => return report(&out, &map, diags),
    };
    let s = stats(&ds);
    let text = match args.format {
        SummaryFormat::Json => match serde_json::to_string(&s) {
            Ok(j) => format!("{j}\n"),
            Err(e) => {
                let d = Diagnostic::error(codes::IO_WRITE, format!("cannot render JSON: {e}"));
                return report(&out, &map, vec![d]);
            }
        },
        SummaryFormat::Human => {
            let mut t = format!(
                "{}: {} samples\n",
                s.name,
                s.train.samples + s.validation.samples + s.test.as_ref().map_or(0, |t| t.samples)
            );
            let columns = label_columns(&ds.spec.source.kind);
            render_split(&mut t, "train", &s.train, &columns);
            if s.validation.samples > 0 {
                render_split(&mut t, "validation", &s.validation, &columns);
            }
            if let Some(test) = &s.test {
                render_split(&mut t, "test", test, &columns);
            }
            t
        }
    };
    Output::stdout(&text);
    0
}

/// The label columns of a csv source with a `label:` list, as written (`` `target` ``, or
/// `column 3` for an index); empty for any other source.
fn label_columns(kind: &SourceKind) -> Vec<String> {
    let SourceKind::Csv(c) = kind else {
        return Vec::new();
    };
    let name = |r: &ColumnRef| match r {
        ColumnRef::Name(n) => format!("`{n}`"),
        ColumnRef::Index(i) => format!("column {i}"),
    };
    c.label
        .iter()
        .chain(c.more_labels.iter().map(|l| &l.column))
        .map(name)
        .collect()
}

fn render_split(t: &mut String, title: &str, s: &SplitStats, columns: &[String]) {
    let _ = writeln!(
        t,
        "\n{title}: {} samples of {}{:?}",
        s.samples, s.dtype, s.shape
    );
    let _ = writeln!(
        t,
        "  features  mean {:.4}  std {:.4}  min {:.4}  max {:.4}",
        s.mean, s.std, s.min, s.max
    );
    if s.label_sets.is_empty() {
        render_labels(t, s.class_counts.as_deref(), s.label_mean.zip(s.label_std));
    }
    for (k, l) in s.label_sets.iter().enumerate() {
        match columns.get(k) {
            Some(column) => {
                let _ = writeln!(t, "  labels {column} (output {}):", k + 1);
            }
            None => {
                let _ = writeln!(t, "  label set {} (output {}):", k + 1, k + 1);
            }
        }
        render_labels(t, l.class_counts.as_deref(), l.label_mean.zip(l.label_std));
    }
}

fn render_labels(t: &mut String, class_counts: Option<&[usize]>, moments: Option<(f64, f64)>) {
    if let Some(counts) = class_counts {
        let _ = writeln!(t, "  {} classes:", counts.len());
        let most = counts.iter().copied().max().unwrap_or(0).max(1);
        for (class, &n) in counts.iter().enumerate() {
            let bar = "█".repeat(n * 30 / most);
            let _ = writeln!(t, "    {class:>4} {n:>7}  {bar}");
        }
    }
    if let Some((m, sd)) = moments {
        let _ = writeln!(t, "  labels    mean {m:.4}  std {sd:.4}");
    }
}
