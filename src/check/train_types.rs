//! The resolved settings of a `train` block, as the runtime consumes them.
//!
//! Input: nothing (plain data, built by `train.rs`). Output: serde-serializable enums with every
//! default filled in (Keras defaults where Keras has one). Invariants: `lr > 0`, `epochs >= 1`,
//! momenta and betas in range, as `train.rs` checked.

use crate::diag::Span;
use serde::Serialize;

/// A loss function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    Mse,
    Mae,
    Huber,
    LogCosh,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
}

impl LossKind {
    /// Every loss with its spelling in specs.
    pub const ALL: [(&'static str, LossKind); 7] = [
        ("mse", LossKind::Mse),
        ("mae", LossKind::Mae),
        ("huber", LossKind::Huber),
        ("log_cosh", LossKind::LogCosh),
        ("binary_crossentropy", LossKind::BinaryCrossentropy),
        (
            "categorical_crossentropy",
            LossKind::CategoricalCrossentropy,
        ),
        (
            "sparse_categorical_crossentropy",
            LossKind::SparseCategoricalCrossentropy,
        ),
    ];

    pub fn from_name(name: &str) -> Option<LossKind> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, l)| *l == self)
            .map_or("", |(n, _)| n)
    }

    /// Whether it takes `from_logits`.
    pub fn is_crossentropy(self) -> bool {
        matches!(
            self,
            LossKind::BinaryCrossentropy
                | LossKind::CategoricalCrossentropy
                | LossKind::SparseCategoricalCrossentropy
        )
    }
}

/// The loss with its options.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Loss {
    pub kind: LossKind,
    /// Cross-entropy on raw scores rather than probabilities (Keras `from_logits`).
    pub from_logits: bool,
    /// `huber(delta:)` (1 for the other losses, unused).
    pub delta: f64,
    /// `label_smoothing:` of binary and categorical cross-entropy (Keras's), 0 otherwise.
    pub label_smoothing: f64,
}

impl Loss {
    /// A loss with its default options.
    pub fn plain(kind: LossKind) -> Self {
        Self {
            kind,
            from_logits: false,
            delta: 1.0,
            label_smoothing: 0.0,
        }
    }
}

/// Options every optimizer takes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OptimizerCommon {
    /// Learning rate, > 0.
    pub lr: f64,
    /// Decoupled weight decay (L2 for gd/sgd), >= 0.
    pub weight_decay: f64,
    /// Clip each gradient's norm to this, if set.
    pub clipnorm: Option<f64>,
    /// Clip each gradient element to ±this, if set.
    pub clipvalue: Option<f64>,
}

/// An optimizer and its own options.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Full-batch gradient descent.
    Gd,
    Sgd {
        momentum: f64,
        nesterov: bool,
    },
    Adam {
        beta1: f64,
        beta2: f64,
        epsilon: f64,
    },
    AdamW {
        beta1: f64,
        beta2: f64,
        epsilon: f64,
    },
    RmsProp {
        rho: f64,
        momentum: f64,
        centered: bool,
        epsilon: f64,
    },
}

/// The optimizer of a train block.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub common: OptimizerCommon,
}

/// One link of a learning-rate schedule; steps are counted in epochs. A schedule is a chain of
/// links (`warmup(epochs: 2) |> cosine(epochs: 20)`): each runs for its duration (see
/// [`Schedule::epochs`]), then the next starts with its own epoch counter at 0.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Multiply the rate by `factor` every `every` epochs.
    Step { every: u64, factor: f64 },
    /// `lr * rate^(epoch / every)`.
    Exponential { rate: f64, every: u64 },
    /// Cosine decay to `min_lr` over `epochs` (the rest of the run when `None`).
    Cosine { epochs: Option<u64>, min_lr: f64 },
    /// Linear warm-up from 0 over `epochs`.
    Warmup { epochs: u64 },
    /// Keras's `ReduceLROnPlateau`.
    ReduceOnPlateau(ReduceOnPlateau),
}

impl Schedule {
    /// How many epochs this link lasts before the next one starts; `None` for a link that
    /// lasts to the end of the run (which may only be the last of a chain).
    pub fn epochs(&self) -> Option<u64> {
        match self {
            Schedule::Warmup { epochs } => Some(*epochs),
            Schedule::Cosine { epochs, .. } => *epochs,
            Schedule::Step { .. } | Schedule::Exponential { .. } | Schedule::ReduceOnPlateau(_) => {
                None
            }
        }
    }
}

/// Multiply the learning rate by `factor` when the monitored value has not improved (by more
/// than `min_delta`) for `patience` epochs, then wait `cooldown` epochs; never below `min_lr`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReduceOnPlateau {
    /// A logged value: `loss`, a metric, or either with `val_`.
    pub monitor: String,
    /// In `(0, 1)`.
    pub factor: f64,
    pub patience: u64,
    pub min_delta: f64,
    pub min_lr: f64,
    pub cooldown: u64,
    /// `mode: auto` resolved by the monitor's name.
    pub mode: MonitorMode,
}

/// A metric reported each epoch (on the validation split too, when there is one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    Mae,
    Mse,
    Precision,
    Recall,
    F1,
    Auc,
    /// `top_k_accuracy(k:)`.
    TopKAccuracy {
        k: u64,
    },
}

impl Metric {
    /// Every metric's name, as written in specs and logged.
    pub const NAMES: [&'static str; 8] = [
        "accuracy",
        "mae",
        "mse",
        "precision",
        "recall",
        "f1",
        "auc",
        "top_k_accuracy",
    ];

    /// The metric of a name, with its default options (`k: 5`).
    pub fn from_name(name: &str) -> Option<Metric> {
        Some(match name {
            "accuracy" => Metric::Accuracy,
            "mae" => Metric::Mae,
            "mse" => Metric::Mse,
            "precision" => Metric::Precision,
            "recall" => Metric::Recall,
            "f1" => Metric::F1,
            "auc" => Metric::Auc,
            "top_k_accuracy" => Metric::TopKAccuracy { k: 5 },
            _ => return None,
        })
    }

    /// The name written in specs and logged (`val_` prepended on the validation split).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Mae => "mae",
            Metric::Mse => "mse",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1",
            Metric::Auc => "auc",
            Metric::TopKAccuracy { .. } => "top_k_accuracy",
        }
    }

    /// Whether the metric counts classes (and needs a classification loss).
    pub fn needs_classes(self) -> bool {
        !matches!(self, Metric::Accuracy | Metric::Mae | Metric::Mse)
    }
}

/// `class_weight`: each training sample's loss is multiplied by its class's weight.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// scikit-learn's `balanced`: `n_samples / (n_classes * count_c)` over the training split.
    Balanced,
    /// One weight per class, class 0 first.
    Given(Vec<f64>),
}

/// Which way the monitored quantity improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    Min,
    Max,
}

/// Stop when the monitored quantity has not improved (by more than `min_delta`) for `patience`
/// epochs; with `restore_best`, end with the weights of the best epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EarlyStopping {
    pub patience: u64,
    /// A logged value: `loss`, a metric, or either with `val_`.
    pub monitor: String,
    pub min_delta: f64,
    /// `mode: auto` resolved by the monitor's name.
    pub mode: MonitorMode,
    pub restore_best: bool,
}

/// What the loss compares the model's output with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The pipeline's labels (the default).
    #[default]
    Labels,
    /// `target inputs`: the batch's features, as the model gets them (after the `map` and
    /// `augment` steps): Keras's `fit(x, x)`, for autoencoders.
    Inputs,
}

/// A checked `train` block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedTrain {
    /// The block's name (`as` name, else the model's).
    pub name: String,
    pub model: String,
    pub data: String,
    pub loss: Loss,
    pub optimizer: Optimizer,
    /// The links of the learning-rate schedule, in order (empty: the optimizer's constant `lr`).
    pub schedule: Vec<Schedule>,
    pub epochs: u64,
    pub metrics: Vec<Metric>,
    /// `target inputs` or the labels.
    pub target: Target,
    /// `class_weight`, if written.
    pub class_weight: Option<ClassWeight>,
    /// The seed of weight initialisation and dropout (0 when not written).
    pub seed: u64,
    pub early_stopping: Option<EarlyStopping>,
    /// Save a checkpoint every this many epochs.
    pub checkpoint_every: Option<u64>,
    /// `init "w.safetensors"`: start from these weights (by name), relative to the spec's folder.
    pub init: Option<String>,
    /// A model with several outputs: each output's loss, weight and metrics, in the model's
    /// output order (`loss`/`metrics` then hold the first output's). Empty for one output.
    pub outputs: Vec<OutputTrain>,
    pub span: Span,
}

/// How one output of a model with several is trained: `loss digit: ...`, `loss_weights
/// digit: 1.0`, `metrics digit: [...]` (or an unnamed loss or metric list for every output).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputTrain {
    /// The output's name, the prefix of its logged columns (`digit_loss`, `digit_accuracy`).
    pub name: String,
    pub loss: Loss,
    /// Its factor in the total loss `Σ wᵢ·lossᵢ` (default 1).
    pub weight: f64,
    pub metrics: Vec<Metric>,
}

impl OutputTrain {
    /// The names a training logs for these outputs besides `loss`, as Keras names them:
    /// `digit_loss`, then `digit_accuracy`, ... per output in order (validation adds `val_`).
    pub fn logged_names(outputs: &[OutputTrain]) -> Vec<String> {
        let mut names: Vec<String> = outputs.iter().map(|o| format!("{}_loss", o.name)).collect();
        for o in outputs {
            names.extend(o.metrics.iter().map(|m| format!("{}_{}", o.name, m.name())));
        }
        names
    }
}
