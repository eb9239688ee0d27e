//! The one rule of what `modelc run` takes, and what `modelc inspect` shows of it.
//!
//! `run` takes **raw** data, as the data block's source reads it: CSV rows by the source's column
//! rules, image pixels, or an `.npy` array of such rows. It applies the pipeline's `map` steps
//! (reshape, scale, resize, fitted standardize/normalize, ...) and feeds the result to the model.
//! `--model-input` skips the steps and takes arrays shaped as the model's input. The steps and
//! the source travel in the plan whatever made it: `train` writes them fitted, `compile` writes
//! them as the spec says, a `.model` file gets them when it is compiled for `run`. A model that no
//! `train` block trains has no steps: its raw input is its model input.
//!
//! Input: a plan, and for a `.model` file the checked spec's pipeline. Output: the plan with
//! `preprocessing` and `source` set ([`attach`]), the raw input's fact ([`raw_fact`]) and one
//! readable line per step ([`describe`]). Invariant: a model with one input has the pipeline's
//! steps (as in `train` and `export`), a multi-input pipeline's model has each input group's
//! steps on its input ([`steps_per_input`]), and label-only steps (`one_hot`) never touch inputs.

use crate::check::Checked;
use crate::data::spec::{Step, Transform};
use crate::data::PipelineSpec;
use crate::diag::{codes, Diagnostic};
use crate::ir::Fact;
use crate::plan::ExecutionPlan;

/// The pipeline of the first `train` block that trains `model`, if any.
pub(crate) fn training_pipeline<'c>(checked: &'c Checked, model: &str) -> Option<&'c PipelineSpec> {
    let train = checked.trains.iter().find(|t| t.model == model)?;
    checked.pipelines.iter().find(|p| p.name == train.data)
}

/// Puts `pipeline`'s `map` steps (when there are any) and source into a plan that carries
/// neither, as `modelc train` does with its fitted pipeline.
pub(crate) fn attach(plan: &mut ExecutionPlan, pipeline: &PipelineSpec) {
    if plan.preprocessing.is_some() || plan.source.is_some() {
        return;
    }
    if !pipeline.preprocess.is_empty() {
        plan.preprocessing = Some(pipeline.preprocess.clone());
    }
    plan.source = Some(pipeline.source.clone());
    plan.input_groups.clone_from(&pipeline.inputs);
}

/// The steps `run` applies to each model input's raw data, in the plan's input order: each
/// input group's `map` steps for a multi-input pipeline, else [`input_steps`] for the first
/// input; none with `--model-input`.
pub(crate) fn steps_per_input(
    plan: &ExecutionPlan,
    model_input: bool,
) -> Vec<Vec<Step<Transform>>> {
    let names = plan
        .inputs
        .iter()
        .map(|&v| plan.values.get(v as usize).map_or("", |v| v.name.as_str()));
    if model_input || plan.input_groups.is_empty() {
        let first = input_steps(plan, model_input);
        return names
            .enumerate()
            .map(|(i, _)| if i == 0 { first.clone() } else { Vec::new() })
            .collect();
    }
    names
        .map(|name| {
            plan.input_groups
                .iter()
                .find(|g| g.name == name)
                .map_or_else(Vec::new, |g| g.preprocess.clone())
        })
        .collect()
}

/// The steps `run` applies to raw input: the plan's `map` steps that touch inputs, for a model
/// with one input; none with `--model-input`.
pub(crate) fn input_steps(plan: &ExecutionPlan, model_input: bool) -> Vec<Step<Transform>> {
    if model_input || plan.inputs.len() != 1 {
        return Vec::new();
    }
    plan.preprocessing
        .iter()
        .flatten()
        .filter(|s| !matches!(s.op, Transform::OneHot { .. }))
        .cloned()
        .collect()
}

/// The model's first input: its name and fact.
pub(crate) fn model_input(plan: &ExecutionPlan) -> Option<(&str, &Fact)> {
    let v = plan.values.get(*plan.inputs.first()? as usize)?;
    Some((v.name.as_str(), &v.fact))
}

/// The fact of the raw input: the model input walked back through `steps`; an explanation
/// when the steps build samples across rows (`window`, `moving_average`).
pub(crate) fn raw_fact(steps: &[Step<Transform>], model_input: &Fact) -> Result<Fact, String> {
    crate::export::preprocess::raw_fact(steps, model_input).map_err(|e| match e {
        crate::export::ExportError::Unsupported { layer, .. } => {
            format!("consecutive rows of a series ({layer} builds each sample from several rows)")
        }
        other => other.to_string(),
    })
}

/// One step as written in a spec, with what was fitted.
pub(crate) fn describe(t: &Transform) -> String {
    let fitted = |name: &str, f: &Option<crate::data::spec::Fitted>| match f {
        Some(f) => format!(
            "{name}() (fitted on the training split, {} features)",
            f.shift.len()
        ),
        None => format!("{name}() (not fitted: a plan from `modelc train` carries its statistics)"),
    };
    let list = |v: &[usize]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match t {
        Transform::Standardize { fitted: f } => fitted("standardize", f),
        Transform::Normalize { fitted: f } => fitted("normalize", f),
        Transform::Scale { factor, offset } if *offset == 0.0 => format!("scale({factor})"),
        Transform::Scale { factor, offset } => format!("scale({factor}, offset: {offset})"),
        Transform::OneHot { classes } => match classes {
            Some(c) => format!("one_hot({c}) (labels only)"),
            None => "one_hot() (labels only)".to_string(),
        },
        Transform::Reshape { shape } => format!("reshape({})", list(shape)),
        Transform::Resize { height, width } => format!("resize({height}, {width})"),
        Transform::MovingAverage { window } => format!("moving_average({window})"),
        Transform::Window { size, horizon } => format!("window({size}, horizon: {horizon})"),
        Transform::Pad { length, value } => format!("pad({length}, value: {value})"),
    }
}

/// E0811 when a step needs statistics that were never fitted (a `standardize` in a plan from
/// `compile` or a `.model` file): `run` cannot make them up from one batch of new data.
pub(crate) fn check_fitted(steps: &[Step<Transform>], plan_file: &str) -> Result<(), Diagnostic> {
    let unfitted = steps.iter().find(|s| {
        matches!(
            s.op,
            Transform::Standardize { fitted: None } | Transform::Normalize { fitted: None }
        )
    });
    let Some(step) = unfitted else {
        return Ok(());
    };
    let name = describe(&step.op);
    let name = name.split(' ').next().unwrap_or_default();
    Err(Diagnostic::error(
        codes::RUN_UNFITTED_PREPROCESSING,
        format!("the preprocessing of {plan_file} has `{name}` with statistics never fitted"),
    )
    .at_external(plan_file.to_string(), 0, 0)
    .note("`run` applies the data block's `map` steps to raw input; this step needs the mean and spread of the training split, which only `modelc train` measures")
    .help("run the plan `modelc train` wrote (RUN/plan.ron), or pass `--model-input` with arrays already shaped and scaled as the model's input"))
}

/// What `inspect` shows of the input rule: the raw input, the steps, the model input.
pub(crate) struct InputRule {
    /// The raw input's fact, or why it has none (a series).
    pub raw: String,
    /// Where raw rows come from, when the plan knows its data block's source.
    pub source: Option<String>,
    /// One line per step `run` applies.
    pub steps: Vec<String>,
    /// The model's input(s), `name: fact`.
    pub model: String,
}

/// The input rule of a plan (after [`attach`]).
pub(crate) fn input_rule(plan: &ExecutionPlan) -> InputRule {
    let steps = input_steps(plan, false);
    let model: Vec<String> = plan
        .inputs
        .iter()
        .filter_map(|&v| plan.values.get(v as usize))
        .map(|v| format!("{}: {}", v.name, v.fact))
        .collect();
    if !plan.input_groups.is_empty() {
        return group_rule(plan, model.join(", "));
    }
    let raw = match model_input(plan) {
        Some((_, fact)) if !steps.is_empty() => {
            raw_fact(&steps, fact).map_or_else(|e| e, |f| f.to_string())
        }
        _ => format!("{} (the model input: no steps)", model.join(", ")),
    };
    InputRule {
        raw,
        source: plan.source.as_ref().map(|s| describe_source(&s.kind)),
        steps: steps.iter().map(|s| describe(&s.op)).collect(),
        model: model.join(", "),
    }
}

/// The input rule of a plan whose pipeline has input groups: each input's raw columns and
/// steps.
fn group_rule(plan: &ExecutionPlan, model: String) -> InputRule {
    let per_input = steps_per_input(plan, false);
    let facts = plan
        .inputs
        .iter()
        .filter_map(|&v| plan.values.get(v as usize));
    let raw: Vec<String> = facts
        .zip(&per_input)
        .map(|(v, steps)| {
            let fact = if steps.is_empty() {
                v.fact.to_string()
            } else {
                raw_fact(steps, &v.fact).map_or_else(|e| e, |f| f.to_string())
            };
            format!("{}: {fact}", v.name)
        })
        .collect();
    let columns: Vec<String> = plan
        .input_groups
        .iter()
        .map(|g| format!("{}: {} columns", g.name, g.positions.len()))
        .collect();
    let steps = plan
        .input_groups
        .iter()
        .flat_map(|g| {
            g.preprocess
                .iter()
                .map(|s| format!("{}: {}", g.name, describe(&s.op)))
        })
        .collect();
    InputRule {
        raw: raw.join(", "),
        source: Some(format!(
            "one CSV or .npy file per input, in the model's order, holding its group's raw columns ({})",
            columns.join(", ")
        )),
        steps,
        model,
    }
}

/// A data block's source as `run` reads raw rows by it.
fn describe_source(kind: &crate::data::spec::SourceKind) -> String {
    use crate::data::spec::{ColumnRef, FeatureColumns, SourceKind};
    let column = |c: &ColumnRef| match c {
        ColumnRef::Name(n) => format!("`{n}`"),
        ColumnRef::Index(i) => format!("#{i}"),
    };
    match kind {
        SourceKind::Csv(c) => {
            let features = match &c.features {
                FeatureColumns::AllButLabel { count: Some(n) } => format!("{n} feature columns"),
                FeatureColumns::AllButLabel { count: None } => "every column".to_string(),
                FeatureColumns::Listed(cols) => format!(
                    "feature columns {}",
                    cols.iter().map(column).collect::<Vec<_>>().join(", ")
                ),
            };
            let label = c.label.as_ref().map_or_else(String::new, |l| {
                format!(", label column {} (may be absent)", column(l))
            });
            let header = if c.header { ", a header row" } else { "" };
            format!("CSV rows like {}: {features}{label}{header}", c.path)
        }
        SourceKind::Idx(i) => format!("images like {} (or PNG/JPEG files)", i.images),
        SourceKind::Npy(n) => format!("arrays like {}", n.features),
        SourceKind::Regression(_) => "rows of the `regression` generator".to_string(),
        SourceKind::Tokens(_) => "token id rows of the `tokens` generator".to_string(),
        SourceKind::Sine(_) => "values of the `sine` series generator".to_string(),
    }
}
