//! The names of a file: where each model, data block, train block, model input and `let`
//! binding is defined, and every place it is used. Built from the AST alone (no checking), so
//! go-to-definition, references, rename and the outline work in a file with errors too.
//!
//! Scoping follows the checker: a model's inputs and `let` names are visible in its body only;
//! a `let` is visible from the line after it (a rebinding starts a new name, and `let x = x |>
//! f()` reads the old `x`); a use before any binding refers to the first `let` of that name (the
//! checker reports E-use-before-let there). Names given as the value of a keyword argument
//! (`activation: relu`) are choices, not uses. A train block's model and data names refer to
//! the model and data blocks of those names.

use crate::diag::Span;
use crate::syntax::ast::{self, Expr, ExprKind, Item, Stmt};

/// What a name names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    Model,
    Data,
    Train,
    Experiment,
    Input,
    Let,
}

/// One defined name with its uses.
#[derive(Clone, Debug)]
pub struct Symbol {
    pub kind: NameKind,
    pub name: String,
    pub def: Span,
    pub uses: Vec<Span>,
    /// The index of the top-level item it belongs to (its own for a block).
    pub item: usize,
}

/// Every symbol of a file.
#[derive(Debug, Default)]
pub struct NameIndex {
    pub symbols: Vec<Symbol>,
}

impl NameIndex {
    pub fn build(file: &ast::File) -> Self {
        let mut index = Self::default();
        for (i, item) in file.items.iter().enumerate() {
            match item {
                Item::Model(m) => {
                    index.define(NameKind::Model, &m.name, i);
                    index.model_body(m, i);
                }
                Item::Data(d) => {
                    index.define(NameKind::Data, &d.name, i);
                }
                Item::Train(t) => {
                    if let Some(alias) = &t.alias {
                        index.define(NameKind::Train, alias, i);
                    }
                }
                Item::Experiment(e) => {
                    index.define(NameKind::Experiment, &e.name, i);
                }
            }
        }
        for item in &file.items {
            if let Item::Train(t) = item {
                index.use_block(NameKind::Model, &t.model);
                index.use_block(NameKind::Data, &t.data);
            }
        }
        index
    }

    fn define(&mut self, kind: NameKind, ident: &ast::Ident, item: usize) -> usize {
        self.symbols.push(Symbol {
            kind,
            name: ident.name.clone(),
            def: ident.span,
            uses: Vec::new(),
            item,
        });
        self.symbols.len() - 1
    }

    fn use_block(&mut self, kind: NameKind, ident: &ast::Ident) {
        if let Some(s) = self
            .symbols
            .iter_mut()
            .find(|s| s.kind == kind && s.name == ident.name)
        {
            s.uses.push(ident.span);
        }
    }

    fn model_body(&mut self, m: &ast::ModelDef, item: usize) {
        // (name, symbol) in binding order; the last binding of a name wins.
        let mut scope: Vec<(String, usize)> = Vec::new();
        for p in &m.inputs {
            let s = self.define(NameKind::Input, &p.name, item);
            scope.push((p.name.name.clone(), s));
        }
        let first_lets: Vec<&ast::Ident> = m
            .body
            .iter()
            .filter_map(|s| match s {
                Stmt::Let { name, .. } => Some(name),
                Stmt::Expr(_) => None,
            })
            .collect();
        let mut later: Vec<Option<usize>> = vec![None; first_lets.len()];
        let mut let_no = 0usize;
        let mut pending_uses: Vec<(String, Span)> = Vec::new();
        for stmt in &m.body {
            let mut uses = Vec::new();
            match stmt {
                Stmt::Let { value, .. } | Stmt::Expr(value) => names_used(value, &mut uses),
            }
            for ident in uses {
                match scope.iter().rev().find(|(n, _)| *n == ident.name) {
                    Some((_, s)) => self.symbols[*s].uses.push(ident.span),
                    None => pending_uses.push((ident.name.clone(), ident.span)),
                }
            }
            if let Stmt::Let { name, .. } = stmt {
                let s = self.define(NameKind::Let, name, item);
                if let Some(slot) = later.get_mut(let_no) {
                    *slot = Some(s);
                }
                let_no += 1;
                scope.push((name.name.clone(), s));
            }
        }
        // A use before its `let`: the first binding of the name.
        for (name, span) in pending_uses {
            let first = first_lets
                .iter()
                .zip(&later)
                .find(|(l, _)| l.name == name)
                .and_then(|(_, s)| *s);
            if let Some(s) = first {
                self.symbols[s].uses.push(span);
            }
        }
    }

    /// The symbol defined or used at `offset`.
    pub fn at(&self, offset: usize) -> Option<&Symbol> {
        let inside = |s: &Span| s.start <= offset && offset <= s.end;
        self.symbols
            .iter()
            .find(|s| inside(&s.def) || s.uses.iter().any(inside))
    }

    /// The symbols visible in `item` (its inputs and lets) and every block name.
    pub fn visible(&self, item: Option<usize>) -> impl Iterator<Item = &Symbol> {
        self.symbols.iter().filter(move |s| match s.kind {
            NameKind::Input | NameKind::Let => Some(s.item) == item,
            _ => true,
        })
    }
}

/// The names an expression reads, in source order (not keyword-argument values, which are
/// choices such as `relu`, nor callees, which are layers).
fn names_used<'e>(e: &'e Expr, out: &mut Vec<&'e ast::Ident>) {
    match &e.kind {
        ExprKind::Name(i) => out.push(i),
        ExprKind::List(items) | ExprKind::Tuple(items) => {
            for x in items {
                names_used(x, out);
            }
        }
        ExprKind::Call(c) => call_uses(c, out),
        ExprKind::Pipe { head, stages } => {
            names_used(head, out);
            for c in stages {
                call_uses(c, out);
            }
        }
        ExprKind::Number(_) | ExprKind::Str(_) | ExprKind::Bool(_) => {}
    }
}

fn call_uses<'e>(c: &'e ast::Call, out: &mut Vec<&'e ast::Ident>) {
    for a in &c.args {
        match (&a.name, &a.value.kind) {
            (Some(_), ExprKind::Name(_)) => {}
            _ => names_used(&a.value, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::FileId;
    use crate::syntax::{parse, Limits};

    fn index(text: &str) -> NameIndex {
        NameIndex::build(&parse(FileId::from_index(0), text, &Limits::default()).file)
    }

    #[test]
    fn lets_inputs_and_blocks_resolve_with_the_checkers_scoping() {
        let text = "model M(x: f32[N, 4]) {\n    let a = dense(4, activation: relu)\n    let a = a |> dense(2)\n    add(a, x)\n}\ndata D {\n    source regression(n: 10, features: 4)\n}\ntrain M on D {\n    loss mse\n}\n";
        let idx = index(text);
        let lets: Vec<&Symbol> = idx
            .symbols
            .iter()
            .filter(|s| s.kind == NameKind::Let)
            .collect();
        assert_eq!(lets.len(), 2);
        // The second `let a` reads the first; `add(a, x)` reads the second.
        let second_a_use = text.find("a |>").unwrap();
        assert_eq!(
            lets[0].uses,
            vec![Span::new(second_a_use, second_a_use + 1)]
        );
        let add_a = text.find("add(a").unwrap() + 4;
        assert_eq!(lets[1].uses, vec![Span::new(add_a, add_a + 1)]);
        let x = idx
            .symbols
            .iter()
            .find(|s| s.kind == NameKind::Input)
            .unwrap();
        assert_eq!(x.uses.len(), 1);
        let model = idx
            .symbols
            .iter()
            .find(|s| s.kind == NameKind::Model)
            .unwrap();
        let in_train = text.find("train M").unwrap() + 6;
        assert_eq!(model.uses, vec![Span::new(in_train, in_train + 1)]);
        // `relu` is a choice, not a use of anything.
        assert!(idx.at(text.find("relu").unwrap()).is_none());
    }
}
