//! In-memory samples: a feature array whose first axis is the sample index, and labels.
//!
//! Input: produced by the sources. Output: read by transforms, split, loader, stats.
//! Invariant: features and labels have the same number of samples.

use ndarray::{ArrayD, IxDyn};

/// Feature values of all samples, `[n, ...sample shape]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    F32(ArrayD<f32>),
    /// Token ids.
    I64(ArrayD<i64>),
}

/// Labels of all samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    None,
    /// Class ids, one per sample.
    Class(Vec<i64>),
    /// Real-valued (or one-hot) targets, `[n, ...label shape]`.
    Values(ArrayD<f32>),
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

    /// The full shape, `[n, ...sample]`.
    pub fn shape(&self) -> &[usize] {
        match self {
            Features::F32(a) => a.shape(),
            Features::I64(a) => a.shape(),
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
