//! `shopkeep user`: what is stored about one user, exported or deleted.

use anyhow::{Context, Result};
use clap::Subcommand;

use shopkeep::config::Config;
use shopkeep::store::Store;

#[derive(Subcommand)]
pub(super) enum UserCommand {
    /// Print everything stored about USER as JSON (conversations with their turns,
    /// logged questions, feedback votes, tickets, candidate FAQ entries).
    Export {
        /// The Discord user id (in `shopkeep chat`, the `--user` name).
        user: String,
    },
    /// Delete everything stored about USER.
    Forget {
        /// The Discord user id (in `shopkeep chat`, the `--user` name).
        user: String,
    },
}

/// Runs one `user` subcommand against the configured database.
pub(super) fn user(config: Config, command: UserCommand) -> Result<()> {
    let store = Store::open(&config.db_path)
        .with_context(|| format!("could not open the database {}", config.db_path))?;
    match command {
        UserCommand::Export { user } => {
            let export = store.export_user(&user)?;
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
        UserCommand::Forget { user } => {
            let deleted = store.forget_user(&user)?;
            eprintln!(
                "Deleted {} conversation(s) with {} turn(s), {} logged question(s), {} feedback vote(s), {} ticket(s) and {} candidate FAQ entr(ies) of {user}.",
                deleted.conversations, deleted.turns, deleted.questions, deleted.feedback, deleted.tickets, deleted.candidates
            );
        }
    }
    Ok(())
}
