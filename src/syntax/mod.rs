//! The front end: source text → AST, with every syntax problem reported as a diagnostic.

pub mod ast;
