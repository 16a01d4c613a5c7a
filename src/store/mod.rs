//! SQLite persistence: conversations and their turns, the question log and feedback.
//! Links from answer messages to their questions are in [`answers`].
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

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

mod answers;
mod candidates;
mod insights;
mod privacy;
mod tickets;
pub use answers::{AnswerFeedback, AnsweredQuestion};
pub use candidates::Candidate;
pub use insights::{CastVote, TicketTimes};
use privacy::restrict_to_owner;
pub use privacy::ERASURE_JOURNAL_MS;
pub use tickets::{NewTicket, Ticket, TicketRouting};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// Row id of a conversation.
pub type ConversationId = i64;

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("could not create the database file {path} readable by its owner only: {source}")]
    FileMode {
        path: String,
        source: std::io::Error,
    },
    #[error("the database {path} has schema version {found}, newer than this build knows ({supported}); upgrade shopkeep")]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("conversation {0} does not exist")]
    UnknownConversation(ConversationId),
    #[error("database error: {0}")]
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

/// Longest question text stored in the question log, in characters (Discord's message
/// limit); longer questions (refused as too long, or rate-limited first) are cut.
pub const MAX_LOGGED_QUESTION_CHARS: usize = 2000;

/// One question and the answer given, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredTurn {
    pub at: UnixMillis,
    pub question: String,
    pub answer: String,
}

/// A conversation with (some of) its turns, oldest turn first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredConversation {
    pub id: ConversationId,
    pub user: String,
    pub started_at: UnixMillis,
    pub last_active_at: UnixMillis,
    pub closed: bool,
    pub turns: Vec<StoredTurn>,
}

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
    pub at: UnixMillis,
    pub user: String,
    pub channel_id: Option<String>,
    pub question: String,
    /// The knowledge entry the question was routed to, if any.
    pub entry_id: Option<String>,
    /// The intent tag of that entry (or of the classifier), if any.
    pub intent: Option<String>,
    /// Retrieval confidence in [0, 1], if retrieval ran.
    pub confidence: Option<f32>,
    pub outcome: QuestionOutcome,
}

/// A thumbs up (+1) or down (-1) on one of the bot's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Vote {
    Up,
    Down,
}

impl Vote {
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
    pub at: UnixMillis,
    pub message_id: String,
    pub user: String,
    pub vote: Vote,
}

/// Votes counted for one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FeedbackTally {
    pub up: u64,
    pub down: u64,
}

/// Rows deleted by [`Store::forget_user`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    pub conversations: usize,
    pub turns: usize,
    pub questions: usize,
    pub feedback: usize,
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

    // ---- conversations -------------------------------------------------------------

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

    // ---- question log --------------------------------------------------------------

    /// Appends one row to the question log.
    pub fn log_question(&self, record: &QuestionRecord) -> Result<(), StoreError> {
        offload(|| {
            self.lock()
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

    fn questions_of(&self, user: &str) -> Result<Vec<QuestionRecord>, StoreError> {
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

    // ---- feedback ------------------------------------------------------------------

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

    fn feedback_of(&self, user: &str) -> Result<Vec<FeedbackRecord>, StoreError> {
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
                        vote: if r.get::<_, i64>(3)? > 0 {
                            Vote::Up
                        } else {
                            Vote::Down
                        },
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
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

/// `text` cut to [`MAX_LOGGED_QUESTION_CHARS`] characters.
fn capped(text: &str) -> &str {
    match text.char_indices().nth(MAX_LOGGED_QUESTION_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
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

fn question_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QuestionRecord> {
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
