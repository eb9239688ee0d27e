//! modelc: a compiler and interpreter for declarative neural-network specs.
//!
//! Data flows one way through the crate:
//!
//! ```text
//! source text ─syntax→ AST ─check→ typed model ─ir→ graph ─passes→ graph ─plan→ ExecutionPlan ─runtime→ tensors
//!                                                                                   data ↗ (batches)
//! ```
//!
//! `diag` sits at the bottom (every phase reports through it) and `cli` at the top (the only
//! module that touches files, terminals and exit codes). See ARCHITECTURE.md.

pub mod check;
pub mod cli;
pub mod compare;
pub mod data;
pub mod diag;
pub mod export;
pub mod fit;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod ir;
pub mod lsp;
pub mod ops;
pub mod passes;
pub mod plan;
pub mod runtime;
pub mod syntax;
pub mod util;
