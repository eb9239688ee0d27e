//! The abstract syntax tree of a `.model` file.
//!
//! Every node carries the byte [`Span`] it was parsed from. The tree is shallow by construction:
//! pipes are flat lists of stages, and nesting of lists and call arguments is bounded by the
//! parser's nesting limit, so recursive walks (and `Drop`) cannot overflow the stack.

use crate::diag::Span;
use serde::Serialize;

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A whole file: its blocks, in source order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct File {
    pub items: Vec<Item>,
}

/// One top-level block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Item {
    Model(ModelDef),
    Data(DataDef),
    Train(TrainDef),
    Experiment(ExperimentDef),
}

impl Item {
    /// The block's name (for `train`, its own name: the `as` name or the model's).
    pub fn name(&self) -> &Ident {
        match self {
            Item::Model(m) => &m.name,
            Item::Data(d) => &d.name,
            Item::Train(t) => t.alias.as_ref().unwrap_or(&t.model),
            Item::Experiment(x) => &x.name,
        }
    }

    /// The span of the whole block.
    pub fn span(&self) -> Span {
        match self {
            Item::Model(m) => m.span,
            Item::Data(d) => d.span,
            Item::Train(t) => t.span,
            Item::Experiment(x) => x.span,
        }
    }
}

/// `model Name(input: f32[N, 28, 28, 1], ...) -> f32[N, 10] { body }`
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelDef {
    pub name: Ident,
    pub inputs: Vec<Param>,
    /// The declared output type; `None` when left out (then it is inferred).
    pub output: Option<TensorType>,
    /// Named outputs, `-> (digit: f32[N, 10], parity: f32[N, 1])`: empty for a model with one
    /// unnamed output (then `output` is its declared type, if any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub named_outputs: Vec<OutputDecl>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// One named output of a model signature: `digit: f32[N, 10]`, or `digit` (type inferred).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputDecl {
    pub name: Ident,
    pub ty: Option<TensorType>,
    pub span: Span,
}

/// One input of a model signature: `image: f32[N, 28, 28, 1]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Param {
    pub name: Ident,
    pub ty: TensorType,
    pub span: Span,
}

/// `f32[N, 28, 28, 1]`: a dtype name and a shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorType {
    /// The dtype as written (`f32`, `i32`, `i64`, ...); the checker validates it.
    pub dtype: Ident,
    pub dims: Vec<Dim>,
    pub span: Span,
}

/// One entry of a shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Dim {
    /// A fixed size, as written (the checker rejects 0).
    Fixed(u64, Span),
    /// A symbol such as `N` or `T`, unified across the model.
    Symbol(Ident),
}

impl Dim {
    pub fn span(&self) -> Span {
        match self {
            Dim::Fixed(_, s) => *s,
            Dim::Symbol(i) => i.span,
        }
    }
}

/// One line of a model body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Stmt {
    /// `let name = expr`
    Let {
        name: Ident,
        value: Expr,
        span: Span,
    },
    /// A bare expression: a layer applied to the previous line's result, a pipe, or a name.
    Expr(Expr),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let { span, .. } => *span,
            Stmt::Expr(e) => e.span,
        }
    }
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// What an expression is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ExprKind {
    /// A number. `is_int` is true for integer literals without `.`/exponent/fraction, whose
    /// value is exact in `int`.
    Number(Number),
    Str(String),
    Bool(bool),
    /// A name: a binding, a model input, or a keyword value such as `relu` or `same`.
    Name(Ident),
    /// `[a, b, c]`
    List(Vec<Expr>),
    /// `(a, b)`: a model's outputs, on its last line.
    Tuple(Vec<Expr>),
    /// `f(args)`: a layer, transform, source, optimizer, schedule...
    Call(Call),
    /// `head |> f(..) |> g(..)`: `head` flows through the calls in order.
    Pipe {
        head: Box<Expr>,
        stages: Vec<Call>,
    },
}

/// A numeric literal.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Number {
    /// The value as a float (fractions are divided out: `1/255`).
    pub value: f64,
    /// The exact value when the literal is an integer (possibly negative).
    pub int: Option<i64>,
}

/// `name(arg, key: value, ...)`
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Call {
    pub callee: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

impl Call {
    /// Positional arguments, in order.
    pub fn positional(&self) -> impl Iterator<Item = &Expr> {
        self.args
            .iter()
            .filter(|a| a.name.is_none())
            .map(|a| &a.value)
    }

    /// The keyword argument with this name, if given.
    pub fn keyword(&self, name: &str) -> Option<&Arg> {
        self.args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == name))
    }
}

/// One argument: positional (`32`) or keyword (`kernel: 3`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

/// `data Name { settings }`
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataDef {
    pub name: Ident,
    pub settings: Vec<Setting>,
    pub span: Span,
}

/// `train Model on Data [as Name] { settings }`
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainDef {
    pub model: Ident,
    pub data: Ident,
    /// The block's own name when given with `as`; otherwise the model's name names it.
    pub alias: Option<Ident>,
    pub settings: Vec<Setting>,
    pub span: Span,
}

/// One line of a `data` or `train` block: a keyword followed by arguments, e.g.
/// `source csv("x.csv", label: "target")`, `split validation: 0.2, seed: 7`, `batch 64`,
/// `map reshape(8, 8, 1) |> scale(1/16)`, `metrics [accuracy]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting {
    pub key: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

impl Setting {
    /// The keyword argument with this name, if given.
    pub fn keyword(&self, name: &str) -> Option<&Arg> {
        self.args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == name))
    }

    /// Positional arguments, in order.
    pub fn positional(&self) -> impl Iterator<Item = &Expr> {
        self.args
            .iter()
            .filter(|a| a.name.is_none())
            .map(|a| &a.value)
    }
}

/// `experiment Name { lines }`: trials of one train block with settings varied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentDef {
    pub name: Ident,
    pub lines: Vec<ExperimentLine>,
    pub span: Span,
}

/// One line of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ExperimentLine {
    /// `base B`, `repeat K`, or a train or data setting fixed for every trial (`epochs 2`,
    /// `data.batch 32`). The key's name keeps its `data.` prefix.
    Setting(Setting),
    Vary(Vary),
    Select(Select),
}

impl ExperimentLine {
    pub fn span(&self) -> Span {
        match self {
            ExperimentLine::Setting(s) => s.span,
            ExperimentLine::Vary(v) => v.span,
            ExperimentLine::Select(s) => s.span,
        }
    }
}

/// `vary key: [v1, v2]` or, with axes tied together, `vary (a, b): [(a1, b1), (a2, b2)]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Vary {
    /// The varied settings (`optimizer`, `data.batch`, `model`), as written.
    pub axes: Vec<Ident>,
    /// Whether the axes were written in parentheses (then each value is a tuple).
    pub tied: bool,
    pub values: Vec<VaryValue>,
    pub span: Span,
}

/// One value of a `vary` line: one expression, or a parenthesized group of arguments (a tuple
/// of tied values, or the arguments of a setting that takes several).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VaryValue {
    pub args: Vec<Arg>,
    /// Written in parentheses.
    pub grouped: bool,
    pub span: Span,
}

/// `select max val_accuracy`
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Select {
    /// `max` or `min`, as written (the checker validates it).
    pub goal: Ident,
    pub metric: Ident,
    pub span: Span,
}
