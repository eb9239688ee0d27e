//! Builds AST nodes from pest pairs. Never panics: a pair tree that does not have the shape the
//! grammar promises becomes an internal-error diagnostic rather than an unwrap.

use super::ast::{
    Arg, Call, Dim, ExperimentLine, Expr, ExprKind, Ident, Number, OutputDecl, Param, Select,
    Setting, Stmt, TensorType, Vary, VaryValue,
};
use super::grammar::Rule;
use crate::diag::{codes, Diagnostic, FileId, Span};
use pest::iterators::{Pair, Pairs};

/// Builds nodes from pairs parsed out of `text[base..]`, collecting literal errors.
pub struct Builder<'d> {
    pub file: FileId,
    pub base: usize,
    pub diagnostics: &'d mut Vec<Diagnostic>,
}

/// The grammar and the builder disagree: a bug in modelc, not in the user's file.
#[derive(Debug)]
pub struct Malformed(pub Span);

type Result<T> = std::result::Result<T, Malformed>;

/// A model header: its name, inputs, declared output type and named outputs.
pub type ModelHeader = (Ident, Vec<Param>, Option<TensorType>, Vec<OutputDecl>);

impl Builder<'_> {
    /// The pair's span, ending at its last token: pest's span of a rule can include the blanks
    /// and comments it skipped after that token, which would make labels run onto the next line.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        if matches!(
            pair.as_rule(),
            Rule::string
                | Rule::number
                | Rule::ident
                | Rule::boolean
                | Rule::integer
                | Rule::setting_path
        ) {
            return Span::new(s.start(), s.end()).shifted(self.base);
        }
        let end = pair
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| p.clone().into_inner().next().is_none() || p.as_rule() == Rule::string)
            .map(|p| p.as_span().end())
            .max()
            .unwrap_or(s.end());
        Span::new(s.start(), end).shifted(self.base)
    }

    /// The next child that is not a punctuation token.
    fn next<'i>(pairs: &mut Pairs<'i, Rule>, parent: Span) -> Result<Pair<'i, Rule>> {
        pairs
            .find(|p| !is_token(p.as_rule()))
            .ok_or(Malformed(parent))
    }

    pub fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    /// `model_header` → (name, inputs, output type, named outputs).
    pub fn model_header(&mut self, pair: Pair<'_, Rule>) -> Result<ModelHeader> {
        let span = self.span(&pair);
        let mut name = None;
        let mut inputs = Vec::new();
        let mut output = None;
        let mut named = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(&p)),
                Rule::params => {
                    for param in p.into_inner().filter(|q| q.as_rule() == Rule::param) {
                        inputs.push(self.param(param)?);
                    }
                }
                Rule::tensor_type => output = Some(self.tensor_type(p)?),
                Rule::output_list => {
                    for d in p.into_inner().filter(|q| q.as_rule() == Rule::output_decl) {
                        named.push(self.output_decl(d)?);
                    }
                }
                _ => {}
            }
        }
        Ok((name.ok_or(Malformed(span))?, inputs, output, named))
    }

    fn output_decl(&mut self, pair: Pair<'_, Rule>) -> Result<OutputDecl> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().filter(|p| !is_token(p.as_rule()));
        let name = self.ident(&inner.next().ok_or(Malformed(span))?);
        let ty = match inner.next() {
            Some(t) => Some(self.tensor_type(t)?),
            None => None,
        };
        Ok(OutputDecl { name, ty, span })
    }

    fn param(&mut self, pair: Pair<'_, Rule>) -> Result<Param> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(&Self::next(&mut inner, span)?);
        let ty = self.tensor_type(Self::next(&mut inner, span)?)?;
        Ok(Param { name, ty, span })
    }

    fn tensor_type(&mut self, pair: Pair<'_, Rule>) -> Result<TensorType> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let dtype = self.ident(&Self::next(&mut inner, span)?);
        let mut dims = Vec::new();
        for d in inner.filter(|p| p.as_rule() == Rule::dim) {
            let dspan = self.span(&d);
            let v = d.into_inner().next().ok_or(Malformed(dspan))?;
            match v.as_rule() {
                Rule::integer => {
                    if let Ok(n) = v.as_str().parse::<u64>() {
                        dims.push(Dim::Fixed(n, dspan));
                    } else {
                        self.diagnostics.push(
                            Diagnostic::error(codes::SYNTAX_BAD_NUMBER, "dimension too large")
                                .primary(self.file, dspan, "does not fit in 64 bits"),
                        );
                        dims.push(Dim::Fixed(u64::MAX, dspan));
                    }
                }
                _ => dims.push(Dim::Symbol(self.ident(&v))),
            }
        }
        Ok(TensorType { dtype, dims, span })
    }

    /// `stmt_alone` (or `stmt`) → a `let` or an expression statement.
    pub fn stmt(&mut self, pair: Pair<'_, Rule>) -> Result<Stmt> {
        if pair.as_rule() == Rule::stmt_alone {
            let span = self.span(&pair);
            let inner = pair.into_inner().find(|p| p.as_rule() == Rule::stmt);
            return self.stmt(inner.ok_or(Malformed(span))?);
        }
        let span = self.span(&pair);
        let inner = pair.into_inner().next().ok_or(Malformed(span))?;
        match inner.as_rule() {
            Rule::let_stmt => {
                let mut parts = inner
                    .into_inner()
                    .filter(|p| !is_token(p.as_rule()) && p.as_rule() != Rule::kw_let);
                let name = self.ident(&parts.next().ok_or(Malformed(span))?);
                let value = self.expr(parts.next().ok_or(Malformed(span))?)?;
                Ok(Stmt::Let { name, value, span })
            }
            _ => Ok(Stmt::Expr(self.expr(inner)?)),
        }
    }

    /// `expr` → an expression (a pipe when it has stages).
    pub fn expr(&mut self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().filter(|p| !is_token(p.as_rule()));
        let head = self.primary(inner.next().ok_or(Malformed(span))?)?;
        let mut stages = Vec::new();
        for p in inner {
            stages.push(self.call(p)?);
        }
        if stages.is_empty() {
            // A parenthesized expression keeps its inner span; the outer one is wider only by
            // the parentheses, which say nothing.
            Ok(head)
        } else {
            Ok(Expr {
                kind: ExprKind::Pipe {
                    head: Box::new(head),
                    stages,
                },
                span,
            })
        }
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Result<Expr> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::call => ExprKind::Call(self.call(pair)?),
            Rule::list => {
                let mut items = Vec::new();
                for p in pair.into_inner().filter(|p| p.as_rule() == Rule::expr) {
                    items.push(self.expr(p)?);
                }
                ExprKind::List(items)
            }
            Rule::tuple => {
                let mut items = Vec::new();
                for p in pair.into_inner().filter(|p| p.as_rule() == Rule::expr) {
                    items.push(self.expr(p)?);
                }
                ExprKind::Tuple(items)
            }
            Rule::number => ExprKind::Number(self.number(&pair)),
            Rule::string => ExprKind::Str(self.string(&pair)),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::ident => ExprKind::Name(self.ident(&pair)),
            Rule::expr => return self.expr(pair),
            _ => return Err(Malformed(span)),
        };
        Ok(Expr { kind, span })
    }

    fn call(&mut self, pair: Pair<'_, Rule>) -> Result<Call> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let callee = self.ident(&Self::next(&mut inner, span)?);
        let mut args = Vec::new();
        for p in inner.filter(|p| p.as_rule() == Rule::arg) {
            args.push(self.arg(p)?);
        }
        Ok(Call { callee, args, span })
    }

    pub fn arg(&mut self, pair: Pair<'_, Rule>) -> Result<Arg> {
        let span = self.span(&pair);
        let mut name = None;
        let mut value = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::arg_name => {
                    let id = p.into_inner().next().ok_or(Malformed(span))?;
                    name = Some(self.ident(&id));
                }
                Rule::expr => value = Some(self.expr(p)?),
                _ => {}
            }
        }
        Ok(Arg {
            name,
            value: value.ok_or(Malformed(span))?,
            span,
        })
    }

    /// `setting_alone` (or `setting`) → a keyword and its arguments.
    pub fn setting(&mut self, pair: Pair<'_, Rule>) -> Result<Setting> {
        if pair.as_rule() == Rule::setting_alone {
            let span = self.span(&pair);
            let inner = pair.into_inner().find(|p| p.as_rule() == Rule::setting);
            return self.setting(inner.ok_or(Malformed(span))?);
        }
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let key = self.ident(&Self::next(&mut inner, span)?);
        let mut args = Vec::new();
        for p in inner.filter(|p| p.as_rule() == Rule::arg) {
            args.push(self.arg(p)?);
        }
        Ok(Setting { key, args, span })
    }

    /// `experiment_line_alone` (or `experiment_line`) → a vary, select or setting line.
    pub fn experiment_line(&mut self, pair: Pair<'_, Rule>) -> Result<ExperimentLine> {
        let span = self.span(&pair);
        if pair.as_rule() == Rule::experiment_line_alone {
            let inner = pair
                .into_inner()
                .find(|p| p.as_rule() == Rule::experiment_line);
            return self.experiment_line(inner.ok_or(Malformed(span))?);
        }
        let line = pair.into_inner().next().ok_or(Malformed(span))?;
        let span = self.span(&line);
        match line.as_rule() {
            Rule::vary => self.vary(line).map(ExperimentLine::Vary),
            Rule::select => {
                let mut names = line.into_inner().filter(|p| p.as_rule() == Rule::ident);
                let goal = self.ident(&names.next().ok_or(Malformed(span))?);
                let metric = self.ident(&names.next().ok_or(Malformed(span))?);
                Ok(ExperimentLine::Select(Select { goal, metric, span }))
            }
            Rule::path_setting => {
                let (key, args) = self.keyed_args(line, span)?;
                Ok(ExperimentLine::Setting(Setting { key, args, span }))
            }
            _ => Err(Malformed(span)),
        }
    }

    /// A `setting_path` and the arguments after it (of `path_setting` or `override_alone`).
    pub fn keyed_args(&mut self, pair: Pair<'_, Rule>, span: Span) -> Result<(Ident, Vec<Arg>)> {
        let mut key = None;
        let mut args = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::setting_path => key = Some(self.ident(&p)),
                Rule::arg => args.push(self.arg(p)?),
                _ => {}
            }
        }
        Ok((key.ok_or(Malformed(span))?, args))
    }

    fn vary(&mut self, pair: Pair<'_, Rule>) -> Result<Vary> {
        let span = self.span(&pair);
        let mut axes = Vec::new();
        let mut tied = false;
        let mut values = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::vary_axes => {
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::setting_path => axes.push(self.ident(&q)),
                            Rule::lparen => tied = true,
                            _ => {}
                        }
                    }
                }
                Rule::vary_value => {
                    let vspan = self.span(&p);
                    let inner = p.into_inner().next().ok_or(Malformed(vspan))?;
                    if inner.as_rule() == Rule::vary_group {
                        let mut args = Vec::new();
                        for a in inner.into_inner().filter(|a| a.as_rule() == Rule::arg) {
                            args.push(self.arg(a)?);
                        }
                        values.push(VaryValue {
                            args,
                            grouped: true,
                            span: vspan,
                        });
                    } else {
                        let value = self.expr(inner)?;
                        let aspan = value.span;
                        values.push(VaryValue {
                            args: vec![Arg {
                                name: None,
                                value,
                                span: aspan,
                            }],
                            grouped: false,
                            span: vspan,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(Vary {
            axes,
            tied,
            values,
            span,
        })
    }

    fn number(&mut self, pair: &Pair<'_, Rule>) -> Number {
        let span = self.span(pair);
        let parts: Vec<&str> = pair
            .clone()
            .into_inner()
            .filter(|p| p.as_rule() == Rule::decimal)
            .map(|p| p.as_str())
            .collect();
        let bad = |b: &mut Self, msg: &str| {
            b.diagnostics.push(
                Diagnostic::error(codes::SYNTAX_BAD_NUMBER, format!("number literal {msg}"))
                    .primary(b.file, span, msg.to_string()),
            );
            Number {
                value: 0.0,
                int: Some(0),
            }
        };
        match parts.as_slice() {
            [one] => {
                let is_int = !one.contains(['.', 'e', 'E']);
                if is_int {
                    match one.parse::<i64>() {
                        Ok(n) => Number {
                            value: n as f64,
                            int: Some(n),
                        },
                        Err(_) => bad(self, "does not fit in a 64-bit integer"),
                    }
                } else {
                    match one.parse::<f64>() {
                        Ok(v) if v.is_finite() => Number {
                            value: v,
                            int: None,
                        },
                        _ => bad(self, "is out of the range of a 64-bit float"),
                    }
                }
            }
            [num, den] => match (num.parse::<f64>(), den.parse::<f64>()) {
                (Ok(_), Ok(0.0)) => bad(self, "divides by zero"),
                (Ok(n), Ok(d)) if (n / d).is_finite() => Number {
                    value: n / d,
                    int: None,
                },
                _ => bad(self, "is out of the range of a 64-bit float"),
            },
            _ => bad(self, "is malformed"),
        }
    }

    fn string(&mut self, pair: &Pair<'_, Rule>) -> String {
        let span = self.span(pair);
        let body = pair.clone().into_inner().next().map_or("", |p| p.as_str());
        let mut out = String::with_capacity(body.len());
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((j, other)) => {
                    // +1 for the opening quote.
                    let at = span.start + 1 + i;
                    let end = span.start + 1 + j + other.len_utf8();
                    self.diagnostics.push(
                        Diagnostic::error(
                            codes::SYNTAX_BAD_ESCAPE,
                            format!("unknown escape `\\{other}` in string"),
                        )
                        .primary(self.file, Span::new(at, end), "not a known escape")
                        .help("the escapes are `\\\\`, `\\\"`, `\\n` and `\\t`; paths can use `/`"),
                    );
                }
                None => {}
            }
        }
        out
    }
}

/// Punctuation and keyword tokens, which carry no content of their own.
fn is_token(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::pipe
            | Rule::arrow
            | Rule::lparen
            | Rule::rparen
            | Rule::lbracket
            | Rule::rbracket
            | Rule::lbrace
            | Rule::rbrace
            | Rule::comma
            | Rule::colon
            | Rule::eq
            | Rule::slash
            | Rule::kw_model
            | Rule::kw_data
            | Rule::kw_train
            | Rule::kw_on
            | Rule::kw_as
            | Rule::kw_experiment
            | Rule::kw_vary
            | Rule::kw_select
    )
}
