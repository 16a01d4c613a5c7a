//! Candidate FAQ entries: a resolved ticket's question and the team's answer, stored (not
//! live) until an admin accepts one into the shop's knowledge files.
//!
//! A candidate is made in the same transaction that resolves its ticket, one per ticket.
//! It holds the customer's words, so it belongs to the customer (`user_key`): `user
//! export` lists it and `user forget` deletes it. Accepting records the FAQ entry id it
//! became; the entry itself lives in prompts/, written by the content layer.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::{offload, Store, StoreError, Ticket, UnixMillis};

/// One candidate FAQ entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The candidate's id (`shopkeep knowledge accept ID`).
    pub id: i64,
    /// The ticket it was made from (`None` once that ticket is deleted).
    pub ticket_id: Option<i64>,
    /// The customer whose question it is.
    pub user: String,
    /// The customer's question, as asked.
    pub question: String,
    /// The team's answer, as posted to the customer (already through the output guard).
    pub answer: String,
    /// When the ticket's resolution made it a candidate.
    pub created_at: UnixMillis,
    /// When an admin accepted it into the knowledge files; `None` while it is a candidate.
    pub accepted_at: Option<UnixMillis>,
    /// Who accepted it (the admin's user key); `None` while it is a candidate.
    pub accepted_by: Option<String>,
    /// The FAQ entry id it was written as.
    pub entry_id: Option<String>,
}

const COLUMNS: &str =
    "id, ticket_id, user_key, question, answer, created_at, accepted_at, accepted_by, entry_id";

fn candidate_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        id: r.get(0)?,
        ticket_id: r.get(1)?,
        user: r.get(2)?,
        question: r.get(3)?,
        answer: r.get(4)?,
        created_at: r.get(5)?,
        accepted_at: r.get(6)?,
        accepted_by: r.get(7)?,
        entry_id: r.get(8)?,
    })
}

/// Makes the candidate of a just-resolved ticket, inside the transaction that resolved it;
/// a ticket without an answer makes none.
pub(super) fn add_for_ticket(tx: &Transaction<'_>, ticket: &Ticket) -> Result<(), StoreError> {
    let (Some(answer), Some(at)) = (&ticket.answer, ticket.resolved_at) else {
        return Ok(());
    };
    tx.execute(
        "INSERT OR IGNORE INTO knowledge_candidates (ticket_id, user_key, question, answer, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![ticket.id, ticket.user, ticket.question, answer, at],
    )?;
    Ok(())
}

impl Store {
    /// Candidate FAQ entries, oldest first: those not accepted yet, or all with `accepted`.
    pub fn candidates(&self, accepted: bool) -> Result<Vec<Candidate>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let filter = if accepted {
                ""
            } else {
                "WHERE accepted_at IS NULL"
            };
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM knowledge_candidates {filter} ORDER BY id"
            ))?;
            let rows = statement
                .query_map([], candidate_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// The candidate `id`, if it exists.
    pub fn candidate(&self, id: i64) -> Result<Option<Candidate>, StoreError> {
        self.candidate_where("id", id)
    }

    /// The candidate made from ticket `ticket_id`, if there is one.
    pub fn candidate_of_ticket(&self, ticket_id: i64) -> Result<Option<Candidate>, StoreError> {
        self.candidate_where("ticket_id", ticket_id)
    }

    fn candidate_where(&self, column: &str, value: i64) -> Result<Option<Candidate>, StoreError> {
        offload(|| {
            Ok(self
                .lock()
                .query_row(
                    &format!("SELECT {COLUMNS} FROM knowledge_candidates WHERE {column} = ?1"),
                    params![value],
                    candidate_row,
                )
                .optional()?)
        })
    }

    /// Records that candidate `id` was written as the FAQ entry `entry_id` by `by`; `false`
    /// when it does not exist or was accepted already (nothing changes then).
    pub fn mark_candidate_accepted(
        &self,
        id: i64,
        entry_id: &str,
        by: &str,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        offload(|| {
            let changed = self.lock().execute(
                "UPDATE knowledge_candidates SET accepted_at = ?2, accepted_by = ?3, entry_id = ?4
                 WHERE id = ?1 AND accepted_at IS NULL",
                params![id, at, by, entry_id],
            )?;
            Ok(changed > 0)
        })
    }

    pub(super) fn candidates_of(&self, user: &str) -> Result<Vec<Candidate>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM knowledge_candidates WHERE user_key = ?1 ORDER BY id"
            ))?;
            let rows = statement
                .query_map(params![user], candidate_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{NewTicket, Store};

    fn resolved(store: &Store, user: &str, question: &str) -> i64 {
        let (ticket, _) = store
            .open_ticket(&NewTicket {
                user,
                channel_id: Some("c"),
                question_message_id: Some("m"),
                question,
                at: 10,
                routing: Default::default(),
            })
            .unwrap();
        store
            .resolve_ticket(ticket.id, "mod", "We gift-wrap any order.", 20)
            .unwrap()
            .unwrap();
        ticket.id
    }

    #[test]
    fn a_resolved_ticket_becomes_one_candidate_until_accepted() {
        let store = Store::open_in_memory().unwrap();
        let (open, _) = store
            .open_ticket(&NewTicket {
                user: "bob",
                channel_id: None,
                question_message_id: None,
                question: "still open",
                at: 5,
                routing: Default::default(),
            })
            .unwrap();
        let ticket = resolved(&store, "ann", "do you gift wrap?");
        let pending = store.candidates(false).unwrap();
        assert_eq!(pending.len(), 1, "only the resolved ticket: {pending:?}");
        let candidate = &pending[0];
        assert_eq!(candidate.ticket_id, Some(ticket));
        assert_eq!(candidate.ticket_id.map(|t| t != open.id), Some(true));
        assert_eq!(
            (candidate.question.as_str(), candidate.answer.as_str()),
            ("do you gift wrap?", "We gift-wrap any order.")
        );
        assert_eq!(
            store.candidate_of_ticket(ticket).unwrap().as_ref(),
            Some(candidate)
        );
        assert!(store
            .mark_candidate_accepted(candidate.id, "team-1", "admin", 30)
            .unwrap());
        assert!(!store
            .mark_candidate_accepted(candidate.id, "team-2", "admin", 40)
            .unwrap());
        assert!(store.candidates(false).unwrap().is_empty());
        let all = store.candidates(true).unwrap();
        assert_eq!(all[0].entry_id.as_deref(), Some("team-1"));
        assert_eq!(all[0].accepted_at, Some(30));
    }

    #[test]
    fn candidates_are_exported_and_forgotten_with_their_customer() {
        let store = Store::open_in_memory().unwrap();
        resolved(&store, "ann", "do you gift wrap?");
        resolved(&store, "bob", "can you wrap it?");
        let export = store.export_user("ann").unwrap();
        assert_eq!(
            export["knowledge_candidates"][0]["question"],
            "do you gift wrap?"
        );
        assert_eq!(store.forget_user("ann").unwrap().candidates, 1);
        assert!(store.candidates_of("ann").unwrap().is_empty());
        assert_eq!(store.candidates(false).unwrap().len(), 1);
    }
}
