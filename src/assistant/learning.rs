//! Answers become knowledge: a resolved ticket's question and the team's answer are stored
//! as a candidate FAQ entry ([`crate::store::Candidate`], not live); an admin accepts one,
//! which writes it into the prompts folder as a normal FAQ entry, validated first
//! ([`content::add_faq_entry`]). The running bot serves it after a reload.
//!
//! [`accept_candidate`] needs only the store and the folder (the CLI uses it without a
//! model); [`Assistant::accept_ticket_answer`](super::Assistant::accept_ticket_answer) is
//! the same for the adapters, followed by the reload.

use std::path::{Path, PathBuf};

use super::content::{self, LearnError, NewFaqEntry};
use crate::store::{Candidate, Store, StoreError, UnixMillis};

/// Changes an admin makes while accepting a candidate; `None` keeps the candidate's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CandidateEdits {
    /// The FAQ entry id (default `team-<candidate id>`).
    pub entry_id: Option<String>,
    /// The canonical question (default: the customer's question, as asked).
    pub question: Option<String>,
    /// The answer (default: the team's answer, as posted).
    pub answer: Option<String>,
}

/// A candidate written into the knowledge files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The candidate, as it is stored after accepting.
    pub candidate: Candidate,
    /// The FAQ entry id it was written as.
    pub entry_id: String,
    /// The knowledge file it was added to.
    pub file: PathBuf,
}

/// Why a candidate was not accepted; the prompts folder is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// No candidate has this id.
    #[error("there is no candidate FAQ entry {0}")]
    Unknown(i64),
    /// The ticket has no candidate (it is not resolved, or its customer was forgotten).
    #[error("ticket {0} has no candidate FAQ entry (not resolved yet, or forgotten)")]
    NoCandidate(i64),
    /// The candidate is a FAQ entry already.
    #[error("candidate {id} was accepted already, as FAQ entry `{entry_id}`")]
    AlreadyAccepted {
        /// The candidate.
        id: i64,
        /// The FAQ entry it became.
        entry_id: String,
    },
    /// The entry would make the prompts folder invalid, or could not be written.
    #[error(transparent)]
    Learn(#[from] LearnError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The default FAQ entry id of candidate `id`.
pub fn default_entry_id(id: i64) -> String {
    format!("team-{id}")
}

/// Writes candidate `id` into the prompts folder `dir` as a FAQ entry (with `edits`),
/// validated like `check-prompts` first, and records that `by` accepted it at `at`. A
/// refused entry changes neither the folder nor the store.
pub fn accept_candidate(
    store: &Store,
    dir: &Path,
    id: i64,
    edits: &CandidateEdits,
    by: &str,
    at: UnixMillis,
) -> Result<Accepted, AcceptError> {
    let candidate = store.candidate(id)?.ok_or(AcceptError::Unknown(id))?;
    if let Some(entry_id) = candidate.entry_id.clone() {
        return Err(AcceptError::AlreadyAccepted { id, entry_id });
    }
    let entry_id = edits
        .entry_id
        .clone()
        .unwrap_or_else(|| default_entry_id(id));
    let provenance = match candidate.ticket_id {
        Some(ticket) => format!("From ticket {ticket} (candidate {id})."),
        None => format!("From candidate {id}."),
    };
    let entry = NewFaqEntry {
        id: entry_id.clone(),
        question: edits
            .question
            .clone()
            .unwrap_or_else(|| candidate.question.clone()),
        answer: edits
            .answer
            .clone()
            .unwrap_or_else(|| candidate.answer.clone()),
        provenance,
    };
    let file = content::add_faq_entry(dir, &entry)?;
    if !store.mark_candidate_accepted(id, &entry.id, by, at)? {
        tracing::warn!(
            candidate = id,
            "the candidate was accepted meanwhile by someone else"
        );
    }
    let candidate = store.candidate(id)?.unwrap_or(candidate);
    tracing::info!(candidate = id, entry = %entry.id, "candidate accepted into the knowledge");
    Ok(Accepted {
        candidate,
        entry_id: entry.id,
        file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::broken_copy;
    use crate::assistant::content::PromptSet;
    use crate::store::NewTicket;

    fn resolved_candidate(store: &Store, question: &str) -> i64 {
        let (ticket, _) = store
            .open_ticket(&NewTicket {
                user: "ann",
                channel_id: Some("c"),
                question_message_id: Some("m"),
                question,
                at: 1,
                routing: Default::default(),
            })
            .unwrap();
        store
            .resolve_ticket(ticket.id, "mod", "Yes, we gift-wrap any order for free.", 2)
            .unwrap();
        store.candidate_of_ticket(ticket.id).unwrap().unwrap().id
    }

    #[test]
    fn accepting_writes_the_entry_once_and_records_it() {
        let (_temp, dir) = broken_copy(|_| {});
        let store = Store::open_in_memory().unwrap();
        let id = resolved_candidate(&store, "do u gift wrap??");
        let edits = CandidateEdits {
            question: Some("Do you offer gift wrapping?".into()),
            ..CandidateEdits::default()
        };
        let accepted = accept_candidate(&store, &dir, id, &edits, "admin", 3).unwrap();
        assert_eq!(accepted.entry_id, default_entry_id(id));
        assert_eq!(accepted.candidate.accepted_by.as_deref(), Some("admin"));
        let set = PromptSet::load(&dir).unwrap();
        let entry = set
            .knowledge
            .faq
            .iter()
            .find(|e| e.id == accepted.entry_id)
            .unwrap();
        assert_eq!(entry.question, "Do you offer gift wrapping?");
        assert_eq!(entry.answer, "Yes, we gift-wrap any order for free.");
        let again = accept_candidate(&store, &dir, id, &edits, "admin", 4).unwrap_err();
        assert!(
            matches!(again, AcceptError::AlreadyAccepted { .. }),
            "{again}"
        );
        assert!(matches!(
            accept_candidate(&store, &dir, 999, &edits, "admin", 4),
            Err(AcceptError::Unknown(999))
        ));
    }

    #[test]
    fn a_refused_entry_stays_a_candidate() {
        let (_temp, dir) = broken_copy(|_| {});
        let store = Store::open_in_memory().unwrap();
        let id = resolved_candidate(&store, "do you gift wrap?");
        let taken = PromptSet::load(&dir).unwrap().knowledge.faq[0].id.clone();
        let edits = CandidateEdits {
            entry_id: Some(taken.clone()),
            ..CandidateEdits::default()
        };
        let error = accept_candidate(&store, &dir, id, &edits, "admin", 3).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&format!("duplicate id `{taken}`")),
            "{error}"
        );
        assert!(!dir.join(content::LEARNED_FILE).exists());
        assert_eq!(store.candidates(false).unwrap().len(), 1);
    }
}
