//! Static typing of a pipeline: the dtype and per-sample shape of features and labels after
//! every step, computed from the spec alone (no file is opened).
//!
//! Input: a [`PipelineSpec`]. Output: the [`ElementType`] the pipeline yields, or every
//! [`StepError`] found, each at the span of the step at fault. Invariant: a spec that types
//! here yields samples of exactly this type when loaded (the loaders check files against the
//! declared shapes and report E0619 otherwise).

use super::spec::{Augment, LabelRead, PipelineSpec, SourceKind, Step, Transform};
use crate::diag::codes::{DATA_SHAPE_UNKNOWN, DATA_STEP_MISMATCH, DATA_STRATIFY, DATA_TOO_LARGE};
use crate::diag::human_bytes;
use crate::diag::{Code, Diagnostic, FileId, Span};
use serde::{Deserialize, Serialize};

/// Element dtypes a pipeline yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DType {
    F32,
    /// Token or class ids.
    I64,
}

/// What a pipeline's labels are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabelKind {
    /// An integer class id per sample (`i64[]`); the class count when known statically.
    Class { classes: Option<u32> },
    /// A one-hot row per sample (`f32[classes]`).
    OneHot { classes: u32 },
    /// Real-valued targets (`f32[shape]`).
    Value,
}

/// A label's kind, dtype and per-sample shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelType {
    pub kind: LabelKind,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// The per-sample type a pipeline yields (batches add a leading batch dimension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementType {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// `None` for unlabeled data.
    pub label: Option<LabelType>,
    /// With a label set per model output (`label: ["digit", "parity"]`), the sets after the
    /// first (which is `label`), in order; empty for one label set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_labels: Vec<LabelType>,
}

/// The type after one step, where the feature shape may not be known yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepType {
    /// The span of the step (the source for the first entry).
    pub span: Span,
    pub dtype: DType,
    pub shape: Option<Vec<usize>>,
    pub label: Option<LabelType>,
}

/// A step that does not fit its input, found without reading data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    pub code: Code,
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl StepError {
    fn mismatch(span: Span, message: impl Into<String>) -> Self {
        Self {
            code: DATA_STEP_MISMATCH,
            span,
            message: message.into(),
            help: None,
        }
    }

    fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// This error as a diagnostic in `file` (the spec the pipeline was written in).
    pub fn to_diagnostic(&self, file: FileId) -> Diagnostic {
        let label = if self.code == DATA_STRATIFY {
            "stratified here"
        } else if self.code == crate::diag::codes::CHECK_DATA_SET_TOO_LARGE {
            "makes the data set too large"
        } else {
            "this step"
        };
        let d = Diagnostic::error(self.code, self.message.clone()).primary(file, self.span, label);
        match &self.help {
            Some(h) => d.help(h.clone()),
            None => d,
        }
    }
}

/// The element type the pipeline yields, or every step error found.
pub fn element_type(spec: &PipelineSpec) -> Result<ElementType, Vec<StepError>> {
    let trace = step_types(spec)?;
    if let Some(e) = stratify_error(spec, &trace) {
        return Err(vec![e]);
    }
    if let Some(e) = super::budget::data_set_errors(spec, &trace) {
        return Err(vec![e]);
    }
    group_types(spec)?;
    let last = trace.last().ok_or_else(Vec::new)?;
    match &last.shape {
        Some(shape) => Ok(ElementType {
            dtype: last.dtype,
            shape: shape.clone(),
            label: last.label.clone(),
            more_labels: more_labels(spec),
        }),
        None => Err(vec![StepError {
            code: DATA_SHAPE_UNKNOWN,
            span: spec.source.span,
            message: "the sample shape of this source is only known from its file".into(),
            help: Some(
                "declare it (`features: 64` for csv, `shape: [28, 28, 1]` for idx/npy) \
                 or add a `reshape(...)` step"
                    .into(),
            ),
        }]),
    }
}

/// Why `split stratify: true` cannot apply, if it cannot: the split keeps each class's share,
/// so it needs class labels from the source (class ids or one-hot rows), and a time series
/// keeps time order instead.
fn stratify_error(spec: &PipelineSpec, trace: &[StepType]) -> Option<StepError> {
    let split = spec.split.as_ref().filter(|s| s.stratify)?;
    let error = |message: String, help: &str| StepError {
        code: DATA_STRATIFY,
        span: split.span,
        message,
        help: Some(help.to_string()),
    };
    if spec.is_series() {
        return Some(error(
            "a time series cannot be stratified: its split keeps time order".into(),
            "remove `stratify: true`: validation and test are the last samples in time",
        ));
    }
    match trace
        .first()
        .and_then(|t| t.label.as_ref())
        .map(|l| &l.kind)
    {
        Some(LabelKind::Class { .. } | LabelKind::OneHot { .. }) => None,
        Some(LabelKind::Value) => Some(error(
            "`stratify` needs class labels, and this source's labels are real values".into(),
            "remove `stratify: true`, or give the source `classes:` if its labels are class ids",
        )),
        None => Some(error(
            "`stratify` needs class labels, and this source has no labels".into(),
            "remove `stratify: true`, or name the label column (`label:`) of the source",
        )),
    }
}

/// The type after the source and after every `map` and `augment` step, in order (the steps
/// that name no input group).
pub fn step_types(spec: &PipelineSpec) -> Result<Vec<StepType>, Vec<StepError>> {
    if !more_labels(spec).is_empty() {
        if let Some(step) = spec
            .preprocess
            .iter()
            .find(|s| matches!(s.op, Transform::OneHot { .. }))
        {
            return Err(vec![StepError::mismatch(
                step.span,
                "one_hot turns one set of class labels into one-hot rows, and this source has a label set per output",
            )
            .with_help("remove `one_hot`: train each class output with `sparse_categorical_crossentropy` on its class ids")]);
        }
    }
    trace(source_type(spec), &spec.preprocess, &spec.augment)
}

/// The label sets after the first of a source with one per model output (a CSV source's
/// `label:` list); no `map` step changes them (`one_hot` and `window` refuse such sources).
pub fn more_labels(spec: &PipelineSpec) -> Vec<LabelType> {
    match &spec.source.kind {
        SourceKind::Csv(c) => c.more_labels.iter().map(|l| label_of(l.read)).collect(),
        _ => Vec::new(),
    }
}

/// One input group's type: its columns, then after each of its steps, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupType {
    pub name: String,
    /// `name: columns` on the `inputs` line.
    pub span: Span,
    /// After the group's last step (the first entry is its columns, at `span`).
    pub trace: Vec<StepType>,
}

/// Every input group's type trace (none for a single-input pipeline), or every step error.
pub fn group_types(spec: &PipelineSpec) -> Result<Vec<GroupType>, Vec<StepError>> {
    let source = source_type(spec);
    let mut out = Vec::with_capacity(spec.inputs.len());
    let mut errors = Vec::new();
    for g in &spec.inputs {
        let start = StepType {
            span: g.span,
            dtype: source.dtype,
            shape: Some(vec![g.positions.len()]),
            label: None,
        };
        match trace(start, &g.preprocess, &g.augment) {
            Ok(trace) => out.push(GroupType {
                name: g.name.clone(),
                span: g.span,
                trace,
            }),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn trace(
    start: StepType,
    preprocess: &[Step<Transform>],
    augment: &[Step<Augment>],
) -> Result<Vec<StepType>, Vec<StepError>> {
    let mut cur = start;
    let mut trace = vec![cur.clone()];
    let mut errors: Vec<StepError> = fits_in_memory(cur.clone(), cur.span)
        .err()
        .into_iter()
        .collect();
    let steps = preprocess
        .iter()
        .map(|s| (s.span, Ok(&s.op)))
        .chain(augment.iter().map(|s| (s.span, Err(&s.op))));
    for (span, op) in steps {
        let next = match op {
            Ok(transform) => transform_type(&cur, transform, span),
            Err(augment) => augment_type(&cur, augment, span),
        };
        match next.and_then(|next| fits_in_memory(next, span)) {
            Ok(next) => cur = next,
            Err(e) => errors.push(e),
        }
        cur.span = span;
        trace.push(cur.clone());
    }
    if errors.is_empty() {
        Ok(trace)
    } else {
        Err(errors)
    }
}

fn label_of(read: LabelRead) -> LabelType {
    match read {
        LabelRead::Class { classes } => LabelType {
            kind: LabelKind::Class { classes },
            dtype: DType::I64,
            shape: Vec::new(),
        },
        LabelRead::Value => value_label(1),
    }
}

fn value_label(width: usize) -> LabelType {
    LabelType {
        kind: LabelKind::Value,
        dtype: DType::F32,
        shape: vec![width],
    }
}

fn source_type(spec: &PipelineSpec) -> StepType {
    use super::spec::FeatureColumns;
    let span = spec.source.span;
    let (dtype, shape, label) = match &spec.source.kind {
        SourceKind::Csv(c) => {
            let shape = match &c.features {
                FeatureColumns::AllButLabel { count } => count.map(|n| vec![n]),
                FeatureColumns::Listed(cols) => Some(vec![cols.len()]),
            };
            (
                DType::F32,
                shape,
                c.label.as_ref().map(|_| label_of(c.label_read)),
            )
        }
        SourceKind::Idx(i) => (
            DType::F32,
            i.shape.clone(),
            i.labels
                .as_ref()
                .map(|_| label_of(LabelRead::Class { classes: i.classes })),
        ),
        SourceKind::Npy(n) => (
            DType::F32,
            n.shape.clone(),
            n.labels.as_ref().map(|_| label_of(n.label_read)),
        ),
        SourceKind::Regression(r) => (DType::F32, Some(vec![r.features]), Some(value_label(1))),
        SourceKind::Tokens(t) => (
            DType::I64,
            Some(vec![t.length]),
            Some(label_of(LabelRead::Class {
                classes: Some(t.classes),
            })),
        ),
        SourceKind::Sine(_) => (DType::F32, Some(vec![1]), None),
    };
    StepType {
        span,
        dtype,
        shape,
        label,
    }
}

/// `next` if one sample of that shape (features, and labels) fits in a data set's memory
/// budget: a step whose samples cannot is refused here, before any file is read or any buffer
/// allocated (the budget's rule is [`super::budget`]'s).
fn fits_in_memory(next: StepType, span: Span) -> Result<StepType, StepError> {
    use super::budget;
    let arrays = [
        next.shape
            .as_deref()
            .map(|s| ("sample", s, budget::width(next.dtype))),
        next.label
            .as_ref()
            .map(|l| ("label", l.shape.as_slice(), budget::width(l.dtype))),
    ];
    for (what, shape, width) in arrays.into_iter().flatten() {
        let bytes = budget::bytes(1, shape, width);
        if budget::within(bytes) {
            continue;
        }
        return Err(StepError {
            code: DATA_TOO_LARGE,
            span,
            message: format!(
                "this step makes each {what} {} ({}), more than a data set may hold in memory ({})",
                fmt_shape(shape),
                budget::describe(bytes),
                human_bytes(budget::BUDGET)
            ),
            help: Some("check the sizes this step was given".into()),
        });
    }
    Ok(next)
}

/// The element count of a shape, `None` on overflow.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

fn need_float(cur: &StepType, span: Span, what: &str) -> Result<(), StepError> {
    if cur.dtype == DType::F32 {
        Ok(())
    } else {
        Err(StepError::mismatch(
            span,
            format!("{what} needs f32 features, but the samples here are i64 token ids"),
        ))
    }
}

/// The `[h, w, c]` image shape of `cur`, or an error naming `what`.
fn need_image(cur: &StepType, span: Span, what: &str) -> Result<[usize; 3], StepError> {
    need_float(cur, span, what)?;
    match cur.shape.as_deref() {
        Some(&[h, w, c]) => Ok([h, w, c]),
        Some(other) => Err(StepError::mismatch(
            span,
            format!(
                "{what} needs images of shape [height, width, channels], but the samples here are {}",
                fmt_shape(other)
            ),
        )
        .with_help("add `reshape(height, width, channels)` before it")),
        None => Err(StepError::mismatch(
            span,
            format!("{what} needs images of a known shape [height, width, channels]"),
        )
        .with_help("add `reshape(height, width, channels)` before it")),
    }
}

fn transform_type(cur: &StepType, op: &Transform, span: Span) -> Result<StepType, StepError> {
    let mut next = cur.clone();
    match op {
        Transform::Standardize { fitted } | Transform::Normalize { fitted } => {
            need_float(cur, span, "this step")?;
            if let (Some(f), Some(shape)) = (fitted, &cur.shape) {
                let last = shape.last().copied().unwrap_or(1);
                if f.shift.len() != last || f.scale.len() != last {
                    return Err(StepError::mismatch(
                        span,
                        format!(
                            "fitted statistics have {} entries but the samples have {last} features",
                            f.shift.len()
                        ),
                    ));
                }
            }
        }
        Transform::Scale { .. } | Transform::MovingAverage { .. } => {
            need_float(cur, span, "this step")?;
        }
        Transform::OneHot { classes } => {
            let Some(LabelKind::Class { classes: known }) = cur.label.as_ref().map(|l| l.kind)
            else {
                return Err(StepError::mismatch(
                    span,
                    "one_hot needs integer class labels, but this pipeline has none here",
                ));
            };
            let n = classes.or(known).ok_or_else(|| {
                StepError::mismatch(span, "the number of classes is not known here")
                    .with_help("write `one_hot(classes: N)` or declare `classes: N` on the source")
            })?;
            if let (Some(a), Some(b)) = (*classes, known) {
                if a != b {
                    return Err(StepError::mismatch(
                        span,
                        format!("one_hot has {a} classes but the source declares {b}"),
                    ));
                }
            }
            next.label = Some(LabelType {
                kind: LabelKind::OneHot { classes: n },
                dtype: DType::F32,
                shape: vec![n as usize],
            });
        }
        Transform::Reshape { shape } => {
            let to = element_count(shape)
                .ok_or_else(|| StepError::mismatch(span, "reshape's element count overflows"))?;
            if let Some(from_shape) = &cur.shape {
                let from = element_count(from_shape).unwrap_or(usize::MAX);
                if from != to {
                    return Err(StepError::mismatch(
                        span,
                        format!(
                            "reshape to {} needs {to} values per sample, but the samples here are {} ({from} values)",
                            fmt_shape(shape),
                            fmt_shape(from_shape)
                        ),
                    ));
                }
            }
            next.shape = Some(shape.clone());
        }
        Transform::Resize { height, width } => {
            let [_, _, c] = need_image(cur, span, "resize")?;
            next.shape = Some(vec![*height, *width, c]);
        }
        Transform::Window { size, horizon: _ } => {
            need_float(cur, span, "window")?;
            if cur.label.is_some() {
                return Err(StepError::mismatch(
                    span,
                    "window turns an unlabeled series into (sequence, next value) pairs, but these samples already have labels",
                )
                .with_help("drop `label:` from the source"));
            }
            let Some(&[f]) = cur.shape.as_deref() else {
                return Err(StepError::mismatch(
                    span,
                    "window needs one vector of values per time step (a rank-1 sample shape)",
                ));
            };
            next.shape = Some(vec![*size, f]);
            next.label = Some(value_label(f));
        }
        Transform::Pad { length, .. } => {
            if cur.dtype != DType::I64 || cur.shape.as_ref().is_some_and(|s| s.len() != 1) {
                return Err(StepError::mismatch(
                    span,
                    "pad works on token sequences (i64, one sequence per sample)",
                ));
            }
            next.shape = Some(vec![*length]);
        }
    }
    Ok(next)
}

fn augment_type(cur: &StepType, op: &Augment, span: Span) -> Result<StepType, StepError> {
    let mut next = cur.clone();
    match op {
        Augment::Flip { .. } => {
            need_image(cur, span, "flip")?;
        }
        Augment::Rotate { .. } => {
            need_image(cur, span, "rotate")?;
        }
        Augment::Zoom { .. } => {
            need_image(cur, span, "zoom")?;
        }
        Augment::Crop { size, padding } => {
            let [h, w, c] = need_image(cur, span, "crop")?;
            let limit = h.min(w).saturating_add(padding.saturating_mul(2));
            if *size > limit {
                return Err(StepError::mismatch(
                    span,
                    format!(
                        "a {size}x{size} crop does not fit in {h}x{w} images padded by {padding}"
                    ),
                )
                .with_help(format!("use a size of at most {limit}")));
            }
            next.shape = Some(vec![*size, *size, c]);
        }
        Augment::Noise { .. } => need_float(cur, span, "noise")?,
    }
    Ok(next)
}
