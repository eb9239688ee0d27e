//! `modelc train --set KEY=VALUE`: each override parsed with the grammar of an experiment's
//! setting and applied to the train block (or its data block) before the spec is checked, so it
//! is checked like the spec. Each override's text is a source of its own (`--set`), and every
//! diagnostic about it points into that text.
//!
//! The spans of override `i` are offsets past the end of the spec's text (the spec, then each
//! override after a one-byte gap), so the checker, which knows one file, can label them; the
//! labels are moved into the override's own source afterwards.

use crate::check::experiment::with_overrides;
use crate::diag::{Diagnostic, FileId, SourceMap};
use crate::syntax::{ast, parse_override, Limits};

/// Where each override's text lies beyond the spec's.
pub struct SetFiles {
    spec: FileId,
    /// Each override's own source, and the offset its spans start at.
    files: Vec<(FileId, usize, usize)>,
}

impl SetFiles {
    /// Moves labels that point past the spec's text into the override they point at.
    pub fn relocate(&self, mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
        for d in &mut diags {
            for label in &mut d.labels {
                if label.file != self.spec {
                    continue;
                }
                let found = self
                    .files
                    .iter()
                    .find(|(_, at, len)| label.span.start >= *at && label.span.start <= at + len);
                if let Some(&(id, at, _)) = found {
                    label.file = id;
                    label.span.start -= at;
                    label.span.end = label.span.end.saturating_sub(at);
                }
            }
        }
        diags
    }
}

/// The spec's tree with every `--set` applied to the train block `name` (or the only one).
pub fn apply(
    map: &mut SourceMap,
    spec: FileId,
    tree: &ast::File,
    name: Option<&str>,
    set: &[String],
    limits: &Limits,
) -> Result<(ast::File, SetFiles), Vec<Diagnostic>> {
    let mut at = map.text(spec).len() + 1;
    let mut files = Vec::new();
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    for text in set {
        let id = map.add("--set", text.clone());
        files.push((id, at, text.len()));
        match parse_override(spec, text, at, limits) {
            Ok(found) => parsed.push(found),
            Err(mut d) => problems.append(&mut d),
        }
        at += text.len() + 1;
    }
    let set_files = SetFiles { spec, files };
    if !problems.is_empty() {
        return Err(set_files.relocate(problems));
    }
    if parsed.is_empty() {
        return Ok((tree.clone(), set_files));
    }
    match with_overrides(spec, tree, name, &parsed) {
        Ok(changed) => Ok((changed, set_files)),
        Err(d) => Err(set_files.relocate(d)),
    }
}
