//! Conversation memory and lookup cost.
//!
//! `cargo bench --bench conversations [-- USERS]` (default 100,000 users). Every user has a
//! typical 6-turn conversation (80-character questions, 320-character answers). Reports:
//! - disk bytes per stored conversation (SQLite file after closing);
//! - heap bytes per conversation held in memory (counted by a global allocator; SQLite's
//!   own page cache is not on the Rust heap and is reported only through RSS);
//! - lookup cost (`lock_user` + `history`) for an in-memory hit and for a reload from
//!   SQLite (cache bounded far below the number of users), and the cost of recording a turn.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shopkeep::assistant::conversation::{ConversationStore, ManualClock};
use shopkeep::config::ConversationSettings;
use shopkeep::store::{Store, StoredTurn};

struct CountingAllocator;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const TURNS_PER_CONVERSATION: usize = 6;
const START_MS: i64 = 1_700_000_000_000;

fn allocated() -> isize {
    ALLOCATED.load(Ordering::Relaxed)
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A deterministic pseudo-random sequence (xorshift64*), so runs compare.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

fn user(i: usize) -> String {
    format!("{}", 100_000_000_000_000_000u64 + i as u64) // Discord-like snowflake
}

fn turn(i: usize, t: usize) -> StoredTurn {
    let question = format!("Question {t} of user {i}: where is my order and when will it arrive? ");
    let answer = format!(
        "Answer {t}: your order ships within two working days; tracking follows by email. "
    );
    StoredTurn {
        at: START_MS + t as i64,
        question: pad(question, 80),
        answer: pad(answer, 320),
    }
}

fn pad(mut text: String, length: usize) -> String {
    while text.len() < length {
        text.push_str("more words ");
    }
    text.truncate(length);
    text
}

fn settings(max_users_in_memory: usize) -> ConversationSettings {
    ConversationSettings {
        idle_timeout: Duration::from_secs(30 * 60),
        retention: Duration::from_secs(30 * 86_400),
        log_retention: Duration::from_secs(90 * 86_400),
        max_users_in_memory,
        max_turns_in_memory: 20,
    }
}

fn conversations(path: &str, max_users_in_memory: usize) -> ConversationStore {
    ConversationStore::new(
        Arc::new(Store::open(path).expect("store opens")),
        settings(max_users_in_memory),
        Arc::new(ManualClock::new(START_MS + 60_000)),
    )
}

/// Looks up `count` users (chosen by `pick`); returns the mean time per lookup.
fn lookups(
    runtime: &tokio::runtime::Runtime,
    conversations: &ConversationStore,
    count: usize,
    mut pick: impl FnMut() -> usize,
) -> Duration {
    let users: Vec<String> = (0..count).map(|_| user(pick())).collect();
    let started = Instant::now();
    runtime.block_on(async {
        for user in &users {
            let turn = conversations.lock_user(user).await;
            let history = conversations.history(&turn).expect("history loads");
            assert_eq!(history.len(), TURNS_PER_CONVERSATION);
            black_box(history);
        }
    });
    started.elapsed() / count as u32
}

fn row(what: &str, value: String) {
    println!("| {what:<58} | {value:>16} |");
}

fn main() {
    let users: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.sqlite3");
    let path = path.to_str().unwrap().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    // Write every user's conversation straight to the store.
    let started = Instant::now();
    {
        let store = Store::open(&path).expect("store opens");
        for i in 0..users {
            let id = store.start_conversation(&user(i), START_MS).unwrap();
            for t in 0..TURNS_PER_CONVERSATION {
                store.append_turn(id, &turn(i, t)).unwrap();
            }
        }
    }
    let append_cost = started.elapsed() / (users * TURNS_PER_CONVERSATION) as u32;
    let disk_bytes = std::fs::metadata(&path).unwrap().len();

    // Load everyone into an unbounded cache: reload cost, and the heap it takes.
    let heap_before = allocated();
    let rss_before = rss_bytes();
    let all_cached = conversations(&path, users);
    let mut next = 0;
    let cold = lookups(&runtime, &all_cached, users, || {
        next += 1;
        next - 1
    });
    assert_eq!(all_cached.cached_users(), users);
    let heap_per_conversation = (allocated() - heap_before) as f64 / users as f64;
    let rss_per_conversation = match (rss_before, rss_bytes()) {
        (Some(before), Some(after)) => {
            format!("{:.0} B", (after as f64 - before as f64) / users as f64)
        }
        _ => "n/a".into(),
    };
    let hits = 200_000;
    let hit = lookups(&runtime, &all_cached, hits, || rng.below(users));

    // Recording a turn for a cached user (write-through to SQLite).
    let records = (users / 5).min(20_000);
    let started = Instant::now();
    runtime.block_on(async {
        for i in 0..records {
            let turn = all_cached.lock_user(&user(i)).await;
            all_cached
                .record_turn(&turn, "one more question?", "one more answer.")
                .unwrap();
        }
    });
    let record_cost = started.elapsed() / records as u32;
    drop(all_cached);

    // A cache bounded at 1% of the users: nearly every lookup reloads from SQLite.
    let bounded_size = (users / 100).max(1);
    let bounded = conversations(&path, bounded_size);
    let misses = 50_000;
    // Users 0..records now have a 7th turn; pick among the others.
    let miss = lookups(&runtime, &bounded, misses, || {
        records + rng.below(users - records)
    });
    assert!(bounded.cached_users() <= bounded_size);

    println!();
    println!("Conversations: {users} users x {TURNS_PER_CONVERSATION} turns (80-char question, 320-char answer)");
    println!("| {:<58} | {:>16} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(18));
    row(
        "disk per stored conversation (SQLite file / users)",
        format!("{:.0} B", disk_bytes as f64 / users as f64),
    );
    row(
        "heap per conversation held in memory",
        format!("{heap_per_conversation:.0} B"),
    );
    row(
        "RSS growth per conversation (incl. SQLite cache)",
        rss_per_conversation,
    );
    row(
        &format!("lookup, in-memory hit ({users} cached)"),
        format!("{:.2} us", hit.as_secs_f64() * 1e6),
    );
    row(
        &format!("lookup, reload from SQLite (cache {bounded_size} of {users})"),
        format!("{:.2} us", miss.as_secs_f64() * 1e6),
    );
    row(
        "lookup, first load of each user (cold, sequential)",
        format!("{:.2} us", cold.as_secs_f64() * 1e6),
    );
    row(
        "record a turn (cached user, write-through)",
        format!("{:.2} us", record_cost.as_secs_f64() * 1e6),
    );
    row(
        "append a turn (store only, one transaction each)",
        format!("{:.2} us", append_cost.as_secs_f64() * 1e6),
    );
}
