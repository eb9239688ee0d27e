//! Forward kernels on small cases worked out by hand, and refusals of bad calls.

use ndarray::{arr1, arr2, Array2, Array4, ArrayD, IxDyn};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::{arr, assert_close};
use crate::runtime::kernels::activation::{activation_forward, Activation};
use crate::runtime::kernels::batch_norm::{
    batch_norm_inference, batch_norm_update_moving, BatchNormParams, BatchNormStats,
};
use crate::runtime::kernels::conv::{conv2d_forward, same_padding, Conv2dGeometry, ConvWorkspace};
use crate::runtime::kernels::dense::dense_forward;
use crate::runtime::kernels::dropout::dropout_forward;
use crate::runtime::kernels::embedding::{embedding_backward, embedding_forward};
use crate::runtime::kernels::merge::{add_forward, concat_forward};
use crate::runtime::kernels::pool::{
    global_pool_forward, pool2d_forward, Pool2dParams, PoolKind, PoolPadding,
};
use crate::runtime::kernels::rnn::{rnn_forward, RnnCache, RnnCell, RnnParams};
use crate::runtime::kernels::KernelError;

#[test]
fn same_padding_puts_the_odd_pixel_after() {
    assert_eq!(same_padding(5, 3, 1, 1).unwrap(), (1, 1));
    assert_eq!(same_padding(6, 3, 2, 1).unwrap(), (0, 1));
    assert_eq!(same_padding(7, 2, 2, 1).unwrap(), (0, 1));
    assert_eq!(same_padding(5, 3, 1, 2).unwrap(), (2, 2));
    assert_eq!(same_padding(4, 1, 2, 1).unwrap(), (0, 0));
    assert!(same_padding(4, 3, 0, 1).is_err());
}

#[test]
fn conv2d_sums_each_window_plus_bias() {
    let x = Array4::from_shape_vec((1, 3, 3, 1), (1..=9).map(|v| v as f32).collect()).unwrap();
    let k = Array4::<f32>::ones((2, 2, 1, 1));
    let mut out = Array4::<f32>::zeros((1, 2, 2, 1));
    let mut ws = ConvWorkspace::new();
    conv2d_forward(
        x.view(),
        k.view(),
        Some(arr1(&[0.5]).view()),
        &Conv2dGeometry::default(),
        &mut ws,
        out.view_mut(),
    )
    .unwrap();
    assert_eq!(out.as_slice().unwrap(), &[12.5, 16.5, 24.5, 28.5]);
}

#[test]
fn conv2d_refuses_mismatched_channels_and_strided_views() {
    let x = Array4::<f32>::zeros((1, 4, 4, 2));
    let k = Array4::<f32>::zeros((3, 3, 3, 1));
    let mut out = Array4::<f32>::zeros((1, 2, 2, 1));
    let mut ws = ConvWorkspace::new();
    let err = conv2d_forward(
        x.view(),
        k.view(),
        None,
        &Conv2dGeometry::default(),
        &mut ws,
        out.view_mut(),
    );
    assert!(matches!(err, Err(KernelError::Shape { .. })), "{err:?}");
    let k = Array4::<f32>::zeros((3, 3, 2, 1));
    let wide = Array4::<f32>::zeros((1, 4, 8, 2));
    let strided = wide.slice_axis(ndarray::Axis(2), ndarray::Slice::new(0, None, 2));
    let err = conv2d_forward(
        strided,
        k.view(),
        None,
        &Conv2dGeometry::default(),
        &mut ws,
        out.view_mut(),
    );
    assert!(matches!(err, Err(KernelError::Layout { .. })), "{err:?}");
    let big_k = Array4::<f32>::zeros((5, 5, 2, 1));
    let err = conv2d_forward(
        x.view(),
        big_k.view(),
        None,
        &Conv2dGeometry::default(),
        &mut ws,
        out.view_mut(),
    );
    assert!(matches!(err, Err(KernelError::Param { .. })), "{err:?}");
}

#[test]
fn dense_applies_kernel_and_bias_on_last_axis() {
    let x = arr(&[1, 1, 2], vec![1.0, 2.0]);
    let k = arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[1, 1, 3]));
    dense_forward(
        x.view(),
        k.view(),
        Some(arr1(&[1.0, 1.0, 1.0]).view()),
        out.view_mut(),
    )
    .unwrap();
    assert_eq!(out.as_slice().unwrap(), &[10.0, 13.0, 16.0]);
    let mut wrong = ArrayD::<f32>::zeros(IxDyn(&[1, 1, 2]));
    assert!(dense_forward(x.view(), k.view(), None, wrong.view_mut()).is_err());
}

#[test]
fn pools_by_hand_including_same_padding_excluded_from_average() {
    let x = Array4::from_shape_vec((1, 3, 3, 1), (1..=9).map(|v| v as f32).collect()).unwrap();
    let mut out = Array4::<f32>::zeros((1, 2, 2, 1));
    let avg = Pool2dParams {
        kind: PoolKind::Avg,
        pool: (2, 2),
        stride: (2, 2),
        padding: PoolPadding::Same,
    };
    pool2d_forward(x.view(), &avg, out.view_mut()).unwrap();
    assert_eq!(out.as_slice().unwrap(), &[3.0, 4.5, 7.5, 9.0]);
    let max = Pool2dParams {
        kind: PoolKind::Max,
        ..avg
    };
    pool2d_forward(x.view(), &max, out.view_mut()).unwrap();
    assert_eq!(out.as_slice().unwrap(), &[5.0, 6.0, 8.0, 9.0]);
    let mut g = Array2::<f32>::zeros((1, 1));
    global_pool_forward(x.view(), PoolKind::Avg, g.view_mut()).unwrap();
    assert_eq!(g[[0, 0]], 5.0);
    global_pool_forward(x.view(), PoolKind::Max, g.view_mut()).unwrap();
    assert_eq!(g[[0, 0]], 9.0);
}

#[test]
fn activations_by_hand() {
    let x = arr(&[4], vec![-1.0, 0.0, 2.0, 1.0]);
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[4]));
    let cases: [(Activation, [f32; 4]); 6] = [
        (Activation::Linear, [-1.0, 0.0, 2.0, 1.0]),
        (Activation::Relu, [0.0, 0.0, 2.0, 1.0]),
        (Activation::LeakyRelu { alpha: 0.3 }, [-0.3, 0.0, 2.0, 1.0]),
        (
            Activation::Sigmoid,
            [0.268_941_43, 0.5, 0.880_797_1, 0.731_058_6],
        ),
        (
            Activation::Tanh,
            [-0.761_594_2, 0.0, 0.964_027_6, 0.761_594_2],
        ),
        (
            Activation::Gelu,
            [-0.158_655_25, 0.0, 1.954_499_7, 0.841_344_7],
        ),
    ];
    for (act, want) in cases {
        activation_forward(act, x.view(), out.view_mut()).unwrap();
        assert_close(&format!("{act:?}"), out.as_slice().unwrap(), &want, 1e-6);
    }
    let x = arr(&[1, 3], vec![1.0, 2.0, 3.0]);
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[1, 3]));
    activation_forward(Activation::Softmax { axis: 1 }, x.view(), out.view_mut()).unwrap();
    assert_close(
        "softmax",
        out.as_slice().unwrap(),
        &[0.090_030_57, 0.244_728_48, 0.665_240_94],
        1e-6,
    );
    let huge = arr(&[2], vec![1000.0, 1000.0]);
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[2]));
    activation_forward(Activation::Softmax { axis: 0 }, huge.view(), out.view_mut()).unwrap();
    assert_eq!(out.as_slice().unwrap(), &[0.5, 0.5]);
    assert!(
        activation_forward(Activation::Softmax { axis: 1 }, huge.view(), out.view_mut()).is_err()
    );
}

#[test]
fn batch_norm_inference_and_keras_moving_update() {
    let x = arr(&[1, 2], vec![3.0, 3.0]);
    let (gamma, beta) = (arr1(&[2.0, 1.0]), arr1(&[0.5, 0.0]));
    let params = BatchNormParams {
        gamma: gamma.view(),
        beta: beta.view(),
        epsilon: 1e-3,
    };
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[1, 2]));
    batch_norm_inference(
        x.view(),
        &params,
        arr1(&[1.0, 3.0]).view(),
        arr1(&[3.0, 1.0]).view(),
        out.view_mut(),
    )
    .unwrap();
    assert_close(
        "bn",
        out.as_slice().unwrap(),
        &[2.0 * 2.0 / 3.001f32.sqrt() + 0.5, 0.0],
        1e-6,
    );
    let stats = BatchNormStats {
        mean: vec![3.0],
        var: vec![5.0],
        inv_std: vec![1.0],
    };
    let (mut mm, mut mv) = (arr1(&[1.0f32]), arr1(&[1.0f32]));
    batch_norm_update_moving(&stats, 0.99, mm.view_mut(), mv.view_mut()).unwrap();
    assert_close("moving", &[mm[0], mv[0]], &[1.02, 1.04], 1e-6);
}

#[test]
fn dropout_is_seeded_inverted_and_refuses_rate_one() {
    let x = ArrayD::<f32>::ones(IxDyn(&[100, 100]));
    let mut mask = ArrayD::<f32>::zeros(x.raw_dim());
    let mut out = ArrayD::<f32>::zeros(x.raw_dim());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    dropout_forward(x.view(), 0.25, &mut rng, mask.view_mut(), out.view_mut()).unwrap();
    let kept = out.iter().filter(|&&v| v != 0.0).count();
    assert!((7300..7700).contains(&kept), "kept {kept}");
    assert!(out
        .iter()
        .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    let mut again = ArrayD::<f32>::zeros(x.raw_dim());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    dropout_forward(x.view(), 0.25, &mut rng, mask.view_mut(), again.view_mut()).unwrap();
    assert_eq!(out, again);
    assert!(dropout_forward(x.view(), 1.0, &mut rng, mask.view_mut(), again.view_mut()).is_err());
}

#[test]
fn embedding_gathers_rows_and_rejects_bad_ids() {
    let table = arr2(&[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]);
    let ids = ArrayD::from_shape_vec(IxDyn(&[2]), vec![2i64, 0]).unwrap();
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[2, 2]));
    embedding_forward(ids.view(), table.view(), out.view_mut()).unwrap();
    assert_eq!(out.as_slice().unwrap(), &[4.0, 5.0, 0.0, 1.0]);
    for bad in [3i32, -1] {
        let ids = ArrayD::from_shape_vec(IxDyn(&[2]), vec![0i32, bad]).unwrap();
        let err = embedding_forward(ids.view(), table.view(), out.view_mut());
        assert_eq!(
            err,
            Err(KernelError::IdOutOfRange {
                id: i64::from(bad),
                position: 1,
                vocab: 3
            })
        );
    }
    let ids = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1i32, 1]).unwrap();
    let dy = arr(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let mut dtable = Array2::<f32>::from_elem((3, 2), 9.0);
    embedding_backward(ids.view(), dy.view(), dtable.view_mut()).unwrap();
    assert_eq!(dtable.as_slice().unwrap(), &[0.0, 0.0, 4.0, 6.0, 0.0, 0.0]);
}

#[test]
fn add_and_concat_by_hand() {
    let a = arr(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let b = arr(&[2, 1], vec![5.0, 6.0]);
    let mut sum = ArrayD::<f32>::zeros(IxDyn(&[2, 2]));
    add_forward(&[a.view(), a.view(), a.view()], sum.view_mut()).unwrap();
    assert_eq!(sum.as_slice().unwrap(), &[3.0, 6.0, 9.0, 12.0]);
    assert!(add_forward(&[a.view(), b.view()], sum.view_mut()).is_err());
    let mut cat = ArrayD::<f32>::zeros(IxDyn(&[2, 3]));
    concat_forward(&[a.view(), b.view()], 1, cat.view_mut()).unwrap();
    assert_eq!(cat.as_slice().unwrap(), &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    assert!(concat_forward(&[a.view(), b.view()], 0, cat.view_mut()).is_err());
}

#[test]
fn lstm_single_step_by_hand() {
    // One unit, one feature, one step, all kernel weights 1, no recurrence: z = x for all gates.
    let x = arr(&[1, 1, 1], vec![0.5])
        .into_dimensionality::<ndarray::Ix3>()
        .unwrap();
    let kernel = Array2::<f32>::ones((1, 4));
    let recurrent = Array2::<f32>::zeros((1, 4));
    let bias = ArrayD::<f32>::zeros(IxDyn(&[4]));
    let params = RnnParams {
        kernel: kernel.view(),
        recurrent: recurrent.view(),
        bias: bias.view(),
    };
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[1, 1]));
    rnn_forward(
        RnnCell::Lstm,
        x.view(),
        &params,
        false,
        &mut RnnCache::new(),
        out.view_mut(),
    )
    .unwrap();
    let s = 1.0 / (1.0 + (-0.5f64).exp());
    let c = s * 0.5f64.tanh();
    assert_close(
        "lstm",
        out.as_slice().unwrap(),
        &[(s * c.tanh()) as f32],
        1e-6,
    );
    let wrong_bias = ArrayD::<f32>::zeros(IxDyn(&[3]));
    let params = RnnParams {
        bias: wrong_bias.view(),
        ..params
    };
    assert!(rnn_forward(
        RnnCell::Lstm,
        x.view(),
        &params,
        false,
        &mut RnnCache::new(),
        out.view_mut()
    )
    .is_err());
}
