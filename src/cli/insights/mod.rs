//! `shopkeep insights`: what customers need, from the question log, feedback and tickets,
//! as plain text, JSON, CSV or a self-contained HTML report.

mod csv_rows;
mod html;
mod plain;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use shopkeep::assistant::conversation::{Clock, SystemClock};
use shopkeep::assistant::moderation::insights::{self, Window};
use shopkeep::config::Config;
use shopkeep::store::Store;

#[derive(Args)]
pub(super) struct InsightsArgs {
    /// The window: the last N UTC calendar days, today included.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InsightsFormat::Text)]
    format: InsightsFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InsightsFormat {
    Text,
    Json,
    Csv,
    /// One HTML file with the figures, tables and the chart inline; it fetches nothing.
    Html,
}

/// Prints (or writes to `--out`) the insights of the last `--days` days in the chosen
/// format.
pub(super) fn insights(config: Config, args: InsightsArgs) -> Result<()> {
    let store = Store::open(&config.db_path)
        .with_context(|| format!("could not open the database {}", config.db_path))?;
    let window = Window::last_days(SystemClock.now_ms(), args.days);
    let insights = insights::from_store(&store, window)?;
    let heading = format!(
        "Insights, last {} day{}",
        args.days,
        if args.days == 1 { "" } else { "s" }
    );
    let output = match args.format {
        InsightsFormat::Text => plain::text(&insights, &heading),
        InsightsFormat::Json => format!("{}\n", serde_json::to_string_pretty(&insights)?),
        InsightsFormat::Csv => csv_rows::csv(&insights)?,
        InsightsFormat::Html => html::report(&insights, &heading)?,
    };
    match &args.out {
        Some(path) => std::fs::write(path, output)
            .with_context(|| format!("could not write {}", path.display()))?,
        None => print!("{output}"),
    }
    Ok(())
}
