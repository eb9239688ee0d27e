//! The interpreter: kernels, autodiff and optimizers over an immutable plan.

pub mod init;
pub mod kernels;
