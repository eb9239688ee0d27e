//! The interpreter: kernels, autodiff and optimizers over an immutable plan.

pub mod clip;
pub mod init;
pub mod interp;
pub mod kernels;
pub mod loss;
pub mod metrics;
pub(crate) mod ops;
pub mod optim;
pub mod pool;
pub mod schedule;
pub mod train;
pub mod weights;
