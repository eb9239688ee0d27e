//! The inference-only LSTM (`rnn_infer`) against the training forward (`rnn_forward`): the
//! same outputs to f32 rounding for every batch size on both sides of its threshold, with and
//! without `return_sequences`, on inputs large enough to saturate the gates; both with the
//! AVX2 + FMA cell (`simd_act`, where the CPU has it) and with the portable fastmath cell.

use ndarray::{Array2, Array3, ArrayD, IxDyn};

use super::data;
use crate::runtime::kernels::rnn::{rnn_forward, rnn_infer, RnnCache, RnnCell, RnnParams};

#[test]
fn inference_lstm_matches_the_training_forward() {
    inference_matches_training();
}

#[test]
fn inference_lstm_on_the_portable_cell_matches_the_training_forward() {
    crate::runtime::kernels::simd_train::baseline(inference_matches_training);
}

fn inference_matches_training() {
    // 13 units: one whole 8-lane vector and a padded tail in the AVX2 cell.
    let (t, f, u) = (9usize, 5usize, 13usize);
    let kernel = Array2::from_shape_vec((f, 4 * u), data(f * 4 * u, 2, 0.8)).unwrap();
    let recurrent = Array2::from_shape_vec((u, 4 * u), data(u * 4 * u, 3, 0.8)).unwrap();
    let bias = ArrayD::from_shape_vec(IxDyn(&[4 * u]), data(4 * u, 4, 0.5)).unwrap();
    let p = RnnParams {
        kernel: kernel.view(),
        recurrent: recurrent.view(),
        bias: bias.view(),
    };
    for n in [1usize, 3, 4, 7, 13] {
        for return_sequences in [false, true] {
            // Scale 4: some gate sums reach the flat ends of the sigmoid and tanh.
            let x = Array3::from_shape_vec((n, t, f), data(n * t * f, n as u64, 4.0)).unwrap();
            let shape: Vec<usize> = if return_sequences {
                vec![n, t, u]
            } else {
                vec![n, u]
            };
            let mut trained = ArrayD::zeros(IxDyn(&shape));
            let mut inferred = ArrayD::from_elem(IxDyn(&shape), f32::NAN);
            let mut cache = RnnCache::new();
            rnn_forward(
                RnnCell::Lstm,
                x.view(),
                &p,
                return_sequences,
                &mut cache,
                trained.view_mut(),
            )
            .unwrap();
            // One cache for both calls, as the interpreter reuses it.
            for _ in 0..2 {
                rnn_infer(
                    RnnCell::Lstm,
                    x.view(),
                    &p,
                    return_sequences,
                    &mut cache,
                    inferred.view_mut(),
                )
                .unwrap();
                for (a, b) in inferred.iter().zip(&trained) {
                    assert!(
                        (a - b).abs() <= 2e-6,
                        "n {n}, return_sequences {return_sequences}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
