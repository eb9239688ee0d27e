//! Limits that keep the front end (and every pass after it) safe on hostile input.

/// Bounds on what the front end accepts; every one can be raised from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest source file read, in bytes (checked before reading it all).
    pub max_source_bytes: u64,
    /// Deepest nesting of brackets, parentheses, braces and block comments.
    pub max_nesting: usize,
    /// Most syntax errors reported for one file before giving up on it.
    pub max_errors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_source_bytes: 8 * 1024 * 1024,
            max_nesting: 256,
            max_errors: 50,
        }
    }
}
