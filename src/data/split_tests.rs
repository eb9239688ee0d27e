//! Splits against hand counts: sizes, class proportions with `stratify`, disjointness,
//! determinism, time order for series.

use super::*;
use crate::diag::Span;
use ndarray::ArrayD;

fn split(validation: f64, test: f64, stratify: bool, seed: u64) -> Split {
    Split {
        validation,
        test,
        stratify,
        seed,
        span: Span::default(),
    }
}

/// The rows of every split, together, sorted: must be `0..n` exactly once each.
fn assert_partition(r: &SplitRows, n: usize) {
    let mut all: Vec<usize> = r
        .train
        .iter()
        .chain(&r.validation)
        .chain(&r.test)
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "{r:?}");
}

/// How many rows of each class (0, 1, 2) a list holds.
fn counts(rows: &[usize], keys: &[i64]) -> [usize; 3] {
    let mut c = [0; 3];
    for &r in rows {
        c[keys[r] as usize] += 1;
    }
    c
}

#[test]
fn sizes_are_rounded_shares_and_the_splits_partition_the_rows() {
    let sp = split(0.1, 0.2, false, 7);
    // 95 rows: round(9.5) = 10 validation (half away from zero), round(19) = 19 test, 66 train.
    let r = split_rows(95, Some(&sp), false, None);
    assert_eq!(
        (r.train.len(), r.validation.len(), r.test.len()),
        (66, 10, 19)
    );
    assert_partition(&r, 95);
    assert_eq!(
        r,
        split_rows(95, Some(&sp), false, None),
        "same seed, same rows"
    );
    let other = split_rows(95, Some(&split(0.1, 0.2, false, 8)), false, None);
    assert_ne!(other.test, r.test, "another seed, other rows");
    // Without `test:`, the validation rows are those of a validation-only split (as before
    // test splits existed): the permutation's first rows.
    let only = split_rows(95, Some(&split(0.1, 0.0, false, 7)), false, None);
    assert_eq!(only.validation, r.validation);
    assert!(only.test.is_empty());
    assert_eq!(split_rows(4, None, false, None).train, vec![0, 1, 2, 3]);
}

#[test]
fn a_series_keeps_time_order_with_validation_then_test_last() {
    let r = split_rows(10, Some(&split(0.2, 0.1, false, 7)), true, None);
    assert_eq!(r.train, (0..7).collect::<Vec<_>>());
    assert_eq!(r.validation, vec![7, 8]);
    assert_eq!(r.test, vec![9]);
}

#[test]
fn stratify_keeps_each_class_share_by_hand_counts() {
    // Classes of sizes 10, 20, 30, interleaved: validation 0.1 → 1, 2, 3 rows; test 0.2 →
    // 2, 4, 6 rows; the rest (7, 14, 21) train.
    let keys: Vec<i64> = (0..60).map(|i| [0, 1, 1, 2, 2, 2][i % 6]).collect();
    let sp = split(0.1, 0.2, true, 3);
    let r = split_rows(60, Some(&sp), false, Some(&keys));
    assert_partition(&r, 60);
    assert_eq!(counts(&r.validation, &keys), [1, 2, 3]);
    assert_eq!(counts(&r.test, &keys), [2, 4, 6]);
    assert_eq!(counts(&r.train, &keys), [7, 14, 21]);
    assert_eq!(r, split_rows(60, Some(&sp), false, Some(&keys)));
    // Sizes 5, 7, 8 (n = 20), validation 0.25: 5 rows; shares 1.25, 1.75, 2.0 floor to 1, 1, 2
    // and the one row left goes to the largest remainder (class 1): 1, 2, 2. Test 0.2: 4 rows;
    // shares 1.0, 1.4, 1.6 → 1, 1, 1 and the row left to class 2: 1, 1, 2. Train 3, 4, 4.
    let mut keys = vec![0; 5];
    keys.extend([1; 7]);
    keys.extend([2; 8]);
    let r = split_rows(20, Some(&split(0.25, 0.2, true, 11)), false, Some(&keys));
    assert_partition(&r, 20);
    assert_eq!(counts(&r.validation, &keys), [1, 2, 2]);
    assert_eq!(counts(&r.test, &keys), [1, 1, 2]);
    assert_eq!(counts(&r.train, &keys), [3, 4, 4]);
    // Without `stratify`, the same keys are ignored: the plain split's rows.
    let plain = split(0.25, 0.2, false, 11);
    assert_eq!(
        split_rows(20, Some(&plain), false, Some(&keys)),
        split_rows(20, Some(&plain), false, None)
    );
}

#[test]
fn largest_remainders_decide_and_a_class_is_never_over_drawn() {
    // One row of class 0 and 9 of class 1, validation and test 0.4 each: 4 and 4 rows.
    // Validation: shares 0.4 and 3.6 floor to 0 and 3; the row left goes to the larger
    // remainder (class 1: 0.6 > 0.4): 0 and 4. Test: the same shares, class 1 has 5 rows left:
    // 0 and 4. Training keeps class 0's row and class 1's last one.
    let mut keys = vec![0];
    keys.extend([1; 9]);
    let r = split_rows(10, Some(&split(0.4, 0.4, true, 1)), false, Some(&keys));
    assert_partition(&r, 10);
    assert_eq!(counts(&r.validation, &keys), [0, 4, 0]);
    assert_eq!(counts(&r.test, &keys), [0, 4, 0]);
    assert_eq!(counts(&r.train, &keys), [1, 1, 0]);
    // Rooms cap the shares: 3 classes of 1 row, validation and test 1/3 each (1 row each):
    // validation takes class 0's row (equal remainders: the smaller id), test class 1's.
    let keys = [0, 1, 2];
    let r = split_rows(
        3,
        Some(&split(1.0 / 3.0, 1.0 / 3.0, true, 5)),
        false,
        Some(&keys),
    );
    assert_eq!(
        (r.validation.clone(), r.test.clone(), r.train.clone()),
        (vec![0], vec![1], vec![2])
    );
}

#[test]
fn strata_are_class_ids_or_the_hot_entry_of_one_hot_rows() {
    assert_eq!(strata(&Labels::None), None);
    assert_eq!(strata(&Labels::Class(vec![2, 0])), Some(vec![2, 0]));
    let onehot =
        ArrayD::from_shape_vec(vec![3, 3], vec![0., 1., 0., 0., 0., 1., 1., 0., 0.]).unwrap();
    assert_eq!(strata(&Labels::Values(onehot)), Some(vec![1, 2, 0]));
}
