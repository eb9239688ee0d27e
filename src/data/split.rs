//! The split of a data set into training, validation and test rows (`split validation: 0.1,
//! test: 0.1, stratify: true, seed: 7`).
//!
//! Input: the sample count, the `split` setting, whether the pipeline is a time series, and
//! (for `stratify`) each row's class. Output: [`SplitRows`], three disjoint sorted lists of row
//! indices covering every row. Invariant: a pure function of its inputs (the seed's ChaCha
//! stream), so the same spec gives the same rows on every run and machine.
//!
//! Sizes: `round(n · validation)` validation rows and `round(n · test)` test rows. A series
//! keeps time order: training rows first, then validation, then test at the end. Otherwise one
//! seeded permutation of the rows is dealt out: validation first (so a pipeline without `test`
//! keeps the validation rows it always had), then test, the rest training. With `stratify`, the
//! permutation is dealt out class by class: each class gives `validation` and `test` shares of
//! its rows, rounded so the totals stay as above (largest remainders first, ties to the smaller
//! class id), so every split keeps the classes' proportions up to one row per class.

use super::rng::{Purpose, Stream};
use super::samples::Labels;
use super::spec::Split;
use std::collections::BTreeMap;

/// Row indices of each split, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitRows {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    pub test: Vec<usize>,
}

/// Each row's class, for stratifying: class ids, or the largest entry of one-hot rows (of the
/// first output's labels, when there is a label set per output). `None` for data without labels.
pub fn strata(labels: &Labels) -> Option<Vec<i64>> {
    match labels {
        Labels::None => None,
        Labels::Outputs(sets) => sets.first().and_then(strata),
        Labels::Class(ids) => Some(ids.clone()),
        Labels::Values(v) => {
            let n = v.shape().first().copied().unwrap_or(0);
            let per = v.len().checked_div(n).unwrap_or(0);
            let flat: Vec<f32> = v.iter().copied().collect();
            Some(
                (0..n)
                    .map(|r| {
                        let row = flat.get(r * per..(r + 1) * per).unwrap_or(&[]);
                        let mut best = 0usize;
                        for (i, x) in row.iter().enumerate() {
                            if row.get(best).is_some_and(|b| x > b) {
                                best = i;
                            }
                        }
                        best as i64
                    })
                    .collect(),
            )
        }
    }
}

/// The rows of each split of `n` samples; `strata` are the rows' classes when `stratify` is
/// on (ignored when absent or of another length: `check` refuses stratifying such data).
pub fn split_rows(
    n: usize,
    split: Option<&Split>,
    ordered: bool,
    strata: Option<&[i64]>,
) -> SplitRows {
    let Some(split) = split else {
        return SplitRows {
            train: (0..n).collect(),
            ..SplitRows::default()
        };
    };
    let n_val = ((n as f64) * split.validation).round() as usize;
    let n_val = n_val.min(n);
    let n_test = ((n as f64) * split.test).round() as usize;
    let n_test = n_test.min(n - n_val);
    if ordered {
        let n_train = n - n_val - n_test;
        return SplitRows {
            train: (0..n_train).collect(),
            validation: (n_train..n_train + n_val).collect(),
            test: (n_train + n_val..n).collect(),
        };
    }
    let perm = Stream::new(split.seed, Purpose::Split, 0, n as u64).permutation(n);
    let keys = strata.filter(|k| split.stratify && k.len() == n);
    let (mut validation, mut test, mut train) = match keys {
        Some(keys) => stratified(&perm, keys, split, (n_val, n_test)),
        None => (
            perm[..n_val].to_vec(),
            perm[n_val..n_val + n_test].to_vec(),
            perm[n_val + n_test..].to_vec(),
        ),
    };
    validation.sort_unstable();
    test.sort_unstable();
    train.sort_unstable();
    SplitRows {
        train,
        validation,
        test,
    }
}

/// Validation, test and training rows dealt out class by class.
fn stratified(
    perm: &[usize],
    keys: &[i64],
    split: &Split,
    (n_val, n_test): (usize, usize),
) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let mut classes: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for &row in perm {
        if let Some(&k) = keys.get(row) {
            classes.entry(k).or_default().push(row);
        }
    }
    let sizes: Vec<usize> = classes.values().map(Vec::len).collect();
    let val_q = quotas(&sizes, split.validation, n_val, &sizes);
    let room: Vec<usize> = sizes.iter().zip(&val_q).map(|(s, q)| s - q).collect();
    let test_q = quotas(&sizes, split.test, n_test, &room);
    let (mut validation, mut test, mut train) = (Vec::new(), Vec::new(), Vec::new());
    for ((rows, v), t) in classes.values().zip(val_q).zip(test_q) {
        validation.extend_from_slice(&rows[..v]);
        test.extend_from_slice(&rows[v..v + t]);
        train.extend_from_slice(&rows[v + t..]);
    }
    (validation, test, train)
}

/// Each class's share `fraction · size`, floored, then one more row for the classes with the
/// largest remainders until the shares add up to `total`; never more than `room`.
fn quotas(sizes: &[usize], fraction: f64, total: usize, room: &[usize]) -> Vec<usize> {
    let exact: Vec<f64> = sizes.iter().map(|&s| s as f64 * fraction).collect();
    let mut q: Vec<usize> = exact
        .iter()
        .zip(room)
        .map(|(e, &r)| (e.floor() as usize).min(r))
        .collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    let rem = |i: usize| exact.get(i).map_or(0.0, |e| e - e.floor());
    order.sort_by(|&a, &b| rem(b).total_cmp(&rem(a)).then(a.cmp(&b)));
    let mut left = total.saturating_sub(q.iter().sum());
    while left > 0 {
        let mut gave = false;
        for &i in &order {
            if left == 0 {
                break;
            }
            if let (Some(qi), Some(&r)) = (q.get_mut(i), room.get(i)) {
                if *qi < r {
                    *qi += 1;
                    left -= 1;
                    gave = true;
                }
            }
        }
        if !gave {
            break;
        }
    }
    q
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
