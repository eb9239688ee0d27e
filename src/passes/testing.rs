//! Test helpers: small graphs described as a chain of layers.

use super::Pass;
use crate::ir::{
    self, Activation, DType, Dim, Fact, Graph, Init, Op, Padding, Param, ParamSource, Window,
};
use std::collections::HashMap;

fn param(g: &mut Graph, name: String, shape: Vec<usize>, trainable: bool) -> ir::ParamId {
    g.add_param(Param {
        name,
        shape,
        trainable,
        init: Init::Zeros,
        source: ParamSource::Stored,
    })
}

/// Builds `input → layer → layer ...`. The first token may be `in:D1,D2,..` (per-sample dims,
/// default `8`). Layers: `dense:U`, `dense_nobias:U`, `conv:F`, `conv_same:F`, `conv_nobias:F`,
/// `bn`, `layer_norm`, `relu`, `sigmoid`, `tanh`, `softmax`, `linear`, `dropout`, `flatten`, `reshape:a,b`,
/// `maxpool:K`, `affine`.
pub fn chain(tokens: &[&str]) -> Graph {
    let mut g = Graph {
        name: "T".into(),
        ..Graph::default()
    };
    let mut rest = tokens;
    let mut dims = vec![8usize];
    if let Some(first) = tokens.first().and_then(|t| t.strip_prefix("in:")) {
        dims = first.split(',').map(|d| d.parse().unwrap()).collect();
        rest = &tokens[1..];
    }
    let mut fact_dims = vec![Dim::Symbol("N".into())];
    fact_dims.extend(dims.iter().map(|&d| Dim::Known(d)));
    let mut x = g.add_input("x", Fact::new(DType::F32, fact_dims));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for tok in rest {
        let (kind, arg) = tok.split_once(':').unwrap_or((tok, ""));
        let n = counts.entry(kind).or_insert(0);
        let name = if *n == 0 {
            kind.to_string()
        } else {
            format!("{kind}_{n}")
        };
        *n += 1;
        let fact = g.value(x).unwrap().fact.clone();
        let last = fact.dim(-1).unwrap();
        let op = match kind {
            "dense" | "dense_nobias" => {
                let units: usize = arg.parse().unwrap();
                let kernel = param(&mut g, format!("{name}.kernel"), vec![last, units], true);
                let bias = (kind == "dense")
                    .then(|| param(&mut g, format!("{name}.bias"), vec![units], true));
                Op::Dense {
                    units,
                    kernel,
                    bias,
                    activation: Activation::Linear,
                }
            }
            "conv" | "conv_same" | "conv_nobias" => {
                let filters: usize = arg.parse().unwrap();
                let kernel = param(
                    &mut g,
                    format!("{name}.kernel"),
                    vec![3, 3, last, filters],
                    true,
                );
                let bias = (kind != "conv_nobias")
                    .then(|| param(&mut g, format!("{name}.bias"), vec![filters], true));
                let padding = if kind == "conv_same" {
                    Padding::Same
                } else {
                    Padding::Valid
                };
                let window = Window {
                    size: [3, 3],
                    strides: [1, 1],
                    dilation: [1, 1],
                    padding,
                };
                Op::Conv2d {
                    filters,
                    window,
                    kernel,
                    bias,
                    activation: Activation::Linear,
                }
            }
            "bn" => {
                let gamma = param(&mut g, format!("{name}.gamma"), vec![last], true);
                let beta = param(&mut g, format!("{name}.beta"), vec![last], true);
                let mean = param(&mut g, format!("{name}.moving_mean"), vec![last], false);
                let variance = param(&mut g, format!("{name}.moving_variance"), vec![last], false);
                Op::BatchNorm {
                    gamma,
                    beta,
                    mean,
                    variance,
                    epsilon: 1e-3,
                    momentum: 0.99,
                }
            }
            "layer_norm" => {
                let gamma = param(&mut g, format!("{name}.gamma"), vec![last], true);
                let beta = param(&mut g, format!("{name}.beta"), vec![last], true);
                Op::LayerNorm {
                    gamma,
                    beta,
                    epsilon: 1e-3,
                }
            }
            "relu" => Op::Activation(Activation::Relu),
            "sigmoid" => Op::Activation(Activation::Sigmoid),
            "tanh" => Op::Activation(Activation::Tanh),
            "softmax" => Op::Activation(Activation::Softmax),
            "linear" => Op::Activation(Activation::Linear),
            "dropout" => Op::Dropout { rate: 0.5 },
            "flatten" => Op::Flatten,
            "reshape" => Op::Reshape {
                shape: arg.split(',').map(|d| d.parse().unwrap()).collect(),
            },
            "maxpool" => {
                let k: usize = arg.parse().unwrap();
                Op::MaxPool2d {
                    window: Window {
                        size: [k, k],
                        strides: [k, k],
                        dilation: [1, 1],
                        padding: Padding::Valid,
                    },
                }
            }
            "affine" => Op::Affine {
                scale: (0..last).map(|i| 0.5 + i as f32).collect(),
                shift: (0..last).map(|i| -(i as f32)).collect(),
            },
            other => panic!("unknown test layer {other}"),
        };
        x = g.add_node(name, op, vec![x]).unwrap();
    }
    g.outputs.push(x);
    ir::verify(&g).unwrap();
    g
}

/// Runs one pass, verifies the result, and returns its log.
pub fn run_pass(pass: &dyn Pass, g: &mut Graph) -> Vec<String> {
    let mut log = Vec::new();
    pass.run(g, &mut log);
    ir::verify(g).unwrap();
    log
}
