use clap::Parser;
use crm_server::{init_logging, run, Cli, Command};
use std::process::ExitCode;

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
