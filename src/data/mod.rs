//! Data pipelines: sources, preprocessing, augmentation, split, shuffle and batching.
//!
//! Input: a `data` block (AST), lowered by [`lower`] into a [`spec::PipelineSpec`] that
//! [`typing`] types statically (the checker uses both); at run time, files and generators
//! named by the spec. Output: batches of features and labels for training and inference.
//! Invariants: the same spec, seed and data give bit-identical batches whatever the thread
//! count; every problem in a spec or a data file is a [`crate::diag::Diagnostic`].

// A load fails at most once, with one user-facing Diagnostic; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod lower;
mod lower_args;
mod lower_inputs;
mod lower_source;
pub mod spec;
pub mod typing;

pub use lower::lower_data_def;
pub use spec::PipelineSpec;
pub use typing::{element_type, ElementType, StepError};
pub mod augment;
pub mod budget;
mod glyphs;
pub mod groups;
pub mod image;
pub mod loader;
pub mod npy;
pub mod preview;
pub mod rng;
pub mod samples;
pub mod source;
pub mod split;
pub mod stats;
pub mod transform;
