//! The vector sigmoid and tanh against f64 over dense sweeps (with their special values and
//! NaN), and the LSTM cell against an f64 cell for unit counts on and off the 8-lane grid.
//! On a CPU without AVX2 + FMA there is nothing to test: each test says so and returns.

// Exact values at special points are part of the contract.
#![allow(clippy::float_cmp)]

use super::{
    activate, available, lstm_cell, lstm_cell_train, lstm_cells, Addend, Rows, StepCells, TrainCell,
};

/// Points densely covering `[-lim, lim]`, tiny magnitudes of both signs, and zero.
fn sweep(lim: f32) -> Vec<f32> {
    crate::runtime::kernels::tests::sweep(lim, 200_000)
}

fn skip() -> bool {
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

/// A step's rows in one [`lstm_cells`] call: each row's `c`, `h` (in a strided buffer) and
/// output copy have the bits of [`lstm_cell`] on that row alone, with a shared bias and with
/// rows of a table picked through a strided index; nothing outside the rows is written.
#[test]
fn a_step_of_rows_gives_each_rows_single_cell_bits() {
    if skip() {
        return;
    }
    for u in [5, 8, 13, 64] {
        let (n, gu) = (4, 4 * u);
        let z = values(n * gu, u as u64, 30.0);
        let table = values(3 * gu, 7, 1.0);
        let c0 = values(n * u, 9, 2.0);
        // Rows of the table for sample s at index[1 + 2s].
        let index = [9, 2, 9, 0, 9, 1, 9, 2];
        for shared in [true, false] {
            let addend_of = |s: usize| {
                if shared {
                    &table[..gu]
                } else {
                    let r = index[1 + 2 * s];
                    &table[r * gu..(r + 1) * gu]
                }
            };
            let (stride, offset) = (u + 3, 2);
            let mut c = c0.clone();
            let mut h = vec![-7.0f32; offset + n * stride];
            let mut out = vec![-7.0f32; n * 2 * u];
            assert!(lstm_cells(StepCells {
                units: u,
                z: &z,
                addend: if shared {
                    Addend::Shared(&table[..gu])
                } else {
                    Addend::Table {
                        table: &table,
                        index: &index,
                        first: 1,
                        stride: 2,
                    }
                },
                c: &mut c,
                h: Rows {
                    data: &mut h,
                    offset,
                    stride,
                },
                out: Some(Rows {
                    data: &mut out,
                    offset: u,
                    stride: 2 * u,
                }),
            }));
            for s in 0..n {
                let mut c_one = c0[s * u..(s + 1) * u].to_vec();
                let mut h_one = vec![0.0f32; u];
                assert!(lstm_cell(
                    &z[s * gu..(s + 1) * gu],
                    addend_of(s),
                    &mut c_one,
                    &mut h_one
                ));
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let h_at = offset + s * stride;
                assert_eq!(
                    bits(&c[s * u..(s + 1) * u]),
                    bits(&c_one),
                    "{u} units, row {s}: c"
                );
                assert_eq!(
                    bits(&h[h_at..h_at + u]),
                    bits(&h_one),
                    "{u} units, row {s}: h"
                );
                let o_at = u + s * 2 * u;
                assert_eq!(
                    bits(&out[o_at..o_at + u]),
                    bits(&h_one),
                    "{u} units, row {s}: out"
                );
                assert!(h[h_at + u..h_at + stride.min(h.len() - h_at)]
                    .iter()
                    .all(|&v| v == -7.0));
                assert!(out[s * 2 * u..s * 2 * u + u].iter().all(|&v| v == -7.0));
            }
            assert!(h[..offset].iter().all(|&v| v == -7.0));
        }
    }
}

/// Rows that would overlap, fall outside their buffer or pick a table row past its end are
/// refused before anything is written.
#[test]
fn a_step_whose_rows_do_not_fit_is_refused_untouched() {
    let (u, n) = (8, 2);
    let z = vec![0.5f32; n * 4 * u];
    let table = vec![0.0f32; 2 * 4 * u];
    let mut c = vec![1.0f32; n * u];
    let mut h = vec![2.0f32; 2 * u + 1];
    let step = |c: &mut [f32], h: &mut [f32], h_stride: usize, index: &[usize]| {
        lstm_cells(StepCells {
            units: u,
            z: &z,
            addend: Addend::Table {
                table: &table,
                index,
                first: 0,
                stride: 1,
            },
            c,
            h: Rows {
                data: h,
                offset: 1,
                stride: h_stride,
            },
            out: None,
        })
    };
    // Overlapping rows (stride below u), rows past the end, a table row past the table.
    assert!(!step(&mut c, &mut h, u - 1, &[0, 1]));
    assert!(!step(&mut c, &mut h, u + 1, &[0, 1]));
    assert!(!step(&mut c, &mut h, u, &[0, 2]));
    assert!(!step(&mut c, &mut h, u, &[0]));
    assert_eq!((c, h), (vec![1.0f32; n * u], vec![2.0f32; 2 * u + 1]));
    if available() {
        let (mut c, mut h) = (vec![1.0f32; n * u], vec![2.0f32; 2 * u + 1]);
        assert!(step(&mut c, &mut h, u, &[0, 1]), "the rows that fit run");
    }
}
