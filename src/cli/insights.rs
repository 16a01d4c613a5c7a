//! `shopkeep insights`: what customers need, from the question log.

use anyhow::{Context, Result};
use clap::Args;

use shopkeep::clock::{Clock, SystemClock};
use shopkeep::config::Config;
use shopkeep::store::Store;

#[derive(Args)]
pub(super) struct InsightsArgs {
    /// The window: the last N days.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InsightsFormat::Text)]
    format: InsightsFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InsightsFormat {
    Text,
    Json,
    Csv,
}

/// Prints the insights of the last `--days` days in the chosen format.
pub(super) fn insights(config: Config, args: InsightsArgs) -> Result<()> {
    let store = Store::open(&config.db_path)
        .with_context(|| format!("could not open the database {}", config.db_path))?;
    let now = SystemClock.now_ms();
    let insights = shopkeep::assistant::moderation::insights::from_store(&store, now, args.days)?;
    match args.format {
        InsightsFormat::Text => print!("{}", insights.to_text()),
        InsightsFormat::Json => println!("{}", serde_json::to_string_pretty(&insights)?),
        InsightsFormat::Csv => print!("{}", insights.to_csv()),
    }
    Ok(())
}
