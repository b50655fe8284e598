use clap::Parser;
use crm_server::{init_logging, run, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        println!("{}", crm_api::openapi::json());
        return ExitCode::SUCCESS;
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
