//! The registry of diagnostic codes. A code is never reused; each has an explanation page
//! (`src/diag/explain/CODE.md`, printed by `modelc explain CODE`) with a failing example and its
//! fix. Codes are grouped by phase, one table per file under `codes/`:
//!
//! | range  | phase                                  | file          |
//! |--------|----------------------------------------|---------------|
//! | E01xx  | syntax and source limits               | `syntax.rs`   |
//! | E02xx–E05xx | names, arguments, dtypes, shapes, training (the checker) | `check.rs` |
//! | E06xx  | data pipelines and data files          | `data.rs`     |
//! | E07xx  | plans, weights, checkpoints            | `plan.rs`     |
//! | E08xx  | running and training                   | `runtime.rs`  |
//! | E09xx  | usage, files and I/O (exit status 2)   | `io.rs`       |
//! | E10xx  | lowering a checked model to a plan     | `compile.rs`  |
//! | E11xx  | comparing runs (`compare`, `experiment`) | `compare.rs` |

mod check;
mod compare;
mod compile;
mod data;
mod io;
mod plan;
mod runtime;
mod syntax;

#[allow(unused_imports)] // tables fill up as phases add codes
pub use check::*;
pub use compare::*;
pub use compile::*;
#[allow(unused_imports)]
pub use data::*;
pub use io::*;
#[allow(unused_imports)]
pub use plan::*;
#[allow(unused_imports)]
pub use runtime::*;
pub use syntax::*;

use std::fmt;

/// A registered diagnostic code such as `E0104`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(&'static str);

impl Code {
    /// Declares a code; only the tables in `codes/` call this.
    pub(crate) const fn new(code: &'static str) -> Self {
        Self(code)
    }

    /// The code as written (`E0104`).
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Whether problems with this code are in the user's input or in the environment.
    pub fn class(self) -> Class {
        lookup(self.0).map_or(Class::Input, |info| info.class)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Which exit status a code's errors lead to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A problem in the user's spec, data, weights or plan: exit status 1.
    Input,
    /// A usage, configuration or I/O problem: exit status 2.
    Io,
}

/// What the registry knows about a code.
#[derive(Clone, Copy, Debug)]
pub struct CodeInfo {
    pub code: Code,
    /// A short title, lowercase.
    pub title: &'static str,
    /// The explanation page, Markdown.
    pub explanation: &'static str,
    pub class: Class,
}

/// Declares one registry entry whose explanation lives in `src/diag/explain/CODE.md`.
macro_rules! code_info {
    ($code:ident, $title:literal) => {
        $crate::diag::CodeInfo {
            code: $code,
            title: $title,
            explanation: include_str!(concat!("../explain/", stringify!($code), ".md")),
            class: $crate::diag::Class::Input,
        }
    };
    ($code:ident, $title:literal, io) => {
        $crate::diag::CodeInfo {
            code: $code,
            title: $title,
            explanation: include_str!(concat!("../explain/", stringify!($code), ".md")),
            class: $crate::diag::Class::Io,
        }
    };
}
pub(crate) use code_info;

/// Every registered code, in code order per phase.
// rustc's unused_qualifications misreads `check::TABLE` as resolvable through the glob re-exports.
#[allow(unused_qualifications)]
pub fn all_codes() -> impl Iterator<Item = &'static CodeInfo> {
    [
        syntax::TABLE,
        check::TABLE,
        compile::TABLE,
        compare::TABLE,
        data::TABLE,
        plan::TABLE,
        runtime::TABLE,
        io::TABLE,
    ]
    .into_iter()
    .flatten()
}

/// Looks a code up by its text (case-insensitive, so `e0104` works too).
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    all_codes().find(|info| info.code.0.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_well_formed_and_explained() {
        let mut seen = HashSet::new();
        for info in all_codes() {
            let c = info.code.as_str();
            assert!(seen.insert(c), "{c} registered twice");
            assert!(
                c.len() == 5 && c.starts_with('E'),
                "{c} is not of the form E0000"
            );
            assert!(c[1..].chars().all(|ch| ch.is_ascii_digit()), "{c}");
            assert!(
                info.explanation.contains("```"),
                "{c}'s explanation has no example"
            );
            assert!(
                !info.title.is_empty() && info.title == info.title.to_lowercase(),
                "{c} title"
            );
        }
    }

    #[test]
    fn io_codes_are_in_the_e09_range() {
        for info in all_codes() {
            assert_eq!(
                info.class == Class::Io,
                info.code.as_str().starts_with("E09"),
                "{:?}",
                info.code
            );
        }
    }
}
