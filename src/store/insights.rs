//! The store's reads for the moderators' insights that the question log alone cannot
//! answer: votes by when they were cast, answers that got a 👎, and ticket times.
//!
//! Every window is half-open, `[since, until)`, in [`UnixMillis`].

use rusqlite::params;
use serde::Serialize;

use super::{offload, QuestionOutcome, Store, StoreError, UnixMillis, Vote};

/// One vote on one of the bot's messages, with when it was cast (or last changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CastVote {
    /// When the vote was cast.
    pub at: UnixMillis,
    /// Which way.
    pub vote: Vote,
}

/// When a ticket was opened, claimed and resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TicketTimes {
    /// When it was opened.
    pub opened_at: UnixMillis,
    /// When it was first claimed, or resolved when nobody claimed it first; `None`: not yet.
    pub claimed_at: Option<UnixMillis>,
    /// When it was resolved; `None`: still open.
    pub resolved_at: Option<UnixMillis>,
}

impl Store {
    /// Votes cast in `[since, until)`, oldest first.
    pub fn votes_cast_between(
        &self,
        since: UnixMillis,
        until: UnixMillis,
    ) -> Result<Vec<CastVote>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(
                "SELECT at, vote FROM feedback WHERE at >= ?1 AND at < ?2 ORDER BY at, id",
            )?;
            let votes = statement
                .query_map(params![since, until], |row| {
                    Ok(CastVote {
                        at: row.get(0)?,
                        vote: Vote::from_stored(row.get(1)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(votes)
        })
    }

    /// How many questions asked in `[since, until)` the bot answered (outcome answered)
    /// and then got at least one 👎 on an answer message linked to them (a vote cast at
    /// any time, by anyone).
    pub fn down_voted_answers_between(
        &self,
        since: UnixMillis,
        until: UnixMillis,
    ) -> Result<u64, StoreError> {
        offload(|| {
            let count: i64 = self
                .lock()
                .prepare_cached(
                    "SELECT count(DISTINCT q.id) FROM questions q
                     JOIN answers a ON a.question_id = q.id
                     JOIN feedback f ON f.message_id = a.message_id
                     WHERE q.at >= ?1 AND q.at < ?2 AND q.outcome = ?3 AND f.vote < 0",
                )?
                .query_row(
                    params![since, until, QuestionOutcome::Answered.as_str()],
                    |row| row.get(0),
                )?;
            Ok(count.max(0) as u64)
        })
    }

    /// The times of the tickets opened in `[since, until)`, oldest first.
    pub fn tickets_opened_between(
        &self,
        since: UnixMillis,
        until: UnixMillis,
    ) -> Result<Vec<TicketTimes>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(
                "SELECT opened_at, claimed_at, resolved_at FROM tickets
                 WHERE opened_at >= ?1 AND opened_at < ?2 ORDER BY opened_at, id",
            )?;
            let tickets = statement
                .query_map(params![since, until], |row| {
                    Ok(TicketTimes {
                        opened_at: row.get(0)?,
                        claimed_at: row.get(1)?,
                        resolved_at: row.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(tickets)
        })
    }

    /// How many tickets are not resolved, whenever they were opened.
    pub fn open_ticket_count(&self) -> Result<u64, StoreError> {
        offload(|| {
            let count: i64 = self
                .lock()
                .prepare_cached("SELECT count(*) FROM tickets WHERE resolved_at IS NULL")?
                .query_row([], |row| row.get(0))?;
            Ok(count.max(0) as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FeedbackRecord, NewTicket, QuestionRecord};

    fn ask(store: &Store, at: UnixMillis, user: &str, outcome: QuestionOutcome) {
        store
            .log_question(&QuestionRecord {
                at,
                user: user.into(),
                channel_id: Some("c".into()),
                question: format!("question of {user}"),
                entry_id: None,
                intent: None,
                confidence: None,
                outcome,
            })
            .unwrap();
    }

    fn vote(store: &Store, at: UnixMillis, message: &str, user: &str, vote: Vote) {
        store
            .record_feedback(&FeedbackRecord {
                at,
                message_id: message.into(),
                user: user.into(),
                vote,
            })
            .unwrap();
    }

    #[test]
    fn votes_are_read_by_when_they_were_cast() {
        let store = Store::open_in_memory().unwrap();
        vote(&store, 5, "m1", "ann", Vote::Up);
        vote(&store, 10, "m1", "bob", Vote::Down);
        vote(&store, 20, "m2", "ann", Vote::Down);
        let votes = store.votes_cast_between(5, 20).unwrap();
        assert_eq!(
            votes,
            [
                CastVote {
                    at: 5,
                    vote: Vote::Up
                },
                CastVote {
                    at: 10,
                    vote: Vote::Down
                }
            ]
        );
    }

    #[test]
    fn an_answer_counts_as_down_voted_once_whoever_voted_and_only_if_answered_in_the_window() {
        let store = Store::open_in_memory().unwrap();
        ask(&store, 10, "ann", QuestionOutcome::Answered);
        store.link_answer("m-ann", "ann", Some("c"), 11).unwrap();
        ask(&store, 12, "bob", QuestionOutcome::Answered);
        store.link_answer("m-bob", "bob", Some("c"), 13).unwrap();
        ask(&store, 14, "cy", QuestionOutcome::Answered);
        store.link_answer("m-cy", "cy", Some("c"), 15).unwrap();
        ask(&store, 30, "di", QuestionOutcome::Answered);
        store.link_answer("m-di", "di", Some("c"), 31).unwrap();
        // Two 👎 on ann's answer, a 👍 on bob's, a 👎 on di's (asked after the window).
        vote(&store, 40, "m-ann", "x", Vote::Down);
        vote(&store, 41, "m-ann", "y", Vote::Down);
        vote(&store, 42, "m-bob", "x", Vote::Up);
        vote(&store, 43, "m-di", "x", Vote::Down);
        assert_eq!(store.down_voted_answers_between(0, 30).unwrap(), 1);
        assert_eq!(store.down_voted_answers_between(0, 31).unwrap(), 2);
        // A hand-off asked for after the answer is no longer an answer.
        let answered = store.answered_question("m-ann").unwrap().unwrap();
        store.mark_handed_off(answered.question_id).unwrap();
        assert_eq!(store.down_voted_answers_between(0, 30).unwrap(), 0);
    }

    #[test]
    fn ticket_times_in_the_window_and_the_open_count_of_all_time() {
        let store = Store::open_in_memory().unwrap();
        let open = |user: &str, at| {
            store
                .open_ticket(&NewTicket {
                    user,
                    channel_id: None,
                    question_message_id: None,
                    question: "help",
                    at,
                    routing: Default::default(),
                })
                .unwrap()
                .0
                .id
        };
        let old = open("ann", 5);
        let claimed = open("bob", 100);
        let resolved = open("cy", 200);
        store.claim_ticket(claimed, "mod", 160).unwrap();
        store.resolve_ticket(resolved, "mod", "done", 500).unwrap();
        assert_eq!(
            store.tickets_opened_between(100, 1000).unwrap(),
            [
                TicketTimes {
                    opened_at: 100,
                    claimed_at: Some(160),
                    resolved_at: None
                },
                TicketTimes {
                    opened_at: 200,
                    claimed_at: Some(500),
                    resolved_at: Some(500)
                }
            ]
        );
        assert_eq!(store.open_ticket_count().unwrap(), 2);
        store.resolve_ticket(old, "mod", "late", 900).unwrap();
        assert_eq!(store.open_ticket_count().unwrap(), 1);
    }
}
