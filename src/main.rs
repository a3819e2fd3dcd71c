//! `otk-mock`: parse the command line, run it, map the outcome to an exit code
//! (0 ok, 2 bad usage or configuration, 1 runtime failure).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: rendering a journey allocates many small strings
/// on every worker thread, where glibc's malloc showed up as a seventh of the server's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = otk_mock::cli::Cli::parse();
    match otk_mock::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let message = failure.to_string();
            eprintln!("otk-mock: {}", message.trim_end());
            ExitCode::from(failure.exit_code())
        }
    }
}
