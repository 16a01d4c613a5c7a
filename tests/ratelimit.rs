//! Discord's rate limits, kept by the bot from the headers the fake sends (the same code
//! as in production: serenity's limiter is off in both).

mod support;

use std::time::Duration;

use support::*;

const CHANNEL: u64 = 560_000_000_000_000_001;
const CUSTOMER: u64 = 460_000_000_000_000_001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_keeps_a_channels_rate_limit_from_its_headers() {
    let fake = FakeDiscord::start().await;
    fake.rate_limit_channel(CHANNEL, 2, Duration::from_secs(2));
    let _bot = Bot::start(&fake, &[]);
    fake.wait_ready().await;
    let questions: Vec<Msg> = (0..5)
        .map(|i| Msg::new(&fake, CHANNEL, CUSTOMER + i, "where is my order?").mentioning_bot())
        .collect();
    for question in &questions {
        question.send(&fake);
    }
    for question in &questions {
        reply_to(&fake, CHANNEL, question.id).await;
    }
    let limited: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.status == 429)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        limited.is_empty(),
        "the bot ran into the limit: {limited:?}"
    );
}
