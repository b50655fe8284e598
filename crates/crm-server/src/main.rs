use clap::Parser;
use crm_server::{init_logging, run, Cli, Command};
use std::process::ExitCode;

/// mimalloc serves the many small, short-lived allocations of request handling, imports
/// and exports with less CPU than the system allocator, and returns freed memory to the
/// system instead of keeping it in per-thread arenas. It is built without transparent huge
/// pages (`no_thp`): with them, each thread's first small allocations would make a 2 MiB
/// page resident, doubling the idle server's memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Openapi) => {
            println!("{}", crm_api::openapi::json());
            return ExitCode::SUCCESS;
        }
        Some(Command::Import(args)) => return crm_server::client::run_import(args),
        other => cli.command = other,
    }
    init_logging(&cli.settings);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("crm: {e}");
            ExitCode::FAILURE
        }
    }
}
