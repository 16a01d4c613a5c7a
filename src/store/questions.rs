//! The question log: one row per question with where it was routed and what became of
//! it, read back for insights, digests and export.

use rusqlite::{params, Connection, TransactionBehavior};
use serde::Serialize;

use super::privacy::erased_since;
use super::{offload, Store, StoreError, UnixMillis};

/// Longest question text stored in the question log, in characters (Discord's message
/// limit); longer questions (refused as too long, or rate-limited first) are cut.
pub const MAX_LOGGED_QUESTION_CHARS: usize = 2000;

/// What became of a question; logged for the moderators' insights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionOutcome {
    /// The model answered.
    Answered,
    /// Handed off to a human (no knowledge entry matched a shop question).
    Handoff,
    /// Refused by a per-user or per-channel rate limit.
    Limited,
    /// Refused because the generation queue was full.
    Busy,
    /// Admitted, but the generation failed.
    Failed,
}

impl QuestionOutcome {
    /// The name stored in the log: "answered", "handoff", "limited", "busy" or "failed".
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionOutcome::Answered => "answered",
            QuestionOutcome::Handoff => "handoff",
            QuestionOutcome::Limited => "limited",
            QuestionOutcome::Busy => "busy",
            QuestionOutcome::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "answered" => QuestionOutcome::Answered,
            "handoff" => QuestionOutcome::Handoff,
            "limited" => QuestionOutcome::Limited,
            "busy" => QuestionOutcome::Busy,
            "failed" => QuestionOutcome::Failed,
            _ => return None,
        })
    }
}

/// One row of the question log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionRecord {
    /// When the question arrived.
    pub at: UnixMillis,
    /// Who asked.
    pub user: String,
    /// Where it was asked; `None` for a direct message or the terminal chat.
    pub channel_id: Option<String>,
    /// The question, cut to [`MAX_LOGGED_QUESTION_CHARS`] when stored.
    pub question: String,
    /// The knowledge entry the question was routed to, if any.
    pub entry_id: Option<String>,
    /// The intent tag of that entry (or of the classifier), if any.
    pub intent: Option<String>,
    /// Retrieval confidence in [0, 1], if retrieval ran.
    pub confidence: Option<f32>,
    /// What became of it.
    pub outcome: QuestionOutcome,
}

impl Store {
    /// Appends one row to the question log.
    pub fn log_question(&self, record: &QuestionRecord) -> Result<(), StoreError> {
        offload(|| insert_question(&self.lock(), record))
    }

    /// Appends one row to the question log unless its user was forgotten after the
    /// erasure `seen` (when the turn that asked it began): then nothing is written and the
    /// result is `false`. The check and the insert are one write transaction.
    pub fn log_question_unless_erased(
        &self,
        record: &QuestionRecord,
        seen: i64,
    ) -> Result<bool, StoreError> {
        offload(|| {
            let mut connection = self.lock();
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if erased_since(&tx, &[&record.user], seen)? {
                return Ok(false);
            }
            insert_question(&tx, record)?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// Logged questions at or after `since`, oldest first, at most `limit`.
    pub fn questions_since(
        &self,
        since: UnixMillis,
        limit: usize,
    ) -> Result<Vec<QuestionRecord>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(
                "SELECT at, user_key, channel_id, question, entry_id, intent, confidence, outcome
                 FROM questions WHERE at >= ?1 ORDER BY at, id LIMIT ?2",
            )?;
            let rows = statement
                .query_map(
                    params![since, i64::try_from(limit).unwrap_or(i64::MAX)],
                    question_row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Every logged question of `user`, oldest first (for export).
    pub(super) fn questions_of(&self, user: &str) -> Result<Vec<QuestionRecord>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(
                "SELECT at, user_key, channel_id, question, entry_id, intent, confidence, outcome
                 FROM questions WHERE user_key = ?1 ORDER BY at, id",
            )?;
            let rows = statement
                .query_map(params![user], question_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

/// `text` cut to [`MAX_LOGGED_QUESTION_CHARS`] characters.
pub(super) fn capped(text: &str) -> &str {
    match text.char_indices().nth(MAX_LOGGED_QUESTION_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

pub(super) fn question_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QuestionRecord> {
    let outcome: String = row.get(7)?;
    Ok(QuestionRecord {
        at: row.get(0)?,
        user: row.get(1)?,
        channel_id: row.get(2)?,
        question: row.get(3)?,
        entry_id: row.get(4)?,
        intent: row.get(5)?,
        confidence: row.get::<_, Option<f64>>(6)?.map(|c| c as f32),
        outcome: QuestionOutcome::parse(&outcome).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                7,
                rusqlite::types::Type::Text,
                format!("unknown question outcome {outcome:?}").into(),
            )
        })?,
    })
}

fn insert_question(connection: &Connection, record: &QuestionRecord) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO questions (at, user_key, channel_id, question, entry_id, intent, confidence, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            record.at,
            record.user,
            record.channel_id,
            capped(&record.question),
            record.entry_id,
            record.intent,
            record.confidence.map(f64::from),
            record.outcome.as_str(),
        ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::question;
    use super::*;

    #[test]
    fn question_log_round_trips() {
        let store = Store::open_in_memory().unwrap();
        store
            .log_question(&question("alice", 10, QuestionOutcome::Answered))
            .unwrap();
        store
            .log_question(&question("bob", 20, QuestionOutcome::Busy))
            .unwrap();
        let rows = store.questions_since(15, 10).unwrap();
        assert_eq!(rows, vec![question("bob", 20, QuestionOutcome::Busy)]);
        assert_eq!(store.questions_since(0, 1).unwrap().len(), 1);
    }
}
