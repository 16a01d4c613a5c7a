//! Privacy: a user's data exported and forgotten (journalled for a running bot, zeroed and
//! checkpointed out of the write-ahead log), the logs pruned after their retention, and the
//! database file readable by its owner only.

use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::json;

use crate::clock::{Clock, SystemClock};

use super::{offload, ConversationId, ForgetReport, Store, StoreError, UnixMillis};

/// How long an erasure stays in the journal: long enough for a running bot to see it.
pub const ERASURE_JOURNAL_MS: UnixMillis = 86_400_000;

impl Store {
    /// Deletes everything stored about `user` (conversations in every place, as
    /// [`Store::conversations_of`] finds them): conversations, turns, logged questions and
    /// feedback votes, hand-off tickets and candidate FAQ entries made from them, in one
    /// transaction that also journals the erasure (for a running
    /// bot, see [`Store::erasures_after`]). With `secure_delete` on, the text is zeroed in
    /// the database; a checkpoint then moves the zeroed pages out of the write-ahead log
    /// and truncates it, so the deleted text is in neither file (unless another process
    /// holds a read open at that moment: then the log is truncated at the next
    /// checkpoint, and a warning says so).
    pub fn forget_user(&self, user: &str) -> Result<ForgetReport, StoreError> {
        self.forget_user_at(user, SystemClock.now_ms())
    }

    fn forget_user_at(&self, user: &str, now: UnixMillis) -> Result<ForgetReport, StoreError> {
        offload(|| {
            let mut connection = self.lock();
            let tx = connection.transaction()?;
            let turns = tx.execute(
                "DELETE FROM turns WHERE conversation_id IN
                 (SELECT id FROM conversations
                  WHERE user_key = ?1 OR substr(user_key, 1, length(?1) + 1) = ?1 || '@')",
                params![user],
            )?;
            let conversations = tx.execute(
                "DELETE FROM conversations
                 WHERE user_key = ?1 OR substr(user_key, 1, length(?1) + 1) = ?1 || '@'",
                params![user],
            )?;
            let questions =
                tx.execute("DELETE FROM questions WHERE user_key = ?1", params![user])?;
            let feedback = tx.execute("DELETE FROM feedback WHERE user_key = ?1", params![user])?;
            let candidates = tx.execute(
                "DELETE FROM knowledge_candidates WHERE user_key = ?1",
                params![user],
            )?;
            let tickets = tx.execute("DELETE FROM tickets WHERE user_key = ?1", params![user])?;
            tx.execute(
                "INSERT INTO erasures (user_key, at) VALUES (?1, ?2)",
                params![user, now],
            )?;
            tx.commit()?;
            checkpoint(&connection);
            Ok(ForgetReport {
                conversations,
                turns,
                questions,
                feedback,
                tickets,
                candidates,
            })
        })
    }

    /// Everything stored about `user` as JSON:
    /// `{"user", "conversations": [{id, started_at, last_active_at, closed, turns: [{at,
    /// question, answer}]}], "questions": [..], "feedback": [..], "tickets": [..],
    /// "knowledge_candidates": [..]}` (times in Unix ms).
    pub fn export_user(&self, user: &str) -> Result<serde_json::Value, StoreError> {
        let conversations = self.conversations_of(user)?;
        let questions = self.questions_of(user)?;
        let feedback = self.feedback_of(user)?;
        let tickets = self.tickets_of(user)?;
        let candidates = self.candidates_of(user)?;
        Ok(json!({
            "user": user,
            "conversations": conversations,
            "questions": questions,
            "feedback": feedback,
            "tickets": tickets,
            "knowledge_candidates": candidates,
        }))
    }

    /// Erasures journalled after `seen` (an erasure id; 0 for all), as (id, user), oldest
    /// first. Journal rows older than [`ERASURE_JOURNAL_MS`] are deleted by
    /// [`Store::prune_logs`].
    pub fn erasures_after(&self, seen: i64) -> Result<Vec<(i64, String)>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection
                .prepare_cached("SELECT id, user_key FROM erasures WHERE id > ?1 ORDER BY id")?;
            let rows = statement
                .query_map(params![seen], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Starts a new, open conversation under `key` (a conversation key of `user`), unless
    /// `user` (or `key`) was forgotten after the erasure `seen`: then `None`, and nothing is
    /// written. The check and the insert are one write transaction, so a forget in another
    /// process comes wholly before or wholly after it.
    pub fn start_conversation_unless_erased(
        &self,
        key: &str,
        user: &str,
        seen: i64,
        at: UnixMillis,
    ) -> Result<Option<ConversationId>, StoreError> {
        offload(|| {
            let mut connection = self.lock();
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if erased_since(&tx, &[user, key], seen)? {
                return Ok(None);
            }
            tx.prepare_cached(
                "INSERT INTO conversations (user_key, started_at, last_active_at) VALUES (?1, ?2, ?2)",
            )?
            .execute(params![key, at])?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Some(id))
        })
    }

    /// Deletes logged questions and feedback older than `before`, and erasure-journal rows
    /// older than [`ERASURE_JOURNAL_MS`] before `now` except the newest (so journal ids keep
    /// growing: a bot that has applied id N never misses a later erasure given an id at or
    /// below N); returns (questions, feedback) deleted.
    pub fn prune_logs(
        &self,
        before: UnixMillis,
        now: UnixMillis,
    ) -> Result<(usize, usize), StoreError> {
        offload(|| {
            let connection = self.lock();
            let questions =
                connection.execute("DELETE FROM questions WHERE at < ?1", params![before])?;
            let feedback =
                connection.execute("DELETE FROM feedback WHERE at < ?1", params![before])?;
            connection.execute(
                "DELETE FROM erasures WHERE at < ?1 AND id < (SELECT max(id) FROM erasures)",
                params![now - ERASURE_JOURNAL_MS],
            )?;
            Ok((questions, feedback))
        })
    }
}

/// Moves the write-ahead log into the database and truncates it (a no-op in memory).
/// Whether one of `keys` (a user id, a conversation key) was forgotten after the erasure
/// `seen`. Run it in the write transaction that stores the user's words, so that a forget
/// in another process comes wholly before or wholly after the write.
pub(super) fn erased_since(
    connection: &Connection,
    keys: &[&str],
    seen: i64,
) -> Result<bool, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM erasures WHERE id > ?1 AND user_key = ?2)")?;
    for key in keys {
        if statement.query_row(params![seen, key], |row| row.get::<_, bool>(0))? {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) fn checkpoint(connection: &Connection) {
    let result = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    });
    match result {
        Ok(0) => {}
        Ok(_) => tracing::warn!(
            "the write-ahead log could not be truncated now (another process is reading); \
             deleted text stays in it until the next checkpoint"
        ),
        Err(error) => tracing::warn!(%error, "could not checkpoint the database"),
    }
}

/// Creates the database file readable by its owner only (0600), or narrows an existing
/// one to that. SQLite gives its `-wal` and `-shm` files the same mode.
pub(super) fn restrict_to_owner(path: &str) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |source: std::io::Error| StoreError::FileMode {
            path: path.to_string(),
            source,
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{question, turn};
    use super::super::*;
    use super::*;

    #[test]
    fn erasure_ids_keep_growing_after_the_journal_is_pruned() {
        let store = Store::open_in_memory().unwrap();
        store.forget_user_at("alice", 0).unwrap();
        let (seen, _) = *store.erasures_after(0).unwrap().last().unwrap();
        // A day later everything old is pruned; a bot has applied `seen`.
        store.prune_logs(0, 2 * ERASURE_JOURNAL_MS).unwrap();
        store.forget_user_at("bob", 2 * ERASURE_JOURNAL_MS).unwrap();
        let after: Vec<String> = store
            .erasures_after(seen)
            .unwrap()
            .into_iter()
            .map(|(_, user)| user)
            .collect();
        assert_eq!(
            after,
            ["bob"],
            "a later erasure reused an id already applied"
        );
    }

    #[test]
    fn a_conversation_is_not_started_for_a_user_forgotten_since() {
        let store = Store::open_in_memory().unwrap();
        let seen = store.erasures_after(0).unwrap().len() as i64;
        assert!(store
            .start_conversation_unless_erased("alice@dm", "alice", seen, 1)
            .unwrap()
            .is_some());
        store.forget_user("alice").unwrap();
        for key in ["alice@dm", "alice@guild:1"] {
            let started = store
                .start_conversation_unless_erased(key, "alice", seen, 2)
                .unwrap();
            assert_eq!(started, None, "{key}");
        }
        assert!(store.conversations_of("alice").unwrap().is_empty());
        let (newest, _) = *store.erasures_after(0).unwrap().last().unwrap();
        assert!(store
            .start_conversation_unless_erased("alice@dm", "alice", newest, 3)
            .unwrap()
            .is_some());
        assert!(store
            .start_conversation_unless_erased("bob@dm", "bob", seen, 3)
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_question_or_ticket_of_a_user_forgotten_since_the_turn_began_is_not_written() {
        let store = Store::open_in_memory().unwrap();
        let seen = store.erasures_after(0).unwrap().len() as i64;
        let ticket = |user: &'static str| crate::store::NewTicket {
            user,
            channel_id: None,
            question_message_id: None,
            question: "I live at 1 Canary Lane",
            at: 5,
            routing: Default::default(),
        };
        let alice = question("alice", 5, QuestionOutcome::Handoff);
        assert!(store.log_question_unless_erased(&alice, seen).unwrap());
        store.forget_user("alice").unwrap();
        assert!(!store.log_question_unless_erased(&alice, seen).unwrap());
        assert!(store.questions_of("alice").unwrap().is_empty());
        assert_eq!(
            store
                .open_ticket_unless_erased(&ticket("alice"), seen)
                .unwrap(),
            None
        );
        assert!(store.tickets_of("alice").unwrap().is_empty());

        let bob = question("bob", 5, QuestionOutcome::Handoff);
        assert!(store.log_question_unless_erased(&bob, seen).unwrap());
        let (opened, new) = store
            .open_ticket_unless_erased(&ticket("bob"), seen)
            .unwrap()
            .expect("bob was not forgotten");
        assert!(new);
        assert_eq!(opened.user, "bob");
        let (newest, _) = *store.erasures_after(0).unwrap().last().unwrap();
        assert!(store.log_question_unless_erased(&alice, newest).unwrap());
    }

    #[test]
    fn forget_user_deletes_everything_of_that_user_only() {
        let store = Store::open_in_memory().unwrap();
        for user in ["alice", "bob"] {
            let id = store.start_conversation(user, 0).unwrap();
            store.append_turn(id, &turn(1, "q")).unwrap();
            store
                .log_question(&question(user, 1, QuestionOutcome::Answered))
                .unwrap();
            store
                .record_feedback(&FeedbackRecord {
                    at: 1,
                    message_id: "m".into(),
                    user: user.into(),
                    vote: Vote::Up,
                })
                .unwrap();
        }
        let report = store.forget_user("alice").unwrap();
        assert_eq!(
            report,
            ForgetReport {
                conversations: 1,
                turns: 1,
                questions: 1,
                feedback: 1,
                tickets: 0,
                candidates: 0,
            }
        );
        let alice = store.export_user("alice").unwrap();
        assert_eq!(alice["conversations"], json!([]));
        assert_eq!(alice["questions"], json!([]));
        assert_eq!(alice["feedback"], json!([]));
        let bob = store.export_user("bob").unwrap();
        assert_eq!(bob["conversations"][0]["turns"][0]["question"], "q");
        assert_eq!(bob["questions"][0]["outcome"], "answered");
    }

    #[test]
    fn forgotten_text_is_in_neither_the_database_nor_its_log() {
        const CANARY: &str = "CANARY-7f3a9c-my-home-address-12-Elm-Street";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canary.sqlite3");
        let path = path.to_str().unwrap();
        let store = Store::open(path).unwrap();
        // Enough other rows that the canary's page is shared and stays allocated.
        for i in 0..50 {
            let id = store.start_conversation(&format!("other{i}"), i).unwrap();
            store
                .append_turn(id, &turn(i, &format!("other question {i}")))
                .unwrap();
        }
        let id = store.start_conversation("alice", 100).unwrap();
        store.append_turn(id, &turn(100, CANARY)).unwrap();
        store
            .log_question(&question("alice", 100, QuestionOutcome::Answered))
            .unwrap();
        let mut logged = question("alice", 101, QuestionOutcome::Busy);
        logged.question = CANARY.to_string();
        store.log_question(&logged).unwrap();
        let bytes = |suffix: &str| std::fs::read(format!("{path}{suffix}")).unwrap_or_default();
        let contains = |haystack: &[u8]| {
            haystack
                .windows(CANARY.len())
                .any(|w| w == CANARY.as_bytes())
        };
        assert!(
            contains(&bytes("")) || contains(&bytes("-wal")),
            "the canary was never written"
        );
        store.forget_user("alice").unwrap();
        assert!(
            !contains(&bytes("")),
            "the canary is still in the database file"
        );
        assert!(
            !contains(&bytes("-wal")),
            "the canary is still in the write-ahead log"
        );
        assert_eq!(store.conversations_of("other7").unwrap().len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn the_database_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.sqlite3");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = Store::open(path.to_str().unwrap()).unwrap();
        store.start_conversation("alice", 1).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
    }

    #[test]
    fn logged_questions_are_capped_and_old_logs_pruned() {
        let store = Store::open_in_memory().unwrap();
        let mut long = question("alice", 10, QuestionOutcome::Limited);
        long.question = "é".repeat(MAX_LOGGED_QUESTION_CHARS + 500);
        store.log_question(&long).unwrap();
        store
            .log_question(&question("bob", 5_000, QuestionOutcome::Answered))
            .unwrap();
        store
            .record_feedback(&FeedbackRecord {
                at: 10,
                message_id: "m".into(),
                user: "carol".into(),
                vote: Vote::Up,
            })
            .unwrap();
        let stored = store.questions_since(0, 10).unwrap();
        assert_eq!(
            stored[0].question.chars().count(),
            MAX_LOGGED_QUESTION_CHARS
        );
        assert_eq!(store.prune_logs(1_000, 5_000).unwrap(), (1, 1));
        let left: Vec<String> = store
            .questions_since(0, 10)
            .unwrap()
            .into_iter()
            .map(|q| q.user)
            .collect();
        assert_eq!(left, ["bob"]);
    }

    #[test]
    fn erasures_are_journalled_for_a_running_bot() {
        let store = Store::open_in_memory().unwrap();
        assert!(store.erasures_after(0).unwrap().is_empty());
        store.forget_user_at("alice", 1_000).unwrap();
        store.forget_user_at("bob", 2_000).unwrap();
        let journal = store.erasures_after(0).unwrap();
        let users: Vec<&str> = journal.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(users, ["alice", "bob"]);
        assert_eq!(store.erasures_after(journal[0].0).unwrap().len(), 1);
        store.prune_logs(0, 1_500 + ERASURE_JOURNAL_MS).unwrap();
        assert_eq!(store.erasures_after(0).unwrap().len(), 1);
    }
}
