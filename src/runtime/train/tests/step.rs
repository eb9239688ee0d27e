//! The training step's bookkeeping: fused softmax + cross-entropy, moving statistics, and the
//! NaN guard.
