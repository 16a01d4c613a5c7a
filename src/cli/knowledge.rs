//! `shopkeep knowledge`: the candidate FAQ entries that resolved tickets became, listed and
//! accepted into the prompts folder.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use shopkeep::assistant::learning::{accept_candidate, default_entry_id, CandidateEdits};
use shopkeep::config::Config;
use shopkeep::store::{Candidate, Store};

#[derive(Subcommand)]
pub(super) enum KnowledgeCommand {
    /// List the candidate FAQ entries: each resolved ticket's question and the team's answer
    /// (from SHOPKEEP_DB), not live until accepted.
    Candidates {
        /// Also list those accepted already, with the entry id each became.
        #[arg(long)]
        all: bool,
        /// Print JSON (times in Unix ms) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write candidate ID into the prompts folder (knowledge/from-the-team.toml) as a FAQ
    /// entry, after validating the folder with it like `check-prompts`; an invalid result
    /// is refused and nothing changes. `/reload-prompts` (or SIGHUP) then serves it.
    Accept {
        /// The candidate's id (see `knowledge candidates`).
        id: i64,
        /// The FAQ entry id (default: team-ID).
        #[arg(long = "entry-id")]
        entry_id: Option<String>,
        /// The canonical question to write instead of the customer's words.
        #[arg(long)]
        question: Option<String>,
        /// The answer to write instead of the team's answer as posted.
        #[arg(long)]
        answer: Option<String>,
        /// The prompts folder (default: SHOPKEEP_PROMPTS_DIR or ./prompts).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs one `knowledge` subcommand against the configured database and prompts folder.
pub(super) fn knowledge(config: Config, command: KnowledgeCommand) -> Result<()> {
    let store = Store::open(&config.db_path)
        .with_context(|| format!("could not open the database {}", config.db_path))?;
    match command {
        KnowledgeCommand::Candidates { all, json } => {
            let candidates = store.candidates(all)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&candidates)?);
            } else {
                print!("{}", candidates_text(&candidates));
            }
        }
        KnowledgeCommand::Accept {
            id,
            entry_id,
            question,
            answer,
            dir,
        } => {
            let dir = dir.unwrap_or_else(|| config.prompts_dir.clone());
            let edits = CandidateEdits {
                entry_id,
                question,
                answer,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as i64;
            let accepted = accept_candidate(&store, &dir, id, &edits, "command line", now)?;
            println!(
                "Added candidate {id} as FAQ entry `{}` to {}. Run /reload-prompts (or send the bot SIGHUP) to serve it.",
                accepted.entry_id,
                accepted.file.display()
            );
        }
    }
    Ok(())
}

/// The candidates as text, one block each, or a line saying there are none.
fn candidates_text(candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return "No candidate FAQ entries.\n".to_string();
    }
    let mut text = String::new();
    for candidate in candidates {
        let from = candidate
            .ticket_id
            .map(|ticket| format!("ticket {ticket}"))
            .unwrap_or_else(|| "a deleted ticket".to_string());
        let state = match &candidate.entry_id {
            Some(entry) => format!("accepted as `{entry}`"),
            None => format!("would be `{}`", default_entry_id(candidate.id)),
        };
        text.push_str(&format!(
            "{}  (from {from}; {state})\n  Q: {}\n  A: {}\n",
            candidate.id,
            one_line(&candidate.question),
            one_line(&candidate.answer)
        ));
    }
    text.push_str("Accept one with: shopkeep knowledge accept ID [--question Q] [--entry-id ID]\n");
    text
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
