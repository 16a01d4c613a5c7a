//! The Discord bot end to end: the real `shopkeep run` binary against a fake Discord
//! (tests/support), one fake and one bot process per test.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const CHANNEL: u64 = 500_000_000_000_000_001;
const SUPPORT_CHANNEL: u64 = 500_000_000_000_000_002;
const CUSTOMER: u64 = 400_000_000_000_000_001;
const ANSWER_WAIT: Duration = Duration::from_secs(30);

fn body(r: &Recorded) -> &Value {
    r.body.as_ref().expect("a JSON body")
}

/// Waits for the bot's (first) reply to the message `question` in `channel`.
async fn reply_to(fake: &FakeDiscord, channel: u64, question: u64) -> Recorded {
    fake.wait_for("a reply", ANSWER_WAIT, |f| {
        f.posts_to(channel)
            .into_iter()
            .find(|r| body(r)["message_reference"]["message_id"] == json!(question.to_string()))
    })
    .await
}

async fn started(env: &[(&str, &str)]) -> (FakeDiscord, Bot) {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, env);
    fake.wait_ready().await;
    (fake, bot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mention_is_answered_as_a_reply_with_typing() {
    let (fake, _bot) = started(&[]).await;
    let question = Msg::new(&fake, CHANNEL, CUSTOMER, "where is my order?").mentioning_bot();
    question.send(&fake);
    let reply = reply_to(&fake, CHANNEL, question.id).await;
    assert!(!body(&reply)["content"].as_str().unwrap().trim().is_empty());
    let typing = format!("/api/v10/channels/{CHANNEL}/typing");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == typing),
        "no typing indicator:\n{}",
        fake.describe_requests()
    );
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    assert_no_mentions_allowed(&fake);
}
