//! The pest parser generated from `grammar/model.pest`.

// The generated `Rule` enum carries the grammar's doc comments.
#![allow(missing_docs, clippy::pedantic)]

/// The parser for `.model` files; `Rule` names its entry points.
#[derive(pest_derive::Parser)]
#[grammar = "../grammar/model.pest"]
pub struct ModelParser;
