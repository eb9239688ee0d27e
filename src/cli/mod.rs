//! The command line: the only module that touches files, terminals and exit codes.

use std::process::ExitCode;

/// Runs the `modelc` command line.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
