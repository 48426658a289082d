//! `marque [--config PATH] [serve|migrate|openapi|config|healthcheck]`: see the README.

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
    /// Print the OpenAPI document (JSON), its server URL from PUBLIC_BASE_URL (else HOST:PORT).
    Openapi,
    /// Print the effective settings as TOML, secrets redacted.
    Config,
    /// Ask the running service's /health/ready (at HOST:PORT); exit 0 when ready, else 1.
    Healthcheck,
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
    // These two read the settings only, without the checks and keys `serve` needs: a build
    // step may print the document, and a health probe runs often.
    match command {
        Command::Openapi => {
            let (settings, _) = Settings::load(cli.config.as_deref())?;
            let url = marque::healthcheck::public_base_url(&settings);
            let doc =
                marque_api::openapi::with_server(marque_api::openapi::ApiDoc::openapi(), &url);
            return print(&doc.to_pretty_json()?);
        }
        Command::Healthcheck => {
            let (settings, _) = Settings::load(cli.config.as_deref())?;
            return Ok(marque::healthcheck::check(&settings)?);
        }
        _ => {}
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
        Command::Openapi | Command::Healthcheck => Ok(()),
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
