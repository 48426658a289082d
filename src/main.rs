//! `marque [serve|migrate|openapi]`: see the README.

use marque::{Application, Config, Overrides, open_stores};
use utoipa::OpenApi;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    if command == "openapi" {
        let doc = marque_api::openapi::ApiDoc::openapi().to_pretty_json()?;
        std::io::Write::write_all(&mut std::io::stdout(), doc.as_bytes())?;
        return Ok(());
    }
    let config = Config::from_env()?;
    marque::telemetry::init(config.log_format);
    match command.as_str() {
        "serve" => {
            Application::build(config, Overrides::default())
                .await?
                .run_until_stopped()
                .await
        }
        "migrate" => open_stores(&config)
            .await
            .map(|_| tracing::info!("migrations applied")),
        other => anyhow::bail!("unknown command `{other}`; expected serve, migrate or openapi"),
    }
}
