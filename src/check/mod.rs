//! The checker: names, arguments, dtypes and shapes across model, data and train blocks.
//!
//! Input: an AST. Output: a typed, checked program and every problem found.
