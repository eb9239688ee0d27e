//! Go to definition, find references, rename (of `let` names and model inputs) and the
//! outline, all from the [`NameIndex`](super::names::NameIndex).

use super::analysis::Analysis;
use super::names::{NameKind, Symbol};
use crate::diag::Span;
use crate::syntax::ast::{Item, Stmt};

/// The definition of the name at `offset`.
pub fn definition(a: &Analysis, offset: usize) -> Option<Span> {
    a.names.at(offset).map(|s| s.def)
}

/// Every place the name at `offset` is written: its definition (when asked) and its uses.
pub fn references(a: &Analysis, offset: usize, with_definition: bool) -> Vec<Span> {
    let Some(s) = a.names.at(offset) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(s.uses.len() + 1);
    if with_definition {
        out.push(s.def);
    }
    out.extend(s.uses.iter().copied());
    out
}

/// Why a rename cannot be done.
pub enum RenameError {
    /// Nothing renameable at the cursor.
    NotAName,
    /// The new name is not an identifier, or is taken.
    BadName(String),
}

/// The spans to rewrite to rename the `let` (or input) at `offset` to `new_name`.
pub fn rename(a: &Analysis, offset: usize, new_name: &str) -> Result<Vec<Span>, RenameError> {
    let s = renameable(a, offset).ok_or(RenameError::NotAName)?;
    let ident = new_name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && new_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(RenameError::BadName(format!(
            "`{new_name}` is not a name: use letters, digits and `_`, not starting with a digit"
        )));
    }
    let clash = a.names.symbols.iter().any(|o| {
        o.item == s.item && o.name == new_name && matches!(o.kind, NameKind::Let | NameKind::Input)
    });
    if clash {
        return Err(RenameError::BadName(format!(
            "`{new_name}` is already a name in this model"
        )));
    }
    // Every binding of the same name in the model is one variable to the user; rename them all.
    let mut spans = Vec::new();
    for o in &a.names.symbols {
        if o.item == s.item && o.name == s.name && o.kind == s.kind {
            spans.push(o.def);
            spans.extend(o.uses.iter().copied());
        }
    }
    spans.sort();
    spans.dedup();
    Ok(spans)
}

/// The renameable symbol at `offset` and the span of its name there.
pub fn renameable(a: &Analysis, offset: usize) -> Option<&Symbol> {
    a.names
        .at(offset)
        .filter(|s| matches!(s.kind, NameKind::Let | NameKind::Input))
}

/// One entry of the outline.
pub struct OutlineEntry {
    pub name: String,
    pub detail: Option<String>,
    pub kind: NameKind,
    /// The whole block or line.
    pub span: Span,
    /// The name itself.
    pub name_span: Span,
    pub children: Vec<OutlineEntry>,
}

/// The outline: each block, and in a model its inputs and `let` lines (with their shapes when
/// the model checks).
pub fn outline(a: &Analysis) -> Vec<OutlineEntry> {
    let mut out = Vec::new();
    for item in &a.ast.items {
        let (kind, name, detail) = match item {
            Item::Model(m) => (NameKind::Model, &m.name, None),
            Item::Data(d) => (NameKind::Data, &d.name, None),
            Item::Train(t) => (
                NameKind::Train,
                t.alias.as_ref().unwrap_or(&t.model),
                Some(format!("{} on {}", t.model.name, t.data.name)),
            ),
            Item::Experiment(e) => (NameKind::Experiment, &e.name, None),
        };
        let mut children = Vec::new();
        if let Item::Model(m) = item {
            let checked = a.checked.models.iter().find(|c| c.span == m.span);
            for p in &m.inputs {
                children.push(OutlineEntry {
                    name: p.name.name.clone(),
                    detail: checked
                        .and_then(|c| c.inputs.iter().find(|x| x.name == p.name.name))
                        .map(|x| x.fact.to_string()),
                    kind: NameKind::Input,
                    span: p.span,
                    name_span: p.name.span,
                    children: Vec::new(),
                });
            }
            for stmt in &m.body {
                if let Stmt::Let { name, span, .. } = stmt {
                    let shape = checked.and_then(|c| {
                        c.layers
                            .iter()
                            .rfind(|l| span.start <= l.span.start && l.span.end <= span.end)
                            .map(|l| l.output.to_string())
                    });
                    children.push(OutlineEntry {
                        name: name.name.clone(),
                        detail: shape,
                        kind: NameKind::Let,
                        span: *span,
                        name_span: name.span,
                        children: Vec::new(),
                    });
                }
            }
        }
        out.push(OutlineEntry {
            name: name.name.clone(),
            detail,
            kind,
            span: item.span(),
            name_span: name.span,
            children,
        });
    }
    out
}
