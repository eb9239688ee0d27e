//! The vector sigmoid and tanh against f64 over dense sweeps (with their special values and
//! NaN), and the LSTM cell against an f64 cell for unit counts on and off the 8-lane grid.
//! On a CPU without AVX2 + FMA there is nothing to test: each test says so and returns.

// Exact values at special points are part of the contract.
#![allow(clippy::float_cmp)]

use super::{activate, available, lstm_cell, lstm_cell_train, TrainCell};

/// Points densely covering `[-lim, lim]`, tiny magnitudes of both signs, and zero.
fn sweep(lim: f32) -> Vec<f32> {
    crate::runtime::kernels::tests::sweep(lim, 200_000)
}

pub(super) fn skip() -> bool {
    if available() {
        return false;
    }
    eprintln!("skipped: this CPU lacks AVX2 + FMA, so the cell runs the fastmath path");
    true
}

fn max_relative(got: &[f32], xs: &[f32], reference: fn(f64) -> f64) -> f64 {
    got.iter()
        .zip(xs)
        .map(|(&g, &x)| {
            let want = reference(f64::from(x));
            let diff = (f64::from(g) - want).abs();
            if want == 0.0 {
                diff
            } else {
                diff / want.abs()
            }
        })
        .fold(0.0, f64::max)
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn sigmoid_and_tanh_are_within_their_relative_bounds() {
    if skip() {
        return;
    }
    let xs = sweep(80.0);
    let (mut s, mut t) = (xs.clone(), xs.clone());
    assert!(activate(&mut s, &mut t));
    let sigmoid_err = max_relative(&s, &xs, sigmoid64);
    assert!(
        sigmoid_err < 4e-7,
        "sigmoid max relative error {sigmoid_err}"
    );
    let tanh_err = max_relative(&t, &xs, f64::tanh);
    assert!(tanh_err < 5e-7, "tanh max relative error {tanh_err}");
    // tanh is odd to the bit.
    let mut minus: Vec<f32> = xs.iter().map(|x| -x).collect();
    assert!(activate(&mut [], &mut minus));
    for ((&x, &tx), &t_minus) in xs.iter().zip(&t).zip(&minus) {
        assert_eq!(t_minus.to_bits(), (-tx).to_bits(), "tanh(-{x})");
    }
}

#[test]
fn special_values_saturate_and_nan_propagates() {
    if skip() {
        return;
    }
    let xs = [
        0.0,
        100.0,
        -100.0,
        1e30,
        -1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    let (mut s, mut t) = (xs, xs);
    assert!(activate(&mut s, &mut t));
    assert_eq!(s[0], 0.5);
    assert_eq!(t[0], 0.0);
    assert_eq!((s[1], t[1]), (1.0, 1.0));
    assert!(s[2] < 1e-37 && s[2] >= 0.0, "sigmoid(-100) = {}", s[2]);
    assert_eq!(t[2], -1.0);
    assert_eq!((s[3], t[3], t[4]), (1.0, 1.0, -1.0));
    assert_eq!((s[5], t[5], t[6]), (1.0, 1.0, -1.0));
    assert!(s[6] < 1e-37 && s[6] >= 0.0);
    assert!(
        s[7].is_nan() && t[7].is_nan(),
        "NaN gave {} and {}",
        s[7],
        t[7]
    );
}

use crate::runtime::kernels::tests::data as values;

#[test]
fn the_cell_matches_an_f64_cell_on_and_off_the_lane_grid() {
    if skip() {
        return;
    }
    for (u, seed) in [(1, 1), (7, 2), (8, 3), (13, 4), (64, 5), (67, 6)] {
        let z = values(4 * u, seed, 6.0);
        let addend = values(4 * u, seed + 100, 1.0);
        let c0 = values(u, seed + 200, 3.0);
        let (mut c, mut h) = (c0.clone(), vec![f32::NAN; u]);
        assert!(lstm_cell(&z, &addend, &mut c, &mut h));
        for k in 0..u {
            let a = |gate: usize| f64::from(z[gate * u + k]) + f64::from(addend[gate * u + k]);
            let cell = sigmoid64(a(1)) * f64::from(c0[k]) + sigmoid64(a(0)) * a(2).tanh();
            let out = sigmoid64(a(3)) * cell.tanh();
            assert!(
                (f64::from(c[k]) - cell).abs() <= 1e-6 * (1.0 + cell.abs()),
                "u {u} unit {k}: c {} vs {cell}",
                c[k]
            );
            assert!(
                (f64::from(h[k]) - out).abs() <= 1e-6,
                "u {u} unit {k}: h {} vs {out}",
                h[k]
            );
        }
    }
}

#[test]
fn the_training_cell_keeps_gates_cell_and_tanh_for_backward() {
    if skip() {
        return;
    }
    for (u, seed, last_step) in [
        (5, 11, false),
        (8, 12, true),
        (21, 13, false),
        (64, 14, false),
    ] {
        let xw = values(4 * u, seed, 5.0);
        let zrec = values(4 * u, seed + 100, 2.0);
        let c_prev = values(u, seed + 200, 3.0);
        let (mut gates, mut c_next, mut tanh_c, mut h) = (
            vec![f32::NAN; 4 * u],
            vec![f32::NAN; u],
            vec![f32::NAN; u],
            vec![f32::NAN; u],
        );
        assert!(lstm_cell_train(TrainCell {
            xw: &xw,
            zrec: &zrec,
            c_prev: &c_prev,
            gates: &mut gates,
            c_next: (!last_step).then_some(&mut c_next[..]),
            tanh_c: &mut tanh_c,
            h: &mut h,
        }));
        for k in 0..u {
            let a = |gate: usize| f64::from(xw[gate * u + k]) + f64::from(zrec[gate * u + k]);
            let want = [
                sigmoid64(a(0)),
                sigmoid64(a(1)),
                a(2).tanh(),
                sigmoid64(a(3)),
            ];
            for (gate, w) in want.iter().enumerate() {
                let got = f64::from(gates[gate * u + k]);
                assert!(
                    (got - w).abs() <= 1e-6,
                    "u {u} unit {k} gate {gate}: {got} vs {w}"
                );
            }
            let cell = want[1] * f64::from(c_prev[k]) + want[0] * want[2];
            if last_step {
                assert!(c_next[k].is_nan(), "c_next written at the last step");
            } else {
                assert!((f64::from(c_next[k]) - cell).abs() <= 1e-6 * (1.0 + cell.abs()));
            }
            assert!((f64::from(tanh_c[k]) - cell.tanh()).abs() <= 1e-6);
            assert!((f64::from(h[k]) - want[3] * cell.tanh()).abs() <= 1e-6);
        }
    }
}

#[test]
fn mismatched_lengths_are_refused_untouched() {
    let (z, addend) = (vec![0.5f32; 32], vec![0.0f32; 32]);
    let (mut c, mut h) = (vec![1.0f32; 8], vec![2.0f32; 7]);
    assert!(!lstm_cell(&z, &addend, &mut c, &mut h));
    assert!(!lstm_cell(&z[..31], &addend, &mut c, &mut h[..7]));
    assert!(!lstm_cell(&[], &[], &mut [], &mut []));
    assert_eq!((c, h), (vec![1.0f32; 8], vec![2.0f32; 7]));
}

/// The inference and training cells at `u` units: `(c, h)` and `(gates, c_next, tanh_c, h)`,
/// all as bits.
fn cell_bits(u: usize, seed: u64) -> Vec<u32> {
    let z = values(4 * u, seed, 40.0);
    let addend = values(4 * u, seed + 100, 1.0);
    let c0 = values(u, seed + 200, 3.0);
    let (mut c, mut h) = (c0.clone(), vec![f32::NAN; u]);
    assert!(lstm_cell(&z, &addend, &mut c, &mut h));
    let (mut gates, mut next, mut tanh_c, mut h2) = (
        vec![f32::NAN; 4 * u],
        vec![f32::NAN; u],
        vec![f32::NAN; u],
        vec![f32::NAN; u],
    );
    assert!(lstm_cell_train(TrainCell {
        xw: &z,
        zrec: &addend,
        c_prev: &c0,
        gates: &mut gates,
        c_next: Some(&mut next),
        tanh_c: &mut tanh_c,
        h: &mut h2,
    }));
    [c, h, gates, next, tanh_c, h2]
        .concat()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn both_vector_widths_give_the_same_bits() {
    if skip() {
        return;
    }
    if crate::runtime::kernels::isa::Isa::current() != crate::runtime::kernels::isa::Isa::Avx512 {
        eprintln!("note: no AVX-512 here (or MODELC_MAX_ISA=avx2); only the 8-lane cell ran");
    }
    // Every tail length of both widths, and whole multiples of each.
    for u in (1..=40).chain([64, 67, 100]) {
        let wide = cell_bits(u, u as u64);
        let narrow = crate::runtime::kernels::isa::with_avx2(|| cell_bits(u, u as u64));
        assert_eq!(wide, narrow, "{u} units: the 16- and 8-lane cells disagree");
    }
}
