//! The prompts/ folder: templates, shop knowledge and guard rules, validated at load and
//! reloaded atomically.
//!
//! Layout (see prompts/README.md):
//! - `shop.toml`: shop name, currency, handoff contact, `[routing]` thresholds;
//! - `templates/*.j2`: minijinja templates; [`REQUIRED_TEMPLATES`] must exist; translations
//!   of some in `templates/locale/<code>/` ([`LOCALES`]);
//! - `knowledge/*.toml`: `[[faq]]`, `[[policy]]` and `[[product]]` blocks, any file;
//! - `data/*.csv`: optional data-set phrasings (`utterance,intent`), attached to FAQ
//!   entries by intent;
//! - `guard.toml`: optional [`GuardRules`];
//! - `places.toml`: optional places (channels, categories) with their own persona and a
//!   part of the knowledge ([`Place`]).
//!
//! [`PromptSet::load`] checks everything and reports every problem with its file and line.
//! [`Prompts`] holds the set in service and swaps in a new one only when it loads cleanly.

mod knowledge_files;
mod learn;
mod live;
mod load;
mod places;
mod problems;
mod quote;
mod render;
mod templates;

use std::collections::BTreeMap;
use std::path::PathBuf;

use minijinja::Environment;

use super::guard::GuardRules;
use super::knowledge::Knowledge;
use super::shop::Shop;

pub use learn::{add_faq_entry, LearnError, NewFaqEntry, LEARNED_FILE};
pub use live::{Prompts, ReloadReport};
pub use load::{read_utterance_csv, LoadOptions};
pub use places::{Place, DEFAULT_PERSONA};
pub use problems::{Problem, ProblemKind, PromptError};
pub use render::{
    neutralise_data, summary_chunks, HistoryTurn, Speaker, SummaryMessage, MAX_DATA_CHARS,
};
pub use templates::{LOCALES, REQUIRED_TEMPLATES};

/// A validated, immutable prompt folder. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PromptSet {
    /// The folder it was loaded from.
    pub dir: PathBuf,
    /// The shop's own settings (shop.toml).
    pub shop: Shop,
    /// FAQ, policies and catalogue, indexed for routing.
    pub knowledge: Knowledge,
    /// The output guard's rules (allowed link domains, blocked phrases, …).
    pub guard: GuardRules,
    /// Hex SHA-256 over every file read (path and content).
    pub version: String,
    templates: Environment<'static>,
    template_sources: BTreeMap<String, String>,
    /// The persona template this set renders: [`DEFAULT_PERSONA`], or a place's own.
    persona: String,
    /// The persona as rendered the first time (it depends on the shop alone).
    rendered_persona: std::sync::OnceLock<String>,
    /// Places (places.toml) with their own persona and knowledge; empty in a place's set.
    places: Vec<Place>,
    /// The hosts replies may link to ([`super::guard::allowed_domains`] of `guard`, `knowledge` and
    /// `shop`), computed when the set is built.
    link_domains: Vec<String>,
}

impl PromptSet {
    /// The short version shown to admins (first 12 hex digits of [`PromptSet::version`]).
    pub fn short_version(&self) -> &str {
        &self.version[..12]
    }
}

/// Helpers for the unit tests of the content modules and of the guard.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};

    use super::PromptSet;

    pub(crate) fn demo_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts")
    }

    pub(crate) fn demo() -> PromptSet {
        PromptSet::load(&demo_dir()).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    pub(crate) fn broken_copy(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("prompts");
        copy_dir(&demo_dir(), &dir);
        edit(&dir);
        (temp, dir)
    }

    pub(crate) fn append(path: &Path, text: &str) {
        let mut content = std::fs::read_to_string(path).unwrap();
        content.push_str(text);
        std::fs::write(path, content).unwrap();
    }
}
