//! The layer registry: every layer's argument signature (with Keras defaults) and how its bound
//! arguments become a resolved [`LayerOp`]. Shape rules live in `rules.rs`.
//!
//! Input: a layer name and its bound arguments. Output: a `LayerOp`. Invariant: every name in
//! [`LAYERS`] builds an op (no layer is registered without a rule).

use super::signature::{float, kw, pos, BoundArgs, Default, Kind, Limit, Param, Signature};
use super::types::{Activation, DType, LayerOp, Padding, PoolKind, RnnCell};

/// How a layer receives its input values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inputs {
    /// The previous line's value, or the value piped into it.
    One,
    /// Named values as positional arguments (`add(a, b)`); a piped value comes first.
    Many,
    /// `reshape(d1, d2, ...)`: positional sizes, one of which may be `-1`.
    Reshape,
}

/// A registered layer.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    pub name: &'static str,
    pub signature: Signature,
    pub inputs: Inputs,
}

const SIZE: Kind = Kind::Int {
    min: 1,
    max: super::signature::MAX_SIZE,
};
const ACTIVATION: Param = kw(
    "activation",
    Kind::Choice(Activation::NAMES),
    Default::Name("linear"),
);
const USE_BIAS: Param = kw("use_bias", Kind::Bool, Default::Bool(true));
const PADDING: Param = kw("padding", Kind::Padding, Default::Name("valid"));
const STRIDES_ABSENT: Param = Param {
    aliases: &["stride"],
    ..kw("strides", Kind::Pair, Default::Absent)
};
const POOL: &[Param] = &[
    Param {
        aliases: &["pool_size"],
        ..pos("pool", Kind::Pair, Default::Int(2))
    },
    STRIDES_ABSENT,
    PADDING,
];
const RNN: &[Param] = &[
    pos("units", SIZE, Default::Required),
    kw("return_sequences", Kind::Bool, Default::Bool(false)),
];
const NONE: &[Param] = &[];

const fn layer(name: &'static str, params: &'static [Param]) -> LayerSpec {
    LayerSpec {
        name,
        signature: Signature { params },
        inputs: Inputs::One,
    }
}

/// Every layer a model body can use.
pub const LAYERS: &[LayerSpec] = &[
    layer(
        "dense",
        &[pos("units", SIZE, Default::Required), ACTIVATION, USE_BIAS],
    ),
    layer(
        "conv2d",
        &[
            pos("filters", SIZE, Default::Required),
            Param {
                aliases: &["kernel_size"],
                ..pos("kernel", Kind::Pair, Default::Required)
            },
            Param {
                aliases: &["stride"],
                ..kw("strides", Kind::Pair, Default::Int(1))
            },
            PADDING,
            Param {
                aliases: &["dilation_rate"],
                ..kw("dilation", Kind::Pair, Default::Int(1))
            },
            USE_BIAS,
            ACTIVATION,
        ],
    ),
    layer("max_pool2d", POOL),
    layer("avg_pool2d", POOL),
    layer("global_avg_pool2d", NONE),
    layer("global_max_pool2d", NONE),
    layer("flatten", NONE),
    LayerSpec {
        name: "reshape",
        signature: Signature { params: NONE },
        inputs: Inputs::Reshape,
    },
    layer(
        "batch_norm",
        &[
            kw(
                "momentum",
                float(Limit::Incl(0.0), Limit::Excl(1.0)),
                Default::Float(0.99),
            ),
            kw(
                "epsilon",
                float(Limit::Excl(0.0), Limit::None),
                Default::Float(1e-3),
            ),
        ],
    ),
    layer(
        "layer_norm",
        &[kw(
            "epsilon",
            float(Limit::Excl(0.0), Limit::None),
            Default::Float(1e-3),
        )],
    ),
    layer(
        "dropout",
        &[Param {
            aliases: &["rate"],
            ..pos(
                "rate",
                float(Limit::Incl(0.0), Limit::Excl(1.0)),
                Default::Required,
            )
        }],
    ),
    layer(
        "embedding",
        &[
            pos("input_dim", SIZE, Default::Required),
            pos("output_dim", SIZE, Default::Required),
        ],
    ),
    layer("simple_rnn", RNN),
    layer("lstm", RNN),
    layer("gru", RNN),
    LayerSpec {
        name: "add",
        signature: Signature { params: NONE },
        inputs: Inputs::Many,
    },
    LayerSpec {
        name: "concat",
        signature: Signature {
            params: &[kw(
                "axis",
                Kind::Int { min: -64, max: 64 },
                Default::Int(-1),
            )],
        },
        inputs: Inputs::Many,
    },
    layer("relu", NONE),
    layer(
        "leaky_relu",
        &[Param {
            aliases: &["negative_slope"],
            ..kw(
                "alpha",
                float(Limit::Incl(0.0), Limit::None),
                Default::Float(0.3),
            )
        }],
    ),
    layer("sigmoid", NONE),
    layer("tanh", NONE),
    layer(
        "softmax",
        &[kw(
            "axis",
            Kind::Int { min: -64, max: 64 },
            Default::Int(-1),
        )],
    ),
    layer("gelu", NONE),
    layer("linear", NONE),
    layer(
        "cast",
        &[pos(
            "dtype",
            Kind::Choice(&["f32", "i32", "i64"]),
            Default::Required,
        )],
    ),
];

/// The registered layer with this name.
pub fn lookup(name: &str) -> Option<&'static LayerSpec> {
    LAYERS.iter().find(|l| l.name == name)
}

/// Every layer name, for suggestions.
pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    LAYERS.iter().map(|l| l.name)
}

fn activation(args: &BoundArgs) -> Activation {
    Activation::from_name(args.name("activation")).unwrap_or(Activation::Linear)
}

/// Builds the op of a single-input or multi-input layer from its bound arguments. `reshape`
/// is built by the caller (its target needs the input shape); `concat`'s axis is normalized
/// later, so here it is stored as written via [`concat_axis`].
pub fn build(name: &str, args: &BoundArgs) -> Option<LayerOp> {
    let pair = |n: &str| args.pair(n).unwrap_or((1, 1));
    Some(match name {
        "dense" => LayerOp::Dense {
            units: args.size("units"),
            use_bias: args.bool("use_bias"),
            activation: activation(args),
        },
        "conv2d" => LayerOp::Conv2d {
            filters: args.size("filters"),
            kernel: pair("kernel"),
            strides: pair("strides"),
            padding: args.padding("padding"),
            dilation: pair("dilation"),
            use_bias: args.bool("use_bias"),
            activation: activation(args),
        },
        "max_pool2d" | "avg_pool2d" => {
            let pool = args.pair("pool").unwrap_or((2, 2));
            LayerOp::Pool2d {
                kind: if name == "max_pool2d" {
                    PoolKind::Max
                } else {
                    PoolKind::Avg
                },
                pool,
                strides: args.pair("strides").unwrap_or(pool),
                padding: args.padding("padding"),
            }
        }
        "global_avg_pool2d" => LayerOp::GlobalPool2d {
            kind: PoolKind::Avg,
        },
        "global_max_pool2d" => LayerOp::GlobalPool2d {
            kind: PoolKind::Max,
        },
        "flatten" => LayerOp::Flatten,
        "batch_norm" => LayerOp::BatchNorm {
            momentum: args.float("momentum"),
            epsilon: args.float("epsilon"),
        },
        "layer_norm" => LayerOp::LayerNorm {
            epsilon: args.float("epsilon"),
        },
        "dropout" => LayerOp::Dropout {
            rate: args.float("rate"),
        },
        "embedding" => LayerOp::Embedding {
            input_dim: args.size("input_dim"),
            output_dim: args.size("output_dim"),
        },
        "simple_rnn" | "lstm" | "gru" => LayerOp::Rnn {
            cell: match name {
                "simple_rnn" => RnnCell::SimpleRnn,
                "lstm" => RnnCell::Lstm,
                _ => RnnCell::Gru,
            },
            units: args.size("units"),
            return_sequences: args.bool("return_sequences"),
        },
        "add" => LayerOp::Add,
        // The axis is normalized against the input rank by the caller.
        "concat" => LayerOp::Concat { axis: 0 },
        "leaky_relu" => LayerOp::Activation(Activation::LeakyRelu {
            alpha: args.float("alpha"),
        }),
        "softmax" => LayerOp::Activation(Activation::Softmax {
            axis: args.int("axis"),
        }),
        "cast" => LayerOp::Cast {
            to: DType::from_name(args.name("dtype"))?,
        },
        other => LayerOp::Activation(Activation::from_name(other)?),
    })
}

/// `concat`'s axis as written (`-1` by default).
pub fn concat_axis(args: &BoundArgs) -> i64 {
    args.int("axis")
}

/// Whether the padding argument asks for explicit amounts (used in help texts).
pub fn is_valid_padding(p: &Padding) -> bool {
    matches!(p, Padding::Valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_layer_has_unique_name() {
        let mut names: Vec<&str> = names().collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        assert_eq!(before, 25);
    }
}
