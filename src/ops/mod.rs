//! The op catalogue: everything about each layer of the language, one file per op family.
//!
//! A family file (`dense`, `conv`, `pool`, `norm`, `dropout`, `embedding`, `recurrent`,
//! `merge`, `reshape`, `activation`, `attention`, `upsample`) holds, for its ops: the argument signatures with Keras's
//! defaults, the builder of the checked [`layer::LayerOp`], the one shape rule (output fact,
//! parameters with Keras's names, layouts and initializers, FLOPs) that the checker wraps with
//! spans and the IR verifier applies to the IR [`op::Op`], the lowering to IR, and (in its `//!`
//! doc) what the exporters map it to. `layer` and `op` hold the two closed enums and forward
//! each arm to its family. Below them: `types` (the vocabulary shared by `check`, `ir`, `data`
//! and `runtime`), `window` (the one copy of Keras's window arithmetic), `symbols` (symbolic
//! dims), `param`, `rule` (what a rule returns and its checked helpers), `signature`; beside
//! them `describe` (a signature as text for people) and `keras_names` (Keras's and PyTorch's
//! class names mapped to ours, for the "unknown layer" help), and `mask` (Keras's padding mask:
//! which layers pass it on, read it or drop it, and its form in the IR). `onnx` is the vocabulary
//! of the ONNX export; `window_onnx` and `recurrent_onnx` hold the export of the 1-D windows and
//! depthwise convolution, and of the recurrent family; `separable` holds everything of
//! `separable_conv2d` (a conv-family layer, forwarded to by `conv`); `op_activation` the IR's
//! activation enum.
//!
//! Invariants: nothing here knows of source text, files or buffers (spans only as the place a
//! symbol was bound); all size arithmetic is checked; every rule is a pure function.

pub mod activation;
pub mod attention;
pub mod bidirectional;
pub mod conv;
pub mod dense;
pub mod describe;
pub mod dropout;
pub mod embedding;
pub mod keras_names;
pub mod layer;
pub mod mask;
pub mod merge;
pub mod norm;
pub mod onnx;
pub mod op;
pub mod op_activation;
pub mod param;
pub mod pool;
pub mod recurrent;
pub mod recurrent_onnx;
pub mod reshape;
pub mod rule;
pub mod separable;
pub mod signature;
pub mod symbols;
pub mod torch;
pub mod types;
pub mod upsample;
pub mod window;
pub mod window_onnx;
pub mod window_torch;

#[cfg(test)]
mod tests;
