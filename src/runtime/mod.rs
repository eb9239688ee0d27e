//! The interpreter: kernels, autodiff and optimizers over an immutable plan.
