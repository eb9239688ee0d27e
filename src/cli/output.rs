//! Where output goes: diagnostics for people on stderr (coloured only on a terminal, never with
//! NO_COLOR or TERM=dumb), machine-readable output on stdout. A closed pipe is not an error.

use super::options::ColorWhen;
use crate::diag::{self, Diagnostic, Format, RenderOptions, SourceMap};
use codespan_reporting::term::termcolor::{ColorChoice, NoColor, StandardStream, WriteColor};
use std::io::{self, IsTerminal, Write};

/// The output streams of one command.
pub struct Output {
    color: ColorWhen,
    format: Format,
}

impl Output {
    pub fn new(color: ColorWhen, format: Format) -> Self {
        Self { color, format }
    }

    fn stderr_choice(&self) -> ColorChoice {
        match self.color {
            ColorWhen::Never => ColorChoice::Never,
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Auto => {
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
                if no_color || dumb || !io::stderr().is_terminal() {
                    ColorChoice::Never
                } else {
                    ColorChoice::Auto
                }
            }
        }
    }

    /// Renders diagnostics: human ones to stderr, JSON, GitHub and SARIF ones to stdout. SARIF
    /// is one log even when there is nothing to report (an empty log says "clean").
    pub fn diagnostics(&self, map: &SourceMap, diags: &[Diagnostic]) {
        if diags.is_empty() && self.format != Format::Sarif {
            return;
        }
        let options = RenderOptions {
            format: self.format,
        };
        let result = match self.format {
            Format::Human => {
                let mut err = StandardStream::stderr(self.stderr_choice());
                diag::render(&mut err, map, diags, options)
            }
            Format::Json | Format::Github | Format::Sarif => {
                let mut out = NoColor::new(io::stdout().lock());
                diag::render(&mut out, map, diags, options).and_then(|()| out.flush())
            }
        };
        ignore_broken_pipe(result);
    }

    /// Writes text to stdout.
    pub fn stdout(text: &str) {
        let mut out = io::stdout().lock();
        ignore_broken_pipe(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
    }

    /// Writes a status line for people to stderr (`Checked 3 files`), never in machine formats.
    pub fn status(&self, verb: &str, rest: &str) {
        if self.format != Format::Human {
            return;
        }
        let mut err = StandardStream::stderr(self.stderr_choice());
        let mut spec = codespan_reporting::term::termcolor::ColorSpec::new();
        spec.set_bold(true)
            .set_fg(Some(codespan_reporting::term::termcolor::Color::Green));
        let r = err
            .set_color(&spec)
            .and_then(|()| write!(err, "{verb:>12}"))
            .and_then(|()| err.reset())
            .and_then(|()| writeln!(err, " {rest}"));
        ignore_broken_pipe(r);
    }
}

/// Output to a closed pipe (`modelc ... | head -1`) is silently dropped.
fn ignore_broken_pipe(r: io::Result<()>) {
    if let Err(e) = r {
        if e.kind() != io::ErrorKind::BrokenPipe {
            // Nothing better can be done about a failing stderr/stdout.
            let _ = writeln!(io::stderr(), "modelc: cannot write output: {e}");
        }
    }
}
