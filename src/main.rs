//! The native command line: a thin shell over the library.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    pcb_pros::cli::main()
}

// The page is the library's face on the web; this binary has nothing to do there.
#[cfg(target_arch = "wasm32")]
fn main() {}
