use clap::Parser;
use crm_server::{init_logging, open_database, start, Cli, Command};
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

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => Ok(()),
        Command::Migrate => {
            open_database(&settings)?;
            tracing::info!("migrations are up to date");
            Ok(())
        }
        Command::Init {
            workspace,
            admin_email,
            admin_password,
            admin_name,
        } => {
            let pool = open_database(&settings)?;
            let id = crm_api::routes::access::init_workspace(
                &pool,
                &workspace,
                &admin_email,
                &admin_password,
                &admin_name,
            )?;
            println!("{id}");
            Ok(())
        }
        Command::Serve => {
            let started = std::time::Instant::now();
            let pool = open_database(&settings)?;
            actix_web::rt::System::new().block_on(async move {
                let (server, addr) = start(&settings, pool)?;
                tracing::info!(%addr, database = %crm_db::conn::redact(&settings.database_url), ready_ms = started.elapsed().as_millis() as u64, "listening");
                server.await?;
                Ok(())
            })
        }
    }
}
