//! Faults and bad input, end to end: the real `shopkeep run` binary against the fake
//! Discord (tests/support), one fake and one bot per test.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const CHANNEL: u64 = 510_000_000_000_000_001;
const CUSTOMER: u64 = 410_000_000_000_000_001;

/// Message creates sent for `question` (every attempt, failed or not).
fn create_attempts(fake: &FakeDiscord, question: u64) -> Vec<Recorded> {
    let path = format!("/api/v10/channels/{CHANNEL}/messages");
    fake.requests()
        .into_iter()
        .filter(|r| {
            r.method == "POST"
                && r.path == path
                && r.body.as_ref().is_some_and(|b| {
                    b["message_reference"]["message_id"] == json!(question.to_string())
                })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_is_lost_is_retried_without_a_second_message() {
    let (fake, _bot) = started(&[]).await;
    fake.lose_next_answers("POST", &format!("/channels/{CHANNEL}/messages"), 1);
    let question = Msg::new(&fake, CHANNEL, CUSTOMER, "where is my parcel?").mentioning_bot();
    question.send(&fake);
    reply_to(&fake, CHANNEL, question.id).await;
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    let attempts = create_attempts(&fake, question.id);
    assert_eq!(
        attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        [500, 200],
        "{}",
        fake.describe_requests()
    );
    let nonce = &body(&attempts[0])["nonce"];
    assert!(nonce
        .as_str()
        .is_some_and(|n| !n.is_empty() && n.len() <= 25));
    assert_eq!(
        &body(&attempts[1])["nonce"],
        nonce,
        "the retry changed the nonce"
    );
    assert_eq!(body(&attempts[0])["enforce_nonce"], json!(true));
    // The customer sees exactly one answer message.
    let created = fake.created_replies_to(CHANNEL, question.id);
    assert_eq!(created.len(), 1, "{created:?}");
    assert_no_mentions_allowed(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_fails_for_good_is_logged_with_context_and_counted() {
    let (fake, bot) = started(&[("SHOPKEEP_METRICS_ADDR", "127.0.0.1:0")]).await;
    // Every attempt (4) of the first create fails.
    fake.fail_next(
        "POST",
        &format!("/channels/{CHANNEL}/messages"),
        500,
        None,
        4,
    );
    let question = Msg::new(&fake, CHANNEL, CUSTOMER, "do you sell gift cards?").mentioning_bot();
    question.send(&fake);
    fake.wait_for("the give-up", ANSWER_WAIT, |_| {
        bot.logs()
            .contains("giving up on a Discord request")
            .then_some(())
    })
    .await;
    fake.wait_quiet(Duration::from_millis(2500), ANSWER_WAIT)
        .await;

    let logs = bot.logs();
    let gave_up = logs
        .lines()
        .find(|l| l.contains("giving up on a Discord request"))
        .unwrap_or_else(|| panic!("no give-up line:\n{logs}"));
    for field in [
        format!("guild={GUILD_ID}"),
        format!("channel={CHANNEL}"),
        format!("user={CUSTOMER}"),
        format!("message_id={}", question.id),
    ] {
        assert!(gave_up.contains(&field), "{field} missing in: {gave_up}");
    }
    // Every attempt carried the same nonce (a later try of the same part, e.g. the final
    // text of a streamed answer, reuses it too).
    let attempts = create_attempts(&fake, question.id);
    assert!(attempts.len() >= 4, "{}", fake.describe_requests());
    assert!(attempts
        .windows(2)
        .all(|w| body(&w[0])["nonce"] == body(&w[1])["nonce"]));
    // The next question is answered as usual.
    let next = Msg::new(&fake, CHANNEL, CUSTOMER + 1, "where is my parcel?").mentioning_bot();
    next.send(&fake);
    reply_to(&fake, CHANNEL, next.id).await;
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;

    let metrics = bot.scrape().await;
    let value = |series: &str| {
        metric(&metrics, series).unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert!(value("shopkeep_discord_send_failures_total") >= 1.0);
    assert!(value("shopkeep_discord_errors_total{kind=\"server_error\"}") >= 4.0);
    assert_eq!(value("shopkeep_requests_total{source=\"message\"}"), 2.0);
    assert!(value("shopkeep_final_reply_seconds_count") >= 1.0);
    assert!(value("shopkeep_first_reply_seconds_count") >= 1.0);
    assert_eq!(value("shopkeep_queue_depth"), 0.0);
    assert!(metric(&metrics, "shopkeep_batch_size").is_some());
    assert_eq!(value("shopkeep_refusals_total{reason=\"busy\"}"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_typing_indicator_is_counted_and_the_answer_still_comes() {
    let (fake, bot) = started(&[("SHOPKEEP_METRICS_ADDR", "127.0.0.1:0")]).await;
    let typing = format!("/api/v10/channels/{CHANNEL}/typing");
    fake.fail_next("POST", &typing, 502, None, 1);
    let question = Msg::new(&fake, CHANNEL, CUSTOMER, "where is my parcel?").mentioning_bot();
    question.send(&fake);
    reply_to(&fake, CHANNEL, question.id).await;
    fake.wait_quiet(Duration::from_millis(500), ANSWER_WAIT)
        .await;
    // One attempt, not retried (the indicator is renewed anyway), and not a lost send.
    let attempts = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == typing)
        .count();
    assert_eq!(attempts, 1, "{}", fake.describe_requests());
    let metrics = bot.scrape().await;
    let value = |series: &str| {
        metric(&metrics, series).unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert_eq!(
        value("shopkeep_discord_errors_total{kind=\"server_error\"}"),
        1.0
    );
    assert_eq!(value("shopkeep_discord_send_failures_total"), 0.0);
    assert!(
        bot.logs().contains("show the typing indicator"),
        "the failure is logged:\n{}",
        bot.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_by_reason() {
    let (fake, bot) = started(&[
        ("SHOPKEEP_METRICS_ADDR", "127.0.0.1:0"),
        ("SHOPKEEP_MAX_QUESTION_CHARS", "50"),
    ])
    .await;
    let long = Msg::new(&fake, CHANNEL, CUSTOMER, &"why ".repeat(30)).mentioning_bot();
    long.send(&fake);
    let notice = reply_to(&fake, CHANNEL, long.id).await;
    assert!(body(&notice)["content"]
        .as_str()
        .unwrap()
        .contains("too long"));
    let metrics = bot.scrape().await;
    assert_eq!(
        metric(&metrics, "shopkeep_refusals_total{reason=\"too_long\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "shopkeep_answers_total"), Some(0.0));
    assert_eq!(
        metric(&metrics, "shopkeep_final_reply_seconds_count"),
        Some(1.0)
    );

    // A model answer counts as an answer, with its tokens and generation time.
    let small_talk = Msg::new(
        &fake,
        CHANNEL,
        CUSTOMER + 1,
        "what is the capital of France?",
    )
    .mentioning_bot();
    small_talk.send(&fake);
    reply_to(&fake, CHANNEL, small_talk.id).await;
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    let metrics = bot.scrape().await;
    let value = |series: &str| {
        metric(&metrics, series).unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert_eq!(value("shopkeep_answers_total"), 1.0);
    assert!(value("shopkeep_generated_tokens_total") >= 1.0);
    assert!(value("shopkeep_generation_seconds_total") > 0.0);
    assert_eq!(value("shopkeep_final_reply_seconds_count"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_lookups_failing_at_start_are_retried_with_a_clear_message() {
    let fake = FakeDiscord::start().await;
    fake.fail_next("GET", "/api/v10/gateway", 503, None, 2);
    let mut bot = Bot::start(&fake, &[]);
    fake.wait_ready().await;
    assert!(bot.is_running());
    let logs = bot.logs();
    let unreachable = logs
        .lines()
        .filter(|l| l.contains("cannot reach Discord at"))
        .count();
    assert_eq!(unreachable, 2, "{logs}");
    assert!(logs.contains("Discord is reachable again"), "{logs}");
    let question = Msg::new(&fake, CHANNEL, CUSTOMER, "are you there?").mentioning_bot();
    question.send(&fake);
    reply_to(&fake, CHANNEL, question.id).await;
}

/// A local address nothing listens on (yet).
fn free_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_started_before_discord_connects_once_it_is_up() {
    let addr = free_addr();
    let mut bot = Bot::start_at(&format!("http://{addr}"), &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !bot.logs().contains("cannot reach Discord at") {
        assert!(std::time::Instant::now() < deadline, "{}", bot.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(bot.is_running(), "the bot gave up:\n{}", bot.logs());
    let fake = FakeDiscord::start_on(addr).await;
    fake.wait_ready().await;
    let question = Msg::new(&fake, CHANNEL, CUSTOMER, "hello?").mentioning_bot();
    question.send(&fake);
    reply_to(&fake, CHANNEL, question.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_discord_is_unreachable_exits_zero() {
    let addr = free_addr();
    let mut bot = Bot::start_at(&format!("http://{addr}"), &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !bot.logs().contains("cannot reach Discord at") {
        assert!(std::time::Instant::now() < deadline, "{}", bot.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bot.signal("TERM");
    let status = bot.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}\n{}", bot.logs());
}

/// The tiny model with a manifest that claims a far longer context than its 1,024
/// positions: it loads, and fails at run time on a long prompt.
fn model_that_fails_on_long_prompts() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["model.onnx", "tokenizer.json"] {
        std::os::unix::fs::symlink(model_dir().join(file), dir.path().join(file)).unwrap();
    }
    std::fs::write(
        dir.path().join("manifest.json"),
        r#"{"name": "tiny-gpt2-overclaimed", "family": "gpt2", "context_length": 100000}"#,
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_failure_gets_an_apology_and_the_bot_answers_on() {
    let model = model_that_fails_on_long_prompts();
    let model_path = model.path().display().to_string();
    let (fake, mut bot) = started(&[
        ("SHOPKEEP_MODEL_DIR", &model_path),
        ("SHOPKEEP_MAX_QUESTION_CHARS", "100000"),
    ])
    .await;
    // Small talk goes to the model (shop facts are quoted without it). The prompt keeps at
    // most 2,000 characters of a question; characters that are several tokens each still
    // take the prompt past the model's 1,024 positions.
    let question = format!(
        "what is the capital of France? {}",
        "\u{1F9EA}".repeat(1900)
    );
    let long = Msg::new(&fake, CHANNEL, CUSTOMER, &question).mentioning_bot();
    long.send(&fake);
    let apology = reply_to(&fake, CHANNEL, long.id).await;
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    let shown = fake
        .message_sends()
        .into_iter()
        .rfind(|r| r.status == 200)
        .map(|r| body(&r)["content"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        shown.contains("Sorry, something went wrong"),
        "no apology: {shown:?} (first post {:?})",
        body(&apology)["content"]
    );
    let logs = bot.logs();
    let failed = logs
        .lines()
        .find(|l| l.contains("generation failed"))
        .unwrap_or_else(|| panic!("no error log:\n{logs}"));
    assert!(failed.contains(&format!("user={CUSTOMER}")), "{failed}");

    let next = Msg::new(&fake, CHANNEL, CUSTOMER + 1, "and now?").mentioning_bot();
    next.send(&fake);
    reply_to(&fake, CHANNEL, next.id).await;
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    let last = fake.message_sends().into_iter().last().unwrap();
    assert!(!body(&last)["content"]
        .as_str()
        .unwrap()
        .contains("Sorry, something went wrong"));
    assert!(bot.is_running());
    assert!(!bot.logs().contains("panicked"));
}

fn export(db: &str, user: u64) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_shopkeep"))
        .args(["user", "export", &user.to_string()])
        .env("SHOPKEEP_DB", db)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn turns(export: &Value) -> Vec<String> {
    export["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["turns"].as_array().unwrap().clone())
        .map(|t| t["question"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_the_store_and_a_restart_loses_and_duplicates_nothing() {
    let data = tempfile::tempdir().unwrap();
    let db_path = data.path().join("shopkeep.sqlite3");
    let db = db_path.display().to_string();
    for (round, question) in ["first question", "second question"].iter().enumerate() {
        let (fake, mut bot) = started(&[("SHOPKEEP_DB", &db)]).await;
        let message = Msg::new(&fake, CHANNEL, CUSTOMER, question).mentioning_bot();
        message.send(&fake);
        reply_to(&fake, CHANNEL, message.id).await;
        fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
            .await;
        bot.signal("TERM");
        let status = bot.wait_exit(Duration::from_secs(30)).await;
        assert!(status.success(), "round {round}: {status:?}");
        // The store was closed cleanly: SQLite folds the WAL back and removes it.
        let wal = data.path().join("shopkeep.sqlite3-wal");
        assert!(
            std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
            "the WAL was not checkpointed"
        );
        let stored = export(&db, CUSTOMER);
        assert_eq!(
            turns(&stored),
            ["first question", "second question"][..=round],
            "{stored}"
        );
        assert_eq!(stored["questions"].as_array().unwrap().len(), round + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_get_a_sensible_reply_or_none_and_never_a_panic() {
    let (fake, mut bot) = started(&[]).await;
    let giant = "a".repeat(6_000) + &" ünïcödé 🙂".repeat(600);
    let binary: String = (0u8..=255)
        .map(|b| char::from_u32(u32::from(b)).unwrap())
        .chain(['\u{FFFD}', '\u{FFFF}', '\u{FFFE}', '\u{10FFFF}'])
        .collect();
    let hostile = "\u{202E}gnp.exe\u{202C} \u{200B}\u{200D}\u{2060}\u{FEFF} e\u{0301}\u{0301}\u{0301}\u{0301}\u{0301} \
                   👨\u{200D}👩\u{200D}👧\u{200D}👦 🏳\u{FE0F}\u{200D}🌈 \u{FFFF} \u{1F1FA}\u{1F1F8} Z\u{0335}\u{0336}\u{0337}a\u{0338}\u{0339}"
        .to_string();
    let cases: Vec<(&str, String)> = vec![
        ("giant", giant),
        ("empty", String::new()),
        ("blank", " \n\t ".to_string()),
        ("binary", binary),
        ("hostile", hostile),
        ("many mentions", format!("<@{BOT_ID}> ").repeat(500)),
    ];
    let mut sent = Vec::new();
    for (index, (name, content)) in cases.iter().enumerate() {
        let message = Msg::new(&fake, CHANNEL, CUSTOMER + index as u64, content).mentioning_bot();
        message.send(&fake);
        sent.push((*name, message));
    }
    // A plain question afterwards is still answered.
    let sentinel = Msg::new(&fake, CHANNEL, CUSTOMER + 99, "is the shop open?").mentioning_bot();
    sentinel.send(&fake);
    reply_to(&fake, CHANNEL, sentinel.id).await;
    fake.wait_quiet(Duration::from_millis(2500), Duration::from_secs(120))
        .await;
    assert!(bot.is_running(), "the bot died:\n{}", bot.logs());
    assert!(!bot.logs().contains("panicked"), "{}", bot.logs());

    for (name, message) in &sent {
        let replies = fake.created_replies_to(CHANNEL, message.id);
        match *name {
            "giant" => {
                assert_eq!(replies.len(), 1, "{name}");
                let text = replies[0].message["content"].as_str().unwrap();
                assert!(text.contains("too long"), "{name}: {text}");
            }
            "empty" | "blank" | "many mentions" => {
                assert!(replies.is_empty(), "{name}: answered {replies:?}")
            }
            _ => assert_eq!(replies.len(), 1, "{name}: {replies:?}"),
        }
    }
    for send in fake.message_sends() {
        if let Some(content) = send.body.as_ref().and_then(|b| b["content"].as_str()) {
            assert!(content.chars().count() <= 2000);
            assert!(!content.trim().is_empty());
        }
    }
    assert_no_mentions_allowed(&fake);
}
