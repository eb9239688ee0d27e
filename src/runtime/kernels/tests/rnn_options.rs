//! The recurrent layers' Keras options (`go_backwards`, dropout masks shared by the gates or one
//! per gate, a GRU resetting before its product) against an independent step-by-step reference
//! written from Keras's cell equations in f64, their backward against central finite
//! differences, and the inference entry point against the training forward.

use ndarray::{Array2, Array3, ArrayD, IxDyn};

use super::{arr, assert_close, check_gradients, data};
use crate::runtime::kernels::rnn::{
    rnn_backward, rnn_forward_run, rnn_infer_run, RnnCache, RnnCell, RnnGrads, RnnParams, RnnRun,
};

const CELLS: [RnnCell; 4] = [
    RnnCell::SimpleRnn,
    RnnCell::Lstm,
    RnnCell::Gru,
    RnnCell::GruResetBefore,
];

/// A layer's sizes and flat weights in Keras layouts.
struct Layer {
    cell: RnnCell,
    n: usize,
    t: usize,
    f: usize,
    u: usize,
    x: Vec<f32>,
    kernel: Vec<f32>,
    recurrent: Vec<f32>,
    bias: Vec<f32>,
}

impl Layer {
    fn new(cell: RnnCell, (n, t, f, u): (usize, usize, usize, usize), seed: u64) -> Self {
        let g = cell.gates();
        let bias_len: usize = cell.bias_shape(u).iter().product();
        Self {
            cell,
            n,
            t,
            f,
            u,
            x: data(n * t * f, seed, 1.0),
            kernel: data(f * g * u, seed + 1, 0.6),
            recurrent: data(u * g * u, seed + 2, 0.6),
            bias: data(bias_len, seed + 3, 0.5),
        }
    }

    fn gu(&self) -> usize {
        self.cell.gates() * self.u
    }
}

/// Dropout-like masks: each value 0 or `1/(1 − 0.3)`, about a third zero.
fn mask(len: usize, seed: u64) -> Vec<f32> {
    data(len, seed, 1.0)
        .into_iter()
        .map(|v| if v < -0.4 { 0.0 } else { 1.0 / 0.7 })
        .collect()
}

/// The options of one case: `go_backwards`, the input masks' count (0: none), state masks.
#[derive(Clone, Copy, Debug)]
struct Case {
    go_backwards: bool,
    input_masks: usize,
    state_masks: bool,
}

const CASES: [Case; 4] = [
    Case {
        go_backwards: true,
        input_masks: 0,
        state_masks: false,
    },
    Case {
        go_backwards: false,
        input_masks: 1,
        state_masks: false,
    },
    Case {
        go_backwards: false,
        input_masks: usize::MAX,
        state_masks: true,
    },
    Case {
        go_backwards: true,
        input_masks: usize::MAX,
        state_masks: true,
    },
];

/// The masks of `case` for `layer` (`usize::MAX` input masks: one per gate).
fn masks(layer: &Layer, case: Case) -> (Vec<f32>, Vec<f32>) {
    let c = if case.input_masks == usize::MAX {
        layer.cell.gates()
    } else {
        case.input_masks
    };
    let input = mask(layer.n * c * layer.f, 90);
    let state = if case.state_masks {
        mask(layer.n * layer.gu(), 91)
    } else {
        Vec::new()
    };
    (input, state)
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// `Σ_i a[i]·w[i, col]` for a row-major `w` of `cols` columns.
fn dot(a: &[f64], w: &[f32], cols: usize, col: usize) -> f64 {
    a.iter()
        .enumerate()
        .map(|(i, &v)| v * f64::from(w[i * cols + col]))
        .sum()
}

/// Keras's cells step by step in f64: per gate block `g` the input `x ⊙ m_g` and the state
/// `h ⊙ r_g` (masks shared when there is one), the sequence reversed with `go_backwards`, the
/// outputs in processing order.
#[allow(clippy::needless_range_loop)] // the loops mirror the equations' indices
fn reference(l: &Layer, case: Case, (input_mask, state_mask): (&[f32], &[f32])) -> Vec<f64> {
    let (u, f, gu) = (l.u, l.f, l.gu());
    let c = input_mask.len() / (l.n * f).max(1);
    let mut out = Vec::new();
    for s in 0..l.n {
        let (mut h, mut cs) = (vec![0.0f64; u], vec![0.0f64; u]);
        for step in 0..l.t {
            let src = if case.go_backwards {
                l.t - 1 - step
            } else {
                step
            };
            let x = &l.x[(s * l.t + src) * f..(s * l.t + src + 1) * f];
            let xin = |gate: usize| -> Vec<f64> {
                (0..f)
                    .map(|i| {
                        let m = if c == 0 {
                            1.0
                        } else {
                            input_mask[(s * c + gate % c) * f + i]
                        };
                        f64::from(x[i] * m)
                    })
                    .collect()
            };
            let hin = |gate: usize, h: &[f64]| -> Vec<f64> {
                (0..u)
                    .map(|i| {
                        let m = state_mask
                            .get(s * gu + gate * u + i)
                            .copied()
                            .unwrap_or(1.0);
                        h[i] * f64::from(m)
                    })
                    .collect()
            };
            // Input side of gate block `gate`, column `k`, plus the (input) bias.
            let xs = |gate: usize, k: usize| {
                dot(&xin(gate), &l.kernel, gu, gate * u + k) + f64::from(l.bias[gate * u + k])
            };
            let rec = |gate: usize, k: usize, h: &[f64]| {
                dot(&hin(gate, h), &l.recurrent, gu, gate * u + k)
            };
            let mut next = vec![0.0; u];
            match l.cell {
                RnnCell::SimpleRnn => {
                    for k in 0..u {
                        next[k] = (xs(0, k) + rec(0, k, &h)).tanh();
                    }
                }
                RnnCell::Lstm => {
                    for k in 0..u {
                        let i = sigmoid(xs(0, k) + rec(0, k, &h));
                        let fg = sigmoid(xs(1, k) + rec(1, k, &h));
                        let gg = (xs(2, k) + rec(2, k, &h)).tanh();
                        let o = sigmoid(xs(3, k) + rec(3, k, &h));
                        cs[k] = fg * cs[k] + i * gg;
                        next[k] = o * cs[k].tanh();
                    }
                }
                RnnCell::Gru => {
                    let rb = |gate: usize, k: usize| f64::from(l.bias[gu + gate * u + k]);
                    for k in 0..u {
                        let z = sigmoid(xs(0, k) + rec(0, k, &h) + rb(0, k));
                        let r = sigmoid(xs(1, k) + rec(1, k, &h) + rb(1, k));
                        let hh = (xs(2, k) + r * (rec(2, k, &h) + rb(2, k))).tanh();
                        next[k] = z * h[k] + (1.0 - z) * hh;
                    }
                }
                RnnCell::GruResetBefore => {
                    let z: Vec<f64> = (0..u).map(|k| sigmoid(xs(0, k) + rec(0, k, &h))).collect();
                    let r: Vec<f64> = (0..u).map(|k| sigmoid(xs(1, k) + rec(1, k, &h))).collect();
                    let hm = hin(2, &h);
                    let rh: Vec<f64> = (0..u).map(|k| r[k] * hm[k]).collect();
                    for k in 0..u {
                        let hh = (xs(2, k) + dot(&rh, &l.recurrent, gu, 2 * u + k)).tanh();
                        next[k] = z[k] * h[k] + (1.0 - z[k]) * hh;
                    }
                }
            }
            h = next;
            out.extend_from_slice(&h);
        }
    }
    out
}

/// The kernel's forward of `layer` with `run`, all steps returned.
fn forward(l: &Layer, ins: &[Vec<f32>], run: &RnnRun<'_>, cache: &mut RnnCache) -> Vec<f32> {
    let gu = l.gu();
    let x = Array3::from_shape_vec((l.n, l.t, l.f), ins[0].clone()).unwrap();
    let k = Array2::from_shape_vec((l.f, gu), ins[1].clone()).unwrap();
    let r = Array2::from_shape_vec((l.u, gu), ins[2].clone()).unwrap();
    let b = arr(&l.cell.bias_shape(l.u), ins[3].clone());
    let p = RnnParams {
        kernel: k.view(),
        recurrent: r.view(),
        bias: b.view(),
    };
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[l.n, l.t, l.u]));
    rnn_forward_run(l.cell, x.view(), &p, run, true, cache, out.view_mut()).unwrap();
    out.into_raw_vec_and_offset().0
}

fn inputs(l: &Layer) -> Vec<Vec<f32>> {
    vec![
        l.x.clone(),
        l.kernel.clone(),
        l.recurrent.clone(),
        l.bias.clone(),
    ]
}

fn run_of<'a>(case: Case, (input, state): (&'a [f32], &'a [f32])) -> RnnRun<'a> {
    RnnRun {
        go_backwards: case.go_backwards,
        input_mask: (case.input_masks > 0).then_some(input),
        recurrent_mask: case.state_masks.then_some(state),
        ..RnnRun::default()
    }
}

#[test]
fn options_match_the_step_by_step_reference() {
    for cell in CELLS {
        for (i, case) in CASES.iter().enumerate() {
            let l = Layer::new(cell, (3, 4, 3, 2), 10 + i as u64);
            let (im, sm) = masks(&l, *case);
            let run = run_of(*case, (&im, &sm));
            let got = forward(&l, &inputs(&l), &run, &mut RnnCache::new());
            let used_input: &[f32] = if case.input_masks > 0 { &im } else { &[] };
            let want: Vec<f32> = reference(&l, *case, (used_input, &sm))
                .into_iter()
                .map(|v| v as f32)
                .collect();
            assert_close(&format!("{cell:?} {case:?}"), &got, &want, 1e-5);
        }
    }
}

#[test]
fn a_reset_before_gru_without_options_matches_the_reference() {
    let l = Layer::new(RnnCell::GruResetBefore, (2, 5, 3, 4), 3);
    let case = Case {
        go_backwards: false,
        input_masks: 0,
        state_masks: false,
    };
    let got = forward(&l, &inputs(&l), &RnnRun::default(), &mut RnnCache::new());
    let want: Vec<f32> = reference(&l, case, (&[], &[]))
        .into_iter()
        .map(|v| v as f32)
        .collect();
    assert_close("gru reset before", &got, &want, 1e-5);
    // The reset-after cell on the same weights (a zero recurrent bias) gives other numbers.
    let mut after = Layer::new(RnnCell::Gru, (2, 5, 3, 4), 3);
    after.bias = [l.bias.clone(), vec![0.0; 12]].concat();
    let other = forward(
        &after,
        &inputs(&after),
        &RnnRun::default(),
        &mut RnnCache::new(),
    );
    let gap = got
        .iter()
        .zip(&other)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(gap > 1e-3, "reset before and after agree to {gap}");
}

#[test]
fn options_backward_matches_finite_differences() {
    for cell in CELLS {
        for (i, case) in CASES.iter().enumerate() {
            let l = Layer::new(cell, (2, 3, 3, 2), 30 + i as u64);
            let (im, sm) = masks(&l, *case);
            let run = run_of(*case, (&im, &sm));
            let ins = inputs(&l);
            let w = data(l.n * l.t * l.u, 77, 1.0);
            let mut cache = RnnCache::new();
            forward(&l, &ins, &run, &mut cache);
            let gu = l.gu();
            let x = Array3::from_shape_vec((l.n, l.t, l.f), ins[0].clone()).unwrap();
            let k = Array2::from_shape_vec((l.f, gu), ins[1].clone()).unwrap();
            let r = Array2::from_shape_vec((l.u, gu), ins[2].clone()).unwrap();
            let bshape = cell.bias_shape(l.u);
            let b = arr(&bshape, ins[3].clone());
            let p = RnnParams {
                kernel: k.view(),
                recurrent: r.view(),
                bias: b.view(),
            };
            let mut dx = Array3::<f32>::zeros((l.n, l.t, l.f));
            let mut dk = Array2::<f32>::zeros((l.f, gu));
            let mut dr = Array2::<f32>::zeros((l.u, gu));
            let mut db = ArrayD::<f32>::zeros(IxDyn(&bshape));
            let grads = RnnGrads {
                dx: dx.view_mut(),
                dkernel: dk.view_mut(),
                drecurrent: dr.view_mut(),
                dbias: db.view_mut(),
            };
            let dy = arr(&[l.n, l.t, l.u], w.clone());
            rnn_backward(cell, x.view(), &p, &mut cache, dy.view(), grads).unwrap();
            let analytic = vec![
                dx.into_raw_vec_and_offset().0,
                dk.into_raw_vec_and_offset().0,
                dr.into_raw_vec_and_offset().0,
                db.into_raw_vec_and_offset().0,
            ];
            check_gradients(&format!("{cell:?} {case:?}"), &ins, &w, &analytic, |ins| {
                forward(&l, ins, &run, &mut RnnCache::new())
            });
        }
    }
}

#[test]
fn inference_going_backwards_is_the_training_forward_going_backwards() {
    // Five sequences: an LSTM takes the inference-only loop, the other cells the driver.
    for cell in CELLS {
        let l = Layer::new(cell, (5, 4, 3, 3), 50);
        let run = RnnRun {
            go_backwards: true,
            ..RnnRun::default()
        };
        let want = forward(&l, &inputs(&l), &run, &mut RnnCache::new());
        let x = Array3::from_shape_vec((l.n, l.t, l.f), l.x.clone()).unwrap();
        let k = Array2::from_shape_vec((l.f, l.gu()), l.kernel.clone()).unwrap();
        let r = Array2::from_shape_vec((l.u, l.gu()), l.recurrent.clone()).unwrap();
        let b = arr(&cell.bias_shape(l.u), l.bias.clone());
        let p = RnnParams {
            kernel: k.view(),
            recurrent: r.view(),
            bias: b.view(),
        };
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[l.n, l.t, l.u]));
        let mut cache = RnnCache::new();
        rnn_infer_run(cell, x.view(), &p, true, true, &mut cache, out.view_mut()).unwrap();
        assert_close(&format!("{cell:?}"), out.as_slice().unwrap(), &want, 1e-5);
        // Going backwards is not going forwards: the first output differs.
        let fwd = forward(&l, &inputs(&l), &RnnRun::default(), &mut RnnCache::new());
        assert!(
            (fwd[0] - want[0]).abs() > 1e-4,
            "{cell:?}: the same first step"
        );
    }
}

#[test]
fn sliced_training_draws_the_masks_for_the_whole_batch_whatever_the_thread_count() {
    use crate::runtime::kernels::dropout::fill_mask;
    use crate::runtime::kernels::rnn::{rnn_forward_sliced, SlicedRnn, SlicedRun};
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    for cell in CELLS {
        let l = Layer::new(cell, (7, 4, 3, 3), 60);
        let (gu, g) = (l.gu(), cell.gates());
        // The masks in the documented order: the input's `[N, G·F]`, then the state's.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut im = vec![0.0; l.n * g * l.f];
        let mut sm = vec![0.0; l.n * gu];
        fill_mask(0.25, &mut rng, &mut im).unwrap();
        fill_mask(0.5, &mut rng, &mut sm).unwrap();
        let run = RnnRun {
            go_backwards: true,
            input_mask: Some(&im),
            recurrent_mask: Some(&sm),
            ..RnnRun::default()
        };
        let want = crate::runtime::kernels::linalg::serial(|| {
            forward(&l, &inputs(&l), &run, &mut RnnCache::new())
        });
        let x = Array3::from_shape_vec((l.n, l.t, l.f), l.x.clone()).unwrap();
        let k = Array2::from_shape_vec((l.f, gu), l.kernel.clone()).unwrap();
        let r = Array2::from_shape_vec((l.u, gu), l.recurrent.clone()).unwrap();
        let b = arr(&cell.bias_shape(l.u), l.bias.clone());
        let p = RnnParams {
            kernel: k.view(),
            recurrent: r.view(),
            bias: b.view(),
        };
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = ArrayD::<f32>::zeros(IxDyn(&[l.n, l.t, l.u]));
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            let run = SlicedRun {
                go_backwards: true,
                dropout: 0.25,
                recurrent_dropout: 0.5,
                rng: Some(&mut rng),
                ..SlicedRun::default()
            };
            pool.install(|| {
                rnn_forward_sliced(
                    cell,
                    x.view(),
                    &p,
                    run,
                    true,
                    &mut SlicedRnn::new(),
                    out.view_mut(),
                )
            })
            .unwrap();
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{cell:?} on {threads} threads");
        }
    }
}
