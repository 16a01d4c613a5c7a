//! SQLite persistence: opening the file, the schema and its migrations, and the [`Store`]
//! every table is reached through. One file per table group adds its part of `Store`:
//! `conversations.rs` (conversations and their turns), `questions.rs` (the question log),
//! `feedback.rs` (votes), `answers.rs` (answer messages linked to their questions) and
//! `tickets.rs` (hand-off tickets).
//!
//! [`Store`] wraps one connection behind a mutex; every call is a short statement or a
//! small transaction. Async callers may call it directly: each call leaves the async
//! worker first (`block_in_place`), so a call that waits on a locked database (up to the
//! 5 s busy timeout) never stalls gateway events or other requests. The file is opened in
//! WAL mode (readers such as `shopkeep user export` do not block the running bot) and the
//! schema is migrated on open through `PRAGMA user_version`.
//!
//! Timestamps are milliseconds since the Unix epoch ([`UnixMillis`]); callers pass them in
//! (only the erasure journal stamps its rows with the clock). Export, forget, retention
//! and the file's mode are in [`privacy`].

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

mod answers;
mod candidates;
mod conversations;
mod feedback;
mod insights;
mod privacy;
mod questions;
mod tickets;
pub use answers::{AnswerFeedback, AnsweredQuestion};
pub use candidates::Candidate;
pub use conversations::{StoredConversation, StoredTurn};
pub use feedback::{FeedbackRecord, FeedbackTally, Vote};
pub use insights::{CastVote, TicketTimes};
use privacy::restrict_to_owner;
pub use privacy::ERASURE_JOURNAL_MS;
use questions::{capped, question_row};
pub use questions::{QuestionOutcome, QuestionRecord, MAX_LOGGED_QUESTION_CHARS};
pub use tickets::{NewTicket, Ticket, TicketRouting};

pub use crate::clock::UnixMillis;

/// Row id of a conversation.
pub type ConversationId = i64;

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not create the database directory {path}: {source}")]
    /// The database's parent directory could not be created.
    CreateDir {
        /// The directory.
        path: String,
        /// Why not.
        source: std::io::Error,
    },
    #[error("could not create the database file {path} readable by its owner only: {source}")]
    /// The database file could not be created with owner-only permissions.
    FileMode {
        /// The file.
        path: String,
        /// Why not.
        source: std::io::Error,
    },
    #[error("the database {path} has schema version {found}, newer than this build knows ({supported}); upgrade shopkeep")]
    /// The file was written by a newer shopkeep; it is left untouched.
    SchemaTooNew {
        /// The file.
        path: String,
        /// Its schema version.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    #[error("conversation {0} does not exist")]
    /// A turn was appended to a conversation that is not stored.
    UnknownConversation(ConversationId),
    #[error("database error: {0}")]
    /// SQLite refused or failed a statement.
    Sqlite(#[from] rusqlite::Error),
}

/// Schema migrations; `PRAGMA user_version` is the number applied so far. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: conversations, turns, question log, feedback.
    "CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        user_key TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        last_active_at INTEGER NOT NULL,
        closed INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1))
    );
    CREATE INDEX conversations_by_user ON conversations (user_key, id);
    CREATE INDEX conversations_by_activity ON conversations (last_active_at);
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL
    );
    CREATE INDEX turns_by_conversation ON turns (conversation_id, id);
    CREATE TABLE questions (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        user_key TEXT NOT NULL,
        channel_id TEXT,
        question TEXT NOT NULL,
        entry_id TEXT,
        intent TEXT,
        confidence REAL,
        outcome TEXT NOT NULL
    );
    CREATE INDEX questions_by_time ON questions (at);
    CREATE INDEX questions_by_user ON questions (user_key);
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        user_key TEXT NOT NULL,
        vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        UNIQUE (message_id, user_key)
    );
    CREATE INDEX feedback_by_time ON feedback (at);",
    // 2: the erasure journal: which users were forgotten, so that a running bot drops
    // what it holds in memory for them (`shopkeep user forget` is another process).
    "CREATE TABLE erasures (
        id INTEGER PRIMARY KEY,
        user_key TEXT NOT NULL,
        at INTEGER NOT NULL
    );",
    // 3: which logged question each of the bot's answer messages answered (feedback and
    // hand-offs on request read the question, its source and topic through it).
    "CREATE TABLE answers (
        message_id TEXT PRIMARY KEY,
        question_id INTEGER NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
        at INTEGER NOT NULL
    );
    CREATE INDEX answers_by_question ON answers (question_id);",
    // 4: hand-off tickets.
    "CREATE TABLE tickets (
        id INTEGER PRIMARY KEY,
        user_key TEXT NOT NULL,
        channel_id TEXT,
        question_message_id TEXT,
        question TEXT NOT NULL,
        thread_id TEXT,
        opened_at INTEGER NOT NULL,
        claimed_by TEXT,
        claimed_at INTEGER,
        resolved_by TEXT,
        resolved_at INTEGER,
        answer TEXT
    );
    CREATE INDEX tickets_by_user ON tickets (user_key, resolved_at);",
    // 5: what a ticket was routed to, and the candidate FAQ entries resolved tickets
    // become (see `candidates`).
    "ALTER TABLE tickets ADD COLUMN topic TEXT;
    ALTER TABLE tickets ADD COLUMN confidence REAL;
    ALTER TABLE tickets ADD COLUMN closest TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE knowledge_candidates (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER UNIQUE REFERENCES tickets (id) ON DELETE SET NULL,
        user_key TEXT NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        accepted_at INTEGER,
        accepted_by TEXT,
        entry_id TEXT
    );
    CREATE INDEX knowledge_candidates_by_user ON knowledge_candidates (user_key);",
];

/// Rows deleted by [`Store::forget_user`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    /// Conversations deleted.
    pub conversations: usize,
    /// Turns deleted with them.
    pub turns: usize,
    /// Question-log rows deleted.
    pub questions: usize,
    /// Votes deleted.
    pub feedback: usize,
    /// Hand-off tickets deleted.
    pub tickets: usize,
    /// Candidate FAQ entries made from the user's tickets.
    pub candidates: usize,
}

/// The SQLite store. Safe to share (`Arc<Store>`) across threads and tasks.
pub struct Store {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, or an in-memory one for
    /// `:memory:`; creates missing parent directories, enables WAL and migrates the schema.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let connection = if path == ":memory:" {
            Connection::open_in_memory()?
        } else {
            if let Some(parent) = Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            restrict_to_owner(path)?;
            Connection::open(path)?
        };
        connection.busy_timeout(Duration::from_secs(5))?;
        // Deleted text is overwritten with zeros, not left in free pages.
        connection.pragma_update(None, "secure_delete", true)?;
        // Returns the mode in effect ("memory" for an in-memory database).
        let _mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        migrate(&connection, path)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    /// A fresh in-memory store (tests, `SHOPKEEP_DB=:memory:`).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::open(":memory:")
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        offload(|| {
            Ok(self
                .lock()
                .query_row("PRAGMA user_version", [], |r| r.get(0))?)
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (statements are
        // atomic and transactions roll back on drop), so a poisoned lock is still usable.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs blocking store work so that it never stalls an async worker: on a worker of a
/// multi-thread Tokio runtime through `block_in_place` (the worker hands its other tasks,
/// such as gateway events and heartbeats, to another thread first, so a write waiting on
/// a locked database delays only its own request); elsewhere (the CLI, blocking threads,
/// single-threaded tests) directly.
fn offload<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
fn migrate(connection: &Connection, path: &str) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let found: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > supported {
        return Err(StoreError::SchemaTooNew {
            path: path.to_string(),
            found,
            supported,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        // DDL is transactional in SQLite: a failed migration leaves the old version.
        connection.execute_batch(&format!(
            "BEGIN IMMEDIATE; {migration}; PRAGMA user_version = {version}; COMMIT;"
        ))?;
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn turn(at: UnixMillis, question: &str) -> StoredTurn {
        StoredTurn {
            at,
            question: question.into(),
            answer: format!("answer to {question}"),
        }
    }

    #[test]
    fn conversations_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/shop.sqlite3");
        let path = path.to_str().unwrap();
        {
            let store = Store::open(path).unwrap();
            let id = store.start_conversation("alice", 1_000).unwrap();
            store.append_turn(id, &turn(1_000, "q1")).unwrap();
            store.append_turn(id, &turn(2_000, "q2")).unwrap();
        }
        let store = Store::open(path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let conversation = store
            .latest_open_conversation("alice", 10)
            .unwrap()
            .unwrap();
        assert_eq!(
            conversation.turns,
            vec![turn(1_000, "q1"), turn(2_000, "q2")]
        );
        assert_eq!(conversation.last_active_at, 2_000);
        assert!(store.latest_open_conversation("bob", 10).unwrap().is_none());
    }

    #[test]
    fn wal_mode_is_on_for_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.sqlite3");
        let store = Store::open(path.to_str().unwrap()).unwrap();
        let mode: String = store
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.sqlite3");
        let path = path.to_str().unwrap();
        drop(Store::open(path).unwrap());
        Connection::open(path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        match Store::open(path) {
            Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    pub(super) fn question(user: &str, at: UnixMillis, outcome: QuestionOutcome) -> QuestionRecord {
        QuestionRecord {
            at,
            user: user.into(),
            channel_id: Some("c1".into()),
            question: "where is my order?".into(),
            entry_id: Some("orders.track".into()),
            intent: Some("track_order".into()),
            confidence: Some(0.75),
            outcome,
        }
    }

    #[test]
    fn store_is_shared_across_threads() {
        let store = std::sync::Arc::new(Store::open_in_memory().unwrap());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let user = format!("user{t}");
                    let id = store.start_conversation(&user, 0).unwrap();
                    for i in 0..25 {
                        store.append_turn(id, &turn(i, "q")).unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(store.user_count().unwrap(), 4);
        for t in 0..4 {
            let conversation = store
                .latest_open_conversation(&format!("user{t}"), 100)
                .unwrap()
                .unwrap();
            assert_eq!(conversation.turns.len(), 25);
        }
    }
}
