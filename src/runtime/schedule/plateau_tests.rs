//! The plateau rule against sequences traced by hand with Keras's `ReduceLROnPlateau` logic.

use super::*;

fn rule(patience: u64, cooldown: u64, min_lr: f64, min_delta: f64, maximize: bool) -> Plateau {
    Plateau {
        initial_lr: 1.0,
        factor: 0.5,
        patience,
        min_delta,
        min_lr,
        cooldown,
        maximize,
    }
}

/// The rate after each value, and whether each epoch reduced it.
fn trace(p: &Plateau, values: &[f64]) -> (Vec<f64>, Vec<bool>) {
    let mut s = p.start();
    let mut rates = Vec::new();
    let mut cuts = Vec::new();
    for &v in values {
        cuts.push(p.update(&mut s, v));
        rates.push(s.lr);
    }
    (rates, cuts)
}

#[test]
fn patience_counts_epochs_without_an_improvement_beyond_min_delta() {
    // patience 2, min_delta 0.1, mode min. Values and the hand trace (best, wait):
    // 1.0 best 1.0 w0 | 0.95 (not < 0.9) w1 | 0.92 w2 → cut to 0.5, w0 | 0.85 (< 0.9) best 0.85
    // w0 | 0.80 (not < 0.75) w1 | 0.70 (< 0.75) best w0 | 0.71 w1 | 0.72 w2 → cut to 0.25.
    let p = rule(2, 0, 0.0, 0.1, false);
    let (rates, cuts) = trace(&p, &[1.0, 0.95, 0.92, 0.85, 0.80, 0.70, 0.71, 0.72]);
    assert_eq!(rates, [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]);
    assert_eq!(cuts, [false, false, true, false, false, false, false, true]);
}

#[test]
fn cooldown_holds_the_wait_at_zero_then_min_lr_floors_the_rate() {
    // patience 1, cooldown 2, min_lr 0.2, a value that never improves after the first.
    // e1 best. e2 w1 → 0.5, cd 2. e3 cd→1 (no wait). e4 cd→0, w1 → 0.25, cd 2. e5 cd→1.
    // e6 cd→0, w1 → max(0.125, 0.2) = 0.2, cd 2. e7 cd→1. e8 cd→0, w1, rate at min: no cut.
    // e9 w2: still none.
    let p = rule(1, 2, 0.2, 0.0, false);
    let (rates, cuts) = trace(&p, &[3.0; 9]);
    assert_eq!(rates, [1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]);
    assert_eq!(
        cuts,
        [false, true, false, true, false, true, false, false, false]
    );
    let mut s = p.start();
    for v in [3.0; 9] {
        p.update(&mut s, v);
    }
    assert_eq!((s.wait, s.cooldown, s.best), (2, 0, Some(3.0)));
}

#[test]
fn a_cooldown_of_one_does_not_delay_the_next_wait_as_in_keras() {
    // Keras counts the cooldown down before it tests it: with cooldown 1 the epoch after a cut
    // already waits.
    let p = rule(1, 1, 0.0, 0.0, false);
    let (rates, _) = trace(&p, &[1.0, 1.0, 1.0, 1.0]);
    assert_eq!(rates, [1.0, 0.5, 0.25, 0.125]);
}

#[test]
fn max_mode_improves_upwards_and_nan_never_improves() {
    let p = rule(1, 0, 0.0, 0.0, true);
    // 0.5 best, 0.6 better, 0.6 equal: not better → cut, 0.7 better.
    let (rates, _) = trace(&p, &[0.5, 0.6, 0.6, 0.7]);
    assert_eq!(rates, [1.0, 1.0, 0.5, 0.5]);
    let (rates, _) = trace(&p, &[f64::NAN, f64::NAN]);
    assert_eq!(rates, [0.5, 0.25]);
}

#[test]
fn states_out_of_range_are_refused() {
    let p = rule(1, 2, 0.0, 0.0, false);
    let ok = p.start();
    p.check_state(&ok).unwrap();
    for bad in [
        PlateauState { lr: f64::NAN, ..ok },
        PlateauState { lr: -1.0, ..ok },
        PlateauState { lr: 2.0, ..ok },
        PlateauState { cooldown: 3, ..ok },
    ] {
        assert!(p.check_state(&bad).is_err(), "{bad:?}");
    }
    assert!(Plateau { factor: 1.0, ..p }.validate().is_err());
    assert!(Plateau { min_lr: -0.1, ..p }.validate().is_err());
}
