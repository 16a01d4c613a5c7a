//! Shutdown end to end: the real `shopkeep run` binary against the fake Discord. The grace
//! period lets a running answer finish (uncut), questions arriving meanwhile get a
//! "restarting" notice, the moderator log is drained, and a second signal forces the exit.
//! Also: test bots do not read a local `.env`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const CHANNEL: u64 = 530_000_000_000_000_001;
const CUSTOMER: u64 = 430_000_000_000_000_001;

/// A copy of the prompts whose grounded answers the model writes (streamed, so an answer
/// is still running for a while after its first part is posted).
fn prompts_generating_grounded_answers() -> tempfile::TempDir {
    let dir = copied_prompts();
    let shop = dir.path().join("shop.toml");
    let settings = std::fs::read_to_string(&shop).unwrap();
    assert!(settings.contains("grounded_answers = \"quote\""));
    std::fs::write(
        &shop,
        settings.replace(
            "grounded_answers = \"quote\"",
            "grounded_answers = \"generate\"",
        ),
    )
    .unwrap();
    dir
}

/// Every text sent for the reply whose message `id` the bot created (its create, then its
/// edits), in order.
fn texts_of_message(fake: &FakeDiscord, id: &str) -> Vec<(Instant, String)> {
    let edit_path = format!("/api/v10/channels/{CHANNEL}/messages/{id}");
    fake.requests()
        .into_iter()
        .filter(|r| {
            (r.method == "PATCH" && r.path == edit_path)
                || (r.method == "POST" && r.response.as_ref().is_some_and(|v| v["id"] == *id))
        })
        .map(|r| {
            (
                r.at,
                r.body.as_ref().unwrap()["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_lets_a_running_answer_finish_and_late_questions_hear_restarting() {
    // A run where the answer was already finished when the signal came proves nothing, so
    // it is repeated (a new bot each time) until an answer is caught running.
    const ATTEMPTS: usize = 3;
    let prompts = prompts_generating_grounded_answers();
    for attempt in 1..=ATTEMPTS {
        let (fake, mut bot) = started(&[
            ("SHOPKEEP_MAX_NEW_TOKENS", "700"),
            ("SHOPKEEP_SHUTDOWN_GRACE_SECS", "60"),
            ("SHOPKEEP_PROMPTS_DIR", prompts.path().to_str().unwrap()),
        ])
        .await;
        let question = Msg::new(&fake, CHANNEL, CUSTOMER, "where is my order?").mentioning_bot();
        question.send(&fake);
        let first = reply_to(&fake, CHANNEL, question.id).await;
        let id = first.response.as_ref().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let signalled = Instant::now();
        bot.signal("TERM");
        fake.wait_for("the shutdown to begin", ANSWER_WAIT, |_| {
            bot.logs().contains("shutdown requested").then_some(())
        })
        .await;
        // A question during the grace period: a notice, not silence.
        let late = Msg::new(&fake, CHANNEL, CUSTOMER + 1, "hello?").mentioning_bot();
        late.send(&fake);
        let notice = reply_to(&fake, CHANNEL, late.id).await;
        let notice: &Value = body(&notice);
        assert!(
            notice["content"].as_str().unwrap().contains("restarting"),
            "{notice}"
        );
        let status = bot.wait_exit(Duration::from_secs(90)).await;
        assert!(status.success(), "exit status {status:?}");
        let texts = texts_of_message(&fake, &id);
        let (last_at, last) = texts.last().cloned().expect("the answer");
        assert!(
            !last.contains("interrupted"),
            "the grace period did not let the answer finish: {last:?}"
        );
        if last_at > signalled {
            assert_no_mentions_allowed(&fake);
            return;
        }
        eprintln!("attempt {attempt}: the answer was finished before the signal");
    }
    panic!("in {ATTEMPTS} attempts no answer was still running at the signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_a_hanging_shutdown_at_once() {
    let (fake, mut bot) = started(&[("SHOPKEEP_SHUTDOWN_GRACE_SECS", "120")]).await;
    // Discord rate-limits the answer for 30 s: the reply hangs in flight.
    fake.fail_next(
        "POST",
        &format!("/channels/{CHANNEL}/messages"),
        429,
        Some(30.0),
        10,
    );
    let question = Msg::new(&fake, CHANNEL, CUSTOMER, "where is my order?").mentioning_bot();
    question.send(&fake);
    fake.wait_for("the rate-limited answer", ANSWER_WAIT, |f| {
        f.requests().iter().any(|r| r.status == 429).then_some(())
    })
    .await;
    bot.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        bot.is_running(),
        "the first signal did not wait for the answer"
    );
    let second = Instant::now();
    bot.signal("INT");
    let status = bot.wait_exit(Duration::from_secs(10)).await;
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "{:?}",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        bot.logs().contains("a second termination signal"),
        "{}",
        bot.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_moderator_log_is_drained_before_exit() {
    const MOD_LOG: u64 = 530_000_000_000_000_099;
    let (fake, mut bot) = started(&[("SHOPKEEP_MOD_LOG_CHANNEL", &MOD_LOG.to_string())]).await;
    // The hand-off post needs its retries (0.5 + 1 + 2 s) to get through.
    fake.fail_next(
        "POST",
        &format!("/channels/{MOD_LOG}/messages"),
        500,
        None,
        3,
    );
    let question = Msg::new(
        &fake,
        CHANNEL,
        CUSTOMER,
        "do you sell refurbished tractors with a lifetime warranty?",
    )
    .mentioning_bot();
    question.send(&fake);
    reply_to(&fake, CHANNEL, question.id).await;
    bot.signal("TERM");
    let status = bot.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    let posted = fake.posts_to(MOD_LOG);
    assert_eq!(posted.len(), 1, "{}", fake.describe_requests());
    assert!(body(&posted[0])["content"]
        .as_str()
        .unwrap()
        .contains("tractors"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_bots_do_not_read_a_local_env_file() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "SHOPKEEP_ANSWER_DMS=false\n").unwrap();
    // As the harness starts every bot: the .env beside it is not read, DMs are answered.
    let _bot = Bot::start_in(&fake.url(), &[], dir.path());
    fake.wait_ready().await;
    let dm = Msg::new(&fake, CHANNEL, CUSTOMER, "hello there").dm();
    dm.send(&fake);
    reply_to(&fake, CHANNEL, dm.id).await;
    drop(_bot);

    // The same file, when the bot is told to read it, turns DMs off (so the file works).
    let fake = FakeDiscord::start().await;
    let _bot = Bot::start_in(&fake.url(), &[("SHOPKEEP_ENV_FILE", ".env")], dir.path());
    fake.wait_ready().await;
    let dm = Msg::new(&fake, CHANNEL, CUSTOMER, "hello there").dm();
    dm.send(&fake);
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    assert!(
        fake.posts_to(CHANNEL).is_empty(),
        "{}",
        fake.describe_requests()
    );
}
