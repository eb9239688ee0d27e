//! The vocabulary each op family writes its PyTorch export in: one [`TorchLayer`] per checked
//! layer (the `torch.nn` module it builds, if any, the forward expression over its inputs, and
//! how each of its Keras-named parameters maps onto the module's tensors), and the dispatch of a
//! [`LayerOp`] to its family's `to_pytorch`.
//!
//! Input: a checked layer op and the facts of its inputs. Output: plain strings of Python (the
//! module constructor, the forward expression) and layout names that the generated `model.py`
//! defines (`_to_torch` / `_from_torch`). Invariants: no file or text of the spec here (the
//! exporter adds the spec line); the same op and facts give the same text; a form PyTorch
//! cannot express is an `Err` saying why (export reports it at the layer, E1201).
//!
//! Forward templates: `{m}` is the layer's module (`self.NAME`), `{x}` its first input, `{x0}`,
//! `{x1}`, ... each input, `{mask}` where a layer that reads a padding mask takes it (the
//! exporter writes `, keep=...`, the kept steps, or nothing when the layer has no mask; a
//! layer given a mask whose form has no `{mask}` is refused). Values are channels-last as in modelc; the helpers `_conv2d`,
//! `_conv2d_transpose`, `_upsample2d`, `_pool2d`, `_conv1d`, `_pool1d`, `_rnn`,
//! `_last_axis_norm` of `model.py` move the channels where PyTorch's modules want them and
//! back; `_MultiHeadAttention` and `_PositionEmbedding` are its own modules.

use super::layer::LayerOp;
use super::types::{Activation, Fact};

/// One layer's PyTorch form.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchLayer {
    /// The module constructor (`nn.Linear(64, 10)`), `None` for a stateless layer.
    pub module: Option<String>,
    /// The forward expression (see the module doc for its placeholders).
    pub forward: String,
    pub params: Vec<TorchParam>,
}

/// How one modelc parameter (`LAYER.keras`) maps onto the module's tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchParam {
    /// The parameter's modelc (Keras) name.
    pub keras: &'static str,
    /// The module's tensors it becomes (`weight`; `bias_ih_l0`, `bias_hh_l0` for a split bias).
    pub torch: Vec<String>,
    /// The conversion's name in `model.py`: `same`, `dense_kernel`, `conv2d_kernel`,
    /// `conv1d_kernel`, `depthwise_kernel`, `rnn_kernel`, `gru_kernel`, `rnn_bias`, `gru_bias`.
    pub layout: &'static str,
}

impl TorchParam {
    /// A parameter kept as it is under one name.
    pub fn same(keras: &'static str, torch: &str) -> Self {
        Self {
            keras,
            torch: vec![torch.to_string()],
            layout: "same",
        }
    }

    /// A parameter converted by `layout` into the tensors `torch`.
    pub fn new(keras: &'static str, torch: &[&str], layout: &'static str) -> Self {
        Self {
            keras,
            torch: torch.iter().map(|s| (*s).to_string()).collect(),
            layout,
        }
    }
}

/// A Python float literal that reads back as the same f64.
pub fn float(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'E']) || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// A Python float literal of an f32 attribute, as short as it reads back.
pub fn float32(v: f32) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'E']) || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// A Python tuple of sizes: `(3, 3)`.
pub fn pair(p: (usize, usize)) -> String {
    format!("({}, {})", p.0, p.1)
}

/// The expression of activation `a` applied to the expression `x` (Keras 3's definitions).
pub fn activation(a: Activation, x: &str) -> String {
    match a {
        Activation::Linear => x.to_string(),
        Activation::Relu => format!("torch.relu({x})"),
        Activation::LeakyRelu { alpha } => {
            format!("F.leaky_relu({x}, negative_slope={})", float(alpha))
        }
        Activation::Sigmoid => format!("torch.sigmoid({x})"),
        Activation::Tanh => format!("torch.tanh({x})"),
        Activation::Softmax { axis } => format!("torch.softmax({x}, dim={axis})"),
        Activation::Gelu => format!("F.gelu({x})"),
        Activation::Swish => format!("F.silu({x})"),
        Activation::Elu { alpha } => format!("F.elu({x}, alpha={})", float(alpha)),
        Activation::Selu => format!("F.selu({x})"),
        Activation::Softplus => format!("F.softplus({x})"),
        Activation::HardSigmoid => format!("F.relu6({x} + 3.0) / 6.0"),
        Activation::Relu6 => format!("F.relu6({x})"),
        Activation::Mish => format!("F.mish({x})"),
    }
}

/// A layer's PyTorch form, from its family.
pub fn to_pytorch(op: &LayerOp, inputs: &[&Fact]) -> Result<TorchLayer, String> {
    use super::op::Family;
    use super::{
        activation as act, attention, dense, dropout, embedding, merge, norm, recurrent, reshape,
    };
    match op.family() {
        Family::Dense => dense::to_pytorch(op, inputs),
        Family::Conv | Family::Pool => super::window_torch::to_pytorch(op, inputs),
        Family::Reshape => reshape::to_pytorch(op, inputs),
        Family::Norm => norm::to_pytorch(op, inputs),
        Family::Dropout => dropout::to_pytorch(op),
        Family::Embedding => embedding::to_pytorch(op),
        Family::Recurrent => recurrent::to_pytorch(op, inputs),
        Family::Merge => merge::to_pytorch(op, inputs),
        Family::Activation => act::to_pytorch(op),
        Family::Attention => attention::to_pytorch(op, inputs),
        Family::Upsample => super::upsample::to_pytorch(op, inputs),
    }
}

/// The last axis of the first input, which must be known.
pub fn last_dim(inputs: &[&Fact]) -> Result<usize, String> {
    inputs
        .first()
        .and_then(|f| f.dims.last())
        .and_then(super::types::Dim::known)
        .ok_or_else(|| "the input's last axis has no known size".to_string())
}

/// Known size of axis `axis` of the first input.
pub fn dim(inputs: &[&Fact], axis: usize) -> Result<usize, String> {
    inputs
        .first()
        .and_then(|f| f.dims.get(axis))
        .and_then(super::types::Dim::known)
        .ok_or_else(|| format!("the input's axis {axis} has no known size"))
}
