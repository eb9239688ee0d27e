//! Forward kernels against outputs of the numpy reference (tests/fixtures/kernels/make_fixtures.py).

use ndarray::{ArrayD, Ix1, Ix2, Ix3, Ix4, IxDyn};
use serde_json::Value;

use super::{arr, assert_close};
use crate::runtime::kernels::activation::{activation_forward, Activation};
use crate::runtime::kernels::batch_norm::{
    batch_norm_train_forward, BatchNormParams, BatchNormStats,
};
use crate::runtime::kernels::conv::{
    conv2d_forward, same_padding, Conv2dGeometry, ConvWorkspace, Padding2d,
};
use crate::runtime::kernels::layer_norm::layer_norm_forward;
use crate::runtime::kernels::pool::{
    pool2d_forward, pool2d_output_shape, Pool2dParams, PoolKind, PoolPadding,
};
use crate::runtime::kernels::rnn::{rnn_forward, RnnCache, RnnCell, RnnParams};

fn load() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kernels/kernels.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensor(case: &Value, name: &str) -> ArrayD<f32> {
    let t = &case[name];
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = t["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    arr(&shape, data)
}

fn pair(v: &Value) -> (usize, usize) {
    (
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    )
}

#[test]
fn conv2d_matches_numpy_for_every_padding_stride_dilation_mix() {
    let all = load();
    let mut ws = ConvWorkspace::new();
    let mut seen = 0;
    for (name, case) in all
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("conv_"))
    {
        let x = tensor(case, "x").into_dimensionality::<Ix4>().unwrap();
        let k = tensor(case, "kernel").into_dimensionality::<Ix4>().unwrap();
        let b = tensor(case, "bias").into_dimensionality::<Ix1>().unwrap();
        let want = tensor(case, "y");
        let p = &case["params"];
        let (stride, dilation) = (pair(&p["stride"]), pair(&p["dilation"]));
        let padding = if p["padding"] == "same" {
            let (top, bottom) = same_padding(x.dim().1, k.dim().0, stride.0, dilation.0).unwrap();
            let (left, right) = same_padding(x.dim().2, k.dim().1, stride.1, dilation.1).unwrap();
            Padding2d {
                top,
                bottom,
                left,
                right,
            }
        } else {
            Padding2d::default()
        };
        let geom = Conv2dGeometry {
            stride,
            dilation,
            padding,
        };
        let mut out = ArrayD::<f32>::zeros(IxDyn(want.shape()))
            .into_dimensionality::<Ix4>()
            .unwrap();
        conv2d_forward(
            x.view(),
            k.view(),
            Some(b.view()),
            &geom,
            &mut ws,
            out.view_mut(),
        )
        .unwrap();
        assert_close(
            name,
            out.as_slice().unwrap(),
            want.as_slice().unwrap(),
            1e-5,
        );
        seen += 1;
    }
    assert_eq!(seen, 9);
}

#[test]
fn pools_match_numpy() {
    let all = load();
    let mut seen = 0;
    for (name, case) in all
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("pool_"))
    {
        let x = tensor(case, "x").into_dimensionality::<Ix4>().unwrap();
        let want = tensor(case, "y");
        let p = &case["params"];
        let params = Pool2dParams {
            kind: if p["kind"] == "max" {
                PoolKind::Max
            } else {
                PoolKind::Avg
            },
            pool: pair(&p["pool"]),
            stride: pair(&p["stride"]),
            padding: if p["padding"] == "same" {
                PoolPadding::Same
            } else {
                PoolPadding::Valid
            },
        };
        let shape =
            pool2d_output_shape([x.dim().0, x.dim().1, x.dim().2, x.dim().3], &params).unwrap();
        assert_eq!(&shape[..], want.shape(), "{name}");
        let mut out = ndarray::Array4::<f32>::zeros(shape);
        pool2d_forward(x.view(), &params, out.view_mut()).unwrap();
        assert_close(
            name,
            out.as_slice().unwrap(),
            want.as_slice().unwrap(),
            1e-6,
        );
        seen += 1;
    }
    assert_eq!(seen, 7);
}

#[test]
fn recurrent_layers_match_numpy_sequences() {
    let all = load();
    for (name, cell) in [
        ("simple_rnn", RnnCell::SimpleRnn),
        ("lstm", RnnCell::Lstm),
        ("gru", RnnCell::Gru),
    ] {
        let case = &all[name];
        let x = tensor(case, "x").into_dimensionality::<Ix3>().unwrap();
        let kernel = tensor(case, "kernel").into_dimensionality::<Ix2>().unwrap();
        let recurrent = tensor(case, "recurrent")
            .into_dimensionality::<Ix2>()
            .unwrap();
        let bias = tensor(case, "bias");
        let want = tensor(case, "y").into_dimensionality::<Ix3>().unwrap();
        let params = RnnParams {
            kernel: kernel.view(),
            recurrent: recurrent.view(),
            bias: bias.view(),
        };
        let mut cache = RnnCache::new();
        let mut seq = ArrayD::<f32>::zeros(IxDyn(want.shape()));
        rnn_forward(cell, x.view(), &params, true, &mut cache, seq.view_mut()).unwrap();
        assert_close(
            name,
            seq.as_slice().unwrap(),
            want.as_slice().unwrap(),
            1e-5,
        );
        let (n, t, u) = want.dim();
        let mut last = ArrayD::<f32>::zeros(IxDyn(&[n, u]));
        rnn_forward(cell, x.view(), &params, false, &mut cache, last.view_mut()).unwrap();
        let want_last = want.index_axis(ndarray::Axis(1), t - 1).to_owned();
        assert_close(
            name,
            last.as_slice().unwrap(),
            want_last.as_slice().unwrap(),
            1e-5,
        );
    }
}

#[test]
fn gelu_softmax_and_norms_match_numpy() {
    let all = load();
    let case = &all["activations"];
    let x = tensor(case, "x");
    let mut out = ArrayD::<f32>::zeros(x.raw_dim());
    activation_forward(Activation::Gelu, x.view(), out.view_mut()).unwrap();
    assert_close(
        "gelu",
        out.as_slice().unwrap(),
        tensor(case, "gelu").as_slice().unwrap(),
        1e-6,
    );
    activation_forward(Activation::Softmax { axis: 0 }, x.view(), out.view_mut()).unwrap();
    assert_close(
        "softmax",
        out.as_slice().unwrap(),
        tensor(case, "softmax_axis0").as_slice().unwrap(),
        1e-6,
    );

    let case = &all["norms"];
    let x = tensor(case, "x");
    let gamma = tensor(case, "gamma").into_dimensionality::<Ix1>().unwrap();
    let beta = tensor(case, "beta").into_dimensionality::<Ix1>().unwrap();
    let mut out = ArrayD::<f32>::zeros(x.raw_dim());
    let params = BatchNormParams {
        gamma: gamma.view(),
        beta: beta.view(),
        epsilon: 1e-3,
    };
    let mut stats = BatchNormStats::default();
    batch_norm_train_forward(x.view(), &params, &mut stats, out.view_mut()).unwrap();
    assert_close(
        "batch_norm",
        out.as_slice().unwrap(),
        tensor(case, "batch_norm").as_slice().unwrap(),
        1e-5,
    );
    assert_close(
        "batch_mean",
        &stats.mean,
        tensor(case, "batch_mean").as_slice().unwrap(),
        1e-6,
    );
    assert_close(
        "batch_var",
        &stats.var,
        tensor(case, "batch_var").as_slice().unwrap(),
        1e-5,
    );
    layer_norm_forward(x.view(), gamma.view(), beta.view(), 1e-3, out.view_mut()).unwrap();
    assert_close(
        "layer_norm",
        out.as_slice().unwrap(),
        tensor(case, "layer_norm").as_slice().unwrap(),
        1e-5,
    );
}
