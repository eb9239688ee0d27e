//! In-memory samples: a feature array whose first axis is the sample index (or, for a
//! multi-input pipeline, one such array per named input group), and labels.
//!
//! Input: produced by the sources (one array) and the loader (groups). Output: read by
//! transforms, split, loader, stats. Invariant: features, every group and labels have the same
//! number of samples; groups are in the `inputs` line's order, which `check` makes the model's.

use ndarray::{ArrayD, IxDyn};

/// Feature values of all samples, `[n, ...sample shape]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    F32(ArrayD<f32>),
    /// Token ids.
    I64(ArrayD<i64>),
    /// A multi-input pipeline's feature groups (`inputs image: 64, meta: 3`), in order; each
    /// group is `F32` or `I64`, never groups again.
    Groups(Vec<Group>),
}

/// One named feature group: the features of one model input.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub features: Features,
}

/// Labels of all samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    None,
    /// Class ids, one per sample.
    Class(Vec<i64>),
    /// Real-valued (or one-hot) targets, `[n, ...label shape]`.
    Values(ArrayD<f32>),
    /// One label set per model output (`label: ["digit", "parity"]`), in the outputs' order;
    /// each is `Class` or `Values` over the same samples, never `None` or `Outputs` again.
    Outputs(Vec<Labels>),
}

/// A data set held in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    pub features: Features,
    pub labels: Labels,
}

/// The most bytes a data set may take in memory (features and labels each).
pub const MEMORY_BUDGET_BYTES: usize = 4 << 30;

impl Features {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.shape().first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The full shape, `[n, ...sample]` (of the first group, for groups).
    pub fn shape(&self) -> &[usize] {
        match self {
            Features::F32(a) => a.shape(),
            Features::I64(a) => a.shape(),
            Features::Groups(g) => g.first().map_or(&[], |g| g.features.shape()),
        }
    }

    /// The per-sample shape.
    pub fn sample_shape(&self) -> &[usize] {
        self.shape().get(1..).unwrap_or(&[])
    }
}

impl Labels {
    /// The number of samples labelled (`None` for unlabeled data).
    pub fn count(&self) -> Option<usize> {
        match self {
            Labels::None => None,
            Labels::Class(c) => Some(c.len()),
            Labels::Values(v) => v.shape().first().copied(),
            Labels::Outputs(sets) => sets.first().and_then(Labels::count),
        }
    }

    /// The label set that stands for all of them where one is needed (stratifying a split,
    /// the statistics' class counts): the first output's, or the labels themselves.
    pub fn first(&self) -> &Labels {
        match self {
            Labels::Outputs(sets) => sets.first().unwrap_or(&Labels::None),
            other => other,
        }
    }

    /// The label sets, one per output: several for `Outputs`, else these labels alone.
    pub fn sets(&self) -> &[Labels] {
        match self {
            Labels::Outputs(sets) => sets,
            other => std::slice::from_ref(other),
        }
    }
}

/// `[n, ...sample]` as a shape vector.
pub fn with_count(n: usize, sample: &[usize]) -> IxDyn {
    let mut dims = Vec::with_capacity(sample.len() + 1);
    dims.push(n);
    dims.extend_from_slice(sample);
    IxDyn(&dims)
}
