//! The daily digest: posted to the moderator log at `SHOPKEEP_DIGEST_AT` (UTC) by the
//! clock, once a day, through the fake Discord; and a bad time refused at start.

mod support;

use std::sync::Arc;
use std::time::Duration;

use shopkeep::assistant::conversation::ManualClock;
use shopkeep::assistant::moderation::insights::DAY_MS;
use shopkeep::discord::digest;
use shopkeep::discord::rest::{no_mentions, Rest};
use shopkeep::store::{NewTicket, QuestionOutcome, QuestionRecord, Store};
use support::*;

const MOD_LOG: u64 = 510_000_000_000_000_001;
const HOUR: i64 = 3_600_000;
/// 2026-11-30 08:00 UTC.
const START: i64 = 20_787 * DAY_MS + 8 * HOUR;

fn asked(store: &Store, at: i64, question: &str, outcome: QuestionOutcome) {
    store
        .log_question(&QuestionRecord {
            at,
            user: question.into(),
            channel_id: None,
            question: question.into(),
            entry_id: None,
            intent: None,
            confidence: None,
            outcome,
        })
        .unwrap();
}

fn rest_to(fake: &FakeDiscord) -> Rest {
    let http = serenity::http::HttpBuilder::new(TOKEN)
        .proxy(fake.url())
        .ratelimiter_disabled(true)
        .default_allowed_mentions(no_mentions())
        .build();
    Rest::new(Arc::new(http))
}

/// The digests posted so far, by their text.
fn digests(fake: &FakeDiscord) -> Vec<String> {
    fake.posts_to(MOD_LOG)
        .iter()
        .map(|r| body(r)["content"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Lets the digest task look at the clock a few times.
async fn a_few_polls() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_is_posted_once_a_day_at_its_time_by_the_clock() {
    let fake = FakeDiscord::start().await;
    let store = Arc::new(Store::open_in_memory().unwrap());
    asked(
        &store,
        START - 30 * HOUR,
        "too old",
        QuestionOutcome::Answered,
    );
    asked(
        &store,
        START - 2 * HOUR,
        "where is my parcel",
        QuestionOutcome::Answered,
    );
    asked(
        &store,
        START - HOUR,
        "do you sell tractors",
        QuestionOutcome::Handoff,
    );
    let ticket = NewTicket {
        user: "do you sell tractors",
        channel_id: None,
        question_message_id: None,
        question: "do you sell tractors",
        at: START - HOUR,
        routing: Default::default(),
    };
    let (ticket, _) = store.open_ticket(&ticket).unwrap();
    store
        .claim_ticket(ticket.id, "mod", START - HOUR + 10 * 60_000)
        .unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let task = digest::spawn(
        Arc::clone(&store),
        rest_to(&fake),
        MOD_LOG,
        "09:00".parse().unwrap(),
        clock.clone(),
        Duration::from_millis(20),
    );
    a_few_polls().await;
    clock.advance(Duration::from_secs(59 * 60));
    a_few_polls().await;
    assert!(digests(&fake).is_empty(), "posted before 09:00");
    clock.advance(Duration::from_secs(60));
    let first = fake
        .wait_for("the first digest", ANSWER_WAIT, |f| {
            digests(f).into_iter().next()
        })
        .await;
    for part in [
        "**Daily digest, last 24 hours** (2026-11-29 to 2026-11-30, UTC): 2 questions",
        "**Deflection**: 1 of 2 (50 %)",
        "**Hand-offs**: 1 · tickets opened 1 · median time to claim 10 min",
        "\"do you sell tractors\" ×1 (handed off)",
    ] {
        assert!(first.contains(part), "{part} missing:\n{first}");
    }
    // Not again the same day, however often the clock is read.
    clock.advance(Duration::from_secs(3 * 3600));
    a_few_polls().await;
    assert_eq!(digests(&fake).len(), 1);
    // The next morning: the 24 hours before it, which held no questions.
    clock.advance(Duration::from_secs(21 * 3600));
    let second = fake
        .wait_for("the second digest", ANSWER_WAIT, |f| {
            digests(f).get(1).cloned()
        })
        .await;
    assert!(
        second.contains("(2026-11-30 to 2026-12-01, UTC): 0 questions"),
        "{second}"
    );
    task.abort();
    assert_no_mentions_allowed(&fake);
}

#[test]
fn a_digest_time_that_is_not_hh_mm_is_refused_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shopkeep"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SHOPKEEP_") || key.starts_with("DISCORD_") {
            command.env_remove(key);
        }
    }
    let output = command
        .arg("run")
        .current_dir(dir.path())
        .env("SHOPKEEP_ENV_FILE", "off")
        .env("DISCORD_TOKEN", TOKEN)
        .env("DISCORD_API_URL", "http://127.0.0.1:9")
        .env("SHOPKEEP_MOD_LOG_CHANNEL", MOD_LOG.to_string())
        .env("SHOPKEEP_DIGEST_AT", "9am")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("SHOPKEEP_DIGEST_AT=\"9am\" is not valid") && stderr.contains("HH:MM"),
        "{stderr}"
    );
}
