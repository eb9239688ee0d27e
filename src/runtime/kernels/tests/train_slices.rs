//! Training kernels that split the batch (or rows) between the pool's threads: the conv input
//! gradient by slices of col2im, the whole-batch weight gradient, layer norm and the 2×2 max
//! pool backward. Each against an independent f64 reference, and bit for bit the same on 1, 2
//! and 3 threads.

use ndarray::{Array1, Array4, ArrayD, IxDyn};

use super::data;
use crate::runtime::kernels::conv::{conv2d_backward, Conv2dGeometry, Conv2dGrads, ConvWorkspace};
use crate::runtime::kernels::layer_norm::{layer_norm_backward, layer_norm_forward};
use crate::runtime::kernels::pool::{pool2d_backward, Pool2dParams, PoolKind, PoolPadding};

fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

/// `f` run on pools of 1, 2 and 3 threads: the results, which must agree bit for bit.
fn on_every_pool(f: impl Fn() -> Vec<Vec<f32>> + Sync) -> Vec<Vec<f32>> {
    let mut first: Option<Vec<Vec<f32>>> = None;
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let got = pool.install(&f);
        match &first {
            None => first = Some(got),
            Some(want) => {
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert_eq!(bits(g), bits(w), "output {i} on {threads} threads");
                }
            }
        }
    }
    first.unwrap()
}

fn close(name: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= tol * (1.0 + w.abs()),
            "{name}[{i}]: got {g}, want {w}"
        );
    }
}

#[test]
fn conv_gradients_by_slices_match_a_direct_reference() {
    // A valid 3×3 convolution whose input gradient goes through col2im (the direct form would
    // multiply too many zeros), large enough to be sliced.
    let (n, h, w, c, o) = (12usize, 13usize, 11usize, 8usize, 16usize);
    let (oh, ow) = (h - 2, w - 2);
    let x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 71, 1.0)).unwrap();
    let k = Array4::from_shape_vec((3, 3, c, o), data(9 * c * o, 72, 0.5)).unwrap();
    let dy = Array4::from_shape_vec((n, oh, ow, o), data(n * oh * ow * o, 73, 1.0)).unwrap();
    let geom = Conv2dGeometry::default();
    let got = on_every_pool(|| {
        let mut dx = Array4::from_elem((n, h, w, c), f32::NAN);
        let mut dk = Array4::from_elem((3, 3, c, o), f32::NAN);
        let mut db = Array1::from_elem(o, f32::NAN);
        let mut ws = ConvWorkspace::new();
        let grads = Conv2dGrads {
            dx: Some(dx.view_mut()),
            dkernel: dk.view_mut(),
            dbias: Some(db.view_mut()),
        };
        conv2d_backward(x.view(), k.view(), dy.view(), &geom, &mut ws, grads).unwrap();
        vec![
            dx.into_raw_vec_and_offset().0,
            dk.into_raw_vec_and_offset().0,
        ]
    });
    let (mut dx, mut dk) = (vec![0f64; n * h * w * c], vec![0f64; 9 * c * o]);
    for s in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..3 {
                    for kx in 0..3 {
                        for ci in 0..c {
                            for co in 0..o {
                                let g = f64::from(dy[[s, oy, ox, co]]);
                                dx[((s * h + oy + ky) * w + ox + kx) * c + ci] +=
                                    g * f64::from(k[[ky, kx, ci, co]]);
                                dk[((ky * 3 + kx) * c + ci) * o + co] +=
                                    g * f64::from(x[[s, oy + ky, ox + kx, ci]]);
                            }
                        }
                    }
                }
            }
        }
    }
    close("dx", &got[0], &dx, 1e-5);
    close("dkernel", &got[1], &dk, 1e-5);
}

#[test]
fn layer_norm_rows_split_between_threads_match_the_formula() {
    let (rows, d, eps) = (700usize, 64usize, 1e-3f32);
    let x = ArrayD::from_shape_vec(IxDyn(&[7, 100, d]), data(rows * d, 81, 2.0)).unwrap();
    let dy = ArrayD::from_shape_vec(IxDyn(&[7, 100, d]), data(rows * d, 82, 1.0)).unwrap();
    let gamma = Array1::from_vec(data(d, 83, 1.0));
    let beta = Array1::from_vec(data(d, 84, 1.0));
    let got = on_every_pool(|| {
        let mut y = ArrayD::from_elem(IxDyn(&[7, 100, d]), f32::NAN);
        let mut dx = ArrayD::from_elem(IxDyn(&[7, 100, d]), f32::NAN);
        let (mut dg, mut db) = (
            Array1::from_elem(d, f32::NAN),
            Array1::from_elem(d, f32::NAN),
        );
        layer_norm_forward(x.view(), gamma.view(), beta.view(), eps, y.view_mut()).unwrap();
        layer_norm_backward(
            x.view(),
            dy.view(),
            gamma.view(),
            eps,
            dx.view_mut(),
            dg.view_mut(),
            db.view_mut(),
        )
        .unwrap();
        [y, dx]
            .into_iter()
            .map(|a| a.into_raw_vec_and_offset().0)
            .chain([dg.to_vec(), db.to_vec()])
            .collect()
    });
    let (xs, gs) = (x.as_slice().unwrap(), dy.as_slice().unwrap());
    let (mut y, mut dx) = (vec![0f64; rows * d], vec![0f64; rows * d]);
    let (mut dg, mut db) = (vec![0f64; d], vec![0f64; d]);
    for r in 0..rows {
        let row = &xs[r * d..(r + 1) * d];
        let g = &gs[r * d..(r + 1) * d];
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64;
        let var = row
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / d as f64;
        let inv = 1.0 / (var + f64::from(eps)).sqrt();
        let xhat: Vec<f64> = row.iter().map(|&v| (f64::from(v) - mean) * inv).collect();
        // dx = inv/D · (D·gγ − Σgγ − x̂·Σ(gγ·x̂))
        let gg: Vec<f64> = (0..d)
            .map(|k| f64::from(g[k]) * f64::from(gamma[k]))
            .collect();
        let (sg, sgx) = (
            gg.iter().sum::<f64>(),
            (0..d).map(|k| gg[k] * xhat[k]).sum::<f64>(),
        );
        for k in 0..d {
            y[r * d + k] = f64::from(gamma[k]) * xhat[k] + f64::from(beta[k]);
            dx[r * d + k] = inv / d as f64 * (d as f64 * gg[k] - sg - xhat[k] * sgx);
            dg[k] += f64::from(g[k]) * xhat[k];
            db[k] += f64::from(g[k]);
        }
    }
    close("y", &got[0], &y, 1e-5);
    close("dx", &got[1], &dx, 1e-4);
    close("dgamma", &got[2], &dg, 1e-5);
    close("dbeta", &got[3], &db, 1e-5);
}

#[test]
fn max_pool_backward_by_slices_routes_each_gradient_to_its_maximum() {
    // Odd height and width: the last row and column of each sample get no gradient.
    let (n, h, w, c) = (20usize, 13usize, 13usize, 32usize);
    let x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 91, 1.0)).unwrap();
    let dy = Array4::from_shape_vec((n, 6, 6, c), data(n * 36 * c, 92, 1.0)).unwrap();
    let p = Pool2dParams {
        kind: PoolKind::Max,
        pool: (2, 2),
        stride: (2, 2),
        padding: PoolPadding::Valid,
    };
    let got = on_every_pool(|| {
        let mut dx = Array4::from_elem((n, h, w, c), f32::NAN);
        pool2d_backward(x.view(), dy.view(), &p, dx.view_mut()).unwrap();
        vec![dx.into_raw_vec_and_offset().0]
    });
    let mut want = vec![0f64; n * h * w * c];
    for s in 0..n {
        for oy in 0..6 {
            for ox in 0..6 {
                for ch in 0..c {
                    let mut best = (2 * oy, 2 * ox);
                    for (iy, ix) in [(0, 1), (1, 0), (1, 1)] {
                        let (iy, ix) = (2 * oy + iy, 2 * ox + ix);
                        if x[[s, iy, ix, ch]] > x[[s, best.0, best.1, ch]] {
                            best = (iy, ix);
                        }
                    }
                    want[((s * h + best.0) * w + best.1) * c + ch] = f64::from(dy[[s, oy, ox, ch]]);
                }
            }
        }
    }
    close("dx", &got[0], &want, 0.0);
}
