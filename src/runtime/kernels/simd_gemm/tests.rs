//! The kernel against an f64 reference (strided and transposed `A`, convolution rows, every
//! edge size of the register tile, accumulation and the epilogue), its independence from
//! thread splits, and its refusals.

// Untouched buffers and exact zeros are checked exactly.
#![allow(clippy::float_cmp)]

use super::{available, gemm, ConvRows, Epilogue, GemmCall, Lhs};

pub(super) fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Checks `got` against an f64 reference, with a bound scaled by `Σ|a·b|` per element.
pub(super) fn assert_close(got: &[f32], reference: &[f64], scale: &[f64]) {
    for (idx, ((&g, &r), &s)) in got.iter().zip(reference).zip(scale).enumerate() {
        let tol = 1e-6 * s + 1e-7;
        assert!(
            (f64::from(g) - r).abs() <= tol,
            "element {idx}: {g} vs reference {r} (tolerance {tol})"
        );
    }
}

pub(super) struct Case {
    pub(super) m: usize,
    pub(super) k: usize,
    pub(super) n: usize,
    pub(super) ldb: usize,
    pub(super) ldc: usize,
}

/// Reference `C = init + A·B (+bias, relu)` for `A[i][k] = a(i, k)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn reference(
    case: &Case,
    a: impl Fn(usize, usize) -> f32,
    b: &[f32],
    init: Option<&[f32]>,
    bias: Option<&[f32]>,
    relu: bool,
) -> (Vec<f64>, Vec<f64>) {
    let Case { m, k, n, ldb, ldc } = *case;
    let mut c = vec![0.0f64; m * ldc];
    let mut scale = vec![0.0f64; m * ldc];
    for i in 0..m {
        for j in 0..n {
            let mut s = init.map_or(0.0, |c0| f64::from(c0[i * ldc + j]));
            let mut mag = s.abs();
            for kk in 0..k {
                let p = f64::from(a(i, kk)) * f64::from(b[kk * ldb + j]);
                s += p;
                mag += p.abs();
            }
            if let Some(bias) = bias {
                s += f64::from(bias[j]);
                mag += f64::from(bias[j]).abs();
            }
            if relu {
                s = s.max(0.0);
            }
            c[i * ldc + j] = s;
            scale[i * ldc + j] = mag;
        }
    }
    (c, scale)
}

#[test]
fn row_major_products_match_the_reference_for_every_tile_edge() {
    if !available() {
        return;
    }
    // Every row count of a partial tile (1..=6 and beyond), column counts around 8 and 16.
    for (seed, m) in [1usize, 2, 3, 4, 5, 6, 7, 11, 13, 25]
        .into_iter()
        .enumerate()
    {
        for n in [1usize, 3, 8, 9, 15, 16, 17, 31, 40] {
            for k in [1usize, 2, 7, 33] {
                let case = Case {
                    m,
                    k,
                    n,
                    ldb: n + 3,
                    ldc: n + 1,
                };
                let lda = k + 2;
                let a = values(m * lda, seed as u64 + 1);
                let b = values(k * case.ldb, 7 + n as u64);
                let mut c = vec![f32::NAN; m * case.ldc];
                let lhs = Lhs::Strided {
                    data: &a,
                    row_stride: lda,
                    col_stride: 1,
                };
                assert!(gemm(
                    &GemmCall {
                        lhs,
                        m,
                        k,
                        rhs: &b,
                        ldb: case.ldb,
                        n,
                        ldc: case.ldc,
                        accumulate: false,
                        epilogue: Epilogue::NONE,
                        parallel: false
                    },
                    &mut c
                ));
                let (r, s) = reference(&case, |i, kk| a[i * lda + kk], &b, None, None, false);
                for i in 0..m {
                    let row = i * case.ldc;
                    assert_close(&c[row..row + n], &r[row..row + n], &s[row..row + n]);
                    // The padding between rows is never written (NaN stays NaN).
                    assert!(c[row + n..row + case.ldc].iter().all(|v| v.is_nan()));
                }
            }
        }
    }
}

#[test]
fn transposed_lhs_accumulation_bias_and_relu() {
    if !available() {
        return;
    }
    let case = Case {
        m: 14,
        k: 19,
        n: 21,
        ldb: 21,
        ldc: 21,
    };
    // `A = Pᵀ` for a row-major `P: k × m`.
    let p = values(case.k * case.m, 3);
    let b = values(case.k * case.n, 4);
    let bias = values(case.n, 5);
    let init = values(case.m * case.n, 6);
    let mut c = init.clone();
    let lhs = Lhs::Strided {
        data: &p,
        row_stride: 1,
        col_stride: case.m,
    };
    let epilogue = Epilogue {
        bias: Some(&bias),
        relu: true,
    };
    assert!(gemm(
        &GemmCall {
            lhs,
            m: case.m,
            k: case.k,
            rhs: &b,
            ldb: case.ldb,
            n: case.n,
            ldc: case.ldc,
            accumulate: true,
            epilogue,
            parallel: false
        },
        &mut c
    ));
    let (r, s) = reference(
        &case,
        |i, kk| p[kk * case.m + i],
        &b,
        Some(&init),
        Some(&bias),
        true,
    );
    assert_close(&c, &r, &s);
    assert!(c.contains(&0.0) && c.iter().any(|&v| v > 0.0));
}

#[test]
fn convolution_rows_match_a_direct_convolution() {
    if !available() {
        return;
    }
    // Two samples of a 9 × 8 × 3 input, 3 × 2 kernel, stride (2, 1), dilation (1, 2).
    let (n, h, w, ch) = (2usize, 9usize, 8usize, 3usize);
    let (kh, kw, o) = (3usize, 2usize, 5usize);
    let (sh, sw, dh, dw) = (2usize, 1usize, 1usize, 2usize);
    let oh = (h - (kh - 1) * dh - 1) / sh + 1;
    let ow = (w - (kw - 1) * dw - 1) / sw + 1;
    let x = values(n * h * w * ch, 11);
    let kernel = values(kh * kw * ch * o, 12);
    let mut k_offsets = Vec::new();
    for ky in 0..kh {
        for kx in 0..kw {
            for ci in 0..ch {
                k_offsets.push((ky * dh * w + kx * dw) * ch + ci);
            }
        }
    }
    let geometry = ConvRows {
        pixels: oh * ow,
        ow,
        sample_len: h * w * ch,
        row_step: sh * w * ch,
        col_step: sw * ch,
    };
    let m = n * oh * ow;
    let k = kh * kw * ch;
    let mut out = vec![0.0f32; m * o];
    let lhs = Lhs::Conv {
        data: &x,
        geometry,
        k_offsets: &k_offsets,
    };
    assert!(gemm(
        &GemmCall {
            lhs,
            m,
            k,
            rhs: &kernel,
            ldb: o,
            n: o,
            ldc: o,
            accumulate: false,
            epilogue: Epilogue::NONE,
            parallel: false
        },
        &mut out
    ));
    // Direct convolution in f64.
    for s in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for co in 0..o {
                    let (mut sum, mut mag) = (0.0f64, 0.0f64);
                    for ky in 0..kh {
                        for kx in 0..kw {
                            for ci in 0..ch {
                                let (iy, ix) = (oy * sh + ky * dh, ox * sw + kx * dw);
                                let xv = x[((s * h + iy) * w + ix) * ch + ci];
                                let kv = kernel[((ky * kw + kx) * ch + ci) * o + co];
                                let p = f64::from(xv) * f64::from(kv);
                                sum += p;
                                mag += p.abs();
                            }
                        }
                    }
                    let i = (s * oh + oy) * ow + ox;
                    assert_close(&out[i * o + co..=i * o + co], &[sum], &[mag]);
                }
            }
        }
    }
}

#[test]
fn thread_splits_give_the_same_bits() {
    if !available() {
        return;
    }
    let (m, k, n) = (301usize, 96usize, 80usize);
    let a = values(m * k, 21);
    let b = values(k * n, 22);
    let run = |parallel: bool| {
        let mut c = vec![0.0f32; m * n];
        let lhs = Lhs::Strided {
            data: &a,
            row_stride: k,
            col_stride: 1,
        };
        assert!(gemm(
            &GemmCall {
                lhs,
                m,
                k,
                rhs: &b,
                ldb: n,
                n,
                ldc: n,
                accumulate: false,
                epilogue: Epilogue::NONE,
                parallel
            },
            &mut c
        ));
        c.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    let serial = run(false);
    for threads in [2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        assert_eq!(pool.install(|| run(true)), serial, "{threads} threads");
    }
    // One row computed alone equals the same row computed in a full tile.
    let mut one = vec![0.0f32; n];
    let lhs = Lhs::Strided {
        data: &a[7 * k..],
        row_stride: k,
        col_stride: 1,
    };
    assert!(gemm(
        &GemmCall {
            lhs,
            m: 1,
            k,
            rhs: &b,
            ldb: n,
            n,
            ldc: n,
            accumulate: false,
            epilogue: Epilogue::NONE,
            parallel: false
        },
        &mut one
    ));
    let one: Vec<u32> = one.iter().map(|v| v.to_bits()).collect();
    assert_eq!(one, serial[7 * n..8 * n]);
}

#[test]
fn short_buffers_and_missing_features_are_declined_untouched() {
    let (m, k, n) = (4usize, 5usize, 6usize);
    let a = values(m * k, 1);
    let b = values(k * n, 2);
    let lhs = |data| Lhs::Strided {
        data,
        row_stride: k,
        col_stride: 1,
    };
    let mut c = vec![1.5f32; m * n];
    let calls: [(&[f32], &[f32], usize, usize); 4] = [
        (&a[1..], &b, n, n), // A one short
        (&a, &b[1..], n, n), // B one short
        (&a, &b, n - 1, n),  // B's row stride below n
        (&a, &b, n, n + 1),  // C's rows too long for its buffer
    ];
    for (a, b, ldb, ldc) in calls {
        assert!(!gemm(
            &GemmCall {
                lhs: lhs(a),
                m,
                k,
                rhs: b,
                ldb,
                n,
                ldc,
                accumulate: false,
                epilogue: Epilogue::NONE,
                parallel: false
            },
            &mut c
        ));
    }
    let bias = [0.0f32; 5];
    let short_bias = Epilogue {
        bias: Some(&bias),
        relu: false,
    };
    assert!(!gemm(
        &GemmCall {
            lhs: lhs(&a),
            m,
            k,
            rhs: &b,
            ldb: n,
            n,
            ldc: n,
            accumulate: false,
            epilogue: short_bias,
            parallel: false
        },
        &mut c
    ));
    // A convolution whose offsets reach past its input.
    let geometry = ConvRows {
        pixels: 4,
        ow: 2,
        sample_len: 8,
        row_step: 4,
        col_step: 2,
    };
    let conv = Lhs::Conv {
        data: &a[..9],
        geometry,
        k_offsets: &[0, 1, 2, 3, 4],
    };
    assert!(!gemm(
        &GemmCall {
            lhs: conv,
            m,
            k,
            rhs: &b,
            ldb: n,
            n,
            ldc: n,
            accumulate: false,
            epilogue: Epilogue::NONE,
            parallel: false
        },
        &mut c
    ));
    // Gathered rows whose furthest offset passes the end, and tables of the wrong length.
    let gather = |row_offsets, k_offsets| Lhs::Gather {
        data: &a,
        row_offsets,
        k_offsets,
    };
    let far = [0, 1, 2, a.len() - 4];
    for (rows, ks) in [
        (&far[..], &[0usize, 1, 2, 3, 4][..]),
        (&far[..3], &[0; 5][..]),
    ] {
        assert!(!gemm(
            &GemmCall {
                lhs: gather(rows, ks),
                m,
                k,
                rhs: &b,
                ldb: n,
                n,
                ldc: n,
                accumulate: false,
                epilogue: Epilogue::NONE,
                parallel: false
            },
            &mut c
        ));
    }
    super::baseline(|| {
        assert!(!gemm(
            &GemmCall {
                lhs: lhs(&a),
                m,
                k,
                rhs: &b,
                ldb: n,
                n,
                ldc: n,
                accumulate: false,
                epilogue: Epilogue::NONE,
                parallel: false
            },
            &mut c
        ));
    });
    assert!(c.iter().all(|&v| v == 1.5));
}

#[test]
fn long_sums_are_blocked_without_changing_the_epilogue() {
    if !available() {
        return;
    }
    // k = 600: three blocks of k; the bias and relu apply once, after the last.
    let case = Case {
        m: 9,
        k: 600,
        n: 18,
        ldb: 18,
        ldc: 18,
    };
    let a = values(case.m * case.k, 31);
    let b = values(case.k * case.n, 32);
    let bias = values(case.n, 33);
    let init = values(case.m * case.n, 34);
    for accumulate in [false, true] {
        let mut c = init.clone();
        let lhs = Lhs::Strided {
            data: &a,
            row_stride: case.k,
            col_stride: 1,
        };
        let epilogue = Epilogue {
            bias: Some(&bias),
            relu: true,
        };
        assert!(gemm(
            &GemmCall {
                lhs,
                m: case.m,
                k: case.k,
                rhs: &b,
                ldb: case.ldb,
                n: case.n,
                ldc: case.ldc,
                accumulate,
                epilogue,
                parallel: false
            },
            &mut c
        ));
        let start = accumulate.then_some(init.as_slice());
        let (r, s) = reference(
            &case,
            |i, kk| a[i * case.k + kk],
            &b,
            start,
            Some(&bias),
            true,
        );
        assert_close(&c, &r, &s);
    }
    // An empty sum is zero plus the bias.
    let mut c = vec![f32::NAN; 4];
    let lhs = Lhs::Strided {
        data: &[],
        row_stride: 0,
        col_stride: 1,
    };
    let epilogue = Epilogue {
        bias: Some(&bias[..2]),
        relu: false,
    };
    assert!(gemm(
        &GemmCall {
            lhs,
            m: 2,
            k: 0,
            rhs: &[],
            ldb: 2,
            n: 2,
            ldc: 2,
            accumulate: false,
            epilogue,
            parallel: false
        },
        &mut c
    ));
    assert_eq!(c, [bias[0], bias[1], bias[0], bias[1]]);
}

#[test]
fn both_walks_match_the_reference_and_each_other() {
    if !available() {
        return;
    }
    // 300 × 200 is past `SMALL_LHS` (rows outside), its first 20 rows are not (columns
    // outside); a transposed `A` (a weight gradient's `Xᵀ`) as the recurrent layers use.
    let (m, k, n) = (300usize, 200usize, 40usize);
    assert!(m * k > super::SMALL_LHS && 20 * k <= super::SMALL_LHS);
    let a = values(k * m, 41);
    let b = values(k * n, 42);
    let product = |rows: usize| {
        let mut c = vec![f32::NAN; rows * n];
        let lhs = Lhs::Strided {
            data: &a,
            row_stride: 1,
            col_stride: m,
        };
        let call = GemmCall {
            lhs,
            m: rows,
            k,
            rhs: &b,
            ldb: n,
            n,
            ldc: n,
            accumulate: false,
            epilogue: Epilogue::NONE,
            parallel: false,
        };
        assert!(gemm(&call, &mut c));
        c
    };
    let (whole, top) = (product(m), product(20));
    let case = Case {
        m,
        k,
        n,
        ldb: n,
        ldc: n,
    };
    let (r, s) = reference(&case, |i, kk| a[kk * m + i], &b, None, None, false);
    assert_close(&whole, &r, &s);
    let bits = |c: &[f32]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&top), bits(&whole[..20 * n]));
}
