//! Per-user conversation context: held in memory (a [`DashMap`], LRU-bounded), written
//! through to the [`Store`] so a restart loses nothing.
//!
//! Contracts:
//! - One user's turns are processed strictly in order: take [`ConversationStore::lock_user`]
//!   before reading the history and keep the [`UserTurnGuard`] until the answer is recorded.
//!   Different users never wait for each other.
//! - A conversation idle longer than `idle_timeout` is closed; the next turn starts a new
//!   one. Closed conversations stay in the store until `retention` ends
//!   ([`ConversationStore::prune_expired`]).
//! - At most `max_users_in_memory` users are cached; the least recently used go first and
//!   are reloaded from SQLite when they come back.
//! - Time comes from a [`Clock`], so expiry is testable without sleeping.
//! - A forget (here, or `shopkeep user forget` in another process, through the store's
//!   erasure journal) is never undone by a turn that was in flight: such a turn is not
//!   recorded ([`RecordedTurn::Forgotten`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::OwnedMutexGuard;

pub use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::ConversationSettings;
use crate::store::{ConversationId, Store, StoreError, StoredTurn, UnixMillis};

/// Held while one user's turn is processed; see [`ConversationStore::lock_user`].
/// Dropping it lets that user's next turn proceed.
pub struct UserTurnGuard {
    user: String,
    /// The newest erasure-journal id when the turn began: an erasure of its user after it
    /// means the turn is not recorded ([`RecordedTurn::Forgotten`]).
    erasures_seen: i64,
    /// Taken (released) first in `Drop`, before the map cleanup.
    guard: Option<OwnedMutexGuard<()>>,
    locks: Arc<DashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl UserTurnGuard {
    /// The user whose turn this is.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The newest erasure-journal id when the turn began: what this turn stores must not
    /// be written if its user was forgotten after it (see
    /// [`crate::store::Store::log_question_unless_erased`]).
    pub fn erasures_seen(&self) -> i64 {
        self.erasures_seen
    }
}

impl std::fmt::Debug for UserTurnGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTurnGuard")
            .field("user", &self.user)
            .finish()
    }
}

impl Drop for UserTurnGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Remove the user's mutex once nobody holds or waits for it, so the map only holds
        // users with a turn in flight. Clones are made under the same shard lock, so the
        // count cannot grow between the check and the removal.
        self.locks
            .remove_if(&self.user, |_, lock| Arc::strong_count(lock) == 1);
    }
}

/// What [`ConversationStore::record_turn`] did with a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedTurn {
    /// Written to the store and memory.
    Stored,
    /// Not written: its user was forgotten (by `/forget` or `shopkeep user forget`) while
    /// the turn was being answered, and the erasure covers what they said before it.
    Forgotten,
}

/// The user id of a conversation key (the key itself when it names no place).
pub fn user_of_key(key: &str) -> &str {
    key.rsplit_once(PLACE_SEPARATOR)
        .map_or(key, |(user, _)| user)
}

/// Separates the user id from the place in a conversation key.
pub const PLACE_SEPARATOR: char = '@';

/// The key of `user`'s conversation in a place: `user@dm` for direct messages (and the
/// terminal), `user@guild:<id>` for each server. What a customer says in a DM (an address,
/// an order number) never feeds their answers in a public channel or another server.
/// Export and forget by user id cover every place.
pub fn conversation_key(user: &str, guild: Option<&str>) -> String {
    match guild {
        Some(guild) => format!("{user}{PLACE_SEPARATOR}guild:{guild}"),
        None => format!("{user}{PLACE_SEPARATOR}dm"),
    }
}

/// The open conversation of a cached user.
#[derive(Debug, Clone)]
struct OpenConversation {
    id: ConversationId,
    last_active_at: UnixMillis,
    /// The newest turns (at most `max_turns_in_memory`), oldest first.
    turns: Vec<StoredTurn>,
}

#[derive(Debug)]
struct CachedUser {
    /// `None`: the user has no open conversation (known, so SQLite is not asked again).
    conversation: Option<OpenConversation>,
    /// LRU stamp: the value of `ConversationStore::tick` when last used.
    last_used: u64,
}

/// What [`ConversationStore::prune_expired`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Conversations closed because they were idle past the timeout.
    pub closed: usize,
    /// Conversations deleted because their retention ended.
    pub deleted: usize,
    /// Idle users dropped from memory.
    pub evicted: usize,
    /// Logged questions deleted because their retention ended.
    pub questions: usize,
    /// Feedback votes deleted because their retention ended.
    pub feedback: usize,
}

/// Per-user conversation context; see the module docs for the contracts.
pub struct ConversationStore {
    store: Arc<Store>,
    settings: ConversationSettings,
    clock: Arc<dyn Clock>,
    cached: DashMap<String, CachedUser>,
    locks: Arc<DashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    tick: AtomicU64,
    /// Only one eviction pass at a time.
    evicting: Mutex<()>,
    /// The newest erasure-journal id already applied to the cache.
    erasures_seen: std::sync::atomic::AtomicI64,
    /// Users erased (by any process) since [`ConversationStore::take_erased`] last ran.
    erased: Mutex<Vec<String>>,
}

impl std::fmt::Debug for ConversationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationStore")
            .field("cached_users", &self.cached.len())
            .finish_non_exhaustive()
    }
}

impl ConversationStore {
    /// A store with an empty cache over `store`, its timeouts and limits from `settings` and "now" from `clock`.
    pub fn new(store: Arc<Store>, settings: ConversationSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            settings,
            clock,
            cached: DashMap::new(),
            locks: Arc::new(DashMap::new()),
            tick: AtomicU64::new(0),
            evicting: Mutex::new(()),
            erasures_seen: std::sync::atomic::AtomicI64::new(0),
            erased: Mutex::new(Vec::new()),
        }
    }

    /// Applies erasures journalled in the store since the last call (by this process or
    /// by `shopkeep user forget` in another): every conversation of an erased user leaves
    /// memory, so the store stays the source of truth. The users are kept for
    /// [`ConversationStore::take_erased`].
    pub fn sync_erasures(&self) -> Result<(), StoreError> {
        let seen = self.erasures_seen.load(Ordering::SeqCst);
        let journal = self.store.erasures_after(seen)?;
        let Some((newest, _)) = journal.last() else {
            return Ok(());
        };
        self.erasures_seen.fetch_max(*newest, Ordering::SeqCst);
        let mut erased = self.erased.lock().unwrap_or_else(|p| p.into_inner());
        for (_, user) in journal {
            self.cached.retain(|key, _| {
                key != &user && !key.starts_with(&format!("{user}{PLACE_SEPARATOR}"))
            });
            erased.push(user);
        }
        Ok(())
    }

    /// The users erased since the last call (for caches outside this store, such as the
    /// engine's prompt prefixes).
    pub fn take_erased(&self) -> Vec<String> {
        std::mem::take(&mut *self.erased.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The store conversations are written to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Now, by this store's clock.
    pub fn now_ms(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    /// Waits until no other turn of `user` is in progress and returns the guard for this
    /// one. Waiters are served in the order they called (tokio's mutex is fair). The turn
    /// begins after the erasures journalled so far (they are applied first); a later one
    /// of its user means it is not recorded.
    pub async fn lock_user(&self, user: &str) -> UserTurnGuard {
        let lock = self
            .locks
            .entry(user.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone();
        let guard = lock.lock_owned().await;
        if let Err(error) = self.sync_erasures() {
            tracing::warn!(%error, "could not read the erasure journal");
        }
        UserTurnGuard {
            user: user.to_string(),
            erasures_seen: self.erasures_seen.load(Ordering::SeqCst),
            guard: Some(guard),
            locks: self.locks.clone(),
        }
    }

    /// The turns of the user's open conversation, oldest first (at most
    /// `max_turns_in_memory`). Empty when there is none or it has expired; an expired one
    /// is closed in the store.
    pub fn history(&self, turn: &UserTurnGuard) -> Result<Vec<StoredTurn>, StoreError> {
        self.sync_erasures()?;
        let now = self.clock.now_ms();
        let conversation = self.open_conversation(turn.user(), now)?;
        Ok(conversation.map(|c| c.turns).unwrap_or_default())
    }

    /// Records a finished turn: appends it to the open conversation, or starts a new
    /// conversation when there is none or it expired. Written to the store first; memory
    /// follows only on success. When the turn's user was forgotten since the turn began
    /// (in this process or another), nothing is written ([`RecordedTurn::Forgotten`]): the
    /// erased conversation is gone, and a new one is started only in the same transaction
    /// that checks the erasure journal.
    pub fn record_turn(
        &self,
        turn: &UserTurnGuard,
        question: &str,
        answer: &str,
    ) -> Result<RecordedTurn, StoreError> {
        let now = self.clock.now_ms();
        let user = turn.user();
        let start = || {
            self.store.start_conversation_unless_erased(
                user,
                user_of_key(user),
                turn.erasures_seen,
                now,
            )
        };
        let mut conversation = match self.open_conversation(user, now)? {
            Some(conversation) => conversation,
            None => match start()? {
                Some(id) => OpenConversation {
                    id,
                    last_active_at: now,
                    turns: Vec::new(),
                },
                None => return Ok(self.forgotten_turn(user)),
            },
        };
        let stored = StoredTurn {
            at: now,
            question: question.to_string(),
            answer: answer.to_string(),
        };
        match self.store.append_turn(conversation.id, &stored) {
            // Deleted behind our back (a forget, or pruned): start over, unless forgotten.
            Err(StoreError::UnknownConversation(_)) => {
                let Some(id) = start()? else {
                    return Ok(self.forgotten_turn(user));
                };
                conversation = OpenConversation {
                    id,
                    last_active_at: now,
                    turns: Vec::new(),
                };
                self.store.append_turn(conversation.id, &stored)?;
            }
            other => other?,
        }
        conversation.last_active_at = now;
        conversation.turns.push(stored);
        let excess = conversation
            .turns
            .len()
            .saturating_sub(self.settings.max_turns_in_memory);
        conversation.turns.drain(..excess);
        self.cache(user, Some(conversation));
        Ok(RecordedTurn::Stored)
    }

    /// A turn not recorded because its user was forgotten meanwhile; nothing of it stays
    /// in memory either.
    fn forgotten_turn(&self, key: &str) -> RecordedTurn {
        self.cached.remove(key);
        tracing::info!(
            user = user_of_key(key),
            "a turn answered while its user was forgotten is not recorded"
        );
        RecordedTurn::Forgotten
    }

    /// Deletes everything stored about `user`, in memory and on disk (conversations,
    /// turns, logged questions, feedback), in every place. A turn of theirs in flight is
    /// not written back afterwards ([`RecordedTurn::Forgotten`]).
    pub async fn forget(&self, user: &str) -> Result<(), StoreError> {
        self.store.forget_user(user)?;
        self.cached
            .retain(|key, _| key != user && !key.starts_with(&format!("{user}{PLACE_SEPARATOR}")));
        self.sync_erasures()
    }

    /// All stored conversations and turns of `user` (and their logged questions and
    /// feedback), as JSON; see [`Store::export_user`].
    pub fn export(&self, user: &str) -> Result<serde_json::Value, StoreError> {
        self.store.export_user(user)
    }

    /// Closes conversations idle past the timeout, deletes those past retention, and drops
    /// idle users from memory. Call it now and then (the assistant does).
    pub fn prune_expired(&self, now: UnixMillis) -> Result<PruneReport, StoreError> {
        let (questions, feedback) = self
            .store
            .prune_logs(now - millis(self.settings.log_retention), now)?;
        let idle_before = now - millis(self.settings.idle_timeout);
        let closed = self.store.close_idle_conversations(idle_before)?;
        let deleted = self
            .store
            .delete_conversations_inactive_before(now - millis(self.settings.retention))?;
        let before = self.cached.len();
        self.cached.retain(|_, cached| {
            cached
                .conversation
                .as_ref()
                .is_some_and(|c| c.last_active_at >= idle_before)
        });
        Ok(PruneReport {
            closed,
            deleted,
            evicted: before.saturating_sub(self.cached.len()),
            questions,
            feedback,
        })
    }

    /// Users held in memory now.
    pub fn cached_users(&self) -> usize {
        self.cached.len()
    }

    /// Whether `user` is held in memory now (for tests and benchmarks).
    pub fn is_cached(&self, user: &str) -> bool {
        self.cached.contains_key(user)
    }

    /// Users with a turn in flight or waiting (their per-user mutex exists).
    pub fn users_with_turns_in_flight(&self) -> usize {
        self.locks.len()
    }

    /// The user's open, unexpired conversation, from memory or else from the store; the
    /// user is cached (and marked used) either way. An expired one is closed.
    fn open_conversation(
        &self,
        user: &str,
        now: UnixMillis,
    ) -> Result<Option<OpenConversation>, StoreError> {
        let tick = self.next_tick();
        let cached = self.cached.get_mut(user).map(|mut cached| {
            cached.last_used = tick;
            cached.conversation.clone()
        });
        let conversation = match cached {
            Some(conversation) => conversation,
            None => {
                let loaded = self
                    .store
                    .latest_open_conversation(user, self.settings.max_turns_in_memory)?
                    .map(|stored| OpenConversation {
                        id: stored.id,
                        last_active_at: stored.last_active_at,
                        turns: stored.turns,
                    });
                self.cache(user, loaded.clone());
                loaded
            }
        };
        match conversation {
            Some(conversation) if self.is_expired(&conversation, now) => {
                self.store.close_conversation(conversation.id)?;
                self.cache(user, None);
                Ok(None)
            }
            other => Ok(other),
        }
    }

    fn is_expired(&self, conversation: &OpenConversation, now: UnixMillis) -> bool {
        now - conversation.last_active_at > millis(self.settings.idle_timeout)
    }

    fn next_tick(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::Relaxed)
    }

    fn cache(&self, user: &str, conversation: Option<OpenConversation>) {
        let last_used = self.next_tick();
        let inserted = self
            .cached
            .insert(
                user.to_string(),
                CachedUser {
                    conversation,
                    last_used,
                },
            )
            .is_none();
        if inserted && self.cached.len() > self.settings.max_users_in_memory {
            self.evict_least_recently_used();
        }
    }

    /// Evicts the least recently used users down to 90% of the bound, so the O(n) pass
    /// runs once per ~10% of new users rather than on every one.
    fn evict_least_recently_used(&self) {
        let Ok(_evicting) = self.evicting.try_lock() else {
            return; // another task is evicting right now
        };
        let max = self.settings.max_users_in_memory;
        let target = max - max / 10;
        let excess = self.cached.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut stamps: Vec<(u64, String)> = self
            .cached
            .iter()
            .map(|entry| (entry.last_used, entry.key().clone()))
            .collect();
        let excess = excess.min(stamps.len());
        if excess < stamps.len() {
            stamps.select_nth_unstable_by_key(excess, |(stamp, _)| *stamp);
        }
        for (stamp, user) in stamps.into_iter().take(excess) {
            // Skip a user used again since the snapshot.
            self.cached
                .remove_if(&user, |_, cached| cached.last_used == stamp);
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const MINUTE: Duration = Duration::from_secs(60);

    fn settings(max_users: usize) -> ConversationSettings {
        ConversationSettings {
            idle_timeout: 30 * MINUTE,
            retention: 24 * 60 * MINUTE,
            log_retention: 90 * 24 * 60 * MINUTE,
            max_users_in_memory: max_users,
            max_turns_in_memory: 4,
        }
    }

    fn conversations(store: Arc<Store>, max_users: usize) -> (ConversationStore, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        (
            ConversationStore::new(store, settings(max_users), clock.clone()),
            clock,
        )
    }

    fn questions(turns: &[StoredTurn]) -> Vec<&str> {
        turns.iter().map(|t| t.question.as_str()).collect()
    }

    async fn say(conversations: &ConversationStore, user: &str, question: &str) {
        let turn = conversations.lock_user(user).await;
        conversations
            .record_turn(&turn, question, &format!("re: {question}"))
            .unwrap();
    }

    async fn history(conversations: &ConversationStore, user: &str) -> Vec<StoredTurn> {
        let turn = conversations.lock_user(user).await;
        conversations.history(&turn).unwrap()
    }

    #[tokio::test]
    async fn turns_accumulate_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite3");
        let path = path.to_str().unwrap();
        {
            let (conversations, _) = conversations(Arc::new(Store::open(path).unwrap()), 10);
            say(&conversations, "alice", "one").await;
            say(&conversations, "alice", "two").await;
            assert_eq!(
                questions(&history(&conversations, "alice").await),
                ["one", "two"]
            );
        }
        let (restarted, _) = conversations(Arc::new(Store::open(path).unwrap()), 10);
        assert!(!restarted.is_cached("alice"));
        let turns = history(&restarted, "alice").await;
        assert_eq!(questions(&turns), ["one", "two"]);
        assert_eq!(turns[1].answer, "re: two");
    }

    #[tokio::test]
    async fn memory_keeps_only_the_newest_turns_but_the_store_keeps_all() {
        let (conversations, _) = conversations(Arc::new(Store::open_in_memory().unwrap()), 10);
        for i in 0..6 {
            say(&conversations, "alice", &format!("q{i}")).await;
        }
        assert_eq!(
            questions(&history(&conversations, "alice").await),
            ["q2", "q3", "q4", "q5"]
        );
        let export = conversations.export("alice").unwrap();
        assert_eq!(
            export["conversations"][0]["turns"]
                .as_array()
                .unwrap()
                .len(),
            6
        );
    }

    #[tokio::test]
    async fn an_idle_conversation_expires_and_a_new_one_starts() {
        let (conversations, clock) = conversations(Arc::new(Store::open_in_memory().unwrap()), 10);
        say(&conversations, "alice", "before").await;
        clock.advance(29 * MINUTE);
        assert_eq!(
            history(&conversations, "alice").await.len(),
            1,
            "not idle yet"
        );
        say(&conversations, "alice", "still").await;
        clock.advance(31 * MINUTE);
        assert!(history(&conversations, "alice").await.is_empty(), "expired");
        say(&conversations, "alice", "after").await;
        assert_eq!(
            questions(&history(&conversations, "alice").await),
            ["after"]
        );

        let export = conversations.export("alice").unwrap();
        let stored = export["conversations"].as_array().unwrap();
        assert_eq!(stored.len(), 2, "the old conversation is kept for insights");
        assert_eq!(stored[0]["closed"], true);
        assert_eq!(stored[0]["turns"].as_array().unwrap().len(), 2);
        assert_eq!(stored[1]["closed"], false);
    }

    #[tokio::test]
    async fn an_expired_conversation_is_not_resumed_after_a_restart() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let (conversations, clock) = conversations(store.clone(), 10);
        say(&conversations, "alice", "old").await;
        let restarted =
            ConversationStore::new(store, settings(10), clock.clone() as Arc<dyn Clock>);
        clock.advance(31 * MINUTE);
        assert!(history(&restarted, "alice").await.is_empty());
    }

    #[tokio::test]
    async fn prune_expired_deletes_after_retention_only() {
        let (conversations, clock) = conversations(Arc::new(Store::open_in_memory().unwrap()), 10);
        say(&conversations, "alice", "old").await;
        clock.advance(31 * MINUTE);
        say(&conversations, "bob", "recent").await;
        let report = conversations.prune_expired(clock.now_ms()).unwrap();
        assert_eq!(report.closed, 1);
        assert_eq!(report.deleted, 0);
        assert_eq!(report.evicted, 1, "alice is idle, bob stays cached");
        assert!(conversations.is_cached("bob"));
        assert_eq!(
            conversations.export("alice").unwrap()["conversations"][0]["closed"],
            true
        );

        clock.advance(24 * 60 * MINUTE - MINUTE);
        let report = conversations.prune_expired(clock.now_ms()).unwrap();
        assert_eq!(
            report.deleted, 1,
            "alice's retention ended, bob's has a minute left"
        );
        clock.advance(2 * MINUTE);
        let report = conversations.prune_expired(clock.now_ms()).unwrap();
        assert_eq!(report.deleted, 1);
        assert_eq!(
            conversations.export("alice").unwrap()["conversations"],
            serde_json::json!([])
        );
    }

    #[tokio::test]
    async fn least_recently_used_users_are_evicted_and_reloaded() {
        let (conversations, _) = conversations(Arc::new(Store::open_in_memory().unwrap()), 10);
        for i in 0..10 {
            say(&conversations, &format!("user{i}"), &format!("hello {i}")).await;
        }
        // user0 is used again, so user1 is now the least recently used.
        history(&conversations, "user0").await;
        say(&conversations, "user10", "hello 10").await;
        assert!(conversations.cached_users() <= 10);
        assert!(conversations.is_cached("user0"));
        assert!(!conversations.is_cached("user1"));
        assert!(conversations.is_cached("user10"));

        let reloaded = history(&conversations, "user1").await;
        assert_eq!(questions(&reloaded), ["hello 1"]);
        assert!(conversations.is_cached("user1"));
        assert!(conversations.cached_users() <= 10);
    }

    #[tokio::test]
    async fn the_memory_bound_holds_with_many_users() {
        let (conversations, _) = conversations(Arc::new(Store::open_in_memory().unwrap()), 50);
        for i in 0..500 {
            say(&conversations, &format!("user{i}"), "hi").await;
            assert!(conversations.cached_users() <= 50);
        }
        assert!(conversations.is_cached("user499"));
        assert_eq!(conversations.store().user_count().unwrap(), 500);
    }

    #[tokio::test]
    async fn a_conversation_deleted_behind_the_cache_starts_over() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let (conversations, _) = conversations(store.clone(), 10);
        say(&conversations, "alice", "old").await;
        store.forget_user("alice").unwrap(); // another process, e.g. `shopkeep user forget`
        say(&conversations, "alice", "new").await;
        let export = conversations.export("alice").unwrap();
        assert_eq!(export["conversations"].as_array().unwrap().len(), 1);
        assert_eq!(export["conversations"][0]["turns"][0]["question"], "new");
        assert_eq!(questions(&history(&conversations, "alice").await), ["new"]);
    }

    #[tokio::test]
    async fn places_have_their_own_conversations_and_forget_covers_all() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let (conversations, _clock) = conversations(store, 10);
        let dm = conversation_key("alice", None);
        let shop = conversation_key("alice", Some("1"));
        say(&conversations, &dm, "my address is 12 Elm Street").await;
        say(&conversations, &shop, "do you ship to Norway?").await;
        assert_eq!(
            questions(&history(&conversations, &shop).await),
            ["do you ship to Norway?"]
        );
        assert_eq!(
            questions(&history(&conversations, &dm).await),
            ["my address is 12 Elm Street"]
        );
        assert_eq!(
            conversations.export("alice").unwrap()["conversations"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        say(&conversations, &conversation_key("alicia", None), "keep me").await;
        conversations.forget("alice").await.unwrap();
        assert!(!conversations.is_cached(&dm) && !conversations.is_cached(&shop));
        assert!(history(&conversations, &shop).await.is_empty());
        assert!(conversations.export("alice").unwrap()["conversations"]
            .as_array()
            .unwrap()
            .is_empty());
        assert_eq!(
            conversations.export("alicia").unwrap()["conversations"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn an_erasure_by_another_process_empties_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite3");
        let path = path.to_str().unwrap();
        let (conversations, _clock) = conversations(Arc::new(Store::open(path).unwrap()), 10);
        let key = conversation_key("alice", Some("1"));
        say(&conversations, &key, "my order is 4711").await;
        assert!(conversations.is_cached(&key));
        // `shopkeep user forget alice`, another process with its own connection.
        Store::open(path).unwrap().forget_user("alice").unwrap();
        assert!(history(&conversations, &key).await.is_empty());
        assert_eq!(conversations.take_erased(), ["alice"]);
        assert!(conversations.take_erased().is_empty());
    }

    #[tokio::test]
    async fn a_turn_in_flight_when_its_user_is_forgotten_is_not_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite3");
        let path = path.to_str().unwrap();
        let (conversations, _clock) = conversations(Arc::new(Store::open(path).unwrap()), 10);
        let in_a_server = conversation_key("alice", Some("1"));
        let in_dms = conversation_key("alice", None);
        say(&conversations, &in_a_server, "my order is 4711").await;
        for forget_from_the_command_line in [false, true] {
            // Being answered (history read, the model writing) while alice is forgotten.
            let server_turn = conversations.lock_user(&in_a_server).await;
            conversations.history(&server_turn).unwrap();
            let dm_turn = conversations.lock_user(&in_dms).await;
            conversations.history(&dm_turn).unwrap();
            if forget_from_the_command_line {
                Store::open(path).unwrap().forget_user("alice").unwrap();
            } else {
                conversations.forget("alice").await.unwrap();
            }
            let recorded = conversations
                .record_turn(&server_turn, "I live at 1 Canary Lane", "Noted.")
                .unwrap();
            assert_eq!(recorded, RecordedTurn::Forgotten);
            let recorded = conversations
                .record_turn(&dm_turn, "my card ends 4242", "Noted.")
                .unwrap();
            assert_eq!(recorded, RecordedTurn::Forgotten);
            drop((server_turn, dm_turn));
            let export = conversations.export("alice").unwrap();
            assert_eq!(export["conversations"], serde_json::json!([]), "{export}");
            // What alice says after being forgotten is hers to keep.
            say(&conversations, &in_a_server, "hello again").await;
            assert_eq!(
                questions(&history(&conversations, &in_a_server).await),
                ["hello again"]
            );
        }
    }

    #[tokio::test]
    async fn forget_deletes_memory_and_disk() {
        let (conversations, _) = conversations(Arc::new(Store::open_in_memory().unwrap()), 10);
        say(&conversations, "alice", "secret").await;
        say(&conversations, "bob", "keep").await;
        conversations.forget("alice").await.unwrap();
        assert!(!conversations.is_cached("alice"));
        assert!(history(&conversations, "alice").await.is_empty());
        assert_eq!(
            conversations.export("alice").unwrap()["conversations"],
            serde_json::json!([])
        );
        assert_eq!(questions(&history(&conversations, "bob").await), ["keep"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_users_turns_run_in_order_and_other_users_are_not_blocked() {
        let (conversations, _) = conversations(Arc::new(Store::open_in_memory().unwrap()), 10);
        let conversations = Arc::new(conversations);
        // Alice's first turn is in flight (its guard is held) ...
        let first = conversations.lock_user("alice").await;
        // ... so her next turns queue, in the order they asked ...
        let in_progress = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for i in 1..=3 {
            let mine = conversations.clone();
            let in_progress = in_progress.clone();
            waiting.push(tokio::spawn(async move {
                let turn = mine.lock_user("alice").await;
                assert_eq!(
                    in_progress.fetch_add(1, Ordering::SeqCst),
                    0,
                    "overlapping turns"
                );
                let seen = mine.history(&turn).unwrap().len();
                tokio::task::yield_now().await;
                mine.record_turn(&turn, &format!("q{i}"), "a").unwrap();
                in_progress.fetch_sub(1, Ordering::SeqCst);
                seen
            }));
            // Make sure this one is queued before the next one asks.
            while conversations
                .locks
                .get("alice")
                .map(|l| Arc::strong_count(&l))
                != Some(2 + i)
            {
                tokio::task::yield_now().await;
            }
        }
        // ... while bob is answered at once.
        let bob = tokio::time::timeout(Duration::from_secs(5), conversations.lock_user("bob"))
            .await
            .expect("bob must not wait for alice");
        conversations.record_turn(&bob, "bob's", "a").unwrap();
        drop(bob);
        conversations.record_turn(&first, "q0", "a").unwrap();
        drop(first);

        let mut seen = Vec::new();
        for task in waiting {
            seen.push(task.await.unwrap());
        }
        assert_eq!(seen, [1, 2, 3], "each turn saw all earlier turns");
        assert_eq!(
            questions(&history(&conversations, "alice").await),
            ["q0", "q1", "q2", "q3"]
        );
        assert_eq!(
            conversations.users_with_turns_in_flight(),
            0,
            "locks are cleaned up"
        );
    }
}
