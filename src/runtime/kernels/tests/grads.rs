//! Every backward kernel against central finite differences of its forward.

use ndarray::{Array1, Array2, Array4, ArrayD, ArrayView4, IxDyn};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::{arr, check_gradients, data};
use crate::runtime::kernels::activation::{activation_backward, activation_forward, Activation};
use crate::runtime::kernels::batch_norm::{
    batch_norm_backward, batch_norm_train_forward, BatchNormParams, BatchNormStats,
};
use crate::runtime::kernels::conv::{
    conv2d_backward, conv2d_forward, Conv2dGeometry, Conv2dGrads, Conv2dShape, ConvWorkspace,
    Padding2d,
};
use crate::runtime::kernels::dense::{dense_backward, dense_forward, DenseGrads};
use crate::runtime::kernels::dropout::{dropout_backward, dropout_forward};
use crate::runtime::kernels::embedding::{embedding_backward, embedding_forward};
use crate::runtime::kernels::layer_norm::{layer_norm_backward, layer_norm_forward};
use crate::runtime::kernels::merge::{add_backward, add_forward, concat_backward, concat_forward};
use crate::runtime::kernels::pool::{
    global_pool_backward, global_pool_forward, pool2d_backward, pool2d_forward,
    pool2d_output_shape, Pool2dParams, PoolKind, PoolPadding,
};

fn a4(shape: [usize; 4], v: &[f32]) -> Array4<f32> {
    Array4::from_shape_vec(shape, v.to_vec()).unwrap()
}

#[test]
fn conv2d_backward_matches_finite_differences() {
    let geoms = [
        Conv2dGeometry::default(),
        Conv2dGeometry {
            stride: (2, 1),
            dilation: (1, 1),
            padding: Padding2d {
                top: 0,
                bottom: 1,
                left: 1,
                right: 1,
            },
        },
        Conv2dGeometry {
            stride: (1, 2),
            dilation: (2, 1),
            padding: Padding2d {
                top: 2,
                bottom: 2,
                left: 0,
                right: 1,
            },
        },
        Conv2dGeometry {
            stride: (1, 1),
            dilation: (1, 2),
            padding: Padding2d {
                top: 1,
                bottom: 0,
                left: 2,
                right: 1,
            },
        },
    ];
    for (gi, geom) in geoms.iter().enumerate() {
        let (xs, ks) = ([2, 5, 6, 3], [3, 2, 3, 2]);
        let s = Conv2dShape::new(xs, ks, geom).unwrap();
        let ys = s.output();
        let inputs = vec![
            data(90 * 2, 1 + gi as u64, 1.0),
            data(36, 11, 0.5),
            data(2, 21, 0.5),
        ];
        let w = data(ys.iter().product(), 31, 1.0);
        let forward = |ins: &[Vec<f32>]| {
            let mut out = Array4::<f32>::zeros(ys);
            let b = Array1::from_vec(ins[2].clone());
            conv2d_forward(
                a4(xs, &ins[0]).view(),
                a4(ks, &ins[1]).view(),
                Some(b.view()),
                geom,
                &mut ConvWorkspace::new(),
                out.view_mut(),
            )
            .unwrap();
            out.into_raw_vec_and_offset().0
        };
        let (mut dx, mut dk, mut db) = (
            Array4::<f32>::zeros(xs),
            Array4::<f32>::zeros(ks),
            Array1::<f32>::zeros(2),
        );
        let grads = Conv2dGrads {
            dx: Some(dx.view_mut()),
            dkernel: dk.view_mut(),
            dbias: Some(db.view_mut()),
        };
        let dy = a4(ys, &w);
        conv2d_backward(
            a4(xs, &inputs[0]).view(),
            a4(ks, &inputs[1]).view(),
            dy.view(),
            geom,
            &mut ConvWorkspace::new(),
            grads,
        )
        .unwrap();
        // Skipping the input gradient leaves the parameter gradients bit-identical.
        let (mut dk_only, mut db_only) = (Array4::<f32>::zeros(ks), Array1::<f32>::zeros(2));
        conv2d_backward(
            a4(xs, &inputs[0]).view(),
            a4(ks, &inputs[1]).view(),
            dy.view(),
            geom,
            &mut ConvWorkspace::new(),
            Conv2dGrads {
                dx: None,
                dkernel: dk_only.view_mut(),
                dbias: Some(db_only.view_mut()),
            },
        )
        .unwrap();
        assert_eq!(dk_only, dk, "conv {gi}: dkernel without dx");
        assert_eq!(db_only, db, "conv {gi}: dbias without dx");
        let analytic = [dx, dk].map(|a| a.into_raw_vec_and_offset().0);
        let analytic = vec![analytic[0].clone(), analytic[1].clone(), db.to_vec()];
        check_gradients(&format!("conv {gi}"), &inputs, &w, &analytic, forward);
    }
}

#[test]
fn dense_backward_matches_finite_differences() {
    let inputs = vec![
        data(2 * 3 * 4, 2, 1.0),
        data(4 * 5, 3, 1.0),
        data(5, 4, 1.0),
    ];
    let w = data(30, 5, 1.0);
    let forward = |ins: &[Vec<f32>]| {
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[2, 3, 5]));
        let k = Array2::from_shape_vec((4, 5), ins[1].clone()).unwrap();
        dense_forward(
            arr(&[2, 3, 4], ins[0].clone()).view(),
            k.view(),
            Some(Array1::from_vec(ins[2].clone()).view()),
            out.view_mut(),
        )
        .unwrap();
        out.into_raw_vec_and_offset().0
    };
    let (mut dx, mut dk, mut db) = (
        ArrayD::<f32>::zeros(IxDyn(&[2, 3, 4])),
        Array2::<f32>::zeros((4, 5)),
        Array1::<f32>::zeros(5),
    );
    let k = Array2::from_shape_vec((4, 5), inputs[1].clone()).unwrap();
    let grads = DenseGrads {
        dx: dx.view_mut(),
        dkernel: dk.view_mut(),
        dbias: Some(db.view_mut()),
    };
    dense_backward(
        arr(&[2, 3, 4], inputs[0].clone()).view(),
        k.view(),
        arr(&[2, 3, 5], w.clone()).view(),
        grads,
    )
    .unwrap();
    let analytic = vec![
        dx.into_raw_vec_and_offset().0,
        dk.into_raw_vec_and_offset().0,
        db.to_vec(),
    ];
    check_gradients("dense", &inputs, &w, &analytic, forward);
}

/// Distinct values 0.1 apart in shuffled order, so no max window is near a tie.
fn distinct(len: usize, seed: u64) -> Vec<f32> {
    let keys = data(len, seed, 1.0);
    let mut idx: Vec<usize> = (0..len).collect();
    idx.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    let mut v = vec![0.0; len];
    for (rank, &i) in idx.iter().enumerate() {
        v[i] = rank as f32 * 0.1;
    }
    v
}

#[test]
fn pool_backward_matches_finite_differences() {
    let xs = [2, 5, 6, 2];
    for kind in [PoolKind::Max, PoolKind::Avg] {
        for (pool, stride, padding) in [
            ((2, 2), (2, 2), PoolPadding::Valid),
            ((3, 3), (2, 2), PoolPadding::Same),
            ((2, 3), (1, 2), PoolPadding::Same),
        ] {
            let p = Pool2dParams {
                kind,
                pool,
                stride,
                padding,
            };
            let ys = pool2d_output_shape(xs, &p).unwrap();
            let inputs = vec![distinct(120, 9)];
            let w = data(ys.iter().product(), 10, 1.0);
            let forward = |ins: &[Vec<f32>]| {
                let mut out = Array4::<f32>::zeros(ys);
                pool2d_forward(a4(xs, &ins[0]).view(), &p, out.view_mut()).unwrap();
                out.into_raw_vec_and_offset().0
            };
            let mut dx = Array4::<f32>::zeros(xs);
            pool2d_backward(
                a4(xs, &inputs[0]).view(),
                a4(ys, &w).view(),
                &p,
                dx.view_mut(),
            )
            .unwrap();
            check_gradients(
                &format!("{p:?}"),
                &inputs,
                &w,
                &[dx.into_raw_vec_and_offset().0],
                forward,
            );
        }
        let inputs = vec![distinct(120, 12)];
        let w = data(4, 13, 1.0);
        let forward = |ins: &[Vec<f32>]| {
            let mut out = Array2::<f32>::zeros((2, 2));
            global_pool_forward(a4(xs, &ins[0]).view(), kind, out.view_mut()).unwrap();
            out.into_raw_vec_and_offset().0
        };
        let mut dx = Array4::<f32>::zeros(xs);
        let dy = Array2::from_shape_vec((2, 2), w.clone()).unwrap();
        global_pool_backward(a4(xs, &inputs[0]).view(), dy.view(), kind, dx.view_mut()).unwrap();
        check_gradients(
            "global",
            &inputs,
            &w,
            &[dx.into_raw_vec_and_offset().0],
            forward,
        );
    }
}

#[test]
fn max_pool_ties_route_to_the_first_maximum() {
    let x = Array4::<f32>::ones((1, 2, 2, 1));
    let p = Pool2dParams {
        kind: PoolKind::Max,
        pool: (2, 2),
        stride: (2, 2),
        padding: PoolPadding::Valid,
    };
    let mut dx = Array4::<f32>::zeros((1, 2, 2, 1));
    pool2d_backward(
        x.view(),
        ArrayView4::from_shape((1, 1, 1, 1), &[5.0]).unwrap(),
        &p,
        dx.view_mut(),
    )
    .unwrap();
    assert_eq!(dx.as_slice().unwrap(), &[5.0, 0.0, 0.0, 0.0]);
}

/// Per channel, with overlapping windows (2x2, stride 1 over 3x3): ties at later positions,
/// a NaN first (it wins its window), a NaN later (it never wins) and −0 before +0.
#[test]
fn max_pool_backward_routes_per_channel_first_maximum_with_nan_and_signed_zero() {
    let nan = f32::NAN;
    // Channel 0: a plateau of 2s; channel 1: NaN first, then values; channel 2: ±0 and NaN.
    #[rustfmt::skip]
    let x = [
        1.0, nan, -0.0,   2.0, 1.0, 0.0,   2.0, 3.0, -1.0,
        2.0, 4.0, nan,    2.0, 5.0, -0.0,  0.0, 6.0, 0.0,
        0.0, 7.0, -2.0,   2.0, 8.0, 0.0,   2.0, 9.0, -0.0,
    ];
    let x = ArrayView4::from_shape((1, 3, 3, 3), &x).unwrap();
    let p = Pool2dParams {
        kind: PoolKind::Max,
        pool: (2, 2),
        stride: (1, 1),
        padding: PoolPadding::Valid,
    };
    #[rustfmt::skip]
    let dy = [
        1.0, 10.0, 100.0,   2.0, 20.0, 200.0,
        3.0, 30.0, 300.0,   4.0, 40.0, 400.0,
    ];
    let dy = ArrayView4::from_shape((1, 2, 2, 3), &dy).unwrap();
    let mut dx = Array4::<f32>::zeros((1, 3, 3, 3));
    pool2d_backward(x, dy, &p, dx.view_mut()).unwrap();
    // Windows (top-left corner): (0,0) → positions (0,0),(0,1),(1,0),(1,1), and so on.
    // ch0: (0,0): first 2 at (0,1); (0,1): (0,1); (1,0): (1,0); (1,1): (1,1).
    // ch1: (0,0): NaN first wins → (0,0); (0,1): 6 at (1,2); (1,0): 8 at (2,1); (1,1): 9 at (2,2).
    // ch2: (0,0): −0 first, +0 not greater → (0,0); (0,1): 0 at (0,1) (NaN never wins);
    //      (1,0): NaN first in its window → (1,0); (1,1): −0 at (1,1).
    #[rustfmt::skip]
    let want = [
        0.0, 10.0, 100.0,   3.0, 0.0, 200.0,   0.0, 0.0, 0.0,
        3.0, 0.0, 300.0,    4.0, 0.0, 400.0,   0.0, 20.0, 0.0,
        0.0, 0.0, 0.0,      0.0, 30.0, 0.0,    0.0, 40.0, 0.0,
    ];
    assert_eq!(dx.as_slice().unwrap(), &want);
}

#[test]
fn activation_backward_matches_finite_differences() {
    // Keep inputs away from the kinks of relu and leaky relu.
    let x: Vec<f32> = data(24, 14, 2.0)
        .iter()
        .map(|&v| if v.abs() < 0.1 { v + 0.3 } else { v })
        .collect();
    let w = data(24, 15, 1.0);
    for act in [
        Activation::Linear,
        Activation::Relu,
        Activation::LeakyRelu { alpha: 0.3 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Softmax { axis: 1 },
        Activation::Softmax { axis: 0 },
    ] {
        let forward = |ins: &[Vec<f32>]| {
            let mut out = ArrayD::<f32>::zeros(IxDyn(&[4, 6]));
            activation_forward(act, arr(&[4, 6], ins[0].clone()).view(), out.view_mut()).unwrap();
            out.into_raw_vec_and_offset().0
        };
        let xa = arr(&[4, 6], x.clone());
        let y = arr(&[4, 6], forward(std::slice::from_ref(&x)));
        let mut dx = ArrayD::<f32>::zeros(IxDyn(&[4, 6]));
        activation_backward(
            act,
            xa.view(),
            y.view(),
            arr(&[4, 6], w.clone()).view(),
            dx.view_mut(),
        )
        .unwrap();
        check_gradients(
            &format!("{act:?}"),
            std::slice::from_ref(&x),
            &w,
            &[dx.into_raw_vec_and_offset().0],
            forward,
        );
    }
}

#[test]
fn norm_backward_matches_finite_differences() {
    let shape = [3, 2, 4];
    let inputs = vec![data(24, 16, 2.0), data(4, 17, 1.0), data(4, 18, 1.0)];
    let w = data(24, 19, 1.0);
    let bn_forward = |ins: &[Vec<f32>]| {
        let (g, b) = (
            Array1::from_vec(ins[1].clone()),
            Array1::from_vec(ins[2].clone()),
        );
        let p = BatchNormParams {
            gamma: g.view(),
            beta: b.view(),
            epsilon: 1e-3,
        };
        let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
        batch_norm_train_forward(
            arr(&shape, ins[0].clone()).view(),
            &p,
            &mut BatchNormStats::default(),
            out.view_mut(),
        )
        .unwrap();
        out.into_raw_vec_and_offset().0
    };
    let (g, b) = (
        Array1::from_vec(inputs[1].clone()),
        Array1::from_vec(inputs[2].clone()),
    );
    let p = BatchNormParams {
        gamma: g.view(),
        beta: b.view(),
        epsilon: 1e-3,
    };
    let mut stats = BatchNormStats::default();
    let x = arr(&shape, inputs[0].clone());
    let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
    batch_norm_train_forward(x.view(), &p, &mut stats, out.view_mut()).unwrap();
    let (mut dx, mut dg, mut db) = (
        ArrayD::<f32>::zeros(IxDyn(&shape)),
        Array1::<f32>::zeros(4),
        Array1::<f32>::zeros(4),
    );
    batch_norm_backward(
        x.view(),
        arr(&shape, w.clone()).view(),
        &p,
        &stats,
        dx.view_mut(),
        dg.view_mut(),
        db.view_mut(),
    )
    .unwrap();
    check_gradients(
        "batch_norm",
        &inputs,
        &w,
        &[dx.into_raw_vec_and_offset().0, dg.to_vec(), db.to_vec()],
        bn_forward,
    );

    let ln_forward = |ins: &[Vec<f32>]| {
        let (g, b) = (
            Array1::from_vec(ins[1].clone()),
            Array1::from_vec(ins[2].clone()),
        );
        let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
        layer_norm_forward(
            arr(&shape, ins[0].clone()).view(),
            g.view(),
            b.view(),
            1e-3,
            out.view_mut(),
        )
        .unwrap();
        out.into_raw_vec_and_offset().0
    };
    let (mut dx, mut dg, mut db) = (
        ArrayD::<f32>::zeros(IxDyn(&shape)),
        Array1::<f32>::zeros(4),
        Array1::<f32>::zeros(4),
    );
    layer_norm_backward(
        x.view(),
        arr(&shape, w.clone()).view(),
        g.view(),
        1e-3,
        dx.view_mut(),
        dg.view_mut(),
        db.view_mut(),
    )
    .unwrap();
    check_gradients(
        "layer_norm",
        &inputs,
        &w,
        &[dx.into_raw_vec_and_offset().0, dg.to_vec(), db.to_vec()],
        ln_forward,
    );
}

#[test]
fn dropout_embedding_and_merge_backward_match_finite_differences() {
    let shape = [4, 5];
    let x = data(20, 20, 1.0);
    let w = data(20, 21, 1.0);
    let mut mask = ArrayD::<f32>::zeros(IxDyn(&shape));
    let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
    dropout_forward(
        arr(&shape, x.clone()).view(),
        0.4,
        &mut ChaCha8Rng::seed_from_u64(3),
        mask.view_mut(),
        out.view_mut(),
    )
    .unwrap();
    let forward = |ins: &[Vec<f32>]| {
        let (mut m, mut o) = (
            ArrayD::<f32>::zeros(IxDyn(&shape)),
            ArrayD::<f32>::zeros(IxDyn(&shape)),
        );
        dropout_forward(
            arr(&shape, ins[0].clone()).view(),
            0.4,
            &mut ChaCha8Rng::seed_from_u64(3),
            m.view_mut(),
            o.view_mut(),
        )
        .unwrap();
        o.into_raw_vec_and_offset().0
    };
    let mut dx = ArrayD::<f32>::zeros(IxDyn(&shape));
    dropout_backward(arr(&shape, w.clone()).view(), mask.view(), dx.view_mut()).unwrap();
    check_gradients(
        "dropout",
        std::slice::from_ref(&x),
        &w,
        &[dx.into_raw_vec_and_offset().0],
        forward,
    );

    let ids = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1i64, 0, 1, 3, 3, 1]).unwrap();
    let table = data(8, 22, 1.0);
    let w = data(12, 23, 1.0);
    let forward = |ins: &[Vec<f32>]| {
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[2, 3, 2]));
        embedding_forward(
            ids.view(),
            Array2::from_shape_vec((4, 2), ins[0].clone())
                .unwrap()
                .view(),
            out.view_mut(),
        )
        .unwrap();
        out.into_raw_vec_and_offset().0
    };
    let mut dt = Array2::<f32>::zeros((4, 2));
    embedding_backward(ids.view(), arr(&[2, 3, 2], w.clone()).view(), dt.view_mut()).unwrap();
    check_gradients(
        "embedding",
        &[table],
        &w,
        &[dt.into_raw_vec_and_offset().0],
        forward,
    );

    let inputs = vec![data(6, 24, 1.0), data(4, 25, 1.0), data(6, 26, 1.0)];
    let shapes: [&[usize]; 3] = [&[2, 3], &[2, 2], &[2, 3]];
    let w = data(16, 27, 1.0);
    let forward = |ins: &[Vec<f32>]| {
        let views: Vec<ArrayD<f32>> = ins
            .iter()
            .zip(shapes)
            .map(|(v, s)| arr(s, v.clone()))
            .collect();
        let mut cat = ArrayD::<f32>::zeros(IxDyn(&[2, 8]));
        concat_forward(
            &[views[0].view(), views[1].view(), views[2].view()],
            1,
            cat.view_mut(),
        )
        .unwrap();
        let mut sum = ArrayD::<f32>::zeros(IxDyn(&[2, 3]));
        add_forward(&[views[0].view(), views[2].view()], sum.view_mut()).unwrap();
        cat.iter().chain(sum.iter()).copied().collect()
    };
    let mut d: Vec<ArrayD<f32>> = shapes.iter().map(|s| ArrayD::zeros(IxDyn(s))).collect();
    {
        let mut views: Vec<_> = d.iter_mut().map(|a| a.view_mut()).collect();
        concat_backward(arr(&[2, 8], w[..16].to_vec()).view(), 1, &mut views).unwrap();
    }
    let mut sum_grads = [
        ArrayD::<f32>::zeros(IxDyn(&[2, 3])),
        ArrayD::<f32>::zeros(IxDyn(&[2, 3])),
    ];
    // The add's weights are the remaining zeros: extend `w` so the add contributes too.
    let mut w_all = w.clone();
    let w_add = data(6, 28, 1.0);
    w_all.extend(&w_add);
    {
        let mut views: Vec<_> = sum_grads.iter_mut().map(|a| a.view_mut()).collect();
        add_backward(arr(&[2, 3], w_add).view(), &mut views).unwrap();
    }
    d[0] += &sum_grads[0];
    d[2] += &sum_grads[1];
    let analytic: Vec<Vec<f32>> = d
        .into_iter()
        .map(|a| a.into_raw_vec_and_offset().0)
        .collect();
    check_gradients("concat+add", &inputs, &w_all, &analytic, forward);
}
