//! A step's rows in one call ([`super::lstm_cells`], [`super::lstm_cells_train`]): each row
//! gets the bits of the one-sample cell, nothing outside the rows is written, and rows that do
//! not fit their buffers are refused untouched.

// Untouched buffers keep their fill value exactly.
#![allow(clippy::float_cmp)]

use super::tests::skip;
use super::{
    available, lstm_cell, lstm_cell_train, lstm_cells, lstm_cells_train, Addend, Rows, StepCells,
    TrainCell, TrainStep,
};
use crate::runtime::kernels::tests::data as values;

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

/// A training step's rows in one [`lstm_cells_train`] call, in the RNN cache's `[N, T, ·]`
/// layout, have the bits of [`lstm_cell_train`] on each row alone, at a middle step (which
/// writes `c_t` for the next) and the last (which does not).
#[test]
fn a_training_step_of_rows_gives_each_rows_single_cell_bits() {
    if skip() {
        return;
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for u in [5, 8, 21] {
        let (n, steps, gu) = (3, 4, 4 * u);
        let xw = values(n * steps * gu, u as u64, 20.0);
        let zrec = values(n * gu, 3, 5.0);
        let c0 = values(n * steps * u, 5, 2.0);
        for t in [1, steps - 1] {
            let (mut c, mut gates, mut tanh_c, mut h) = (
                c0.clone(),
                vec![f32::NAN; n * steps * gu],
                vec![f32::NAN; n * steps * u],
                vec![f32::NAN; n * u],
            );
            assert!(lstm_cells_train(TrainStep {
                units: u,
                steps,
                t,
                xw: &xw,
                zrec: &zrec,
                c: &mut c,
                gates: &mut gates,
                tanh_c: &mut tanh_c,
                h: &mut h,
            }));
            for s in 0..n {
                let q = s * steps + t;
                let (mut g1, mut next1, mut tc1, mut h1) =
                    (vec![0.0; gu], vec![0.0; u], vec![0.0; u], vec![0.0; u]);
                assert!(lstm_cell_train(TrainCell {
                    xw: &xw[q * gu..(q + 1) * gu],
                    zrec: &zrec[s * gu..(s + 1) * gu],
                    c_prev: &c0[q * u..(q + 1) * u],
                    gates: &mut g1,
                    c_next: Some(&mut next1),
                    tanh_c: &mut tc1,
                    h: &mut h1,
                }));
                let at = format!("{u} units, step {t}, row {s}");
                assert_eq!(bits(&gates[q * gu..(q + 1) * gu]), bits(&g1), "{at}: gates");
                assert_eq!(
                    bits(&tanh_c[q * u..(q + 1) * u]),
                    bits(&tc1),
                    "{at}: tanh c"
                );
                assert_eq!(bits(&h[s * u..(s + 1) * u]), bits(&h1), "{at}: h");
                assert_eq!(bits(&c[q * u..(q + 1) * u]), bits(&c0[q * u..(q + 1) * u]));
                if t + 1 < steps {
                    assert_eq!(
                        bits(&c[(q + 1) * u..(q + 2) * u]),
                        bits(&next1),
                        "{at}: c_t"
                    );
                } else {
                    assert_eq!(c, c0, "{at}: the last step writes no next state");
                }
            }
        }
        // A layout that does not fit is refused, untouched.
        let (mut c, mut gates, mut tanh_c, mut h) = (
            c0.clone(),
            vec![1.0; n * steps * gu],
            vec![1.0; n * steps * u],
            vec![1.0; n * u],
        );
        for (steps_said, t) in [(steps + 1, 0), (steps, steps)] {
            assert!(!lstm_cells_train(TrainStep {
                units: u,
                steps: steps_said,
                t,
                xw: &xw,
                zrec: &zrec,
                c: &mut c,
                gates: &mut gates,
                tanh_c: &mut tanh_c,
                h: &mut h,
            }));
        }
        assert_eq!(
            (c, tanh_c, h),
            (c0.clone(), vec![1.0; n * steps * u], vec![1.0; n * u])
        );
    }
}

/// A step of no rows runs nothing and takes no pointer past its buffers, whatever its offsets.
#[test]
fn a_step_of_no_rows_is_a_no_op() {
    if skip() {
        return;
    }
    let (mut c, mut h, mut out) = (vec![], vec![], vec![]);
    assert!(lstm_cells(StepCells {
        units: 4,
        z: &[],
        addend: Addend::Table {
            table: &[],
            index: &[],
            first: 9,
            stride: 1,
        },
        c: &mut c,
        h: Rows {
            data: &mut h,
            offset: 5,
            stride: 4,
        },
        out: Some(Rows {
            data: &mut out,
            offset: 7,
            stride: 4,
        }),
    }));
}
