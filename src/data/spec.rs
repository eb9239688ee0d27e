//! The typed description of a data pipeline, as lowered from a `data` block.
//!
//! Input: built by [`crate::data::lower`] from the AST. Output: consumed by the static typing in
//! [`crate::data::typing`], by the loaders in [`crate::data::source`] and by the runtime.
//! Invariants: every step keeps the span it was written at, so later errors can point at it;
//! arguments were range-checked when lowered (sizes ≥ 1, fractions in (0, 1), finite numbers);
//! fitted statistics (`Standardize`, `Normalize`) are `None` until a data set was loaded, and the
//! fitted spec is what a compiled plan carries so that inference applies the same numbers.

use crate::diag::Span;
use serde::{Deserialize, Serialize};

pub use super::typing::{element_type, DType, ElementType, LabelKind, StepError};

/// A whole `data` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// The block's name (`Digits`).
    pub name: String,
    /// The span of the whole block.
    pub span: Span,
    pub source: SourceSpec,
    /// `map` steps, in order: applied to training, validation and inference data alike.
    pub preprocess: Vec<Step<Transform>>,
    /// `augment` steps, in order: applied to training batches only.
    pub augment: Vec<Step<Augment>>,
    pub split: Option<Split>,
    pub shuffle: Option<Shuffle>,
    pub batch: Batch,
    /// The pipeline seed (`seed N`, default 0): augmentation draws from it.
    pub seed: u64,
    /// `inputs image: 64, meta: ["age", "sex"]`: the source's features split into named groups,
    /// one per model input, each with its own `map`/`augment` steps. Empty: one input, the
    /// whole feature tensor, through `preprocess` and `augment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputGroup>,
}

/// One named feature group of a multi-input pipeline (`inputs meta: ["age", "sex"]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputGroup {
    /// The model input it feeds.
    pub name: String,
    /// The span of `name: columns` on the `inputs` line.
    pub span: Span,
    /// Positions in the source's feature vector, in order (resolved when lowered).
    pub positions: Vec<usize>,
    /// `map NAME: ...` steps, in order.
    pub preprocess: Vec<Step<Transform>>,
    /// `augment NAME: ...` steps, in order (training only).
    pub augment: Vec<Step<Augment>>,
}

/// One pipeline step with the span of the call that wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step<T> {
    pub op: T,
    pub span: Span,
}

/// Where samples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSpec {
    pub kind: SourceKind,
    pub span: Span,
}

/// The kinds of source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SourceKind {
    Csv(CsvSource),
    Idx(IdxSource),
    Npy(NpySource),
    Regression(RegressionSource),
    Tokens(TokenSource),
    Sine(SineSource),
}

/// A column chosen by header name or by 0-based index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnRef {
    Name(String),
    Index(usize),
}

/// Which columns are features.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureColumns {
    /// Every column except the label; the count is declared (`features: 64`) or unknown.
    AllButLabel { count: Option<usize> },
    /// These columns, in this order.
    Listed(Vec<ColumnRef>),
}

/// How a label column is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabelRead {
    /// Integer class ids `0..classes` (classes known when declared).
    Class { classes: Option<u32> },
    /// Real values (regression targets).
    Value,
}

/// `csv("x.csv", label: "target", features: 64, header: true, classes: 10)`, or with a label
/// set per model output `csv("x.csv", label: ["digit", "parity"], classes: [10, 2])`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvSource {
    pub path: String,
    /// `None`: no label column (a series or unlabeled features).
    pub label: Option<ColumnRef>,
    pub label_read: LabelRead,
    pub features: FeatureColumns,
    pub header: bool,
    /// `label: ["digit", "parity"]`: the label columns after the first (which is `label`,
    /// read as `label_read`), one label set per model output, in order. Empty for one label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_labels: Vec<LabelColumn>,
    /// Where each entry of a `label:` list was written (empty for one label column).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_spans: Vec<Span>,
}

/// One more label column of a CSV source and how it is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelColumn {
    pub column: ColumnRef,
    pub read: LabelRead,
}

/// `idx("images.idx.gz", labels: "labels.idx.gz", shape: [28, 28, 1], classes: 10)`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdxSource {
    pub images: String,
    pub labels: Option<String>,
    /// The declared per-sample shape; the file's must have the same element count.
    pub shape: Option<Vec<usize>>,
    pub classes: Option<u32>,
}

/// `npy("x.npy", labels: "y.npy", shape: [8, 8, 1], classes: 10)`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NpySource {
    pub features: String,
    pub labels: Option<String>,
    pub shape: Option<Vec<usize>>,
    pub label_read: LabelRead,
}

/// `regression(n: 200, features: 3, noise: 0.1, seed: 1)`: `y = Xw + b + noise`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionSource {
    pub n: usize,
    pub features: usize,
    pub noise: f64,
    pub seed: u64,
}

/// `tokens(n: 1000, length: 12, vocab: 20, classes: 2, seed: 1, min_length:)`: token sequences
/// whose class is a learnable function of their content (padded with zeros with `min_length`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenSource {
    pub n: usize,
    pub length: usize,
    pub vocab: u32,
    pub classes: u32,
    pub seed: u64,
    /// `min_length:` each sequence holds between this many and `length` tokens, padded with
    /// trailing zeros (absent: every sequence is `length` tokens, no padding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
}

/// `sine(n: 500, period: 25, noise: 0.05, seed: 1)`: one noisy sine series, one value per sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SineSource {
    pub n: usize,
    pub period: f64,
    pub noise: f64,
    pub seed: u64,
}

/// Per-feature statistics fitted on the training split (one entry per last-axis feature).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// Mean (standardize) or minimum (normalize).
    pub shift: Vec<f32>,
    /// Standard deviation (standardize) or max − min (normalize); zeros replaced by 1.
    pub scale: Vec<f32>,
}

/// A preprocessing step (`map`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Transform {
    /// `(x − mean) / std` per last-axis feature.
    Standardize {
        fitted: Option<Fitted>,
    },
    /// `(x − min) / (max − min)` per last-axis feature.
    Normalize {
        fitted: Option<Fitted>,
    },
    /// `x * factor + offset`.
    Scale {
        factor: f64,
        offset: f64,
    },
    /// Class-id labels become one-hot rows.
    OneHot {
        classes: Option<u32>,
    },
    Reshape {
        shape: Vec<usize>,
    },
    /// Bilinear resize of `[h, w, c]` images, half-pixel centres.
    Resize {
        height: usize,
        width: usize,
    },
    /// Centred moving average over consecutive samples of a series, `window` wide.
    MovingAverage {
        window: usize,
    },
    /// Consecutive samples → (sequence of `size`, the value `horizon` steps after it).
    Window {
        size: usize,
        horizon: usize,
    },
    /// Token sequences padded with `value` or truncated to `length`.
    Pad {
        length: usize,
        value: i64,
    },
}

/// An augmentation step (training only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Augment {
    Flip {
        horizontal: bool,
        vertical: bool,
        p: f64,
    },
    /// A random angle in `[-degrees, degrees]`, bilinear, fill 0.
    Rotate { degrees: f64 },
    /// A random zoom factor in `[1 - range, 1 + range]` about the centre.
    Zoom { range: f64 },
    /// Pad by `padding` on each side, then cut a random `size × size` window.
    Crop { size: usize, padding: usize },
    /// Adds N(0, std²) to every value.
    Noise { std: f64 },
}

/// `split validation: 0.2, test: 0.1, stratify: true, seed: 7`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// The validation fraction, in [0, 1) (0: no validation split).
    pub validation: f64,
    /// The test fraction, in [0, 1), with `validation + test < 1` (0: no test split).
    #[serde(default)]
    pub test: f64,
    /// Keep each class's share of the samples in every split.
    #[serde(default)]
    pub stratify: bool,
    pub seed: u64,
    pub span: Span,
}

/// `shuffle seed: 42`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shuffle {
    pub seed: u64,
    pub span: Span,
}

/// `batch 64, drop_remainder: true`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub size: usize,
    pub drop_remainder: bool,
    pub span: Span,
}

impl Batch {
    /// The size written as `batch all`: every sample in one batch.
    pub const ALL: usize = usize::MAX;

    /// Whether every sample goes in one batch.
    pub fn is_all(&self) -> bool {
        self.size == Self::ALL
    }
}

impl PipelineSpec {
    /// Whether the pipeline holds out validation data (a `split` with `validation:`), so runs
    /// log `val_*` values.
    pub fn has_validation(&self) -> bool {
        self.split.as_ref().is_some_and(|s| s.validation > 0.0)
    }

    /// Whether any step orders samples in time, so the split keeps time order.
    pub fn is_series(&self) -> bool {
        self.preprocess.iter().any(|s| {
            matches!(
                s.op,
                Transform::Window { .. } | Transform::MovingAverage { .. }
            )
        })
    }
}
