//! Nothing blocks the async workers: a database locked by another process delays only
//! the requests that wait on it, never the gateway or an interaction's 3 s deadline. The
//! real `shopkeep run` binary (two async workers) against the fake Discord.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

const CHANNEL: u64 = 520_000_000_000_000_001;
const CUSTOMER: u64 = 420_000_000_000_000_001;

/// How long the test holds the database locked.
const LOCKED_FOR: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_does_not_delay_an_ask_deferral() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.sqlite3");
    let db_path = db.to_str().unwrap().to_string();
    let (fake, _bot) = started(&[("SHOPKEEP_DB", &db_path), ("TOKIO_WORKER_THREADS", "2")]).await;

    // Another process holds the database's write lock (in WAL mode, BEGIN EXCLUSIVE locks
    // out every other writer; readers go on), so every write of the bot waits its busy
    // timeout.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let connection = rusqlite::Connection::open(&db_path).unwrap();
        connection.busy_timeout(Duration::from_secs(10)).unwrap();
        connection
            .execute_batch("BEGIN EXCLUSIVE; DELETE FROM erasures WHERE id < 0;")
            .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(LOCKED_FOR);
        connection.execute_batch("ROLLBACK;").unwrap();
    });
    locked_rx.recv().unwrap();

    // Customers whose answers need the database, more of them than there are workers.
    for i in 0..4 {
        Msg::new(&fake, CHANNEL, CUSTOMER + i, "where is my order?")
            .mentioning_bot()
            .send(&fake);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (id, _, payload) = command_interaction(
        &fake,
        "ask",
        json!([{"name": "question", "type": 3, "value": "what are your opening hours?"}]),
        CHANNEL,
        CUSTOMER + 10,
        &[],
        CAN_READ,
    );
    let sent = Instant::now();
    fake.dispatch("INTERACTION_CREATE", payload);
    let prefix = format!("/api/v10/interactions/{id}/");
    let deferral = fake
        .wait_for("the deferral", LOCKED_FOR + ANSWER_WAIT, |f| {
            f.requests()
                .into_iter()
                .find(|r| r.path.starts_with(&prefix))
        })
        .await;
    let took = deferral.at.duration_since(sent);
    assert!(
        took < Duration::from_secs(3),
        "the deferral took {took:?} while the database was locked"
    );
    assert_eq!(body(&deferral)["type"], json!(5));
    holder.join().unwrap();
}
