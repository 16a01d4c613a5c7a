//! `shopkeep check-prompts`: validate a prompts folder without starting the bot.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use shopkeep::assistant::content::{PromptSet, REQUIRED_TEMPLATES};

#[derive(Args)]
pub(super) struct CheckPromptsArgs {
    /// The folder to check (default: SHOPKEEP_PROMPTS_DIR or ./prompts).
    dir: Option<PathBuf>,
}

/// Prints a one-line summary of a valid folder; prints every problem and fails otherwise.
pub(super) fn check_prompts(args: CheckPromptsArgs) -> Result<()> {
    let dir = super::prompts_dir(args.dir);
    match PromptSet::load(&dir) {
        Ok(set) => {
            let knowledge = &set.knowledge;
            println!(
                "{}: OK: {} FAQ entries, {} policies, {} products, {} data-set phrasings, {} templates, {} place(s); version {}",
                dir.display(),
                knowledge.faq.len(),
                knowledge.policies.len(),
                knowledge.catalogue.len(),
                knowledge.dataset_phrasings_used,
                REQUIRED_TEMPLATES.len(),
                set.places().len(),
                set.short_version()
            );
            Ok(())
        }
        Err(error) => {
            for problem in error.problems() {
                eprintln!("{problem}");
            }
            bail!(
                "{} is not valid: {} problem(s)",
                dir.display(),
                error.problems().len().max(1)
            )
        }
    }
}
