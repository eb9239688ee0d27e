//! Optimization passes over the IR, in an explicit ordered pipeline.
