//! Convolution rows (`Lhs::Conv`) walked from tile to tile: a product large enough for the
//! row-outside loop, with `k` over several blocks, row tiles of five and six rows crossing
//! output rows and samples, against an f64 direct convolution, and the same bits when the rows
//! are split between threads (a split starts the walk in the middle of a sample).

use super::tests::{assert_close, values};
use super::{available, gemm, ConvRows, Epilogue, GemmCall, Lhs, KC, PARALLEL_MIN_WORK};

#[test]
fn convolution_rows_walked_across_tiles_blocks_and_splits() {
    if !available() {
        return;
    }
    // Three samples of a 9 × 7 × 40 input, 3 × 3 kernel, stride (1, 2): 7 × 3 output pixels
    // per sample, 63 rows (not a multiple of six), k = 360 (two blocks).
    let (n, h, w, ch) = (3usize, 9usize, 7usize, 40usize);
    let (kh, kw, o) = (3usize, 3usize, 100usize);
    let (sh, sw) = (1usize, 2usize);
    let (oh, ow) = ((h - kh) / sh + 1, (w - kw) / sw + 1);
    let (m, k) = (n * oh * ow, kh * kw * ch);
    assert!(k > KC && m % 6 != 0 && m * k * o >= PARALLEL_MIN_WORK);
    let x = values(n * h * w * ch, 41);
    let kernel = values(k * o, 42);
    let bias = values(o, 43);
    let k_offsets: Vec<usize> = (0..kh)
        .flat_map(|ky| (0..kw).flat_map(move |kx| (0..ch).map(move |ci| (ky * w + kx) * ch + ci)))
        .collect();
    let geometry = ConvRows {
        pixels: oh * ow,
        ow,
        sample_len: h * w * ch,
        row_step: sh * w * ch,
        col_step: sw * ch,
    };
    let run = |parallel: bool| {
        let mut out = vec![f32::NAN; m * o];
        assert!(gemm(
            &GemmCall {
                lhs: Lhs::Conv {
                    data: &x,
                    geometry,
                    k_offsets: &k_offsets,
                },
                m,
                k,
                rhs: &kernel,
                ldb: o,
                n: o,
                ldc: o,
                accumulate: false,
                epilogue: Epilogue {
                    bias: Some(&bias),
                    relu: false,
                },
                parallel,
            },
            &mut out
        ));
        out
    };
    let serial = run(false);
    for s in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let i = (s * oh + oy) * ow + ox;
                let (mut sums, mut mags) = (vec![0.0f64; o], vec![0.0f64; o]);
                for (co, (sum, mag)) in sums.iter_mut().zip(&mut mags).enumerate() {
                    *sum = f64::from(bias[co]);
                    *mag = sum.abs();
                    for ky in 0..kh {
                        for kx in 0..kw {
                            for ci in 0..ch {
                                let (iy, ix) = (oy * sh + ky, ox * sw + kx);
                                let xv = x[((s * h + iy) * w + ix) * ch + ci];
                                let kv = kernel[((ky * kw + kx) * ch + ci) * o + co];
                                let p = f64::from(xv) * f64::from(kv);
                                *sum += p;
                                *mag += p.abs();
                            }
                        }
                    }
                }
                assert_close(&serial[i * o..(i + 1) * o], &sums, &mags);
            }
        }
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for threads in [2, 3, 4] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        assert_eq!(
            bits(&pool.install(|| run(true))),
            bits(&serial),
            "{threads} threads"
        );
    }
}
