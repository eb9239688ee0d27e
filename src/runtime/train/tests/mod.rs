//! Tests of the training engine: whole-plan gradients against central finite differences
//! (`gradients.rs`, on small graphs built here; `attention.rs` for the attention family), the step's bookkeeping (`step.rs`) and the
//! fused dense + mse step against the unfused one (`dense_mse.rs`), the relu-through-pool path
//! against the plain one (`fast_paths.rs`).

mod attention;
mod bidirectional;
mod crop;
mod dense_mse;
mod embedding_fold;
mod fast_paths;
mod gradients;
mod masking;
mod newer_ops;
mod outputs;
mod resampling;
mod step;

use ndarray::{ArrayD, IxDyn};

use super::{Input, ParamStore, Trainer};
use crate::ir::{
    self, Activation, DType, Dim, Fact, Graph, Init, Op, Padding, Param, ParamId, ParamSource,
    RnnCell, ValueId, Window,
};
use crate::passes::{Mode, PassOptions};
use crate::plan::{compile, ExecutionPlan};

/// A small graph under construction.
pub(super) struct Builder {
    pub g: Graph,
}

impl Builder {
    pub fn new() -> Self {
        Self {
            g: Graph {
                name: "t".into(),
                ..Graph::default()
            },
        }
    }

    /// A model input `[N, dims...]`.
    pub fn input(&mut self, name: &str, dtype: DType, dims: &[usize]) -> ValueId {
        let mut d = vec![Dim::Symbol("N".into())];
        d.extend(dims.iter().map(|&k| Dim::Known(k)));
        self.g.add_input(name, Fact::new(dtype, d))
    }

    pub fn param(&mut self, name: &str, shape: &[usize], init: Init, trainable: bool) -> ParamId {
        self.g.add_param(Param {
            name: name.into(),
            shape: shape.to_vec(),
            trainable,
            init,
            source: ParamSource::Stored,
        })
    }

    pub fn node(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> ValueId {
        self.g.add_node(name, op, inputs.to_vec()).unwrap()
    }

    fn last(&self, x: ValueId) -> usize {
        self.g.value(x).unwrap().fact.dim(-1).unwrap()
    }

    /// Dense followed by a separate activation step (the fuse pass merges them).
    pub fn dense(&mut self, name: &str, x: ValueId, units: usize, act: Activation) -> ValueId {
        let last = self.last(x);
        let kernel = self.param(
            &format!("{name}.kernel"),
            &[last, units],
            Init::GlorotUniform,
            true,
        );
        let bias = self.param(
            &format!("{name}.bias"),
            &[units],
            Init::Uniform { limit: 0.3 },
            true,
        );
        let y = self.node(
            name,
            Op::Dense {
                units,
                kernel,
                bias: Some(bias),
                activation: Activation::Linear,
            },
            &[x],
        );
        if act == Activation::Linear {
            y
        } else {
            self.node(&format!("{name}_act"), Op::Activation(act), &[y])
        }
    }

    /// A layer's trainable `NAME.kernel` (Glorot) of `kernel_shape` and `NAME.bias` of
    /// `filters` (uniform), in that order.
    pub fn kernel_and_bias(
        &mut self,
        name: &str,
        kernel_shape: &[usize],
        filters: usize,
    ) -> (ParamId, ParamId) {
        let kernel = self.param(
            &format!("{name}.kernel"),
            kernel_shape,
            Init::GlorotUniform,
            true,
        );
        let bias = self.param(
            &format!("{name}.bias"),
            &[filters],
            Init::Uniform { limit: 0.3 },
            true,
        );
        (kernel, bias)
    }

    pub fn conv(
        &mut self,
        name: &str,
        x: ValueId,
        filters: usize,
        k: usize,
        stride: usize,
        padding: Padding,
    ) -> ValueId {
        self.conv_window(name, x, filters, window(k, stride, padding))
    }

    /// A conv2d node over any `window`, with a bias and no activation.
    pub fn conv_window(&mut self, name: &str, x: ValueId, filters: usize, w: Window) -> ValueId {
        let last = self.last(x);
        let shape = [w.size[0], w.size[1], last, filters];
        let (kernel, bias) = self.kernel_and_bias(name, &shape, filters);
        self.node(
            name,
            Op::Conv2d {
                filters,
                window: w,
                kernel,
                bias: Some(bias),
                activation: Activation::Linear,
            },
            &[x],
        )
    }

    pub fn batch_norm(&mut self, name: &str, x: ValueId) -> ValueId {
        let c = self.last(x);
        let gamma = self.param(
            &format!("{name}.gamma"),
            &[c],
            Init::Uniform { limit: 1.5 },
            true,
        );
        let beta = self.param(
            &format!("{name}.beta"),
            &[c],
            Init::Uniform { limit: 0.5 },
            true,
        );
        let mean = self.param(&format!("{name}.moving_mean"), &[c], Init::Zeros, false);
        let variance = self.param(&format!("{name}.moving_variance"), &[c], Init::Ones, false);
        self.node(
            name,
            Op::BatchNorm {
                gamma,
                beta,
                mean,
                variance,
                epsilon: 1e-3,
                momentum: 0.99,
            },
            &[x],
        )
    }

    pub fn layer_norm(&mut self, name: &str, x: ValueId) -> ValueId {
        let c = self.last(x);
        let gamma = self.param(
            &format!("{name}.gamma"),
            &[c],
            Init::Uniform { limit: 1.5 },
            true,
        );
        let beta = self.param(
            &format!("{name}.beta"),
            &[c],
            Init::Uniform { limit: 0.5 },
            true,
        );
        self.node(
            name,
            Op::LayerNorm {
                gamma,
                beta,
                epsilon: 1e-3,
            },
            &[x],
        )
    }

    pub fn rnn(
        &mut self,
        name: &str,
        x: ValueId,
        cell: RnnCell,
        units: usize,
        seq: bool,
    ) -> ValueId {
        let options = crate::ops::recurrent::RnnOptions::default();
        self.rnn_with(name, x, (cell, units, seq), options)
    }

    /// A recurrent layer with Keras options (`(cell, units, return_sequences)`).
    pub fn rnn_with(
        &mut self,
        name: &str,
        x: ValueId,
        (cell, units, seq): (RnnCell, usize, bool),
        options: crate::ops::recurrent::RnnOptions,
    ) -> ValueId {
        let f = self.last(x);
        let g = cell.gates() * units;
        let kernel = self.param(
            &format!("{name}.kernel"),
            &[f, g],
            Init::GlorotUniform,
            true,
        );
        let recurrent = self.param(
            &format!("{name}.recurrent_kernel"),
            &[units, g],
            Init::Orthogonal,
            true,
        );
        let bias_shape = if options.two_biases(cell) {
            vec![2, g]
        } else {
            vec![g]
        };
        let bias = self.param(
            &format!("{name}.bias"),
            &bias_shape,
            Init::Uniform { limit: 0.3 },
            true,
        );
        self.node(
            name,
            Op::Rnn {
                cell,
                units,
                return_sequences: seq,
                options,
                kernel,
                recurrent,
                bias,
            },
            &[x],
        )
    }

    /// A bidirectional layer over `x` (`(cell, units, return_sequences)`), its weights named
    /// `NAME.forward.*` and `NAME.backward.*`.
    pub fn bidirectional(
        &mut self,
        name: &str,
        x: ValueId,
        (cell, units, seq): (RnnCell, usize, bool),
        options: crate::ops::recurrent::RnnOptions,
        merge: crate::ops::bidirectional::BiMerge,
    ) -> ValueId {
        let f = self.last(x);
        let g = cell.gates() * units;
        let bias = if options.two_biases(cell) {
            vec![2, g]
        } else {
            vec![g]
        };
        let mut weights = |dir: &str| crate::ops::bidirectional::RnnWeights {
            kernel: self.param(
                &format!("{name}.{dir}.kernel"),
                &[f, g],
                Init::GlorotUniform,
                true,
            ),
            recurrent: self.param(
                &format!("{name}.{dir}.recurrent_kernel"),
                &[units, g],
                Init::Orthogonal,
                true,
            ),
            bias: self.param(
                &format!("{name}.{dir}.bias"),
                &bias,
                Init::Uniform { limit: 0.3 },
                true,
            ),
        };
        let (forward, backward) = (weights("forward"), weights("backward"));
        self.node(
            name,
            Op::Bidirectional {
                cell,
                units,
                return_sequences: seq,
                options,
                merge,
                forward,
                backward,
            },
            &[x],
        )
    }

    /// Compiles the graph with output `y` into a training plan.
    pub fn plan(mut self, y: ValueId) -> ExecutionPlan {
        self.g.outputs.push(y);
        ir::verify(&self.g).unwrap();
        compile(self.g, Mode::Train, &PassOptions::default(), "test".into()).unwrap()
    }
}

pub(super) fn window(k: usize, stride: usize, padding: Padding) -> Window {
    Window {
        size: [k, k],
        strides: [stride, stride],
        dilation: [1, 1],
        padding,
    }
}

/// Deterministic pseudo-random values in `[-scale, scale)` (SplitMix64).
pub(super) fn noise(shape: &[usize], seed: u64, scale: f32) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    let data = (0..n as u64)
        .map(|i| {
            let r = super::params::derive_seed(seed, i, 0);
            ((r >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
}

/// Distinct values spaced 0.05 apart in a seeded order (no ties for max pooling).
pub(super) fn distinct(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    let mut order: Vec<(u64, usize)> = (0..n)
        .map(|i| (super::params::derive_seed(seed, i as u64, 1), i))
        .collect();
    order.sort_unstable();
    let mut data = vec![0f32; n];
    for (rank, &(_, i)) in order.iter().enumerate() {
        data[i] = (rank as f32 - n as f32 / 2.0) * 0.05;
    }
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
}

/// A trainer with fresh parameters.
pub(super) fn trainer(plan: ExecutionPlan, seed: u64) -> Trainer {
    let params = ParamStore::init(&plan, seed).unwrap();
    Trainer::new(plan, params, 99).unwrap()
}

pub(super) fn f32_input(a: &ArrayD<f32>) -> Input<'_> {
    Input::F32(a.view())
}

#[test]
fn a_training_plan_holding_a_folded_embedding_is_an_internal_error() {
    let sizes = crate::runtime::interp::zoo::TextSizes {
        vocab: 12,
        embed: 3,
        units: &[4],
        seq: 5,
        classes: 2,
    };
    let graph = crate::runtime::interp::zoo::lstm_classifier(sizes).unwrap();
    let mut plan = compile(graph, Mode::Infer, &PassOptions::default(), "t".into()).unwrap();
    assert_eq!(plan.steps[0].op.kind(), "embedded_lstm");
    // Only a tampered plan can get here: the pass never runs on training plans, and the
    // parameter store refuses derived parameters (so the table is made a stored one).
    plan.mode = Mode::Train;
    assert!(ParamStore::init(&plan, 1).is_err());
    for p in &mut plan.params {
        p.source = ParamSource::Stored;
    }
    let params = ParamStore::init(&plan, 1).unwrap();
    let Err(super::TrainError::Internal(message)) = Trainer::new(plan, params, 1) else {
        panic!("the trainer accepted an inference-only step");
    };
    assert!(message.contains("inference-only"), "{message}");
}

#[test]
fn a_step_computing_integers_is_refused_as_unsupported() {
    // `check` refuses such a model before training (E0507); a plan built without it still
    // meets the trainer's own refusal, naming the layer.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[2]);
    let ints = b.node("to_ids", Op::Cast { to: DType::I32 }, &[x]);
    let y = b.node("to_floats", Op::Cast { to: DType::F32 }, &[ints]);
    let plan = b.plan(y);
    let params = ParamStore::init(&plan, 1).unwrap();
    let Err(super::TrainError::Unsupported { layer, detail, .. }) = Trainer::new(plan, params, 1)
    else {
        panic!("the trainer accepted a step computing integers");
    };
    assert_eq!(layer, "to_ids");
    assert!(detail.contains("integer"), "{detail}");
}
