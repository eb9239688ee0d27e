//! The op catalogue: what every layer of the language is, in one place per op family.
//!
//! `types` holds the vocabulary shared below `check` and `ir` (dtypes, dims, facts, padding,
//! cells, activations); `window` the one copy of Keras's sliding-window arithmetic. Nothing here
//! knows of spans, source text, files or buffers.

pub mod types;
pub mod window;
