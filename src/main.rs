//! The native command line: a thin shell over the library.

fn main() -> std::process::ExitCode {
    pcb_pros::cli::main()
}
