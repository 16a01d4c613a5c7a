//! Answer messages and the questions they answered.
//!
//! When the bot posts an answer, the adapter links each of its messages to the asker's
//! latest logged question in that channel (one user's questions are answered one at a
//! time, and the question is logged before the answer's final text is handed over). Votes
//! stay in `feedback`, keyed by message; through the link they are read with the question,
//! the answer's source (the knowledge entry) and its topic (the intent), and a hand-off
//! asked for from an answer finds its question. Links go with their question: forgetting
//! the asker or pruning old logs removes them (`ON DELETE CASCADE`).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{
    offload, question_row, QuestionOutcome, QuestionRecord, Store, StoreError, UnixMillis, Vote,
};

/// The question an answer message answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnsweredQuestion {
    /// The question log's row id.
    pub question_id: i64,
    /// The question as logged.
    pub record: QuestionRecord,
}

/// One vote on an answer message, with what was asked and answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerFeedback {
    /// When the vote was cast.
    pub at: UnixMillis,
    /// The bot's answer message voted on.
    pub message_id: String,
    /// Who voted.
    pub user: String,
    /// Up or down.
    pub vote: Vote,
    /// The question answered; `None` when the message is not linked (or the asker was
    /// forgotten).
    pub question: Option<String>,
    /// The knowledge entry the answer came from (its source).
    pub entry_id: Option<String>,
    /// The answer's topic (intent tag).
    pub intent: Option<String>,
}

impl Store {
    /// Links the answer message `message_id` to `asker`'s latest logged question in
    /// `channel_id` (`None`: a direct message); whether there was one to link. Linking a
    /// message twice keeps the first link.
    pub fn link_answer(
        &self,
        message_id: &str,
        asker: &str,
        channel_id: Option<&str>,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        offload(|| {
            let linked = self
                .lock()
                .prepare_cached(
                    "INSERT OR IGNORE INTO answers (message_id, question_id, at)
                     SELECT ?1, id, ?4 FROM questions
                     WHERE user_key = ?2 AND channel_id IS ?3
                     ORDER BY at DESC, id DESC LIMIT 1",
                )?
                .execute(params![message_id, asker, channel_id, at])?;
            Ok(linked > 0)
        })
    }

    /// The question the answer message `message_id` answered, if it is linked.
    pub fn answered_question(
        &self,
        message_id: &str,
    ) -> Result<Option<AnsweredQuestion>, StoreError> {
        offload(|| {
            let found = self
                .lock()
                .prepare_cached(
                    "SELECT q.at, q.user_key, q.channel_id, q.question, q.entry_id, q.intent,
                            q.confidence, q.outcome, q.id
                     FROM answers a JOIN questions q ON q.id = a.question_id
                     WHERE a.message_id = ?1",
                )?
                .query_row(params![message_id], |row| {
                    Ok(AnsweredQuestion {
                        question_id: row.get(8)?,
                        record: question_row(row)?,
                    })
                })
                .optional()?;
            Ok(found)
        })
    }

    /// Marks a logged question as handed off (the asker asked for a person after the
    /// answer).
    pub fn mark_handed_off(&self, question_id: i64) -> Result<(), StoreError> {
        offload(|| {
            self.lock()
                .prepare_cached("UPDATE questions SET outcome = ?2 WHERE id = ?1")?
                .execute(params![question_id, QuestionOutcome::Handoff.as_str()])?;
            Ok(())
        })
    }

    /// Every vote on the answer message `message_id`, oldest first, with its question,
    /// source and topic.
    pub fn feedback_on_answer(&self, message_id: &str) -> Result<Vec<AnswerFeedback>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(
                "SELECT f.at, f.message_id, f.user_key, f.vote, q.question, q.entry_id, q.intent
                 FROM feedback f
                 LEFT JOIN answers a ON a.message_id = f.message_id
                 LEFT JOIN questions q ON q.id = a.question_id
                 WHERE f.message_id = ?1 ORDER BY f.at, f.id",
            )?;
            let rows = statement
                .query_map(params![message_id], |r| {
                    Ok(AnswerFeedback {
                        at: r.get(0)?,
                        message_id: r.get(1)?,
                        user: r.get(2)?,
                        vote: Vote::from_stored(r.get(3)?),
                        question: r.get(4)?,
                        entry_id: r.get(5)?,
                        intent: r.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FeedbackRecord;

    fn question(store: &Store, at: UnixMillis, user: &str, channel: &str, text: &str) {
        store
            .log_question(&QuestionRecord {
                at,
                user: user.into(),
                channel_id: Some(channel.into()),
                question: text.into(),
                entry_id: Some(format!("entry-{text}")),
                intent: Some("shipping".into()),
                confidence: Some(0.9),
                outcome: QuestionOutcome::Answered,
            })
            .unwrap();
    }

    fn vote(store: &Store, message: &str, user: &str, vote: Vote) {
        store
            .record_feedback(&FeedbackRecord {
                at: 5,
                message_id: message.into(),
                user: user.into(),
                vote,
            })
            .unwrap();
    }

    #[test]
    fn votes_are_read_with_the_latest_question_of_the_asker_in_that_channel() {
        let store = Store::open_in_memory().unwrap();
        question(&store, 1, "ann", "c1", "old");
        question(&store, 2, "ann", "c1", "free shipping");
        question(&store, 3, "ann", "c2", "elsewhere");
        question(&store, 4, "bob", "c1", "bob's");
        assert!(store.link_answer("m1", "ann", Some("c1"), 5).unwrap());
        assert!(!store.link_answer("m2", "carl", Some("c1"), 5).unwrap());
        vote(&store, "m1", "bob", Vote::Down);
        vote(&store, "m2", "bob", Vote::Up);
        let on_m1 = store.feedback_on_answer("m1").unwrap();
        assert_eq!(on_m1.len(), 1);
        assert_eq!(on_m1[0].question.as_deref(), Some("free shipping"));
        assert_eq!(on_m1[0].entry_id.as_deref(), Some("entry-free shipping"));
        assert_eq!(on_m1[0].intent.as_deref(), Some("shipping"));
        assert_eq!(on_m1[0].vote, Vote::Down);
        assert_eq!(store.feedback_on_answer("m2").unwrap()[0].question, None);
        let answered = store.answered_question("m1").unwrap().unwrap();
        assert_eq!(answered.record.user, "ann");
        store.mark_handed_off(answered.question_id).unwrap();
        assert_eq!(
            store
                .answered_question("m1")
                .unwrap()
                .unwrap()
                .record
                .outcome,
            QuestionOutcome::Handoff
        );
    }

    #[test]
    fn forgetting_the_asker_removes_the_link_but_not_other_peoples_votes() {
        let store = Store::open_in_memory().unwrap();
        question(&store, 1, "ann", "c1", "free shipping");
        store.link_answer("m1", "ann", Some("c1"), 2).unwrap();
        vote(&store, "m1", "bob", Vote::Up);
        store.forget_user("ann").unwrap();
        assert_eq!(store.answered_question("m1").unwrap(), None);
        let votes = store.feedback_on_answer("m1").unwrap();
        assert_eq!(votes.len(), 1);
        assert_eq!(votes[0].question, None);
    }
}
