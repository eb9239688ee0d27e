//! Pool paths: the backward that applies its input relu's derivative against the plain
//! backward followed by that derivative, and the 2 × 2 stride-2 max pool's own path against a
//! naive reference of the general path's rules and against the general path itself (all bit
//! for bit).

use ndarray::Array4;

use super::data;
use crate::runtime::kernels::pool::{
    general_only, pool2d_backward, pool2d_backward_with, pool2d_forward, Pool2dParams,
    PoolBackward, PoolKind, PoolPadding,
};

fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn pool_backward_through_a_relu_is_the_relu_derivative_after_the_pool() {
    let (n, h, w, c) = (3usize, 7usize, 6usize, 5usize);
    // A relu's output: about half the values are zero, and some windows are all zero.
    let mut x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 9, 1.0))
        .unwrap()
        .mapv(|v| v.max(0.0));
    x.slice_mut(ndarray::s![0, 0..2, 0..2, ..]).fill(0.0);
    for kind in [PoolKind::Max, PoolKind::Avg] {
        for (pool, stride, padding) in [
            ((2, 2), (2, 2), PoolPadding::Valid),
            ((3, 2), (2, 1), PoolPadding::Same),
        ] {
            let p = Pool2dParams {
                kind,
                pool,
                stride,
                padding,
            };
            let (oh, ow) = match padding {
                PoolPadding::Valid => ((h - pool.0) / stride.0 + 1, (w - pool.1) / stride.1 + 1),
                PoolPadding::Same => (h.div_ceil(stride.0), w.div_ceil(stride.1)),
            };
            let dy = Array4::from_shape_vec((n, oh, ow, c), data(n * oh * ow * c, 4, 1.0)).unwrap();
            let mut want = Array4::from_elem((n, h, w, c), f32::NAN);
            pool2d_backward(x.view(), dy.view(), &p, want.view_mut()).unwrap();
            // The trainer's relu derivative: `y > 0 ? d : 0`.
            ndarray::Zip::from(&mut want)
                .and(&x)
                .for_each(|d, &y| *d = if y > 0.0 { *d } else { 0.0 });
            let mut got = Array4::from_elem((n, h, w, c), f32::NAN);
            let opts = PoolBackward { relu_input: true };
            pool2d_backward_with(x.view(), dy.view(), &p, got.view_mut(), opts).unwrap();
            assert_eq!(
                bits(got.as_slice().unwrap()),
                bits(want.as_slice().unwrap()),
                "{kind:?} {pool:?} {stride:?}"
            );
            assert!(
                got.iter().any(|&v| v != 0.0),
                "the gradient is not all zero"
            );
        }
    }
}

/// The general path's rules, one window at a time: forward `−∞` then `f32::max` over the
/// window row by row; backward the maximum by `>` from the first position, the gradient to the
/// first position equal to it (the first position when it is NaN), gated by `max > 0` through a
/// relu, added to zero.
fn naive_2x2(x: &Array4<f32>, dy: &Array4<f32>, relu: bool) -> (Array4<f32>, Array4<f32>) {
    let (n, h, w, c) = x.dim();
    let (oh, ow) = (h / 2, w / 2);
    let mut y = Array4::zeros((n, oh, ow, c));
    let mut dx = Array4::zeros((n, h, w, c));
    for s in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for k in 0..c {
                    let pos =
                        [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(a, b)| (2 * oy + a, 2 * ox + b));
                    let vals = pos.map(|(i, j)| x[[s, i, j, k]]);
                    y[[s, oy, ox, k]] = vals.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    let m = vals[1..]
                        .iter()
                        .fold(vals[0], |m, &v| if v > m { v } else { m });
                    let first = if m.is_nan() {
                        0
                    } else {
                        vals.iter().position(|&v| v == m).unwrap()
                    };
                    if !relu || m > 0.0 {
                        let (i, j) = pos[first];
                        dx[[s, i, j, k]] = 0.0 + dy[[s, oy, ox, k]];
                    }
                }
            }
        }
    }
    (y, dx)
}

#[test]
fn max_pool_2x2_path_follows_the_general_rules() {
    // Odd sizes (the last row and column belong to no window), ties, signed zeros, NaN, −∞.
    let (n, h, w, c) = (2usize, 7usize, 9usize, 11usize);
    let mut x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 21, 1.0))
        .unwrap()
        .mapv(|v| (v * 4.0).round() / 4.0);
    x[[0, 0, 0, 0]] = f32::NAN;
    x[[0, 2, 3, 1]] = f32::NAN;
    x[[1, 4, 4, 2]] = f32::NEG_INFINITY;
    x[[1, 0, 0, 3]] = -0.0;
    x[[1, 0, 1, 3]] = 0.0;
    let p = Pool2dParams {
        kind: PoolKind::Max,
        pool: (2, 2),
        stride: (2, 2),
        padding: PoolPadding::Valid,
    };
    let (oh, ow) = (h / 2, w / 2);
    let mut dy = Array4::from_shape_vec((n, oh, ow, c), data(n * oh * ow * c, 22, 1.0)).unwrap();
    dy[[0, 1, 1, 4]] = -0.0;
    for relu in [false, true] {
        let (want_y, want_dx) = naive_2x2(&x, &dy, relu);
        let mut y = Array4::from_elem((n, oh, ow, c), 7.0);
        pool2d_forward(x.view(), &p, y.view_mut()).unwrap();
        assert_eq!(
            bits(y.as_slice().unwrap()),
            bits(want_y.as_slice().unwrap())
        );
        let mut dx = Array4::from_elem((n, h, w, c), 7.0);
        let opts = PoolBackward { relu_input: relu };
        pool2d_backward_with(x.view(), dy.view(), &p, dx.view_mut(), opts).unwrap();
        assert_eq!(
            bits(dx.as_slice().unwrap()),
            bits(want_dx.as_slice().unwrap()),
            "relu {relu}"
        );
    }
}

#[test]
fn max_pool_2x2_path_gives_the_general_paths_bits() {
    // Even and odd sizes, ties, signed zeros, NaN and −∞; with and without the relu gate.
    for (h, w) in [(8usize, 6usize), (7, 9)] {
        let (n, c) = (3usize, 5usize);
        let mut x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 31, 1.0))
            .unwrap()
            .mapv(|v| (v * 4.0).round() / 4.0);
        x[[0, 1, 1, 0]] = f32::NAN;
        x[[1, 2, 3, 2]] = f32::NEG_INFINITY;
        x[[2, 0, 0, 4]] = -0.0;
        x[[2, 0, 1, 4]] = 0.0;
        let p = Pool2dParams {
            kind: PoolKind::Max,
            pool: (2, 2),
            stride: (2, 2),
            padding: PoolPadding::Valid,
        };
        let (oh, ow) = (h / 2, w / 2);
        let dy = Array4::from_shape_vec((n, oh, ow, c), data(n * oh * ow * c, 32, 1.0)).unwrap();
        for relu in [false, true] {
            let run = || {
                let mut y = Array4::from_elem((n, oh, ow, c), 7.0);
                pool2d_forward(x.view(), &p, y.view_mut()).unwrap();
                let mut dx = Array4::from_elem((n, h, w, c), 7.0);
                let opts = PoolBackward { relu_input: relu };
                pool2d_backward_with(x.view(), dy.view(), &p, dx.view_mut(), opts).unwrap();
                (bits(y.as_slice().unwrap()), bits(dx.as_slice().unwrap()))
            };
            let fast = run();
            let general = general_only(run);
            assert_eq!(fast, general, "{h}x{w}, relu {relu}");
        }
    }
}
