//! Conversations and their turns: started, appended to, closed when idle, resumed, read
//! back for export, and deleted when retention ends.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{offload, ConversationId, Store, StoreError, UnixMillis};

/// One question and the answer given, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredTurn {
    /// When the question was answered.
    pub at: UnixMillis,
    /// The customer's question.
    pub question: String,
    /// The answer given, as posted.
    pub answer: String,
}

/// A conversation with (some of) its turns, oldest turn first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredConversation {
    /// Its row id.
    pub id: ConversationId,
    /// Whose it is: the user id, or the id keyed by place (`user@dm`, `user@guild:…`).
    pub user: String,
    /// When it started.
    pub started_at: UnixMillis,
    /// When its newest turn was.
    pub last_active_at: UnixMillis,
    /// Closed after being idle; never resumed.
    pub closed: bool,
    /// Its turns as read (all, or the newest few), oldest first.
    pub turns: Vec<StoredTurn>,
}

impl Store {
    /// Starts a new, open conversation for `user`.
    pub fn start_conversation(
        &self,
        user: &str,
        at: UnixMillis,
    ) -> Result<ConversationId, StoreError> {
        offload(|| {
            let connection = self.lock();
            connection
                .prepare_cached(
                    "INSERT INTO conversations (user_key, started_at, last_active_at) VALUES (?1, ?2, ?2)",
                )?
                .execute(params![user, at])?;
            Ok(connection.last_insert_rowid())
        })
    }

    /// Appends a turn and marks the conversation active at `turn.at`.
    pub fn append_turn(
        &self,
        conversation: ConversationId,
        turn: &StoredTurn,
    ) -> Result<(), StoreError> {
        offload(|| {
            let mut connection = self.lock();
            let tx = connection.transaction()?;
            let updated = tx
                .prepare_cached(
                    "UPDATE conversations SET last_active_at = max(last_active_at, ?2) WHERE id = ?1",
                )?
                .execute(params![conversation, turn.at])?;
            if updated == 0 {
                return Err(StoreError::UnknownConversation(conversation));
            }
            tx.prepare_cached(
                "INSERT INTO turns (conversation_id, at, question, answer) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![conversation, turn.at, turn.question, turn.answer])?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Marks a conversation closed (idle past the timeout); it stays until retention ends.
    pub fn close_conversation(&self, conversation: ConversationId) -> Result<(), StoreError> {
        offload(|| {
            self.lock()
                .prepare_cached("UPDATE conversations SET closed = 1 WHERE id = ?1")?
                .execute(params![conversation])?;
            Ok(())
        })
    }

    /// Closes every open conversation last active before `before`; returns how many.
    pub fn close_idle_conversations(&self, before: UnixMillis) -> Result<usize, StoreError> {
        offload(|| {
            Ok(self
                .lock()
                .prepare_cached(
                    "UPDATE conversations SET closed = 1 WHERE closed = 0 AND last_active_at < ?1",
                )?
                .execute(params![before])?)
        })
    }

    /// The user's newest open conversation with at most `max_turns` of its newest turns
    /// (oldest first), or `None`.
    pub fn latest_open_conversation(
        &self,
        user: &str,
        max_turns: usize,
    ) -> Result<Option<StoredConversation>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let Some(mut conversation) = connection
                .prepare_cached(
                    "SELECT id, user_key, started_at, last_active_at, closed FROM conversations
                     WHERE user_key = ?1 AND closed = 0 ORDER BY id DESC LIMIT 1",
                )?
                .query_row(params![user], conversation_row)
                .optional()?
            else {
                return Ok(None);
            };
            let mut turns = connection
                .prepare_cached(
                    "SELECT at, question, answer FROM turns WHERE conversation_id = ?1
                     ORDER BY id DESC LIMIT ?2",
                )?
                .query_map(
                    params![
                        conversation.id,
                        i64::try_from(max_turns).unwrap_or(i64::MAX)
                    ],
                    turn_row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            turns.reverse();
            conversation.turns = turns;
            Ok(Some(conversation))
        })
    }

    /// Every stored conversation of `user` with all turns, oldest first: those keyed by
    /// the plain id and those keyed by place (`user@dm`, `user@guild:…`; see
    /// [`crate::assistant::conversation::conversation_key`]).
    pub fn conversations_of(&self, user: &str) -> Result<Vec<StoredConversation>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut conversations = connection
                .prepare_cached(
                    "SELECT id, user_key, started_at, last_active_at, closed FROM conversations
                     WHERE user_key = ?1 OR substr(user_key, 1, length(?1) + 1) = ?1 || '@'
                     ORDER BY id",
                )?
                .query_map(params![user], conversation_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut turns = connection.prepare_cached(
                "SELECT at, question, answer FROM turns WHERE conversation_id = ?1 ORDER BY id",
            )?;
            for conversation in &mut conversations {
                conversation.turns = turns
                    .query_map(params![conversation.id], turn_row)?
                    .collect::<Result<Vec<_>, _>>()?;
            }
            Ok(conversations)
        })
    }

    /// Deletes conversations (and their turns) last active before `before`; returns how
    /// many conversations went.
    pub fn delete_conversations_inactive_before(
        &self,
        before: UnixMillis,
    ) -> Result<usize, StoreError> {
        offload(|| {
            Ok(self
                .lock()
                .prepare_cached("DELETE FROM conversations WHERE last_active_at < ?1")?
                .execute(params![before])?)
        })
    }

    /// Number of distinct users with a stored conversation.
    pub fn user_count(&self) -> Result<u64, StoreError> {
        offload(|| {
            Ok(self.lock().query_row(
                "SELECT count(DISTINCT user_key) FROM conversations",
                [],
                |r| r.get(0),
            )?)
        })
    }
}

fn conversation_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredConversation> {
    Ok(StoredConversation {
        id: row.get(0)?,
        user: row.get(1)?,
        started_at: row.get(2)?,
        last_active_at: row.get(3)?,
        closed: row.get(4)?,
        turns: Vec::new(),
    })
}

fn turn_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredTurn> {
    Ok(StoredTurn {
        at: row.get(0)?,
        question: row.get(1)?,
        answer: row.get(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::turn;
    use super::*;

    #[test]
    fn latest_open_conversation_keeps_the_newest_turns() {
        let store = Store::open_in_memory().unwrap();
        let id = store.start_conversation("alice", 0).unwrap();
        for i in 0..5 {
            store.append_turn(id, &turn(i, &format!("q{i}"))).unwrap();
        }
        let loaded = store.latest_open_conversation("alice", 2).unwrap().unwrap();
        let questions: Vec<_> = loaded.turns.iter().map(|t| t.question.as_str()).collect();
        assert_eq!(questions, ["q3", "q4"]);
    }

    #[test]
    fn closed_conversations_are_not_resumed_and_retention_deletes_them() {
        let store = Store::open_in_memory().unwrap();
        let old = store.start_conversation("alice", 0).unwrap();
        store.append_turn(old, &turn(10, "old")).unwrap();
        assert_eq!(store.close_idle_conversations(100).unwrap(), 1);
        assert!(store
            .latest_open_conversation("alice", 10)
            .unwrap()
            .is_none());
        let new = store.start_conversation("alice", 500).unwrap();
        store.append_turn(new, &turn(500, "new")).unwrap();
        assert_eq!(store.conversations_of("alice").unwrap().len(), 2);
        assert_eq!(store.delete_conversations_inactive_before(100).unwrap(), 1);
        let left = store.conversations_of("alice").unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].turns, vec![turn(500, "new")]);
        let orphan_turns: i64 = store
            .lock()
            .query_row(
                "SELECT count(*) FROM turns WHERE conversation_id = ?1",
                [old],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphan_turns, 0, "turns go with their conversation");
    }

    #[test]
    fn appending_to_a_missing_conversation_is_an_error() {
        let store = Store::open_in_memory().unwrap();
        assert!(matches!(
            store.append_turn(42, &turn(0, "q")),
            Err(StoreError::UnknownConversation(42))
        ));
    }
}
