//! Loading a whole pipeline and iterating it in batches.
//!
//! Input: a [`PipelineSpec`] and the spec file's folder. Output: a [`Dataset`] holding the
//! preprocessed training, validation and test samples and the fitted spec (to carry into a plan),
//! and [`Loader`]s whose `epoch(e)` yields [`Batch`]es made on a background thread, at most
//! two ahead. Invariant: batch contents depend only on the spec, the data and the epoch.

use super::augment::augment_batch;
use super::groups::split_into_groups;
use super::rng::{Purpose, Stream};
use super::samples::{Features, Group, Labels, Samples};
use super::source;
use super::spec::{Augment, PipelineSpec, Step};
use super::split::{split_rows, strata};
use super::transform::apply_all;
use crate::diag::codes::DATA_TOO_SMALL;
use crate::diag::Diagnostic;
use ndarray::{ArrayD, Axis};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// How many batches the background thread may run ahead of the consumer.
const PREFETCH: usize = 2;

/// A loaded, preprocessed data set.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The spec with every `standardize`/`normalize` fitted: put this in compiled plans.
    pub spec: PipelineSpec,
    pub train: Arc<Samples>,
    /// Empty when the pipeline has no `split`.
    pub validation: Arc<Samples>,
    /// Held out from training and validation; empty without `split test:`.
    pub test: Arc<Samples>,
}

/// One batch: features `[b, ...]`, labels, and each sample's index in its split.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub features: Features,
    pub labels: Labels,
    pub indices: Vec<usize>,
}

/// Rows `rows` of `a` (along the first axis), copied row by row when `a` is contiguous (a
/// batch is a gather of whole rows; ndarray's `select` goes element by element on dynamic
/// dimensions, which cost more than the training step for small models).
fn gather<T: Copy + Default>(a: &ArrayD<T>, rows: &[usize]) -> ArrayD<T> {
    let Some(flat) = a.as_slice() else {
        return a.select(Axis(0), rows);
    };
    let row = a.shape().iter().skip(1).product::<usize>();
    let mut out = Vec::with_capacity(rows.len().saturating_mul(row));
    for &r in rows {
        match flat.get(r.saturating_mul(row)..r.saturating_mul(row).saturating_add(row)) {
            Some(src) => out.extend_from_slice(src),
            None => return a.select(Axis(0), rows),
        }
    }
    let mut shape = a.shape().to_vec();
    if let Some(first) = shape.first_mut() {
        *first = rows.len();
    }
    ArrayD::from_shape_vec(shape, out).unwrap_or_else(|_| a.select(Axis(0), rows))
}

/// Rows `rows` of features (of every group alike).
fn take_feature_rows(f: &Features, rows: &[usize]) -> Features {
    match f {
        Features::F32(a) => Features::F32(gather(a, rows)),
        Features::I64(a) => Features::I64(gather(a, rows)),
        Features::Groups(g) => Features::Groups(
            g.iter()
                .map(|g| Group {
                    name: g.name.clone(),
                    features: take_feature_rows(&g.features, rows),
                })
                .collect(),
        ),
    }
}

/// Selects `rows` of a data set.
pub fn take_rows(s: &Samples, rows: &[usize]) -> Samples {
    Samples {
        features: take_feature_rows(&s.features, rows),
        labels: take_label_rows(&s.labels, rows),
    }
}

/// Selects `rows` of labels; each output's label set is picked by the same rows, so a sample
/// keeps its labels together.
fn take_label_rows(labels: &Labels, rows: &[usize]) -> Labels {
    match labels {
        Labels::None => Labels::None,
        Labels::Class(c) => Labels::Class(rows.iter().filter_map(|&r| c.get(r).copied()).collect()),
        Labels::Values(v) => Labels::Values(gather(v, rows)),
        Labels::Outputs(sets) => {
            Labels::Outputs(sets.iter().map(|l| take_label_rows(l, rows)).collect())
        }
    }
}

/// Loads the source, applies the `map` steps (fitting on the training rows) and splits.
pub fn load_dataset(spec: &PipelineSpec, base_dir: &Path) -> Result<Dataset, Diagnostic> {
    let raw = source::load(&spec.source, base_dir)?;
    let mut fitted = spec.clone();
    let ordered = spec.is_series();
    let split = spec.split.clone();
    // Stratify by the source's classes: a pipeline that may stratify keeps its rows (`check`
    // refuses series), and preprocessing keeps each row's class.
    let classes = split
        .as_ref()
        .filter(|s| s.stratify)
        .and_then(|_| strata(&raw.labels));
    let rows = move |n: usize| split_rows(n, split.as_ref(), ordered, classes.as_deref());
    let mut all = apply_all(&mut fitted.preprocess, raw, &|n| rows(n).train)?;
    if !fitted.inputs.is_empty() {
        all.features = split_into_groups(&mut fitted.inputs, &all.features, &|n| rows(n).train)?;
    }
    let n = all.features.len();
    let r = rows(n);
    let (v, t) = spec
        .split
        .as_ref()
        .map_or((0.0, 0.0), |s| (s.validation, s.test));
    if r.train.is_empty() || (v > 0.0 && r.validation.is_empty()) || (t > 0.0 && r.test.is_empty())
    {
        let (train, val) = (r.train.len(), r.validation.len());
        let leaves = if t > 0.0 {
            format!(
                "{train} for training, {val} for validation and {} for test",
                r.test.len()
            )
        } else {
            format!("{train} for training and {val} for validation")
        };
        return Err(Diagnostic::error(
            DATA_TOO_SMALL,
            format!("the split of {n} samples leaves {leaves}; each needs at least one"),
        ));
    }
    if !spec.batch.is_all() && spec.batch.size > r.train.len() {
        return Err(Diagnostic::error(
            DATA_TOO_SMALL,
            format!(
                "batch size {} is larger than the {} training samples",
                spec.batch.size,
                r.train.len()
            ),
        ));
    }
    Ok(Dataset {
        train: Arc::new(take_rows(&all, &r.train)),
        validation: Arc::new(take_rows(&all, &r.validation)),
        test: Arc::new(take_rows(&all, &r.test)),
        spec: fitted,
    })
}

/// Iterates one split in batches.
#[derive(Clone, Debug)]
pub struct Loader {
    samples: Arc<Samples>,
    batch_size: usize,
    drop_remainder: bool,
    shuffle_seed: Option<u64>,
    augment: Vec<Step<Augment>>,
    /// Each input group's `augment` steps, in the groups' order (empty: one input).
    group_augment: Vec<Vec<Step<Augment>>>,
    seed: u64,
}

impl Dataset {
    /// The training loader: shuffled per epoch when the spec says so, augmented.
    pub fn train_loader(&self) -> Loader {
        Loader {
            samples: Arc::clone(&self.train),
            batch_size: self.spec.batch.size,
            drop_remainder: self.spec.batch.drop_remainder,
            shuffle_seed: self.spec.shuffle.as_ref().map(|s| s.seed),
            augment: self.spec.augment.clone(),
            group_augment: self.spec.inputs.iter().map(|g| g.augment.clone()).collect(),
            seed: self.spec.seed,
        }
    }

    /// The validation loader: in order, never augmented, keeps the last partial batch.
    pub fn validation_loader(&self) -> Loader {
        self.held_out_loader(&self.validation)
    }

    /// The test loader, as the validation loader.
    pub fn test_loader(&self) -> Loader {
        self.held_out_loader(&self.test)
    }

    fn held_out_loader(&self, samples: &Arc<Samples>) -> Loader {
        Loader {
            samples: Arc::clone(samples),
            batch_size: self.spec.batch.size,
            drop_remainder: false,
            shuffle_seed: None,
            augment: Vec::new(),
            group_augment: Vec::new(),
            seed: self.spec.seed,
        }
    }
}

impl Loader {
    /// The number of samples this loader iterates.
    pub fn len(&self) -> usize {
        self.samples.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.len();
        let size = self.batch_size.max(1);
        if self.drop_remainder {
            n / size
        } else {
            n.div_ceil(size)
        }
    }

    /// The sample order of `epoch`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        match self.shuffle_seed {
            Some(seed) => Stream::new(seed, Purpose::Shuffle, epoch, 0).permutation(self.len()),
            None => (0..self.len()).collect(),
        }
    }

    /// Builds batch `b` of an epoch whose order is `order`.
    fn make_batch(&self, order: &[usize], b: usize, epoch: u64) -> Result<Batch, Diagnostic> {
        let size = self.batch_size.max(1);
        let start = b.saturating_mul(size);
        let end = start.saturating_add(size).min(order.len());
        let rows = order.get(start..end).unwrap_or(&[]);
        let picked = take_rows(&self.samples, rows);
        let features = match picked.features {
            Features::F32(a) if !self.augment.is_empty() => {
                Features::F32(augment_batch(&self.augment, &a, rows, self.seed, epoch)?)
            }
            Features::Groups(groups) if !self.group_augment.is_empty() => {
                Features::Groups(self.augment_groups(groups, rows, epoch)?)
            }
            other => other,
        };
        Ok(Batch {
            features,
            labels: picked.labels,
            indices: rows.to_vec(),
        })
    }

    /// Augments each group of a batch with its own steps; group `k` draws from the stream of
    /// seed `seed + k`, so groups are augmented independently, reproducibly.
    fn augment_groups(
        &self,
        groups: Vec<Group>,
        rows: &[usize],
        epoch: u64,
    ) -> Result<Vec<Group>, Diagnostic> {
        let mut out = Vec::with_capacity(groups.len());
        for (k, g) in groups.into_iter().enumerate() {
            let steps = self.group_augment.get(k).map_or(&[][..], Vec::as_slice);
            let features = match g.features {
                Features::F32(a) if !steps.is_empty() => {
                    let seed = self.seed.wrapping_add(k as u64);
                    Features::F32(augment_batch(steps, &a, rows, seed, epoch)?)
                }
                other => other,
            };
            out.push(Group {
                name: g.name,
                features,
            });
        }
        Ok(out)
    }

    /// The batches of `epoch`, produced on a background thread at most two ahead.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        let (tx, rx) = sync_channel(PREFETCH);
        let me = self.clone();
        let worker = std::thread::spawn(move || {
            let order = me.order(epoch);
            for b in 0..me.batches_per_epoch() {
                let batch = me.make_batch(&order, b, epoch);
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    break;
                }
            }
        });
        EpochBatches {
            rx,
            worker: Some(worker),
        }
    }
}

/// The batches of one epoch, in order.
pub struct EpochBatches {
    rx: Receiver<Result<Batch, Diagnostic>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for EpochBatches {
    type Item = Result<Batch, Diagnostic>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.rx.recv().ok();
        if next.is_none() {
            if let Some(w) = self.worker.take() {
                // The worker has finished (its sender is gone); a panic there was a bug that
                // already printed its message, and the epoch simply ends.
                let _ = w.join();
            }
        }
        next
    }
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
