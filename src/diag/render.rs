//! Renders diagnostics for people (codespan-reporting), for CI (JSON lines), for GitHub
//! Actions (workflow-command annotations) and for code-scanning dashboards (one SARIF log, built
//! by `sarif`). People's formats show at most `cap::MAX_PER_CODE` diagnostics per code per
//! file; JSON and SARIF show every one.

use super::cap::{capped, more_text, Item, MAX_PER_CODE};
use super::excerpt;
use super::{Diagnostic, LineCol, Severity, SourceMap};
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label as CsLabel};
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term::{self, termcolor::WriteColor};
use serde::Serialize;
use std::io;
use std::ops::Range;

/// The output formats of every command that reports diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Rendered for people, with source snippets.
    #[default]
    Human,
    /// One JSON object per diagnostic per line.
    Json,
    /// GitHub Actions `::error` annotations.
    Github,
    /// One SARIF 2.1.0 log for all the diagnostics (`check` only), written even when empty.
    Sarif,
}

/// How to render.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    pub format: Format,
}

/// Writes `diags` to `out` in the chosen format. Colour is decided by the writer.
pub fn render(
    out: &mut dyn WriteColor,
    map: &SourceMap,
    diags: &[Diagnostic],
    options: RenderOptions,
) -> io::Result<()> {
    match options.format {
        Format::Human => {
            let config = term::Config::default();
            for item in capped(map, diags, MAX_PER_CODE) {
                let d = match item {
                    Item::Shown(d) => d,
                    Item::More { code, file, hidden } => {
                        more(out, &more_text(code, &file, hidden))?;
                        continue;
                    }
                };
                // A place outside any spec (a data or weights file): the header, then the
                // place in rustc's `-->` form, then the notes and help.
                if let (Some(ext), true) = (&d.external, d.labels.is_empty()) {
                    header(out, d)?;
                    writeln!(out, "  --> {}", external_place(ext))?;
                    for n in &d.notes {
                        writeln!(out, "   = {n}")?;
                    }
                    if let Some(h) = &d.help {
                        writeln!(out, "   = help: {h}")?;
                    }
                    writeln!(out)?;
                } else {
                    let mut cs = to_codespan(d);
                    if excerpt::touches_long_line(map, &d.labels) {
                        let shown = excerpt::Excerpt::new(map, &d.labels);
                        for (label, ours) in cs.labels.iter_mut().zip(&d.labels) {
                            label.range =
                                shown.map_range(ours.file, ours.span.start..ours.span.end);
                        }
                        term::emit_to_write_style(out, &config, &shown, &cs)
                    } else {
                        term::emit_to_write_style(out, &config, map, &cs)
                    }
                    .map_err(files_error_to_io)?;
                }
            }
            Ok(())
        }
        Format::Json => {
            for d in diags {
                let line = serde_json::to_string(&to_json(map, d)).map_err(io::Error::other)?;
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
        Format::Github => {
            for item in capped(map, diags, MAX_PER_CODE) {
                match item {
                    Item::Shown(d) => writeln!(out, "{}", to_github(map, d))?,
                    Item::More { code, file, hidden } => {
                        let mut props = Vec::new();
                        if !file.is_empty() {
                            props.push(format!("file={}", gh_escape(&file, true)));
                        }
                        props.push(format!(
                            "title={}",
                            gh_escape(&format!("modelc {code}"), true)
                        ));
                        let text = gh_escape(&more_text(code, &file, hidden), false);
                        writeln!(out, "::notice {}::{text}", props.join(","))?;
                    }
                }
            }
            Ok(())
        }
        Format::Sarif => {
            let log = super::sarif::to_sarif(map, diags);
            let text = serde_json::to_string_pretty(&log).map_err(io::Error::other)?;
            writeln!(out, "{text}")
        }
    }
}

/// `note: N more ... not shown`, after the last shown diagnostic of a capped group.
fn more(out: &mut dyn WriteColor, text: &str) -> io::Result<()> {
    use codespan_reporting::term::termcolor::{Color, ColorSpec};
    out.set_color(ColorSpec::new().set_fg(Some(Color::Green)).set_bold(true))?;
    write!(out, "note")?;
    out.set_color(ColorSpec::new().set_bold(true))?;
    writeln!(out, ": {text}")?;
    out.reset()?;
    writeln!(out)
}

/// `error[E0900]: message`, coloured as codespan colours its headers.
fn header(out: &mut dyn WriteColor, d: &Diagnostic) -> io::Result<()> {
    use codespan_reporting::term::termcolor::{Color, ColorSpec};
    let (word, colour) = match d.severity {
        Severity::Error => ("error", Color::Red),
        Severity::Warning => ("warning", Color::Yellow),
        Severity::Note => ("note", Color::Green),
    };
    out.set_color(ColorSpec::new().set_fg(Some(colour)).set_bold(true))?;
    write!(out, "{word}[{}]", d.code)?;
    out.set_color(ColorSpec::new().set_bold(true))?;
    writeln!(out, ": {}", d.message)?;
    out.reset()
}

fn external_place(ext: &super::ExternalLocation) -> String {
    match (ext.line, ext.column) {
        (0, _) => ext.path.clone(),
        (l, 0) => format!("{}:{l}", ext.path),
        (l, c) => format!("{}:{l}:{c}", ext.path),
    }
}

fn files_error_to_io(e: FilesError) -> io::Error {
    match e {
        FilesError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

pub(super) fn to_codespan(d: &Diagnostic) -> CsDiagnostic<super::FileId> {
    let base = match d.severity {
        Severity::Error => CsDiagnostic::error(),
        Severity::Warning => CsDiagnostic::warning(),
        Severity::Note => CsDiagnostic::note(),
    };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let label = if l.primary {
                CsLabel::primary(l.file, l.span.start..l.span.end)
            } else {
                CsLabel::secondary(l.file, l.span.start..l.span.end)
            };
            label.with_message(l.message.clone())
        })
        .collect();
    let mut notes = d.notes.clone();
    if let Some(help) = &d.help {
        notes.push(format!("help: {help}"));
    }
    base.with_code(d.code.as_str())
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    message: &'a str,
    primary: bool,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: Severity,
    message: &'a str,
    file: Option<&'a str>,
    line: Option<usize>,
    column: Option<usize>,
    end_line: Option<usize>,
    end_column: Option<usize>,
    labels: Vec<JsonLabel<'a>>,
    notes: &'a [String],
    help: Option<&'a str>,
}

/// Where a diagnostic is, as (file, start, end) with 1-based lines and columns.
fn place<'a>(map: &'a SourceMap, d: &'a Diagnostic) -> Option<(&'a str, LineCol, LineCol)> {
    if let Some(l) = d.primary_label() {
        let start = map.line_col(l.file, l.span.start);
        let end = map.line_col(l.file, l.span.end);
        return Some((map.name(l.file), start, end));
    }
    d.external.as_ref().map(|e| {
        let at = LineCol {
            line: e.line.max(1),
            column: e.column.max(1),
        };
        (e.path.as_str(), at, at)
    })
}

fn to_json<'a>(map: &'a SourceMap, d: &'a Diagnostic) -> JsonDiagnostic<'a> {
    let here = place(map, d);
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let s = map.line_col(l.file, l.span.start);
            let e = map.line_col(l.file, l.span.end);
            JsonLabel {
                file: map.name(l.file),
                line: s.line,
                column: s.column,
                end_line: e.line,
                end_column: e.column,
                message: &l.message,
                primary: l.primary,
            }
        })
        .collect();
    JsonDiagnostic {
        code: d.code.as_str(),
        severity: d.severity,
        message: &d.message,
        file: here.map(|h| h.0),
        line: here.map(|h| h.1.line),
        column: here.map(|h| h.1.column),
        end_line: here.map(|h| h.2.line),
        end_column: here.map(|h| h.2.column),
        labels,
        notes: &d.notes,
        help: d.help.as_deref(),
    }
}

/// Escapes a GitHub workflow-command value (`%`, CR and LF always; `:` and `,` in properties).
fn gh_escape(s: &str, property: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if property => out.push_str("%3A"),
            ',' if property => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

fn to_github(map: &SourceMap, d: &Diagnostic) -> String {
    let kind = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    };
    let mut props = Vec::new();
    if let Some((file, s, e)) = place(map, d) {
        props.push(format!("file={}", gh_escape(file, true)));
        props.push(format!("line={}", s.line));
        props.push(format!("col={}", s.column));
        props.push(format!("endLine={}", e.line));
        props.push(format!("endColumn={}", e.column));
    }
    props.push(format!(
        "title={}",
        gh_escape(&format!("modelc {}", d.code), true)
    ));
    let mut message = format!("[{}] {}", d.code, d.message);
    for n in &d.notes {
        message.push_str("\n= note: ");
        message.push_str(n);
    }
    if let Some(h) = &d.help {
        message.push_str("\n= help: ");
        message.push_str(h);
    }
    format!(
        "::{kind} {}::{}",
        props.join(","),
        gh_escape(&message, false)
    )
}

impl<'a> Files<'a> for SourceMap {
    type FileId = super::FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: Self::FileId) -> Result<Self::Name, FilesError> {
        Ok(SourceMap::name(self, id))
    }

    fn source(&'a self, id: Self::FileId) -> Result<Self::Source, FilesError> {
        Ok(self.text(id))
    }

    fn line_index(&'a self, id: Self::FileId, byte_index: usize) -> Result<usize, FilesError> {
        let starts = self.line_starts(id);
        Ok(starts.partition_point(|&s| s <= byte_index).max(1) - 1)
    }

    fn line_range(
        &'a self,
        id: Self::FileId,
        line_index: usize,
    ) -> Result<Range<usize>, FilesError> {
        let starts = self.line_starts(id);
        let len = self.text(id).len();
        let start = *starts.get(line_index).ok_or(FilesError::LineTooLarge {
            given: line_index,
            max: starts.len().saturating_sub(1),
        })?;
        let end = starts.get(line_index + 1).copied().unwrap_or(len);
        Ok(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{codes, Span};
    use codespan_reporting::term::termcolor::NoColor;

    fn sample() -> (SourceMap, Diagnostic) {
        let mut map = SourceMap::new();
        let f = map.add("a.model", "model M(x: f32[N, 4]) {\n    dense(3))\n}\n");
        let d = Diagnostic::error(codes::SYNTAX_UNEXPECTED, "expected a layer call, found `)`")
            .primary(f, Span::new(36, 37), "unexpected `)`")
            .help("remove it");
        (map, d)
    }

    fn rendered(format: Format) -> String {
        let (map, d) = sample();
        let mut out = NoColor::new(Vec::new());
        render(&mut out, &map, &[d], RenderOptions { format }).unwrap();
        String::from_utf8(out.into_inner()).unwrap()
    }

    #[test]
    fn json_has_one_object_per_line_with_positions() {
        let text = rendered(Format::Json);
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["code"], "E0100");
        assert_eq!(v["file"], "a.model");
        assert_eq!(v["line"], 2);
        assert_eq!(v["column"], 13);
        assert_eq!(v["end_column"], 14);
        assert_eq!(v["help"], "remove it");
        assert_eq!(v["labels"][0]["primary"], true);
    }

    #[test]
    fn github_annotation_names_file_line_and_column() {
        let text = rendered(Format::Github);
        assert!(
            text.starts_with("::error file=a.model,line=2,col=13,endLine=2,endColumn=14,title=modelc E0100::[E0100] expected"),
            "{text}"
        );
        assert!(text.contains("%0A= help: remove it"), "{text}");
    }

    #[test]
    fn human_output_shows_code_place_and_help() {
        let text = rendered(Format::Human);
        assert!(
            text.starts_with("error[E0100]: expected a layer call"),
            "{text}"
        );
        assert!(text.contains("a.model:2:13"), "{text}");
        assert!(text.contains("= help: remove it"), "{text}");
    }
}
