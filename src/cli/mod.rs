//! The `pros` command line (native only): parses arguments and calls the library.

use std::process::ExitCode;

/// Entry point of the `pros` binary.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
