//! The recurrent layer over token ids (`rnn_infer_tokens`, its table from
//! `embedding_projection`) against the embedding lookup followed by the plain layer
//! (`embedding_forward` + `rnn_infer`): every cell, both LSTM paths (a few sequences and a
//! batch), with and without `return_sequences`, i32 and i64 ids; ids outside the table are the
//! embedding's error.

use ndarray::{Array2, ArrayD, ArrayView2, IxDyn};

use super::{assert_close, data};
use crate::runtime::kernels::embedding::{embedding_forward, EmbeddingId};
use crate::runtime::kernels::rnn::{
    embedding_projection, rnn_infer, rnn_infer_tokens, RnnCache, RnnCell, RnnParams, RnnTokenParams,
};
use crate::runtime::kernels::KernelError;

const VOCAB: usize = 17;
const T: usize = 6;
const F: usize = 5;
const U: usize = 7;

struct Layer {
    cell: RnnCell,
    table: Array2<f32>,
    kernel: Array2<f32>,
    recurrent: Array2<f32>,
    bias: ArrayD<f32>,
    projection: Array2<f32>,
}

impl Layer {
    fn new(cell: RnnCell, seed: u64) -> Self {
        let gu = cell.gates() * U;
        let bias_shape = cell.bias_shape(U);
        let bias_len = bias_shape.iter().product();
        let table = Array2::from_shape_vec((VOCAB, F), data(VOCAB * F, seed, 1.5)).unwrap();
        let kernel = Array2::from_shape_vec((F, gu), data(F * gu, seed + 1, 0.8)).unwrap();
        let recurrent = Array2::from_shape_vec((U, gu), data(U * gu, seed + 2, 0.8)).unwrap();
        let bias =
            ArrayD::from_shape_vec(IxDyn(&bias_shape), data(bias_len, seed + 3, 0.5)).unwrap();
        let in_bias = &bias.as_slice().unwrap()[..gu];
        let projection = embedding_projection(table.view(), kernel.view(), in_bias).unwrap();
        Self {
            cell,
            table,
            kernel,
            recurrent,
            bias,
            projection,
        }
    }

    fn token_params(&self) -> RnnTokenParams<'_> {
        RnnTokenParams {
            projection: self.projection.view(),
            recurrent: self.recurrent.view(),
            bias: self.bias.view(),
        }
    }

    fn out_shape(n: usize, return_sequences: bool) -> Vec<usize> {
        if return_sequences {
            vec![n, T, U]
        } else {
            vec![n, U]
        }
    }

    /// `embedding_forward` then `rnn_infer`.
    fn reference<I: EmbeddingId>(&self, ids: ArrayView2<'_, I>, sequences: bool) -> ArrayD<f32> {
        let n = ids.nrows();
        let mut x = ArrayD::zeros(IxDyn(&[n, T, F]));
        embedding_forward(ids.into_dyn(), self.table.view(), x.view_mut()).unwrap();
        let p = RnnParams {
            kernel: self.kernel.view(),
            recurrent: self.recurrent.view(),
            bias: self.bias.view(),
        };
        let mut out = ArrayD::zeros(IxDyn(&Self::out_shape(n, sequences)));
        let x = x.into_dimensionality().unwrap();
        let mut cache = RnnCache::new();
        rnn_infer(
            self.cell,
            x.view(),
            &p,
            sequences,
            &mut cache,
            out.view_mut(),
        )
        .unwrap();
        out
    }

    /// `rnn_infer_tokens`, twice on one cache (as the interpreter reuses it).
    fn tokens<I: EmbeddingId>(&self, ids: ArrayView2<'_, I>, sequences: bool) -> ArrayD<f32> {
        let mut out = ArrayD::from_elem(IxDyn(&Self::out_shape(ids.nrows(), sequences)), f32::NAN);
        let mut cache = RnnCache::new();
        for _ in 0..2 {
            let p = self.token_params();
            rnn_infer_tokens(
                self.cell,
                ids,
                &p,
                (sequences, None),
                &mut cache,
                out.view_mut(),
            )
            .unwrap();
        }
        out
    }
}

fn ids(n: usize, seed: u64) -> Array2<i64> {
    let v = data(n * T, seed, 1.0)
        .into_iter()
        .map(|r| ((r + 1.0) * 0.5 * VOCAB as f32) as i64 % VOCAB as i64)
        .collect();
    Array2::from_shape_vec((n, T), v).unwrap()
}

#[test]
fn the_projection_is_the_embedding_times_the_kernel_plus_the_input_bias() {
    for cell in [RnnCell::SimpleRnn, RnnCell::Lstm, RnnCell::Gru] {
        let l = Layer::new(cell, 10);
        let gu = cell.gates() * U;
        let b = l.bias.as_slice().unwrap();
        for id in [0, 5, VOCAB - 1] {
            let want: Vec<f32> = (0..gu)
                .map(|j| {
                    let dot: f64 = (0..F)
                        .map(|k| f64::from(l.table[[id, k]]) * f64::from(l.kernel[[k, j]]))
                        .sum();
                    (dot + f64::from(b[j])) as f32
                })
                .collect();
            let got = l.projection.row(id).to_vec();
            assert_close(&format!("{cell:?} row {id}"), &got, &want, 1e-6);
        }
    }
}

#[test]
fn tokens_match_the_embedding_then_the_layer() {
    let cases = [
        (RnnCell::Lstm, 2),
        (RnnCell::Lstm, 8),
        (RnnCell::Gru, 3),
        (RnnCell::Gru, 8),
        (RnnCell::SimpleRnn, 3),
        (RnnCell::SimpleRnn, 8),
    ];
    for (seed, (cell, n)) in cases.into_iter().enumerate() {
        let l = Layer::new(cell, 20 + seed as u64);
        let ids64 = ids(n, 30 + seed as u64);
        let ids32 = ids64.mapv(|i| i as i32);
        // Every id of the table's range is exercised somewhere in the larger batches.
        for sequences in [false, true] {
            let name = format!("{cell:?}, n {n}, return_sequences {sequences}");
            let want = l.reference(ids64.view(), sequences);
            let got = l.tokens(ids64.view(), sequences);
            let (got, want) = (got.as_slice().unwrap(), want.as_slice().unwrap());
            assert!(
                got.iter().all(|v| v.is_finite()),
                "{name}: unwritten output"
            );
            assert_close(&name, got, want, 2e-6);
            assert!(want.iter().any(|v| v.abs() > 0.1), "{name}: trivial output");
            let got32 = l.tokens(ids32.view(), sequences);
            assert_close(&format!("{name}, i32"), got32.as_slice().unwrap(), got, 0.0);
        }
    }
}

#[test]
fn an_id_outside_the_table_is_the_embedding_error() {
    for (cell, n) in [(RnnCell::Lstm, 2), (RnnCell::Lstm, 8), (RnnCell::Gru, 8)] {
        let l = Layer::new(cell, 40);
        for bad in [-1i64, VOCAB as i64, i64::MIN] {
            let mut ids = ids(n, 41);
            ids[[1, 3]] = bad;
            let mut out = ArrayD::zeros(IxDyn(&[n, U]));
            let mut cache = RnnCache::new();
            let r = rnn_infer_tokens(
                cell,
                ids.view(),
                &l.token_params(),
                (false, None),
                &mut cache,
                out.view_mut(),
            );
            assert_eq!(
                r,
                Err(KernelError::IdOutOfRange {
                    id: bad,
                    position: T + 3,
                    vocab: VOCAB
                }),
                "{cell:?}, n {n}"
            );
            // The same error as the embedding kernel's, for the same ids.
            let mut x = ArrayD::zeros(IxDyn(&[n, T, F]));
            let e = embedding_forward(ids.view().into_dyn(), l.table.view(), x.view_mut());
            assert_eq!(r, e);
        }
    }
}

#[test]
fn shapes_that_do_not_fit_are_errors() {
    let l = Layer::new(RnnCell::Lstm, 50);
    let ids = ids(4, 51);
    let mut cache = RnnCache::new();
    // A GRU reading LSTM weights: 4U columns are not 3 gates of U units.
    let mut out = ArrayD::zeros(IxDyn(&[4, U]));
    let r = rnn_infer_tokens(
        RnnCell::Gru,
        ids.view(),
        &l.token_params(),
        (false, None),
        &mut cache,
        out.view_mut(),
    );
    assert!(matches!(r, Err(KernelError::Shape { .. })), "{r:?}");
    // An output of the wrong size.
    let mut out = ArrayD::zeros(IxDyn(&[4, T, U]));
    let r = rnn_infer_tokens(
        RnnCell::Lstm,
        ids.view(),
        &l.token_params(),
        (false, None),
        &mut cache,
        out.view_mut(),
    );
    assert!(matches!(r, Err(KernelError::Shape { .. })), "{r:?}");
    // A projection whose table does not fit the kernel.
    let r = embedding_projection(l.table.view(), l.recurrent.view(), &[0.0; 4 * U]);
    assert!(matches!(r, Err(KernelError::Shape { .. })), "{r:?}");
}
