//! `marque [--config PATH] [serve|migrate|openapi|config]`: see the README.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use marque::{Application, Config, Overrides, Settings, open_stores};
use utoipa::OpenApi;

/// Marque Auth: phone-number authentication for multi-market e-commerce.
///
/// Settings come from built-in defaults, then the TOML file, then environment variables
/// (see marque.example.toml).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML settings file; environment variables override its keys.
    #[arg(long, global = true, value_name = "PATH", env = "MARQUE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Command {
    /// Run the HTTP service and the delivery worker (the default).
    Serve,
    /// Apply the embedded migrations to every market database and exit.
    Migrate,
    /// Print the OpenAPI document (JSON).
    Openapi,
    /// Print the effective settings as TOML, secrets redacted.
    Config,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined by `: `.
            eprintln!("marque: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        let doc = marque_api::openapi::ApiDoc::openapi().to_pretty_json()?;
        return print(&doc);
    }
    let config = Config::load(cli.config.as_deref())?;
    match command {
        Command::Config => print(&Settings::to_toml(&config.settings)),
        Command::Serve => {
            marque::telemetry::init(config.settings.service.log_format);
            Application::build(config, Overrides::default())
                .await?
                .run_until_stopped()
                .await
        }
        Command::Migrate => {
            marque::telemetry::init(config.settings.service.log_format);
            open_stores(&config)
                .await
                .map(|_| tracing::info!("migrations applied"))
        }
        Command::Openapi => Ok(()),
    }
}

/// Writes `text` to stdout. A reader that went away (`marque openapi | head -1`) is not an
/// error: the output is simply not wanted any more.
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
