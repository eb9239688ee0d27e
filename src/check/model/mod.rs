//! Walking a model body: names, layer application, naming, and the declared output type.
//!
//! Input: an `ast::ModelDef`. Output: a [`CheckedModel`] when the model has no errors, and
//! diagnostics either way. Semantics: a line starting with a layer applies it to the previous
//! line's value (the first line: the model's single input); `let name = expr` binds and makes the
//! value current; `a |> f()` pipes; a bare name makes that binding current; the model's value is
//! the last line's. After an error the value is "unknown" and later rules skip it, so one
//! mistake gives one diagnostic. Invariant: layers are pushed in evaluation order, so every
//! layer's inputs are defined before it.

mod apply;
mod freeze;
mod mask;
mod naming;
mod output;

use super::inputs;
use super::model_diag::{self, unknown_layer_help};
use super::signature;
use super::types::{CheckedInput, CheckedLayer, CheckedModel, Fact};
use crate::diag::suggest;
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::ops::layer as layers;
use crate::ops::signature::Inputs;
use crate::ops::symbols::Symbols;
use crate::syntax::ast::{self, Call, Expr, ExprKind, Stmt};
use naming::Hint;
use std::collections::{HashMap, HashSet};

/// One value of the body: an input or a layer's output; `fact` is `None` when unknown.
struct Value {
    fact: Option<Fact>,
    /// The layer that produced it, as an index into `layers`.
    layer: Option<usize>,
    span: Span,
    used: bool,
    /// The ids its padding mask comes from (`ops::mask`); empty: none.
    mask: crate::ops::mask::MaskSource,
}

/// A `let` binding, for unused-binding warnings.
struct LetBinding {
    name: ast::Ident,
    value: Option<usize>,
}

/// The previous line's value: a value (possibly unknown), or none yet.
#[derive(Clone, Copy)]
enum Current {
    Value(Option<usize>),
    /// The model has several inputs (or none) and no line has made one current.
    Missing,
}

struct Walker<'a> {
    file: FileId,
    diags: &'a mut Vec<Diagnostic>,
    errors_before: usize,
    symbols: Symbols,
    values: Vec<Value>,
    layers: Vec<CheckedLayer>,
    inputs: Vec<CheckedInput>,
    scope: HashMap<String, Option<usize>>,
    lets: Vec<LetBinding>,
    /// Every `let` name in the body with its first binding, for use-before-let.
    all_lets: HashMap<String, Span>,
    taken_names: HashSet<String>,
    /// Every name written with `name:` in the body, reserved before any layer is named.
    written_names: HashMap<String, Span>,
    kind_counts: HashMap<&'static str, usize>,
}

/// Checks one model; `Some` only when it has no errors.
pub fn check_model(
    file: FileId,
    def: &ast::ModelDef,
    diags: &mut Vec<Diagnostic>,
) -> Option<CheckedModel> {
    let mut w = Walker {
        file,
        errors_before: diags.iter().filter(|d| d.is_error()).count(),
        diags,
        symbols: Symbols::default(),
        values: Vec::new(),
        layers: Vec::new(),
        inputs: Vec::new(),
        scope: HashMap::new(),
        lets: Vec::new(),
        all_lets: HashMap::new(),
        taken_names: HashSet::new(),
        written_names: HashMap::new(),
        kind_counts: HashMap::new(),
    };
    w.signature(def);
    if def.body.is_empty() {
        w.diags.push(
            Diagnostic::error(
                codes::CHECK_EMPTY_MODEL,
                format!("model `{}` has no body", def.name.name),
            )
            .primary(file, def.name.span, "this model computes nothing")
            .help("add layers, e.g. `dense(10)`, between the braces"),
        );
        return None;
    }
    w.written_names = naming::reserve_written_names(file, &def.body, w.diags);
    for stmt in &def.body {
        if let Stmt::Let { name, .. } = stmt {
            w.all_lets.entry(name.name.clone()).or_insert(name.span);
        }
    }
    let mut current = if def.inputs.len() == 1 {
        Current::Value(Some(0))
    } else {
        Current::Missing
    };
    let mut last_span = def.name.span;
    let mut tuple = None;
    for (k, stmt) in def.body.iter().enumerate() {
        match stmt {
            Stmt::Let { name, value, .. } => {
                let v = w.eval(value, current, Hint::Let(&name.name));
                w.lets.push(LetBinding {
                    name: name.clone(),
                    value: v,
                });
                w.scope.insert(name.name.clone(), v);
                current = Current::Value(v);
            }
            Stmt::Expr(e) => match &e.kind {
                ExprKind::Tuple(items) if k + 1 == def.body.len() => {
                    let evaluated: Vec<_> = items
                        .iter()
                        .map(|x| (w.eval(x, current, Hint::None), x.span))
                        .collect();
                    tuple = Some(evaluated);
                }
                _ => {
                    if let Current::Value(Some(prev)) = current {
                        w.warn_if_dropped(prev, e);
                    }
                    current = Current::Value(w.eval(e, current, Hint::None));
                }
            },
        }
        last_span = stmt.span();
    }
    let results = tuple.unwrap_or_else(|| {
        let v = match current {
            Current::Value(v) => v,
            Current::Missing => None,
        };
        vec![(v, last_span)]
    });
    for (v, _) in &results {
        if let Some(o) = v.and_then(|o| w.values.get_mut(o)) {
            o.used = true;
        }
    }
    w.unused_lets(results.first().and_then(|r| r.0));
    let outputs = w.outputs(def, &results, last_span);
    let errors_now = w.diags.iter().filter(|d| d.is_error()).count();
    if errors_now != w.errors_before {
        return None;
    }
    let outputs = outputs?;
    let first = outputs.first()?;
    let (output, output_fact) = (first.value, first.fact.clone());
    let mut layers = std::mem::take(&mut w.layers);
    for l in &mut layers {
        l.output.dims = w.symbols.resolve_all(&l.output.dims);
    }
    Some(CheckedModel {
        name: def.name.name.clone(),
        inputs: std::mem::take(&mut w.inputs),
        layers,
        output,
        output_fact,
        outputs,
        span: def.span,
    })
}

impl Walker<'_> {
    fn signature(&mut self, def: &ast::ModelDef) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for p in &def.inputs {
            if let Some(first) = seen.get(p.name.name.as_str()) {
                self.diags.push(
                    Diagnostic::error(
                        codes::CHECK_DUPLICATE_INPUT,
                        format!("input `{}` is declared twice", p.name.name),
                    )
                    .primary(self.file, p.name.span, "declared again here")
                    .secondary(self.file, *first, "first declared here")
                    .help("give each input its own name"),
                );
            }
            seen.insert(&p.name.name, p.name.span);
            let fact = inputs::tensor_type(self.file, &p.ty, self.diags);
            if let Some(f) = &fact {
                self.inputs.push(CheckedInput {
                    name: p.name.name.clone(),
                    fact: f.clone(),
                    span: p.span,
                });
            }
            self.values.push(Value {
                fact,
                layer: None,
                span: p.span,
                used: false,
                mask: Vec::new(),
            });
            let id = self.values.len() - 1;
            self.scope.entry(p.name.name.clone()).or_insert(Some(id));
        }
    }

    /// A bare-name line discards the previous line's value when nothing else uses it.
    fn warn_if_dropped(&mut self, prev: usize, next: &Expr) {
        if !matches!(next.kind, ExprKind::Name(_)) {
            return;
        }
        let is_let = self.lets.iter().any(|l| l.value == Some(prev));
        let Some(v) = self.values.get(prev) else {
            return;
        };
        if v.used || is_let || v.layer.is_none() {
            return;
        }
        let span = v.span;
        self.diags.push(
            Diagnostic::warning(
                codes::CHECK_UNUSED_VALUE,
                "the value of this line is never used",
            )
            .primary(self.file, span, "computed here")
            .secondary(
                self.file,
                next.span,
                "the next line starts from another value",
            )
            .help("bind it with `let` and use it, or remove the line"),
        );
    }

    fn unused_lets(&mut self, output: Option<usize>) {
        let mut warnings = Vec::new();
        for l in &self.lets {
            let Some(v) = l.value else { continue };
            let used = self.values.get(v).is_some_and(|x| x.used);
            if !used && Some(v) != output && !l.name.name.starts_with('_') {
                warnings.push(
                    Diagnostic::warning(
                        codes::CHECK_UNUSED_VALUE,
                        format!("binding `{}` is never used", l.name.name),
                    )
                    .primary(self.file, l.name.span, "bound here")
                    .help(format!(
                        "use it, or name it `_{}` to silence this warning",
                        l.name.name
                    )),
                );
            }
        }
        self.diags.extend(warnings);
    }

    fn fact(&self, v: Option<usize>) -> Option<&Fact> {
        v.and_then(|i| self.values.get(i))
            .and_then(|x| x.fact.as_ref())
    }

    fn use_value(&mut self, v: Option<usize>) {
        if let Some(x) = v.and_then(|i| self.values.get_mut(i)) {
            x.used = true;
        }
    }

    /// Evaluates an expression. `hint` names the layer that produces its value (from `let`).
    fn eval(&mut self, expr: &Expr, current: Current, hint: Hint<'_>) -> Option<usize> {
        match &expr.kind {
            ExprKind::Name(ident) => self.lookup(ident),
            ExprKind::Call(call) => self.call(call, current, &[], hint),
            ExprKind::Pipe { head, stages } => {
                let mut v = self.eval(head, current, Hint::None);
                let last = stages.len().saturating_sub(1);
                for (i, stage) in stages.iter().enumerate() {
                    let h = if i == last { hint } else { Hint::None };
                    v = self.call(stage, Current::Value(v), &[v], h);
                }
                v
            }
            ExprKind::Tuple(items) => {
                // checked and counted as used, so the one problem is where the tuple is
                for x in items {
                    let v = self.eval(x, current, Hint::None);
                    self.use_value(v);
                }
                self.diags.push(
                    Diagnostic::error(
                        codes::CHECK_NOT_A_LAYER,
                        "a tuple of outputs must be the model's last line",
                    )
                    .primary(self.file, expr.span, "a tuple here")
                    .help(
                        "compute each output on its own line or in the last line's tuple, \
                         e.g. `(h |> dense(10), h |> dense(1))`",
                    ),
                );
                None
            }
            _ => {
                self.diags.push(
                    Diagnostic::error(codes::CHECK_NOT_A_LAYER, "expected a layer call or a name")
                        .primary(self.file, expr.span, "this is not a layer or a value")
                        .help("a model line applies a layer, e.g. `dense(10)`, or names a value"),
                );
                None
            }
        }
    }

    fn lookup(&mut self, ident: &ast::Ident) -> Option<usize> {
        if let Some(v) = self.scope.get(&ident.name) {
            return *v;
        }
        if let Some(at) = self.all_lets.get(&ident.name) {
            self.diags.push(
                Diagnostic::error(
                    codes::CHECK_USE_BEFORE_LET,
                    format!("`{}` is used before it is bound", ident.name),
                )
                .primary(self.file, ident.span, "used here")
                .secondary(self.file, *at, "bound later here")
                .help("move the `let` above its first use"),
            );
            return None;
        }
        let names: Vec<&str> = self.scope.keys().map(String::as_str).collect();
        let mut d = Diagnostic::error(
            codes::CHECK_UNKNOWN_NAME,
            format!("unknown name `{}`", ident.name),
        )
        .primary(self.file, ident.span, "not an input or a `let` binding");
        if let Some(c) = suggest::closest(&ident.name, names.iter().copied()) {
            d = d.help(format!("did you mean `{c}`?"));
        } else if layers::lookup(&ident.name).is_some() {
            d = d.help(format!("to apply the layer, call it: `{}()`", ident.name));
        }
        self.diags.push(d);
        None
    }

    /// Applies a layer call. `piped` is the value piped into it (`a |> f()`), if any. A layer
    /// written with `trainable: false` gets non-trainable parameters (see `freeze`).
    fn call(
        &mut self,
        call: &Call,
        current: Current,
        piped: &[Option<usize>],
        hint: Hint<'_>,
    ) -> Option<usize> {
        if let Some((unnamed, written)) = naming::take_name(self.file, call, self.diags) {
            let hint = written.as_deref().map_or(hint, Hint::Written);
            return self.call_unnamed(&unnamed, current, piped, hint);
        }
        self.call_unnamed(call, current, piped, hint)
    }

    /// [`Self::call`] once `name:` is taken out.
    fn call_unnamed(
        &mut self,
        call: &Call,
        current: Current,
        piped: &[Option<usize>],
        hint: Hint<'_>,
    ) -> Option<usize> {
        let Some(trainable) = freeze::take_trainable(self.file, call, self.diags) else {
            return self.call_layer(call, current, piped, hint);
        };
        let value = self.call_layer(&trainable.call, current, piped, hint)?;
        if trainable.frozen {
            self.freeze(value, trainable.span);
        }
        Some(value)
    }

    fn call_layer(
        &mut self,
        call: &Call,
        current: Current,
        piped: &[Option<usize>],
        hint: Hint<'_>,
    ) -> Option<usize> {
        let Some(spec) = layers::lookup(&call.callee.name) else {
            let mut d = Diagnostic::error(
                codes::CHECK_UNKNOWN_LAYER,
                format!("unknown layer `{}`", call.callee.name),
            )
            .primary(self.file, call.callee.span, "not a layer");
            if let Some(h) = unknown_layer_help(&call.callee.name) {
                d = d.help(h);
            }
            d = d.note("`modelc explain layers` lists every layer; `modelc explain LAYER` shows its arguments");
            self.diags.push(d);
            return None;
        };
        let what = format!("`{}`", spec.name);
        let (inputs, bound) = match spec.inputs {
            Inputs::One => {
                let input = match current {
                    Current::Value(v) => v,
                    Current::Missing => {
                        self.diags.push(
                            Diagnostic::error(
                                codes::CHECK_NO_IMPLICIT_INPUT,
                                format!("`{}` has no previous value to apply to", spec.name),
                            )
                            .primary(self.file, call.callee.span, "applied to nothing")
                            .note("the first line of a model with several inputs must say which input it uses")
                            .help(format!("pipe an input into it: `x |> {}(...)`", spec.name)),
                        );
                        None
                    }
                };
                let bound = signature::bind(
                    self.file,
                    &spec.signature,
                    &what,
                    &call.args,
                    call.span,
                    self.diags,
                );
                (vec![input], bound)
            }
            Inputs::Many => {
                let mut ins: Vec<Option<usize>> = piped.to_vec();
                let mut keywords = Vec::new();
                for arg in &call.args {
                    if arg.name.is_some() {
                        keywords.push(arg.clone());
                    } else {
                        ins.push(self.eval(&arg.value, Current::Missing, Hint::None));
                    }
                }
                let bound = signature::bind(
                    self.file,
                    &spec.signature,
                    &what,
                    &keywords,
                    call.span,
                    self.diags,
                );
                if ins.len() < 2 {
                    self.diags.push(
                        Diagnostic::error(
                            codes::CHECK_INPUT_COUNT,
                            format!("`{}` needs at least two inputs", spec.name),
                        )
                        .primary(self.file, call.span, format!("{} input given", ins.len()))
                        .help(format!("name the values to combine: `{}(a, b)`", spec.name)),
                    );
                    return None;
                }
                (ins, bound)
            }
            Inputs::Reshape => {
                let input = match current {
                    Current::Value(v) => v,
                    Current::Missing => None,
                };
                let bound = model_diag::reshape_args(self.file, call, self.diags);
                return self.reshape(call, input, bound, hint);
            }
        };
        let bound = bound?;
        for &i in &inputs {
            self.use_value(i);
        }
        let op = layers::build(spec.name, &bound)?;
        self.apply(op, &inputs, call, &bound, hint)
    }
}
