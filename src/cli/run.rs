//! `shopkeep run`: the Discord bot, or the terminal chat when no token is set.

use std::sync::Arc;

use anyhow::Result;

use shopkeep::assistant::Assistant;
use shopkeep::config::Config;

use super::chat::{self, ChatArgs};
use super::ModelArgs;

/// Serves Discord until SIGTERM/SIGINT; SIGHUP reloads the prompts.
pub(super) fn run(config: Config) -> Result<()> {
    let settings = shopkeep::discord::DiscordSettings::from_env()?;
    if settings.token.is_none() {
        eprintln!(
            "DISCORD_TOKEN is not set, so starting the terminal chat instead of the Discord bot."
        );
        eprintln!("(See README.md to connect the bot to a Discord server.)");
        return chat::chat(config, ChatArgs::default());
    }
    let runtime = super::runtime()?;
    let backend = super::load_backend(&config, &ModelArgs::default(), &runtime)?;
    let assistant = Assistant::open(backend, Arc::new(config))?;
    runtime.block_on(async {
        reload_prompts_on_sighup(assistant.clone())?;
        shopkeep::discord::run(assistant, settings).await?;
        anyhow::Ok(())
    })
}

/// SIGHUP reloads the prompts (as `/reload-prompts` does); a broken set is logged and the
/// previous one stays in service.
fn reload_prompts_on_sighup(assistant: Assistant) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // Loading and embedding the knowledge is blocking work: off the async workers.
            let reloading = assistant.clone();
            match tokio::task::spawn_blocking(move || reloading.reload_prompts()).await {
                Ok(Ok(report)) => {
                    tracing::info!(report = %report.summary, "SIGHUP: prompts reloaded")
                }
                Ok(Err(error)) => tracing::error!(%error, "SIGHUP: prompts not reloaded"),
                Err(error) => tracing::error!(%error, "SIGHUP: the reload crashed"),
            }
        }
    });
    Ok(())
}
