//! The trials of an experiment: the grid of its `vary` lines (the first line outermost, tied
//! keys moving together), each configuration's changes and its name.
//!
//! A trial's name lists each varied key and a short label of its value, `key=label` joined by
//! `,` (then `seed=N` when the experiment repeats): a call's label is its name when no other
//! value of the key calls the same (`optimizer=adam`), else its arguments written compactly
//! (`optimizer=sgd(lr=0.1)`); other values as written. Labels keep only characters that are
//! safe in a folder name. Two values of one line with the same label get `#2`, `#3`... after the
//! value's place in the list.

use super::lines::{Axis, Change, Read};
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::syntax::ast::{self, Arg, ExprKind};
use crate::syntax::format::print_args;
use std::fmt::Write as _;

/// The most trials one experiment may hold (configurations times repeats).
pub const MAX_TRIALS: u64 = 1000;

/// One point of the grid: what it changes in the base and what it is called.
#[derive(Clone, Debug)]
pub struct Configuration {
    /// `optimizer=adam,data.batch=32`; empty when nothing is varied.
    pub name: String,
    /// The fixed settings, then each axis's value.
    pub changes: Vec<Change>,
    /// Each varied key and its value as written canonically (`none` for a removal).
    pub settings: Vec<(String, String)>,
    /// Where a problem of this configuration is shown: its first varied value (or the first
    /// fixed setting, or the block).
    pub focus: Span,
    /// How many of `changes` are the fixed settings (the rest are varied).
    pub fixed: usize,
}

impl Configuration {
    /// The name, or `base` when nothing is varied.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            "base"
        } else {
            &self.name
        }
    }
}

/// Every configuration, in run order; an error when there would be more than [`MAX_TRIALS`].
pub fn grid(
    file: FileId,
    x: &ast::ExperimentDef,
    read: &Read<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Configuration>> {
    let mut total: u64 = read.repeat;
    for axis in &read.axes {
        total = total.saturating_mul(axis.values.len() as u64);
    }
    if total > MAX_TRIALS {
        let sizes: Vec<String> = read
            .axes
            .iter()
            .map(|a| format!("{} values", a.values.len()))
            .chain((read.repeat > 1).then(|| format!("{} repeats", read.repeat)))
            .collect();
        diags.push(
            Diagnostic::error(
                codes::CHECK_EXPERIMENT_TRIALS,
                format!(
                    "experiment `{}` has {total} trials; the limit is {MAX_TRIALS}",
                    x.name.name
                ),
            )
            .primary(file, x.name.span, format!("{} = {total} trials", sizes.join(" × ")))
            .help("vary fewer settings or fewer values at once, or tie settings that go together with `vary (a, b): [...]`"),
        );
        return None;
    }
    let labels: Vec<Vec<String>> = read.axes.iter().map(axis_labels).collect();
    let mut configurations = Vec::new();
    let mut index = vec![0usize; read.axes.len()];
    loop {
        configurations.push(configuration(read, &labels, &index));
        // Odometer: the last axis turns fastest.
        let mut k = read.axes.len();
        loop {
            if k == 0 {
                return Some(configurations);
            }
            k -= 1;
            let len = read.axes.get(k).map_or(1, |a| a.values.len());
            if let Some(i) = index.get_mut(k) {
                *i += 1;
                if *i < len {
                    break;
                }
                *i = 0;
            }
        }
    }
}

fn configuration(read: &Read<'_>, labels: &[Vec<String>], index: &[usize]) -> Configuration {
    let mut changes = read.fixed.clone();
    let mut names = Vec::new();
    let mut settings = Vec::new();
    let mut focus = None;
    for ((axis, &i), axis_labels) in read.axes.iter().zip(index).zip(labels) {
        let Some(value) = axis.values.get(i) else {
            continue;
        };
        if let Some(label) = axis_labels.get(i) {
            names.push(label.clone());
        }
        for change in value {
            focus.get_or_insert(change.span);
            settings.push((
                change.key.name.clone(),
                change
                    .args
                    .as_deref()
                    .map_or_else(|| "none".to_string(), print_args),
            ));
            changes.push(change.clone());
        }
    }
    let focus = focus
        .or_else(|| read.fixed.first().map(|c| c.span))
        .unwrap_or(read.base.span);
    Configuration {
        name: names.join(","),
        changes,
        settings,
        focus,
        fixed: read.fixed.len(),
    }
}

/// Each value's `key=label` (tied keys joined by `,`), unique within the line.
fn axis_labels(axis: &Axis<'_>) -> Vec<String> {
    let keys = axis.values.first().map_or(0, Vec::len);
    let per_key: Vec<Vec<String>> = (0..keys)
        .map(|k| {
            let column: Vec<Option<&[Arg]>> = axis
                .values
                .iter()
                .map(|v| v.get(k).and_then(|c| c.args.as_deref()))
                .collect();
            column.iter().map(|args| label(*args, &column)).collect()
        })
        .collect();
    let mut out: Vec<String> = Vec::new();
    for (i, value) in axis.values.iter().enumerate() {
        let parts: Vec<String> = value
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let l = per_key
                    .get(k)
                    .and_then(|p| p.get(i))
                    .map_or("", String::as_str);
                format!("{}={l}", c.key.name)
            })
            .collect();
        let mut name = parts.join(",");
        if out.contains(&name) {
            let _ = write!(name, "#{}", i + 1);
        }
        out.push(name);
    }
    out
}

/// A value's short label (see the module doc); `column` is every value of its key.
fn label(args: Option<&[Arg]>, column: &[Option<&[Arg]>]) -> String {
    let Some(args) = args else {
        return "none".to_string();
    };
    if let [Arg {
        name: None, value, ..
    }] = args
    {
        match &value.kind {
            ExprKind::Call(c) => {
                let same = column
                    .iter()
                    .filter(|other| callee(**other) == Some(c.callee.name.as_str()))
                    .count();
                if same == 1 {
                    return c.callee.name.clone();
                }
            }
            ExprKind::Str(s) => return safe(s),
            _ => {}
        }
    }
    let text = safe(&print_args(args));
    if args.len() > 1 {
        format!("({text})")
    } else {
        text
    }
}

/// The name a lone call value calls.
fn callee(args: Option<&[Arg]>) -> Option<&str> {
    match args? {
        [Arg {
            name: None, value, ..
        }] => match &value.kind {
            ExprKind::Call(c) => Some(c.callee.name.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// Text with only folder-safe characters: blanks dropped, `: ` as `=`, `|>` as `+`, anything
/// else outside letters, digits and `._-=,()+#` as `_`.
fn safe(text: &str) -> String {
    let text = text.replace(" |> ", "+").replace(": ", "=");
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-=,()+#".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
