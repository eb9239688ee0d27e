//! Multi-head attention and position embedding kernels against hand-computed values and an
//! independent f64 reference written from Keras's definition (loops, no GEMM, no head
//! rearrangement); slicing the batch between threads gives the same bits.

// Exact comparisons where the values are exactly representable (mask factors, sums of rows).
#![allow(clippy::float_cmp)]

use super::backward::{core_backward, output_backward, OutputGrads};
use super::*;
use crate::runtime::kernels::tests::data;
use rand_core::SeedableRng;

/// Owned weights in the kernels' flat layouts.
struct Owned {
    p: Vec<Vec<f32>>,
}

impl Owned {
    fn random(s: &MhaShape, seed: u64) -> Self {
        let (hk, hv) = (s.heads * s.key_dim, s.heads * s.value_dim);
        let sizes = [s.dq * hk, hk, s.dk * hk, hk, s.dv * hv, hv, hv * s.dq, s.dq];
        let p = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| data(n, seed + i as u64, 0.6))
            .collect();
        Self { p }
    }

    fn weights(&self) -> MhaWeights<'_> {
        let proj = |i: usize| Projection {
            kernel: &self.p[i],
            bias: &self.p[i + 1],
        };
        MhaWeights {
            query: proj(0),
            key: proj(2),
            value: proj(4),
            output: proj(6),
        }
    }
}

/// `x·W + b` for one row, in f64.
fn row_proj(x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
    let width = b.len();
    (0..width)
        .map(|j| {
            f64::from(b[j])
                + x.iter()
                    .enumerate()
                    .map(|(i, &xi)| f64::from(xi) * f64::from(w[i * width + j]))
                    .sum::<f64>()
        })
        .collect()
}

/// Keras's MultiHeadAttention, in f64 loops; `mask` is the dropout mask `[N, H, Tq, Tv]`.
fn reference(
    s: &MhaShape,
    w: &Owned,
    (xq, xk, xv): (&[f32], &[f32], &[f32]),
    causal: bool,
    mask: Option<&[f32]>,
) -> Vec<f32> {
    let (k_, v_) = (s.key_dim, s.value_dim);
    let mut out = Vec::new();
    for n in 0..s.batch {
        let rows = |x: &[f32], t: usize, d: usize, wi: usize| -> Vec<Vec<f64>> {
            (0..t)
                .map(|i| {
                    let at = (n * t + i) * d;
                    row_proj(&x[at..at + d], &w.p[wi], &w.p[wi + 1])
                })
                .collect()
        };
        let q = rows(xq, s.tq, s.dq, 0);
        let k = rows(xk, s.tv, s.dk, 2);
        let v = rows(xv, s.tv, s.dv, 4);
        let scale = 1.0 / (k_ as f64).sqrt();
        for i in 0..s.tq {
            let mut combined = vec![0.0f64; s.heads * v_];
            for h in 0..s.heads {
                let logits: Vec<f64> = (0..s.tv)
                    .map(|j| {
                        let dot: f64 = (0..k_)
                            .map(|c| q[i][h * k_ + c] * scale * k[j][h * k_ + c])
                            .sum();
                        if causal && j > i {
                            dot - 1e9
                        } else {
                            dot
                        }
                    })
                    .collect();
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for j in 0..s.tv {
                    let mut p = exps[j] / sum;
                    if let Some(m) = mask {
                        p *= f64::from(m[((n * s.heads + h) * s.tq + i) * s.tv + j]);
                    }
                    for c in 0..v_ {
                        combined[h * v_ + c] += p * v[j][h * v_ + c];
                    }
                }
            }
            let c32: Vec<f32> = combined.iter().map(|&c| c as f32).collect();
            out.extend(row_proj(&c32, &w.p[6], &w.p[7]).iter().map(|&y| y as f32));
        }
    }
    out
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

fn run_infer(s: &MhaShape, w: &Owned, x: (&[f32], &[f32], &[f32]), causal: bool) -> Vec<f32> {
    let mut out = vec![f32::NAN; s.batch * s.tq * s.dq];
    let mut scratch = MhaScratch::default();
    let inputs = MhaInputs {
        query: x.0,
        key: x.1,
        value: x.2,
    };
    mha_forward(
        s,
        &w.weights(),
        &inputs,
        causal,
        MhaStore::Infer(&mut scratch),
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn one_head_of_width_one_by_hand() {
    let s = MhaShape {
        batch: 1,
        tq: 2,
        tv: 2,
        dq: 1,
        dk: 1,
        dv: 1,
        heads: 1,
        key_dim: 1,
        value_dim: 1,
    };
    // Identity projections, output bias 0.5; query [1, 2], key = value = [0, 1].
    let w = Owned {
        p: vec![
            vec![1.0],
            vec![0.0],
            vec![1.0],
            vec![0.0],
            vec![1.0],
            vec![0.0],
            vec![1.0],
            vec![0.5],
        ],
    };
    let (q, kv) = ([1.0f32, 2.0], [0.0f32, 1.0]);
    let e = std::f32::consts::E;
    // Row i weighs value 1 by softmax([0, q_i])[1] = e^q / (1 + e^q).
    let plain = run_infer(&s, &w, (&q, &kv, &kv), false);
    close(
        "plain",
        &plain,
        &[e / (1.0 + e) + 0.5, e * e / (1.0 + e * e) + 0.5],
        1e-6,
    );
    // Causal: row 0 sees only position 0 (value 0).
    let causal = run_infer(&s, &w, (&q, &kv, &kv), true);
    close("causal", &causal, &[0.5, e * e / (1.0 + e * e) + 0.5], 1e-6);
}

fn shape(batch: usize, tq: usize, tv: usize, heads: usize, k: usize, v: usize) -> MhaShape {
    MhaShape {
        batch,
        tq,
        tv,
        dq: 6,
        dk: 5,
        dv: 4,
        heads,
        key_dim: k,
        value_dim: v,
    }
}

#[test]
fn matches_the_reference_for_cross_self_and_causal_attention() {
    for (s, causal) in [
        (shape(2, 3, 5, 2, 3, 4), false),
        (shape(3, 4, 4, 3, 2, 2), true),
        (shape(1, 5, 3, 1, 4, 1), true),
        (shape(2, 1, 6, 4, 2, 3), false),
    ] {
        let w = Owned::random(&s, 3);
        let xq = data(s.batch * s.tq * s.dq, 1, 1.0);
        let xk = data(s.batch * s.tv * s.dk, 2, 1.0);
        let xv = data(s.batch * s.tv * s.dv, 3, 1.0);
        let got = run_infer(&s, &w, (&xq, &xk, &xv), causal);
        let want = reference(&s, &w, (&xq, &xk, &xv), causal, None);
        close(&format!("{s:?} causal {causal}"), &got, &want, 1e-5);
    }
    // Self-attention: one tensor as query, key and value.
    let mut s = shape(2, 4, 4, 2, 3, 3);
    (s.dk, s.dv) = (s.dq, s.dq);
    let w = Owned::random(&s, 9);
    let x = data(s.batch * s.tq * s.dq, 4, 1.0);
    let got = run_infer(&s, &w, (&x, &x, &x), false);
    close(
        "self",
        &got,
        &reference(&s, &w, (&x, &x, &x), false, None),
        1e-5,
    );
}

/// A call large enough to be split between threads.
fn big() -> MhaShape {
    MhaShape {
        batch: 7,
        tq: 24,
        tv: 20,
        dq: 32,
        dk: 24,
        dv: 16,
        heads: 4,
        key_dim: 16,
        value_dim: 8,
    }
}

#[test]
fn batch_slices_give_the_same_bits_as_one_thread() {
    let s = big();
    assert!(s.macs() >= SLICE_MIN_MACS, "too small to slice");
    let w = Owned::random(&s, 5);
    let xq = data(s.batch * s.tq * s.dq, 6, 1.0);
    let xk = data(s.batch * s.tv * s.dk, 7, 1.0);
    let xv = data(s.batch * s.tv * s.dv, 8, 1.0);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            assert_eq!(s.slices().len(), threads.min(s.batch));
            run_infer(&s, &w, (&xq, &xk, &xv), true)
        })
    };
    let one = on(1);
    for threads in [2, 3] {
        assert_eq!(on(threads), one, "{threads} threads");
    }
    close(
        "big",
        &one,
        &reference(&s, &w, (&xq, &xk, &xv), true, None),
        1e-4,
    );
}

#[test]
fn training_forward_keeps_the_mask_it_applied_and_the_probabilities() {
    let s = shape(2, 3, 4, 2, 3, 2);
    let w = Owned::random(&s, 11);
    let xq = data(s.batch * s.tq * s.dq, 1, 1.0);
    let xk = data(s.batch * s.tv * s.dk, 2, 1.0);
    let xv = data(s.batch * s.tv * s.dv, 3, 1.0);
    let inputs = MhaInputs {
        query: &xq,
        key: &xk,
        value: &xv,
    };
    let mut cache = MhaCache::default();
    let mut out = vec![0.0; s.batch * s.tq * s.dq];
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let store = MhaStore::Train {
        cache: &mut cache,
        dropout: Some((0.5, &mut rng)),
    };
    mha_forward(&s, &w.weights(), &inputs, false, store, &mut out).unwrap();
    let mask = cache.mask.clone().unwrap();
    assert_eq!(mask.len(), s.batch * s.heads * s.tq * s.tv);
    let kept = mask.iter().filter(|&&m| m == 2.0).count();
    assert!(mask.iter().all(|&m| m == 0.0 || m == 2.0));
    assert!(kept > 0 && kept < mask.len(), "{kept} of {}", mask.len());
    let want = reference(&s, &w, (&xq, &xk, &xv), false, Some(&mask));
    close("dropout", &out, &want, 1e-5);
    // The kept probabilities are those before dropout: rows sum to 1.
    for row in cache.probs.chunks_exact(s.tv) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    // The same stream gives the same mask.
    let mut again = MhaCache::default();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let store = MhaStore::Train {
        cache: &mut again,
        dropout: Some((0.5, &mut rng)),
    };
    let mut out2 = vec![0.0; out.len()];
    mha_forward(&s, &w.weights(), &inputs, false, store, &mut out2).unwrap();
    assert_eq!(out2, out);
    assert_eq!(again.mask.unwrap(), mask);
}

#[test]
fn backward_core_does_not_depend_on_the_thread_count() {
    let s = big();
    let w = Owned::random(&s, 5);
    let xq = data(s.batch * s.tq * s.dq, 6, 1.0);
    let xk = data(s.batch * s.tv * s.dk, 7, 1.0);
    let xv = data(s.batch * s.tv * s.dv, 8, 1.0);
    let dy = data(s.batch * s.tq * s.dq, 9, 1.0);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut cache = MhaCache::default();
            let mut out = vec![0.0; dy.len()];
            let inputs = MhaInputs {
                query: &xq,
                key: &xk,
                value: &xv,
            };
            let store = MhaStore::Train {
                cache: &mut cache,
                dropout: None,
            };
            mha_forward(&s, &w.weights(), &inputs, true, store, &mut out).unwrap();
            let mut dk = vec![0.0; w.p[6].len()];
            let mut db = vec![0.0; s.dq];
            let g = OutputGrads {
                dkernel: &mut dk,
                dbias: &mut db,
            };
            output_backward(&mut cache, &w.p[6], &dy, g).unwrap();
            core_backward(&mut cache).unwrap();
            (cache.dq, cache.dk, cache.dv)
        })
    };
    let one = on(1);
    assert_eq!(on(3), one);
    assert!(one.0.iter().any(|&v| v != 0.0) && one.1.iter().any(|&v| v != 0.0));
}

#[test]
fn position_embedding_adds_the_first_rows_and_sums_them_back() {
    // T = 2 of max_length 3, d = 2.
    let table = [1.0f32, 2.0, 3.0, 4.0, 50.0, 60.0];
    let x = [0.5f32, 0.5, 0.5, 0.5, -1.0, -1.0, -1.0, -1.0];
    let mut out = vec![0.0; 8];
    position_forward(Some(&x), &table, (2, 2), &mut out).unwrap();
    assert_eq!(out, [1.5, 2.5, 3.5, 4.5, 0.0, 1.0, 2.0, 3.0]);
    let dy = [1.0f32, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
    let mut dt = vec![f32::NAN; 6];
    position_backward(&dy, (2, 2), &mut dt).unwrap();
    assert_eq!(dt, [11.0, 22.0, 33.0, 44.0, 0.0, 0.0]);
    // A table shorter than T is refused.
    assert!(position_forward(None, &table[..2], (2, 2), &mut out).is_err());
}

#[test]
fn the_inference_scratch_estimate_bounds_what_a_call_keeps() {
    for s in [big(), shape(2, 3, 5, 2, 3, 4), shape(5, 4, 4, 3, 2, 2)] {
        let w = Owned::random(&s, 5);
        let xq = data(s.batch * s.tq * s.dq, 6, 1.0);
        let xk = data(s.batch * s.tv * s.dk, 7, 1.0);
        let xv = data(s.batch * s.tv * s.dv, 8, 1.0);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let kept = pool.install(|| {
                let mut scratch = MhaScratch::default();
                let mut out = vec![0.0; s.batch * s.tq * s.dq];
                let inputs = MhaInputs {
                    query: &xq,
                    key: &xk,
                    value: &xv,
                };
                let store = MhaStore::Infer(&mut scratch);
                mha_forward(&s, &w.weights(), &inputs, false, store, &mut out).unwrap();
                scratch.slices.iter().map(Vec::len).sum::<usize>()
            });
            let estimate = s.inference_scratch_len(threads).unwrap();
            assert!(kept <= estimate, "{s:?} on {threads}: {kept} > {estimate}");
            assert!(kept > 0);
        }
    }
    let huge = MhaShape {
        batch: usize::MAX / 2,
        ..big()
    };
    assert_eq!(huge.inference_scratch_len(2), None);
}
