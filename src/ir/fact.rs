//! Facts about values: dtype and shape, with symbolic dimensions (the batch `N`, a sequence `T`).
//! The types are the shared ones of [`crate::ops::types`], so lowering carries them over as
//! they are.

pub use crate::ops::types::{DType, Dim, Fact};
