//! The IR verifier's entry points apply the checker's rules: hand-made facts and parameter
//! tables, accepted and refused.

use super::op::{Activation, Op, Window};
use super::param::{ParamId, ParamRef};
use super::types::{DType, Dim, Fact, Padding, RnnCell};

fn f32s(dims: &[usize]) -> Fact {
    let mut d = vec![Dim::Symbol("N".into())];
    d.extend(dims.iter().map(|&n| Dim::Known(n)));
    Fact::new(DType::F32, d)
}

fn p<'a>(name: &'a str, shape: &'a [usize]) -> ParamRef<'a> {
    ParamRef { name, shape }
}

const WINDOW: Window = Window {
    size: [3, 3],
    strides: [1, 1],
    dilation: [1, 1],
    padding: Padding::Valid,
};

fn conv(bias: bool) -> Op {
    Op::Conv2d {
        filters: 8,
        window: WINDOW,
        kernel: ParamId(0),
        bias: bias.then_some(ParamId(1)),
        activation: Activation::Relu,
    }
}

#[test]
fn conv2d_checks_its_output_and_its_kernel_shape() {
    let x = f32s(&[28, 28, 1]);
    let ok = conv(true).infer(&[&x], &[p("k", &[3, 3, 1, 8]), p("b", &[8])]);
    assert_eq!(ok, Ok(f32s(&[26, 26, 8])));
    let wrong = conv(true).infer(&[&x], &[p("k", &[3, 3, 2, 8]), p("b", &[8])]);
    assert_eq!(
        wrong,
        Err("parameter k has shape [3, 3, 2, 8], expected [3, 3, 1, 8]".to_string())
    );
    let missing_bias = conv(true).infer(&[&x], &[p("k", &[3, 3, 1, 8])]);
    assert_eq!(
        missing_bias,
        Err("has 1 parameters, expected 2".to_string())
    );
    let too_small = conv(false).infer(&[&f32s(&[2, 28, 1])], &[p("k", &[3, 3, 1, 8])]);
    assert!(too_small.unwrap_err().contains("does not fit"));
}

#[test]
fn merges_need_exactly_equal_facts_and_a_non_batch_concat_axis() {
    let (a, b) = (f32s(&[4, 3]), f32s(&[4, 5]));
    assert_eq!(Op::Add.infer(&[&a, &a], &[]), Ok(a.clone()));
    assert!(Op::Add.infer(&[&a, &b], &[]).is_err());
    assert!(Op::Add.infer(&[&a], &[]).is_err());
    let concat = |axis| Op::Concat { axis };
    assert_eq!(concat(-1).infer(&[&a, &b], &[]), Ok(f32s(&[4, 8])));
    assert_eq!(concat(2).infer(&[&a, &b], &[]), Ok(f32s(&[4, 8])));
    assert!(concat(1).infer(&[&a, &b], &[]).is_err()); // 3 ≠ 5 off the axis
    assert!(concat(0).infer(&[&a, &a], &[]).is_err()); // the batch axis
                                                       // An IR graph has no symbols left to bind: N and M differ.
    let mut m = a.clone();
    m.dims[0] = Dim::Symbol("M".into());
    assert!(Op::Add.infer(&[&a, &m], &[]).is_err());
}

#[test]
fn reshape_resolves_one_free_dim_and_keeps_the_count() {
    let x = f32s(&[4, 6]);
    let r = |shape: Vec<i64>| Op::Reshape { shape }.infer(&[&x], &[]);
    assert_eq!(r(vec![2, -1]), Ok(f32s(&[2, 12])));
    assert_eq!(r(vec![24]), Ok(f32s(&[24])));
    assert!(r(vec![5, -1]).is_err());
    assert!(r(vec![-1, -1]).is_err());
    assert!(r(vec![0, 24]).is_err());
    assert_eq!(Op::Flatten.infer(&[&x], &[]), Ok(f32s(&[24])));
}

#[test]
fn dropout_rates_and_embedding_tables_from_untrusted_plans() {
    let x = f32s(&[4]);
    assert_eq!(Op::Dropout { rate: 0.5 }.infer(&[&x], &[]), Ok(x.clone()));
    assert!(Op::Dropout { rate: 1.0 }.infer(&[&x], &[]).is_err());
    assert!(Op::Dropout { rate: f32::NAN }.infer(&[&x], &[]).is_err());
    let ids = Fact::new(DType::I64, vec![Dim::Symbol("N".into()), Dim::Known(7)]);
    let e = Op::Embedding { table: ParamId(0) };
    assert_eq!(e.infer(&[&ids], &[p("t", &[100, 16])]), Ok(f32s(&[7, 16])));
    assert!(e.infer(&[&ids], &[p("t", &[100])]).is_err());
    assert!(e.infer(&[&x], &[p("t", &[100, 16])]).is_err()); // floats are not ids
}

#[test]
fn recurrent_layers_over_features_and_over_token_ids() {
    let x = f32s(&[5, 3]);
    let lstm = Op::Rnn {
        cell: RnnCell::Lstm,
        units: 4,
        return_sequences: false,
        options: crate::ops::recurrent::RnnOptions::default(),
        kernel: ParamId(0),
        recurrent: ParamId(1),
        bias: ParamId(2),
    };
    let params = [p("k", &[3, 16]), p("r", &[4, 16]), p("b", &[16])];
    assert_eq!(lstm.infer(&[&x], &params), Ok(f32s(&[4])));
    let gru_bias = [p("k", &[3, 12]), p("r", &[4, 12]), p("b", &[2, 12])];
    let gru = Op::Rnn {
        cell: RnnCell::Gru,
        units: 4,
        return_sequences: true,
        options: crate::ops::recurrent::RnnOptions::default(),
        kernel: ParamId(0),
        recurrent: ParamId(1),
        bias: ParamId(2),
    };
    assert_eq!(gru.infer(&[&x], &gru_bias), Ok(f32s(&[5, 4])));
    let ids = Fact::new(DType::I32, vec![Dim::Symbol("N".into()), Dim::Known(5)]);
    let folded = Op::EmbeddedRnn {
        cell: RnnCell::Lstm,
        units: 4,
        return_sequences: false,
        projection: ParamId(0),
        recurrent: ParamId(1),
        bias: ParamId(2),
    };
    let table = [p("P", &[50, 16]), p("r", &[4, 16]), p("b", &[16])];
    assert_eq!(folded.infer(&[&ids], &table), Ok(f32s(&[4])));
    let narrow = [p("P", &[50, 12]), p("r", &[4, 16]), p("b", &[16])];
    assert!(folded.infer(&[&ids], &narrow).is_err());
}

// Issue 15: conv1d and the 1-D pools run their 2-D twins' rules over `[N, 1, T, C]`.
#[test]
fn conv1d_checks_its_output_and_its_three_axis_kernel() {
    use super::conv::window_1d;
    use super::types::Padding1d;
    let conv1d = |padding, dilation| Op::Conv1d {
        filters: 8,
        window: window_1d(3, 1, dilation, padding).unwrap(),
        kernel: ParamId(0),
        bias: Some(ParamId(1)),
        activation: Activation::Linear,
    };
    let x = f32s(&[16, 2]);
    let params = [p("k", &[3, 2, 8]), p("b", &[8])];
    assert_eq!(
        conv1d(Padding1d::Valid, 1).infer(&[&x], &params),
        Ok(f32s(&[14, 8]))
    );
    // Causal keeps the length whatever the dilation: 2·(3 − 1) = 4 zeros on the left.
    assert_eq!(
        window_1d(3, 1, 2, Padding1d::Causal).unwrap().padding,
        Padding::Explicit([0, 0, 4, 0])
    );
    assert_eq!(
        conv1d(Padding1d::Causal, 2).infer(&[&x], &params),
        Ok(f32s(&[16, 8]))
    );
    // The kernel is [k, in, filters], not conv2d's four axes; the input is [N, T, C].
    let wrong = conv1d(Padding1d::Valid, 1).infer(&[&x], &[p("k", &[1, 3, 2, 8]), p("b", &[8])]);
    assert_eq!(
        wrong,
        Err("parameter k has shape [1, 3, 2, 8], expected [3, 2, 8]".to_string())
    );
    assert!(conv1d(Padding1d::Valid, 1)
        .infer(&[&f32s(&[16, 16, 2])], &params)
        .unwrap_err()
        .contains("rank"));
    let too_short = conv1d(Padding1d::Valid, 2).infer(&[&f32s(&[4, 2])], &params);
    assert!(too_short.unwrap_err().contains("does not fit 4 on axis 1"));
}

#[test]
fn pools_1d_keep_channels_and_global_ones_drop_time() {
    use super::pool::pool_window_1d;
    use super::types::Padding1d;
    let x = f32s(&[9, 3]);
    let window = pool_window_1d(2, 2, Padding1d::Same).unwrap();
    assert_eq!(
        Op::MaxPool1d { window }.infer(&[&x], &[]),
        Ok(f32s(&[5, 3]))
    );
    let window = pool_window_1d(3, 2, Padding1d::Valid).unwrap();
    assert_eq!(
        Op::AvgPool1d { window }.infer(&[&x], &[]),
        Ok(f32s(&[4, 3]))
    );
    assert_eq!(Op::GlobalAvgPool1d.infer(&[&x], &[]), Ok(f32s(&[3])));
    assert_eq!(Op::GlobalMaxPool1d.infer(&[&x], &[]), Ok(f32s(&[3])));
    assert!(pool_window_1d(2, 2, Padding1d::Causal).is_err());
    assert!(Op::GlobalMaxPool1d.infer(&[&f32s(&[9])], &[]).is_err());
}

#[test]
fn depthwise_conv2d_multiplies_channels_and_has_keras_weights() {
    let op = |bias: bool| Op::DepthwiseConv2d {
        multiplier: 2,
        window: WINDOW,
        kernel: ParamId(0),
        bias: bias.then_some(ParamId(1)),
        activation: Activation::Linear,
    };
    let x = f32s(&[8, 8, 3]);
    assert_eq!(
        op(true).infer(&[&x], &[p("k", &[3, 3, 3, 2]), p("b", &[6])]),
        Ok(f32s(&[6, 6, 6]))
    );
    assert_eq!(
        op(false).infer(&[&x], &[p("k", &[3, 3, 3, 6])]),
        Err("parameter k has shape [3, 3, 3, 6], expected [3, 3, 3, 2]".to_string())
    );
    assert!(op(false)
        .infer(&[&f32s(&[2, 8, 3])], &[p("k", &[3, 3, 3, 2])])
        .is_err());
}

#[test]
fn separable_conv2d_has_keras_weights_and_conv2d_sizes() {
    let op = |bias: bool| Op::SeparableConv2d {
        filters: 5,
        multiplier: 2,
        window: Window {
            strides: [2, 2],
            padding: Padding::Same,
            ..WINDOW
        },
        depthwise_kernel: ParamId(0),
        pointwise_kernel: ParamId(1),
        bias: bias.then_some(ParamId(2)),
        activation: Activation::Linear,
    };
    let x = f32s(&[7, 8, 3]);
    let weights = [p("d", &[3, 3, 3, 2]), p("p", &[1, 1, 6, 5]), p("b", &[5])];
    assert_eq!(op(true).infer(&[&x], &weights), Ok(f32s(&[4, 4, 5])));
    assert_eq!(op(false).infer(&[&x], &weights[..2]), Ok(f32s(&[4, 4, 5])));
    assert_eq!(
        op(false).infer(&[&x], &[p("d", &[3, 3, 3, 2]), p("p", &[1, 1, 3, 5])]),
        Err("parameter p has shape [1, 1, 3, 5], expected [1, 1, 6, 5]".to_string())
    );
}

#[test]
fn conv2d_transpose_grows_by_keras_formulas() {
    let op = |k: [usize; 2], s: [usize; 2], padding| Op::Conv2dTranspose {
        filters: 4,
        window: Window {
            size: k,
            strides: s,
            dilation: [1, 1],
            padding,
        },
        kernel: ParamId(0),
        bias: Some(ParamId(1)),
        activation: Activation::Linear,
    };
    let x = f32s(&[5, 6, 3]);
    let run = |k: [usize; 2], s, padding| {
        op(k, s, padding).infer(&[&x], &[p("k", &[k[0], k[1], 4, 3]), p("b", &[4])])
    };
    // valid: (in − 1)·s + k; same: in·s.
    assert_eq!(run([3, 3], [2, 2], Padding::Valid), Ok(f32s(&[11, 13, 4])));
    assert_eq!(run([3, 2], [2, 3], Padding::Same), Ok(f32s(&[10, 18, 4])));
    assert_eq!(run([1, 1], [1, 1], Padding::Valid), Ok(f32s(&[5, 6, 4])));
    // The kernel is [kh, kw, filters, in], not conv2d's [kh, kw, in, filters].
    assert!(op([3, 3], [1, 1], Padding::Valid)
        .infer(&[&x], &[p("k", &[3, 3, 3, 4]), p("b", &[4])])
        .is_err());
}

#[test]
fn upsampling2d_multiplies_height_and_width() {
    let op = |size| Op::UpSampling2d {
        size,
        interpolation: super::upsample::Interpolation::Bilinear,
    };
    assert_eq!(
        op([2, 3]).infer(&[&f32s(&[4, 5, 6])], &[]),
        Ok(f32s(&[8, 15, 6]))
    );
    assert!(op([2, 2]).infer(&[&f32s(&[4, 6])], &[]).is_err());
}
