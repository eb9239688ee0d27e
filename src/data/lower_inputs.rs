//! Lowering a multi-input pipeline: the `inputs` line and the `map NAME:` / `augment NAME:`
//! steps of each feature group.
//!
//! Input: the `inputs` setting (`inputs image: 64, meta: ["age", "sex"]`), the named step lines
//! and the lowered source. Output: one [`InputGroup`] per group, its columns resolved to
//! positions in the source's feature vector (a csv source without a column list is given one,
//! the groups' columns, so that positions are known before any file is opened). Invariants: the
//! groups partition the source's features (no column twice, none left over: E0525); every
//! step names a group and can run on one group alone (E0526). No file is opened here.

use super::lower_args::Ctx;
use super::spec::{
    Augment, ColumnRef, FeatureColumns, InputGroup, SourceKind, SourceSpec, Step, Transform,
};
use crate::diag::codes::{
    CHECK_INPUT_GROUP_COLUMNS, CHECK_INPUT_GROUP_STEP, DATA_ARGUMENT_TYPE, DATA_DUPLICATE,
};
use crate::diag::suggest::help_for;
use crate::diag::{Diagnostic, FileId, Span};
use crate::syntax::ast::{Arg, ExprKind, Setting};

/// One group as the `inputs` line writes it.
pub(super) struct GroupDecl {
    name: String,
    /// `name: columns`.
    span: Span,
    columns: Columns,
}

enum Columns {
    /// The next `n` features in the source's order.
    Count(usize),
    /// Csv columns by header name, each with its span.
    Names(Vec<(String, Span)>),
}

/// Steps written `map NAME: ...` or `augment NAME: ...`, before they are matched to groups.
pub(super) enum NamedSteps {
    Map(Vec<Step<Transform>>),
    Augment(Vec<Step<Augment>>),
}

/// The name a `map`/`augment` line gives its steps (`map image: ...`), with its span.
pub(super) fn step_group(setting: &Setting) -> Option<(String, Span)> {
    let name = setting.args.first()?.name.as_ref()?;
    Some((name.name.clone(), name.span))
}

/// Reads `inputs a: 64, b: ["x", "y"]`.
pub(super) fn lower_inputs_line(ctx: &mut Ctx, setting: &Setting) -> Vec<GroupDecl> {
    let mut out: Vec<GroupDecl> = Vec::new();
    if setting.args.is_empty() {
        ctx.error(
            Diagnostic::error(
                DATA_ARGUMENT_TYPE,
                "`inputs` needs at least one group: `inputs image: 64, meta: [\"age\"]`",
            )
            .primary(ctx.file, setting.span, "no group here"),
        );
    }
    for arg in &setting.args {
        let Some(name) = &arg.name else {
            ctx.error(
                Diagnostic::error(
                    DATA_ARGUMENT_TYPE,
                    "each input group is named after a model input: `image: 64`",
                )
                .primary(ctx.file, arg.span, "a group without a name"),
            );
            continue;
        };
        if let Some(first) = out.iter().find(|g| g.name == name.name) {
            ctx.error(
                Diagnostic::error(
                    DATA_DUPLICATE,
                    format!("input group `{}` is declared twice", name.name),
                )
                .primary(ctx.file, arg.span, "declared again here")
                .secondary(ctx.file, first.span, "first declared here"),
            );
            continue;
        }
        if let Some(columns) = group_columns(ctx, arg) {
            out.push(GroupDecl {
                name: name.name.clone(),
                span: arg.span,
                columns,
            });
        }
    }
    out
}

fn group_columns(ctx: &mut Ctx, arg: &Arg) -> Option<Columns> {
    let bad = |ctx: &mut Ctx, span: Span| {
        ctx.error(
            Diagnostic::error(
                DATA_ARGUMENT_TYPE,
                "an input group is a count of columns (`64`) or a list of column names",
            )
            .primary(ctx.file, span, "neither a count nor a list of names"),
        );
        None
    };
    match &arg.value.kind {
        ExprKind::Number(_) => ctx.size(&arg.value, "inputs", 1).map(Columns::Count),
        ExprKind::List(items) if !items.is_empty() => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match &item.kind {
                    ExprKind::Str(s) => names.push((s.clone(), item.span)),
                    _ => return bad(ctx, item.span),
                }
            }
            Some(Columns::Names(names))
        }
        _ => bad(ctx, arg.value.span),
    }
}

fn columns_error(
    message: String,
    span: Span,
    file: FileId,
    label: impl Into<String>,
) -> Diagnostic {
    Diagnostic::error(CHECK_INPUT_GROUP_COLUMNS, message).primary(file, span, label)
}

/// What the source says of its feature vector before any file is read.
enum Known {
    /// A csv source's listed columns.
    Listed(Vec<ColumnRef>),
    /// `n` features, names unknown.
    Count(usize),
    /// A csv source reading every column but the label, count unknown.
    CsvUnknown,
}

fn known(ctx: &mut Ctx, source: &SourceSpec) -> Option<Known> {
    let flat = |shape: &Option<Vec<usize>>| match shape.as_deref() {
        Some(&[k]) => Ok(Known::Count(k)),
        Some(_) => Err("its samples are not a flat vector: add no groups, or read a flat file"),
        None => Err("its sample shape is only known from the file: declare `shape: [k]`"),
    };
    let known = match &source.kind {
        SourceKind::Csv(c) => Ok(match &c.features {
            FeatureColumns::Listed(cols) => Known::Listed(cols.clone()),
            FeatureColumns::AllButLabel { count: Some(k) } => Known::Count(*k),
            FeatureColumns::AllButLabel { count: None } => Known::CsvUnknown,
        }),
        SourceKind::Regression(r) => Ok(Known::Count(r.features)),
        SourceKind::Npy(n) => flat(&n.shape),
        SourceKind::Idx(i) => flat(&i.shape),
        SourceKind::Tokens(_) => Err("it yields token ids; input groups split float features"),
        SourceKind::Sine(_) => Err("it yields one value per sample, a series"),
    };
    match known {
        Ok(k) => Some(k),
        Err(why) => {
            ctx.error(columns_error(
                format!("this source cannot be split into input groups: {why}"),
                source.span,
                ctx.file,
                "the source",
            ));
            None
        }
    }
}

/// Resolves every group's columns to positions in the source's features, rewriting a csv
/// source's unknown feature list to the groups' columns. `None` after an error.
pub(super) fn resolve(
    ctx: &mut Ctx,
    decls: &[GroupDecl],
    source: &mut SourceSpec,
    line: Span,
) -> Option<Vec<InputGroup>> {
    let known = known(ctx, source)?;
    let has_counts = decls.iter().any(|g| matches!(g.columns, Columns::Count(_)));
    let has_names = decls.iter().any(|g| matches!(g.columns, Columns::Names(_)));
    let is_csv = matches!(source.kind, SourceKind::Csv(_));
    if has_names && !is_csv {
        let g = decls
            .iter()
            .find(|g| matches!(g.columns, Columns::Names(_)))?;
        ctx.error(
            columns_error(
                format!(
                    "input group `{}` names columns, and only a csv source has column names",
                    g.name
                ),
                g.span,
                ctx.file,
                "columns by name",
            )
            .help("give the group a count of features instead: `meta: 3` takes the next 3"),
        );
        return None;
    }
    // The names the source's features go by, when the source lists them (or the groups do).
    let listed: Vec<ColumnRef> = match &known {
        Known::Listed(cols) => cols.clone(),
        Known::Count(_) | Known::CsvUnknown if has_names => {
            if has_counts {
                let g = decls
                    .iter()
                    .find(|g| matches!(g.columns, Columns::Count(_)))?;
                ctx.error(
                    columns_error(
                        format!("input group `{}` counts columns, and the other groups name theirs", g.name),
                        g.span,
                        ctx.file,
                        "a count of columns",
                    )
                    .help("name this group's columns too, or list the source's columns in its `features: [...]` so a count has an order to follow"),
                );
                return None;
            }
            decls
                .iter()
                .flat_map(|g| match &g.columns {
                    Columns::Names(n) => {
                        n.iter().map(|(s, _)| ColumnRef::Name(s.clone())).collect()
                    }
                    Columns::Count(_) => Vec::new(),
                })
                .collect::<Vec<_>>()
        }
        Known::Count(_) | Known::CsvUnknown => Vec::new(),
    };
    let mut groups = Vec::with_capacity(decls.len());
    let mut owner: Vec<Option<usize>> = Vec::new();
    let mut next = 0usize;
    let mut failed = false;
    for (gi, g) in decls.iter().enumerate() {
        let mut positions = Vec::new();
        match &g.columns {
            Columns::Count(n) => {
                let Some(end) = next.checked_add(*n) else {
                    failed = true;
                    continue;
                };
                positions.extend(next..end);
            }
            Columns::Names(names) => {
                for (name, span) in names {
                    let at = listed
                        .iter()
                        .position(|c| matches!(c, ColumnRef::Name(n) if n == name));
                    if let Some(p) = at {
                        positions.push(p);
                    } else {
                        let names = listed.iter().filter_map(|c| match c {
                            ColumnRef::Name(n) => Some(n.as_str()),
                            ColumnRef::Index(_) => None,
                        });
                        let d = columns_error(
                            format!("column \"{name}\" is not among the source's features"),
                            *span,
                            ctx.file,
                            "not a feature column",
                        )
                        .secondary(
                            ctx.file,
                            source.span,
                            "the source lists its feature columns here",
                        );
                        ctx.error(match help_for(name, names, "column") {
                            Some(h) => d.help(h),
                            None => d,
                        });
                        failed = true;
                    }
                }
            }
        }
        next = positions.last().map_or(next, |&p| p + 1);
        for &p in &positions {
            if owner.len() <= p {
                owner.resize(p + 1, None);
            }
            if let Some(slot) = owner.get_mut(p) {
                if let Some(first) = *slot {
                    let other = decls.get(first).map_or(g.span, |d| d.span);
                    let column = match listed.get(p) {
                        Some(ColumnRef::Name(n)) => format!("column \"{n}\""),
                        _ => format!("feature {p}"),
                    };
                    ctx.error(
                        columns_error(
                            format!("{column} is in two input groups"),
                            g.span,
                            ctx.file,
                            "taken again here",
                        )
                        .secondary(ctx.file, other, "first taken here")
                        .help("each feature column feeds one input; a count takes the columns after the previous group's last"),
                    );
                    failed = true;
                } else {
                    *slot = Some(gi);
                }
            }
        }
        groups.push(InputGroup {
            name: g.name.clone(),
            span: g.span,
            positions,
            preprocess: Vec::new(),
            augment: Vec::new(),
        });
    }
    if failed {
        return None;
    }
    let total = owner.len();
    let width = match known {
        Known::Listed(cols) => Some(cols.len()),
        Known::Count(k) if listed.is_empty() => Some(k),
        // A csv whose columns the groups list, or whose count the groups give.
        Known::Count(_) | Known::CsvUnknown => {
            if let SourceKind::Csv(c) = &mut source.kind {
                let declared = match c.features {
                    FeatureColumns::AllButLabel { count } => count,
                    FeatureColumns::Listed(_) => None,
                };
                if let Some(k) = declared.filter(|&k| k != total) {
                    ctx.error(
                        columns_error(
                            format!("the input groups take {total} columns, and the source reads {k} features"),
                            line,
                            ctx.file,
                            format!("{total} columns in groups"),
                        )
                        .secondary(ctx.file, source.span, format!("`features: {k}` here"))
                        .help("make `features:` the groups' total, or leave it out: the groups then choose the columns"),
                    );
                    return None;
                }
                c.features = if listed.is_empty() {
                    FeatureColumns::AllButLabel { count: Some(total) }
                } else {
                    FeatureColumns::Listed(listed.clone())
                };
            }
            Some(total)
        }
    };
    if let Some(k) = width {
        if total > k {
            ctx.error(
                columns_error(
                    format!("the input groups take {total} features, and the source has {k}"),
                    line,
                    ctx.file,
                    "more features than the source has",
                )
                .secondary(ctx.file, source.span, format!("{k} features here")),
            );
            return None;
        }
        let left: Vec<usize> = (0..k)
            .filter(|&p| owner.get(p).copied().flatten().is_none())
            .collect();
        if let (Some(first), Some(last)) = (left.first(), left.last()) {
            let which = match listed.get(*first) {
                Some(ColumnRef::Name(n)) if left.len() == 1 => format!("column \"{n}\" is"),
                _ if left.len() == 1 => format!("feature {first} is"),
                _ => format!("{} features ({first} to {last}) are", left.len()),
            };
            ctx.error(
                columns_error(
                    format!("{which} in no input group"),
                    line,
                    ctx.file,
                    "these groups leave features unused",
                )
                .secondary(
                    ctx.file,
                    source.span,
                    format!("the source yields {k} features"),
                )
                .help("add them to a group, or leave them out of the source's `features:`"),
            );
            return None;
        }
    }
    Some(groups)
}

/// Gives each group its named steps: E0526 for a step naming no group, and for a step that
/// cannot run on one group alone (`one_hot` changes labels; `window` and `moving_average` build
/// samples from several rows).
pub(super) fn attach_steps(
    ctx: &mut Ctx,
    groups: &mut [InputGroup],
    named: Vec<((String, Span), NamedSteps)>,
) {
    for ((name, span), steps) in named {
        let Some(g) = groups.iter_mut().find(|g| g.name == name) else {
            let d = Diagnostic::error(
                CHECK_INPUT_GROUP_STEP,
                format!("`{name}` is not an input group of this pipeline"),
            )
            .primary(ctx.file, span, "no group of this name");
            let help = help_for(&name, groups.iter().map(|g| g.name.as_str()), "input group")
                .unwrap_or_else(|| "name one of the groups of the `inputs` line".to_string());
            ctx.error(d.help(help));
            continue;
        };
        match steps {
            NamedSteps::Map(steps) => {
                for s in steps {
                    let refused = match s.op {
                        Transform::OneHot { .. } => {
                            Some("`one_hot` turns labels into one-hot rows")
                        }
                        Transform::Window { .. } | Transform::MovingAverage { .. } => {
                            Some("it builds each sample from several rows of a series")
                        }
                        _ => None,
                    };
                    if let Some(why) = refused {
                        ctx.error(
                            Diagnostic::error(
                                CHECK_INPUT_GROUP_STEP,
                                "this step cannot run on one input group",
                            )
                            .primary(ctx.file, s.span, "a step of group `".to_string() + &name + "`")
                            .note(why.to_string())
                            .help("an input group's `map` takes standardize, normalize, scale, reshape, resize and pad"),
                        );
                    } else {
                        g.preprocess.push(s);
                    }
                }
            }
            NamedSteps::Augment(steps) => g.augment.extend(steps),
        }
    }
}

/// E0526 for steps that name no group in a pipeline with groups, or a group in one without.
pub(super) fn misplaced(ctx: &mut Ctx, span: Span, has_groups: bool, key: &str) {
    let d = if has_groups {
        Diagnostic::error(
            CHECK_INPUT_GROUP_STEP,
            format!("this `{key}` names no input group, and the pipeline has several"),
        )
        .primary(ctx.file, span, "which input does this apply to?")
        .help(format!(
            "name the group: `{key} image: ...`; each group has its own steps"
        ))
    } else {
        Diagnostic::error(
            CHECK_INPUT_GROUP_STEP,
            format!("this `{key}` names an input group, and the pipeline has no `inputs` line"),
        )
        .primary(ctx.file, span, "a group name here")
        .help("declare the groups (`inputs image: 64, meta: 3`), or remove the name")
    };
    ctx.error(d);
}

#[cfg(test)]
#[path = "lower_inputs_tests.rs"]
mod tests;
