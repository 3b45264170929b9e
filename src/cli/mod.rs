//! The `pros` command line (native only): parses arguments and calls the library.

mod convert;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// PROS for printed circuit boards, on the command line.
#[derive(Parser)]
#[command(name = "pros", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The commands of `pros`.
#[derive(Subcommand)]
enum Command {
    /// Convert a PyTorch checkpoint or safetensors file to safetensors for serving.
    Convert(convert::ConvertArgs),
}

/// Entry point of the `pros` binary.
pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();

    let result = match cli.command {
        Command::Convert(args) => convert::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
