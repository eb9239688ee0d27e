//! What `modelc fmt --check` shows: the lines formatting would change, as unified-diff hunks.
//!
//! Input: the old and new text of one file. Output: `Diff in NAME at line L:` headers (1-based
//! line of the old text) followed by ` context`, `-old` and `+new` lines, like `cargo fmt
//! --check`; or the same hunks as [`Change`]s (old line range and formatted lines) for
//! annotations. Invariant: bounded work on any input: the common head and tail are trimmed first,
//! and a middle too large for a line-by-line alignment is shown as one replaced range.

use std::fmt::Write as _;

/// Lines of context around each change.
const CONTEXT: usize = 3;
/// Largest alignment table (old lines × new lines) built for the changed middle.
const MAX_CELLS: usize = 4_000_000;

/// One line of the listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line<'a> {
    Same(&'a str),
    Old(&'a str),
    New(&'a str),
}

/// The listing of the changes from `old` to `new` (empty when they are equal).
pub fn render_diff(name: &str, old: &str, new: &str) -> String {
    let old_lines: Vec<&str> = split_lines(old);
    let new_lines: Vec<&str> = split_lines(new);
    let script = edit_script(&old_lines, &new_lines);
    let mut out = String::new();
    for (first, last) in hunks(&script) {
        let from = first.saturating_sub(CONTEXT);
        let to = (last + CONTEXT + 1).min(script.len());
        let old_line = 1 + old_lines_before(&script, from);
        let _ = writeln!(out, "Diff in {name} at line {old_line}:");
        for line in script.get(from..to).unwrap_or_default() {
            let (mark, text) = match line {
                Line::Same(t) => (' ', t),
                Line::Old(t) => ('-', t),
                Line::New(t) => ('+', t),
            };
            out.push(mark);
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

/// One hunk of [`render_diff`], for machine-readable output (`fmt --check --format json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The first old line the hunk changes, 1-based (for a pure insertion, the line it goes
    /// before, or the last line at the end of the file).
    pub first_line: usize,
    /// The last old line the hunk changes (`first_line` for a pure insertion).
    pub last_line: usize,
    /// The hunk's lines as formatting writes them (changed lines only, no context).
    pub formatted: Vec<String>,
}

/// The hunks of the changes from `old` to `new`, in order (empty when they are equal); the
/// same grouping as [`render_diff`]'s headers.
pub fn changes(old: &str, new: &str) -> Vec<Change> {
    let old_lines: Vec<&str> = split_lines(old);
    let new_lines: Vec<&str> = split_lines(new);
    let script = edit_script(&old_lines, &new_lines);
    let last_old = old_lines.len().max(1);
    hunks(&script)
        .into_iter()
        .map(|(first, last)| {
            let span = script.get(first..=last).unwrap_or_default();
            let start = old_lines_before(&script, first);
            let kept_or_removed = span.iter().filter(|l| !matches!(l, Line::New(_))).count();
            let first_line = (start + 1).min(last_old);
            let last_line = (start + kept_or_removed).min(last_old).max(first_line);
            let formatted = span
                .iter()
                .filter_map(|l| match l {
                    Line::New(t) => Some((*t).to_string()),
                    _ => None,
                })
                .collect();
            Change {
                first_line,
                last_line,
                formatted,
            }
        })
        .collect()
}

/// The (first, last) script indexes of each hunk: changes closer than 2 × [`CONTEXT`] lines
/// apart share one.
fn hunks(script: &[Line<'_>]) -> Vec<(usize, usize)> {
    let changed: Vec<usize> = script
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l, Line::Same(_)))
        .map(|(i, _)| i)
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&first) = changed.get(i) {
        let mut last = first;
        while let Some(&next) = changed.get(i + 1) {
            if next > last + 2 * CONTEXT + 1 {
                break;
            }
            i += 1;
            last = next;
        }
        i += 1;
        out.push((first, last));
    }
    out
}

/// How many old lines the script holds before index `at`.
fn old_lines_before(script: &[Line<'_>], at: usize) -> usize {
    script
        .get(..at)
        .unwrap_or_default()
        .iter()
        .filter(|l| !matches!(l, Line::New(_)))
        .count()
}

/// The lines of a text without their line ends (a final line end starts no extra line).
fn split_lines(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() && text.is_empty() {
        return Vec::new();
    }
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// The old text's lines, in order, each kept, removed or with new lines inserted around them.
fn edit_script<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Line<'a>> {
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let old_mid = &old[head..old.len() - tail];
    let new_mid = &new[head..new.len() - tail];
    let mut script: Vec<Line<'a>> = old[..head].iter().map(|l| Line::Same(l)).collect();
    let cells = (old_mid.len() + 1).saturating_mul(new_mid.len() + 1);
    if cells > MAX_CELLS {
        script.extend(old_mid.iter().map(|l| Line::Old(l)));
        script.extend(new_mid.iter().map(|l| Line::New(l)));
    } else {
        script.extend(align(old_mid, new_mid));
    }
    script.extend(old[old.len() - tail..].iter().map(|l| Line::Same(l)));
    script
}

/// A shortest edit script by longest common subsequence (removals before insertions).
fn align<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Line<'a>> {
    let width = new.len() + 1;
    // common[i * width + j]: length of the LCS of old[i..] and new[j..].
    let mut common = vec![0u32; (old.len() + 1) * width];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i * width + j] = if old[i] == new[j] {
                common[(i + 1) * width + j + 1] + 1
            } else {
                common[(i + 1) * width + j].max(common[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut script = Vec::with_capacity(old.len() + new.len());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            script.push(Line::Same(old[i]));
            i += 1;
            j += 1;
        } else if j >= new.len()
            || (i < old.len() && common[(i + 1) * width + j] >= common[i * width + j + 1])
        {
            script.push(Line::Old(old[i]));
            i += 1;
        } else {
            script.push(Line::New(new[j]));
            j += 1;
        }
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(render_diff("f", "a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn a_changed_line_is_shown_with_context_and_its_old_line_number() {
        let old = "1\n2\n3\n4\n5\nx  \n7\n8\n9\n10\n11\n";
        let new = "1\n2\n3\n4\n5\nx\n7\n8\n9\n10\n11\n";
        assert_eq!(
            render_diff("f.model", old, new),
            "Diff in f.model at line 3:\n 3\n 4\n 5\n-x  \n+x\n 7\n 8\n 9\n"
        );
    }

    #[test]
    fn distant_changes_get_separate_hunks_and_crlf_is_not_shown() {
        let old = (1..=20).fold(String::new(), |mut s, i| {
            let _ = write!(s, "{i}\r\n");
            s
        });
        let new = old
            .replace("\n2\r\n", "\ntwo\r\n")
            .replace("\n19\r\n", "\n");
        let diff = render_diff("f", &old, &new);
        assert_eq!(diff.matches("Diff in f at line").count(), 2, "{diff}");
        assert!(diff.contains("-2\n+two\n"), "{diff}");
        assert!(diff.contains("-19\n"), "{diff}");
        assert!(!diff.contains('\r'));
    }

    #[test]
    fn changes_give_each_hunk_its_old_lines_and_formatted_text() {
        let old = "1\n2\n3\n4\n5\nx  \ny  \n8\n9\n10\n11\n12\n13\n14\n15\n16\n";
        let new = "1\n2\n3\n4\n5\nx\ny\n8\n9\n10\n11\n12\n13\n14\n15\n16\nend\n";
        let got = changes(old, new);
        assert_eq!(
            got,
            vec![
                Change {
                    first_line: 6,
                    last_line: 7,
                    formatted: vec!["x".into(), "y".into()]
                },
                Change {
                    first_line: 16,
                    last_line: 16,
                    formatted: vec!["end".into()]
                },
            ]
        );
        assert!(changes(old, old).is_empty());
    }
}
