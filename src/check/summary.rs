//! `modelc summary`: a Keras-style table of a checked model.
//!
//! Input: a [`CheckedModel`]. Output: [`Summary`] (rows and totals) rendered as a human table
//! or as JSON. Invariant: totals are sums of the rows (saturating; the checker already rejected
//! overflowing sizes).
