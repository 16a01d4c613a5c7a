//! Votes on the bot's messages: one per user and message, taken back with the reaction,
//! and counted per message or since a time.

use rusqlite::params;
use serde::Serialize;

use super::{offload, Store, StoreError, UnixMillis};

/// A thumbs up (+1) or down (-1) on one of the bot's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Vote {
    /// Thumbs up (+1).
    Up,
    /// Thumbs down (-1).
    Down,
}

impl Vote {
    /// The vote stored as `value` (see [`Vote::as_i64`]): positive is up.
    pub(super) fn from_stored(value: i64) -> Self {
        if value > 0 {
            Vote::Up
        } else {
            Vote::Down
        }
    }

    fn as_i64(self) -> i64 {
        match self {
            Vote::Up => 1,
            Vote::Down => -1,
        }
    }
}

/// One user's vote on one bot message; a later vote by the same user replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackRecord {
    /// When the vote was cast.
    pub at: UnixMillis,
    /// The bot's message voted on.
    pub message_id: String,
    /// Who voted.
    pub user: String,
    /// Up or down.
    pub vote: Vote,
}

/// Votes counted for one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FeedbackTally {
    /// Thumbs up.
    pub up: u64,
    /// Thumbs down.
    pub down: u64,
}

impl Store {
    /// Records a vote; a later vote by the same user on the same message replaces it.
    pub fn record_feedback(&self, record: &FeedbackRecord) -> Result<(), StoreError> {
        offload(|| {
            self.lock()
                .prepare_cached(
                    "INSERT INTO feedback (at, message_id, user_key, vote) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (message_id, user_key) DO UPDATE SET at = excluded.at, vote = excluded.vote",
                )?
                .execute(params![
                    record.at,
                    record.message_id,
                    record.user,
                    record.vote.as_i64()
                ])?;
            Ok(())
        })
    }

    /// Removes a user's vote on a message (the reaction was taken back).
    pub fn remove_feedback(&self, message_id: &str, user: &str) -> Result<(), StoreError> {
        offload(|| {
            self.lock()
                .prepare_cached("DELETE FROM feedback WHERE message_id = ?1 AND user_key = ?2")?
                .execute(params![message_id, user])?;
            Ok(())
        })
    }

    /// Up and down votes on one message.
    pub fn feedback_tally(&self, message_id: &str) -> Result<FeedbackTally, StoreError> {
        offload(|| {
            let (up, down): (i64, i64) = self
                .lock()
                .prepare_cached(
                    "SELECT coalesce(sum(vote = 1), 0), coalesce(sum(vote = -1), 0)
                     FROM feedback WHERE message_id = ?1",
                )?
                .query_row(params![message_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(FeedbackTally {
                up: up.max(0) as u64,
                down: down.max(0) as u64,
            })
        })
    }

    /// Up and down votes on all of the bot's messages, cast at or after `since`.
    pub fn feedback_tally_since(&self, since: UnixMillis) -> Result<FeedbackTally, StoreError> {
        offload(|| {
            let (up, down): (i64, i64) = self
                .lock()
                .prepare_cached(
                    "SELECT coalesce(sum(vote = 1), 0), coalesce(sum(vote = -1), 0)
                     FROM feedback WHERE at >= ?1",
                )?
                .query_row(params![since], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(FeedbackTally {
                up: up.max(0) as u64,
                down: down.max(0) as u64,
            })
        })
    }

    /// Every vote `user` cast, oldest first (for export).
    pub(super) fn feedback_of(&self, user: &str) -> Result<Vec<FeedbackRecord>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(
                "SELECT at, message_id, user_key, vote FROM feedback WHERE user_key = ?1 ORDER BY at, id",
            )?;
            let rows = statement
                .query_map(params![user], |r| {
                    Ok(FeedbackRecord {
                        at: r.get(0)?,
                        message_id: r.get(1)?,
                        user: r.get(2)?,
                        vote: Vote::from_stored(r.get(3)?),
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

    #[test]
    fn feedback_keeps_one_vote_per_user_and_message() {
        let store = Store::open_in_memory().unwrap();
        let vote = |user: &str, vote| FeedbackRecord {
            at: 1,
            message_id: "m1".into(),
            user: user.into(),
            vote,
        };
        store.record_feedback(&vote("alice", Vote::Up)).unwrap();
        store.record_feedback(&vote("alice", Vote::Down)).unwrap();
        store.record_feedback(&vote("bob", Vote::Up)).unwrap();
        assert_eq!(
            store.feedback_tally("m1").unwrap(),
            FeedbackTally { up: 1, down: 1 }
        );
        store.remove_feedback("m1", "bob").unwrap();
        assert_eq!(
            store.feedback_tally("m1").unwrap(),
            FeedbackTally { up: 0, down: 1 }
        );
        assert_eq!(
            store.feedback_tally("other").unwrap(),
            FeedbackTally::default()
        );
    }
}
