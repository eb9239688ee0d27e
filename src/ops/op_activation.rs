//! The IR's elementwise activation ([`Activation`], re-exported as `ops::op::Activation`): the
//! attribute of an `Op::Activation` node and the activation a conv or dense step fuses. Its serde
//! form is part of the plan format.
//!
//! Input: nothing (plain data). Output: the activation's name and whether a step may fuse it.

use serde::{Deserialize, Serialize};

/// An elementwise activation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Linear,
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    Tanh,
    Gelu,
    /// Softmax over the last axis.
    Softmax,
    // Issue 15's activations (Keras 3 definitions; see `runtime::kernels::activation`).
    /// `x · sigmoid(x)` (`swish`, alias `silu`).
    Swish,
    Elu {
        alpha: f32,
    },
    Selu,
    Softplus,
    /// `relu6(x + 3) / 6`.
    HardSigmoid,
    Relu6,
    Mish,
}

impl Activation {
    /// Whether the activation can be fused into a conv2d or dense step: those whose
    /// derivative is a function of their output, so that the fused training step need not
    /// keep the pre-activation (gelu, swish and mish are not).
    pub fn is_fusable(self) -> bool {
        matches!(
            self,
            Activation::Relu
                | Activation::LeakyRelu { .. }
                | Activation::Sigmoid
                | Activation::Tanh
                | Activation::Elu { .. }
                | Activation::Selu
                | Activation::Softplus
                | Activation::HardSigmoid
                | Activation::Relu6
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::Softmax => "softmax",
            Activation::Swish => "swish",
            Activation::Elu { .. } => "elu",
            Activation::Selu => "selu",
            Activation::Softplus => "softplus",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::Relu6 => "relu6",
            Activation::Mish => "mish",
        }
    }
}
