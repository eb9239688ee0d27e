//! Option types several commands share: `--color`, `--format` (diagnostics, or human/JSON
//! output), the front-end and model limits, and `--mode`. The library's own enums
//! ([`Format`], [`Mode`]) know nothing of clap: the CLI maps its own value enums onto them here.
//!
//! Input: argv through clap. Output: the library's option values. Uses no command module.

use crate::diag::Format;
use crate::passes::Mode;
use crate::syntax::Limits;
use crate::util::limits::{DEFAULT_MAX_LAYERS, DEFAULT_MAX_PARAM_BYTES};
use clap::builder::{EnumValueParser, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};

/// When to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour on a terminal, unless NO_COLOR is set or TERM is dumb.
    Auto,
    Always,
    Never,
}

/// Output formats of `summary`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// A table for people.
    Human,
    /// One JSON object.
    Json,
}

/// `--format` of the commands that report diagnostics, mapped onto [`Format`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// Rendered for people, with source snippets.
    Human,
    /// One JSON object per diagnostic per line.
    Json,
    /// GitHub Actions `::error` annotations.
    Github,
    /// One SARIF 2.1.0 log, for code-scanning dashboards.
    Sarif,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Human => Format::Human,
            FormatArg::Json => Format::Json,
            FormatArg::Github => Format::Github,
            FormatArg::Sarif => Format::Sarif,
        }
    }
}

/// The value parser of a `--format` giving a diagnostics [`Format`] (`default_value = "human"`):
/// human, json or github.
pub fn format_parser() -> impl TypedValueParser<Value = Format> {
    formats(false)
}

/// [`format_parser`] with `sarif` too, for the commands whose whole output is one list of
/// diagnostics (`check`): a SARIF log is one document, not a stream.
pub fn format_parser_with_sarif() -> impl TypedValueParser<Value = Format> {
    formats(true)
}

fn formats(sarif: bool) -> impl TypedValueParser<Value = Format> {
    let values = FormatArg::value_variants()
        .iter()
        .filter(|&&f| sarif || f != FormatArg::Sarif)
        .filter_map(ValueEnum::to_possible_value);
    PossibleValuesParser::new(values).map(|name| {
        // Only the names just listed get here, and each parses back.
        FormatArg::from_str(&name, false).map_or(Format::Human, Format::from)
    })
}

/// `--mode`, mapped onto the passes' [`Mode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Inference: every rewrite may run.
    Infer,
    /// Training: only rewrites that keep the trained parameters and what backward needs.
    Train,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Infer => Mode::Infer,
            ModeArg::Train => Mode::Train,
        }
    }
}

/// The value parser of a `--mode` giving a [`Mode`] (`default_value = "infer"`).
pub fn mode_parser() -> impl TypedValueParser<Value = Mode> {
    EnumValueParser::<ModeArg>::new().map(Mode::from)
}

/// Limits on what the front end reads; raise them for unusual specs. Listed under a "Limits"
/// heading of `--help`, and hidden from `-h` (they are rarely needed).
#[derive(Clone, Copy, Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Largest spec file read, in bytes.
    #[arg(long, hide_short_help = true, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_source_bytes: u64,
    /// Deepest nesting of brackets and block comments.
    #[arg(long, hide_short_help = true, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_nesting: u32,
    /// Most errors reported per file.
    #[arg(long, hide_short_help = true, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_errors: u32,
    /// Most layers in one model.
    #[arg(long, hide_short_help = true, value_name = "N", default_value_t = DEFAULT_MAX_LAYERS)]
    pub max_layers: u64,
    /// Most bytes of parameters in one model (f32: 4 bytes each).
    #[arg(long, hide_short_help = true, value_name = "BYTES", default_value_t = DEFAULT_MAX_PARAM_BYTES)]
    pub max_param_bytes: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
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
