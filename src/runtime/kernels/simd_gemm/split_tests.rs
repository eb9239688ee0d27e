//! Column splits of products with too few rows to split by rows (a convolution at batch 1, a
//! first layer's weight gradient): the same bits as one thread for every thread count, with
//! bias, relu, accumulation and a strided `C` whose padding stays untouched, and the product
//! against an f64 reference. Splits run on the intra-op pool: many in a row (the workers
//! spinning between them) give the serial bits each time.

use super::tests::{assert_close, values};
use super::{available, gemm, Epilogue, GemmCall, Lhs, COLUMN_SPLIT_MIN_WORK};

#[test]
fn column_splits_of_few_row_products_give_the_same_bits() {
    if !available() {
        return;
    }
    // Nine rows (under two tiles: split by columns), columns not a multiple of the tile, a
    // long sum, with bias and relu, written fresh and accumulated into a strided `C`.
    let (m, k, n, ldc) = (9usize, 520usize, 88usize, 97usize);
    assert!(m * k * n >= COLUMN_SPLIT_MIN_WORK);
    let a = values(m * k, 31);
    let b = values(k * n, 32);
    let bias = values(n, 33);
    let old = values(m * ldc, 34);
    let run = |parallel: bool, accumulate: bool, relu: bool| {
        let mut c = old.clone();
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
                ldc,
                accumulate,
                epilogue: Epilogue {
                    bias: Some(&bias),
                    relu
                },
                parallel
            },
            &mut c
        ));
        c.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    for (accumulate, relu) in [(false, false), (true, true), (false, true)] {
        let serial = run(false, accumulate, relu);
        // The padding columns between rows of `C` are untouched.
        for i in 0..m {
            for j in n..ldc {
                assert_eq!(serial[i * ldc + j], old[i * ldc + j].to_bits());
            }
        }
        for threads in [2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap_or_else(|e| panic!("pool: {e}"));
            let split = pool.install(|| run(true, accumulate, relu));
            assert_eq!(split, serial, "{threads} threads, accumulate {accumulate}");
        }
    }
    // And the product itself against the f64 reference.
    let mut c = vec![0.0f32; m * n];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap_or_else(|e| panic!("pool: {e}"));
    pool.install(|| {
        assert!(gemm(
            &GemmCall {
                lhs: Lhs::Strided {
                    data: &a,
                    row_stride: k,
                    col_stride: 1
                },
                m,
                k,
                rhs: &b,
                ldb: n,
                n,
                ldc: n,
                accumulate: false,
                epilogue: Epilogue::NONE,
                parallel: true
            },
            &mut c
        ));
    });
    for i in 0..m {
        for j in 0..n {
            let sum: f64 = (0..k)
                .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                .sum();
            let mag: f64 = (0..k)
                .map(|p| (f64::from(a[i * k + p]) * f64::from(b[p * n + j])).abs())
                .sum();
            assert_close(&c[i * n + j..=i * n + j], &[sum], &[mag]);
        }
    }
}

/// One product of the seed CNN's batch-1 shapes as `C` bits, split (`parallel`) or not.
fn product_bits(m: usize, k: usize, n: usize, parallel: bool) -> Vec<u32> {
    let a = values(m * k, 41);
    let b = values(k * n, 42);
    let bias = values(n, 43);
    let mut c = vec![0.0f32; m * n];
    let call = GemmCall {
        lhs: Lhs::Strided {
            data: &a,
            row_stride: k,
            col_stride: 1,
        },
        m,
        k,
        rhs: &b,
        ldb: n,
        n,
        ldc: n,
        accumulate: false,
        epilogue: Epilogue {
            bias: Some(&bias),
            relu: true,
        },
        parallel,
    };
    assert!(gemm(&call, &mut c));
    c.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn pool_splits_call_after_call_give_the_serial_bits() {
    if !available() {
        return;
    }
    // The second conv's product (121 rows, 100 when cropped for its pool: split by rows) and
    // the third's (9 rows, 4 cropped: by columns), as a batch-1 forward pass runs them.
    let shapes = [
        (121usize, 288usize, 64usize),
        (100, 288, 64),
        (9, 576, 128),
        (4, 576, 128),
    ];
    const { assert!(100 * 288 * 64 >= super::PARALLEL_MIN_WORK) };
    const { assert!(4 * 576 * 128 >= COLUMN_SPLIT_MIN_WORK) };
    let serial: Vec<Vec<u32>> = shapes
        .iter()
        .map(|&(m, k, n)| product_bits(m, k, n, false))
        .collect();
    for threads in [2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        pool.install(|| {
            let before = crate::runtime::pool::worker_parts();
            for round in 0..300 {
                for (&(m, k, n), want) in shapes.iter().zip(&serial) {
                    let got = product_bits(m, k, n, true);
                    assert!(
                        got == *want,
                        "{m}x{k}x{n}, round {round}, {threads} threads"
                    );
                }
            }
            assert!(
                crate::runtime::pool::worker_parts() > before,
                "the workers took parts"
            );
        });
    }
}
