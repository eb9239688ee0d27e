//! A cap per code on what people read: hostile or broken input can give thousands of
//! diagnostics of one kind (one per line of a pasted file), and the first few say what the
//! rest would.
//!
//! Input: the sorted diagnostics of a run. Output: the ones to render for people (human and
//! GitHub formats), at most [`MAX_PER_CODE`] per code per file, each group that goes over
//! followed by one [`Item::More`] saying how many were left out. Machine formats (JSON lines,
//! SARIF) stay complete, and exit codes and summary counts are computed from every
//! diagnostic, never from what is shown: the cap changes only what is printed.
//! (As clang's `-ferror-limit` and ESLint's `--max-warnings`, but per code and per file,
//! so that one flood never hides a different problem.)

use super::{Code, Diagnostic, SourceMap};
use std::collections::HashMap;

/// At most this many diagnostics of one code in one file are rendered for people.
pub const MAX_PER_CODE: usize = 50;

/// One thing to render.
pub(super) enum Item<'a> {
    Shown(&'a Diagnostic),
    /// `hidden` more diagnostics of `code` in `file` ("" when they have no place).
    More {
        code: Code,
        file: String,
        hidden: usize,
    },
}

/// The file a diagnostic is about (its first label's, or its external place's).
fn file_of(map: &SourceMap, d: &Diagnostic) -> String {
    match (d.labels.first(), &d.external) {
        (Some(l), _) => map.name(l.file).to_string(),
        (None, Some(ext)) => ext.path.clone(),
        (None, None) => String::new(),
    }
}

/// `diags` with each (code, file) group capped at `cap`, in their order.
pub(super) fn capped<'a>(map: &SourceMap, diags: &'a [Diagnostic], cap: usize) -> Vec<Item<'a>> {
    let files: Vec<String> = diags.iter().map(|d| file_of(map, d)).collect();
    let mut totals: HashMap<(Code, &str), usize> = HashMap::new();
    for (d, f) in diags.iter().zip(&files) {
        *totals.entry((d.code, f.as_str())).or_default() += 1;
    }
    let mut seen: HashMap<(Code, &str), usize> = HashMap::new();
    let mut out = Vec::with_capacity(diags.len().min(cap.saturating_mul(totals.len())));
    for (d, f) in diags.iter().zip(&files) {
        let key = (d.code, f.as_str());
        let n = seen.entry(key).or_default();
        *n += 1;
        if *n <= cap {
            out.push(Item::Shown(d));
        }
        let total = totals.get(&key).copied().unwrap_or(0);
        if *n == cap && total > cap {
            out.push(Item::More {
                code: d.code,
                file: f.clone(),
                hidden: total - cap,
            });
        }
    }
    out
}

/// The sentence of an [`Item::More`].
pub(super) fn more_text(code: Code, file: &str, hidden: usize) -> String {
    let noun = if hidden == 1 {
        "diagnostic"
    } else {
        "diagnostics"
    };
    let place = if file.is_empty() {
        String::new()
    } else {
        format!(" in {file}")
    };
    format!(
        "{hidden} more {code} {noun}{place} not shown (the first {MAX_PER_CODE} are); `--format json` lists every one"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{codes, Span};

    #[test]
    fn each_code_and_file_is_capped_apart_and_counts_what_it_hides() {
        let mut map = SourceMap::new();
        let a = map.add("a.model", "x".repeat(100));
        let b = map.add("b.model", "y".repeat(100));
        let at = |file, code| Diagnostic::error(code, "m").primary(file, Span::new(0, 1), "here");
        let mut diags: Vec<Diagnostic> = (0..7).map(|_| at(a, codes::CHECK_UNKNOWN_NAME)).collect();
        diags.extend((0..3).map(|_| at(b, codes::CHECK_UNKNOWN_NAME)));
        diags.push(at(a, codes::PLAN_SYNTAX));
        let items = capped(&map, &diags, 3);
        let kinds: Vec<String> = items
            .iter()
            .map(|i| match i {
                Item::Shown(d) => format!("{}", d.code),
                Item::More { code, file, hidden } => format!("+{hidden} {code} {file}"),
            })
            .collect();
        let u = codes::CHECK_UNKNOWN_NAME.as_str();
        let s = codes::PLAN_SYNTAX.as_str();
        // 7 in a.model: 3 shown then 4 hidden; exactly 3 in b.model: no note; the other code
        // in a.model is shown though its file's flood was cut.
        let expected = [u, u, u, &format!("+4 {u} a.model"), u, u, u, s];
        assert_eq!(kinds, expected);
    }
}
