//! The issue-15 upsampling and separable layers against Keras 3 (TensorFlow backend): each case
//! is a one-layer spec whose input and weights follow fixed formulas, the interpreter's output
//! (optimized and `-O0` plans) compared with the numbers Keras printed for the same layer,
//! input and weights (`keras.layers.Conv2DTranspose`, `SeparableConv2D`, `UpSampling2D`, with
//! the peers Python's Keras 3; the script, in short:)
//!
//! ```text
//! xs(shape) = ((arange(size) * 7) % 11) / 10 - 0.5      (the input, row-major)
//! ks(shape) = ((arange(size) * 5) % 13) / 10 - 0.6      (every kernel; pointwise ones × 0.5)
//! bias      = 0.1 · (f + 1)
//! layer = keras.layers.Conv2DTranspose(f, k, strides=s, padding=p); layer.build(shape)
//! layer.set_weights([ks(kernel.shape), bias]); print(layer(xs(shape)))
//! ```

// Keras's printed numbers, copied as they are.
#![allow(clippy::unreadable_literal)]

use super::*;

/// One layer, its per-sample input and output shapes and Keras's output (batch 1).
struct Case {
    layer: &'static str,
    input: &'static [usize],
    output: &'static [usize],
    want: &'static [f32],
}

const CASES: &[Case] = &[
    Case {
        layer: "conv2d_transpose(1, 3, strides: 2, padding: valid)",
        input: &[2, 2, 1],
        output: &[5, 5, 1],
        want: &[
            0.400000, 0.150000, -0.220000, 0.080000, 0.180000, 0.300000, 0.050000, -0.280000,
            0.120000, 0.220000, 0.320000, -0.030000, -0.070000, 0.110000, 0.200000, 0.180000,
            0.080000, -0.220000, 0.150000, 0.400000, 0.140000, 0.040000, 0.100000, 0.250000,
            -0.150000,
        ],
    },
    Case {
        layer: "conv2d_transpose(1, 3, strides: 2, padding: same)",
        input: &[2, 2, 1],
        output: &[4, 4, 1],
        want: &[
            0.400000, 0.150000, -0.220000, 0.080000, 0.300000, 0.050000, -0.280000, 0.120000,
            0.320000, -0.030000, -0.070000, 0.110000, 0.180000, 0.080000, -0.220000, 0.150000,
        ],
    },
    Case {
        layer: "conv2d_transpose(1, 2, strides: 3, padding: same)",
        input: &[2, 2, 1],
        output: &[6, 6, 1],
        want: &[
            0.400000, 0.150000, 0.100000, -0.020000, 0.080000, 0.100000, -0.100000, 0.300000,
            0.100000, 0.180000, 0.020000, 0.100000, 0.100000, 0.100000, 0.100000, 0.100000,
            0.100000, 0.100000, 0.220000, 0.120000, 0.100000, -0.200000, 0.050000, 0.100000,
            0.020000, 0.180000, 0.100000, 0.300000, -0.100000, 0.100000, 0.100000, 0.100000,
            0.100000, 0.100000, 0.100000, 0.100000,
        ],
    },
    Case {
        layer: "conv2d_transpose(3, 2)",
        input: &[2, 2, 2],
        output: &[3, 3, 3],
        want: &[
            0.380000, -0.080000, 0.370000, 0.330000, 0.170000, 0.270000, 0.290000, 0.300000,
            0.050000, -0.150000, 0.490000, 0.350000, -0.930000, 0.280000, 0.710000, -0.200000,
            -0.310000, 0.750000, 0.300000, 0.070000, 0.230000, 0.300000, 0.340000, -0.010000,
            0.340000, 0.320000, 0.300000,
        ],
    },
    Case {
        layer: "conv2d_transpose(2, [3, 2], strides: [2, 1], padding: same)",
        input: &[3, 2, 2],
        output: &[6, 2, 2],
        want: &[
            0.380000, -0.080000, 0.240000, 0.080000, 0.350000, -0.110000, -0.020000, 0.080000,
            0.290000, 0.020000, -0.430000, 0.130000, 0.050000, 0.340000, 0.100000, 0.270000,
            0.240000, 0.040000, 0.370000, 0.620000, 0.300000, -0.090000, -0.110000, 0.460000,
        ],
    },
    Case {
        layer: "separable_conv2d(3, 3, depth_multiplier: 2, strides: 2, padding: same)",
        input: &[4, 4, 2],
        output: &[2, 2, 3],
        want: &[
            0.071000, 0.081000, 0.565500, 0.153000, 0.288000, 0.299500, 0.091000, 0.191000,
            0.310500, 0.209000, 0.194000, 0.088000,
        ],
    },
    Case {
        layer: "separable_conv2d(2, [2, 3])",
        input: &[4, 5, 2],
        output: &[3, 3, 2],
        want: &[
            -0.136000, 0.296000, 0.150000, 0.234000, 0.139000, 0.122500, 0.018000, 0.184000,
            0.084000, 0.111000, 0.117000, 0.263500, 0.227000, 0.132500, -0.136000, 0.296000,
            0.150000, 0.234000,
        ],
    },
    Case {
        layer: "upsampling2d(size: [2, 2], interpolation: bilinear)",
        input: &[2, 3, 1],
        output: &[4, 6, 1],
        want: &[
            -0.500000, -0.325000, 0.025000, 0.100000, -0.100000, -0.200000, -0.250000, -0.143750,
            0.068750, 0.075000, -0.125000, -0.225000, 0.250000, 0.218750, 0.156250, 0.025000,
            -0.175000, -0.275000, 0.500000, 0.400000, 0.200000, 0.000000, -0.200000, -0.300000,
        ],
    },
    Case {
        layer: "upsampling2d(size: 3, interpolation: bilinear)",
        input: &[2, 2, 2],
        output: &[6, 6, 2],
        want: &[
            -0.500000, 0.200000, -0.500000, 0.200000, -0.400000, 0.300000, -0.300000, 0.400000,
            -0.200000, 0.500000, -0.200000, 0.500000, -0.500000, 0.200000, -0.500000, 0.200000,
            -0.400000, 0.300000, -0.300000, 0.400000, -0.200000, 0.500000, -0.200000, 0.500000,
            -0.300000, 0.033333, -0.300000, 0.033333, -0.200000, 0.133333, -0.100000, 0.233333,
            0.000000, 0.333333, 0.000000, 0.333333, -0.100000, -0.133333, -0.100000, -0.133333,
            0.000000, -0.033333, 0.100000, 0.066667, 0.200000, 0.166667, 0.200000, 0.166667,
            0.100000, -0.300000, 0.100000, -0.300000, 0.200000, -0.200000, 0.300000, -0.100000,
            0.400000, 0.000000, 0.400000, 0.000000, 0.100000, -0.300000, 0.100000, -0.300000,
            0.200000, -0.200000, 0.300000, -0.100000, 0.400000, 0.000000, 0.400000, 0.000000,
        ],
    },
    Case {
        layer: "upsampling2d(size: [2, 3])",
        input: &[3, 2, 1],
        output: &[6, 6, 1],
        want: &[
            -0.500000, -0.500000, -0.500000, 0.200000, 0.200000, 0.200000, -0.500000, -0.500000,
            -0.500000, 0.200000, 0.200000, 0.200000, -0.200000, -0.200000, -0.200000, 0.500000,
            0.500000, 0.500000, -0.200000, -0.200000, -0.200000, 0.500000, 0.500000, 0.500000,
            0.100000, 0.100000, 0.100000, -0.300000, -0.300000, -0.300000, 0.100000, 0.100000,
            0.100000, -0.300000, -0.300000, -0.300000,
        ],
    },
    Case {
        layer: "upsampling2d(size: [3, 2], interpolation: bilinear)",
        input: &[2, 3, 1],
        output: &[6, 6, 1],
        want: &[
            -0.500000, -0.325000, 0.025000, 0.100000, -0.100000, -0.200000, -0.500000, -0.325000,
            0.025000, 0.100000, -0.100000, -0.200000, -0.166667, -0.083333, 0.083333, 0.066667,
            -0.133333, -0.233333, 0.166667, 0.158333, 0.141667, 0.033333, -0.166667, -0.266667,
            0.500000, 0.400000, 0.200000, 0.000000, -0.200000, -0.300000, 0.500000, 0.400000,
            0.200000, 0.000000, -0.200000, -0.300000,
        ],
    },
];

fn formula(n: usize, mul: usize, modulo: usize, shift: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * mul) % modulo) as f32 / 10.0 - shift)
        .collect()
}

/// The plan of `model M(x: f32[N, ...input]) { layer }`, optimized or not.
fn plan_of(case: &Case, optimize: bool) -> ExecutionPlan {
    let dims: Vec<String> = case.input.iter().map(ToString::to_string).collect();
    let text = format!(
        "model M(x: f32[N, {}]) {{\n    {}\n}}\n",
        dims.join(", "),
        case.layer
    );
    let parsed = crate::syntax::parse(
        crate::diag::FileId::default(),
        &text,
        &crate::syntax::Limits::default(),
    );
    assert!(
        parsed.diagnostics.is_empty(),
        "{text}: {:?}",
        parsed.diagnostics
    );
    let checked = crate::check::check_file(crate::diag::FileId::default(), &parsed.file);
    assert!(!checked.has_errors(), "{text}: {:?}", checked.diagnostics);
    compile_with(crate::ir::lower(&checked.models[0]).unwrap(), optimize)
}

/// Keras's weights of the case: every kernel from the formula (a pointwise one halved), biases
/// `0.1·(f + 1)`.
fn keras_weights(plan: &ExecutionPlan) -> Weights {
    let tensors = plan
        .params
        .iter()
        .filter(|p| p.source == ParamSource::Stored)
        .map(|p| {
            let n = p.elements();
            let data = if p.name.rsplit('.').next() == Some("bias") {
                (0..n).map(|f| 0.1 * (f + 1) as f32).collect()
            } else if p.name.ends_with("pointwise_kernel") {
                formula(n, 5, 13, 0.6).iter().map(|v| v * 0.5).collect()
            } else {
                formula(n, 5, 13, 0.6)
            };
            (
                p.name.clone(),
                ArrayD::from_shape_vec(IxDyn(&p.shape), data).unwrap(),
            )
        })
        .collect();
    Weights::from_named(plan, tensors).unwrap()
}

#[test]
fn transposed_separable_and_upsampling_layers_give_keras_numbers() {
    for case in CASES {
        for optimize in [true, false] {
            let plan = plan_of(case, optimize);
            let mut shape = vec![1];
            shape.extend_from_slice(case.input);
            let n = shape.iter().product();
            let x = ArrayD::from_shape_vec(IxDyn(&shape), formula(n, 7, 11, 0.5)).unwrap();
            let y = Interpreter::new(&plan, keras_weights(&plan))
                .unwrap()
                .run(&[TensorRef::F32(x.view())])
                .unwrap()
                .remove(0);
            assert_eq!(&y.shape()[1..], case.output, "{}", case.layer);
            for (i, (got, want)) in y.iter().zip(case.want).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-5,
                    "{} (optimized: {optimize}) element {i}: {got} vs Keras {want}",
                    case.layer
                );
            }
        }
    }
}
