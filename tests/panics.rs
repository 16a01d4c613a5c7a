//! A panic while handling a message or a slash command, end to end: the Discord adapter
//! runs in this process against the fake Discord, on an assistant whose scripted backend
//! panics when asked (a bug in a backend), so the panic happens deep inside the real
//! handler. The person asking hears "something went wrong", and the bot serves on.

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use shopkeep::assistant::content::Prompts;
use shopkeep::assistant::Assistant;
use shopkeep::backend::scripted::Scripted;
use shopkeep::backend::ScriptedBackend;
use shopkeep::config::Config;
use shopkeep::discord::settings::{DiscordSettings, DiscordToken};
use shopkeep::store::Store;
use support::*;

const CHANNEL: u64 = 500_000_000_000_000_001;
const CUSTOMER: u64 = 400_000_000_000_000_001;
/// A general question: answered by the model, so it reaches the backend.
const GENERAL: &str = "What's the capital of France?";
const ANSWER: &str = "The capital of France is Paris.";
const WENT_WRONG: &str = "something went wrong";

/// The Discord adapter in a task of its own, on `backend`, connected to `fake`.
async fn serve(fake: &FakeDiscord, backend: &Arc<ScriptedBackend>) {
    let mut config = Config::from_env().unwrap();
    config.limits.user_burst = 1000;
    config.limits.channel_burst = 1000;
    let prompts = Prompts::load(&config.prompts_dir).expect("the repository's prompts/ load");
    let assistant = Assistant::new(
        backend.clone(),
        Arc::new(config),
        Arc::new(Store::open_in_memory().unwrap()),
        Arc::new(prompts),
    );
    let mut settings = DiscordSettings::from_env().unwrap();
    settings.token = Some(DiscordToken::new(TOKEN));
    settings.api_url = Some(fake.url());
    settings.guilds = vec![GUILD_ID];
    tokio::spawn(async move {
        if let Err(error) = shopkeep::discord::run(assistant, settings).await {
            panic!("the adapter stopped: {error}");
        }
    });
    fake.wait_ready().await;
}

/// The text of the message the bot created in `channel` replying to `question`, as it is
/// once it contains `expected` (streamed answers are edited into place).
async fn reply_text(fake: &FakeDiscord, question: u64, expected: &str) -> String {
    fake.wait_for(expected, ANSWER_WAIT, |f| {
        f.created_replies_to(CHANNEL, question)
            .into_iter()
            .filter_map(|created| {
                let id = created.message["id"].as_str()?.parse().ok()?;
                f.message(id)?["content"].as_str().map(str::to_string)
            })
            .find(|text| text.contains(expected))
    })
    .await
}

/// Every text the bot sent for the interaction `token`: its callbacks, edits of the
/// original response and follow-ups.
fn interaction_texts(fake: &FakeDiscord, id: u64, token: &str) -> Vec<String> {
    let webhook = format!("/api/v10/webhooks/{APP_ID}/{token}");
    let callback = format!("/api/v10/interactions/{id}/");
    fake.requests()
        .into_iter()
        .filter(|r| {
            r.status < 300 && (r.path.starts_with(&webhook) || r.path.starts_with(&callback))
        })
        .filter_map(|r| {
            let body = r.body?;
            let content = body["content"]
                .as_str()
                .or_else(|| body["data"]["content"].as_str())?;
            Some(content.to_string())
        })
        .collect()
}

async fn ask_command(fake: &FakeDiscord, expected: &str) -> Vec<String> {
    let (id, token, payload) = command_interaction(
        fake,
        "ask",
        json!([{"name": "question", "type": 3, "value": GENERAL}]),
        CHANNEL,
        CUSTOMER,
        &[],
        0,
    );
    fake.dispatch("INTERACTION_CREATE", payload);
    fake.wait_for(expected, ANSWER_WAIT, |f| {
        let texts = interaction_texts(f, id, &token);
        texts
            .iter()
            .any(|text| text.contains(expected))
            .then_some(texts)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_answering_says_something_went_wrong_and_the_bot_serves_on() {
    let fake = FakeDiscord::start().await;
    let backend = Arc::new(ScriptedBackend::new());
    backend
        .then(Scripted::Panic)
        .then_say(ANSWER)
        .then(Scripted::Panic)
        .then_say(ANSWER);
    serve(&fake, &backend).await;

    // A mention whose answer panics, then the same customer again.
    let first = Msg::new(&fake, CHANNEL, CUSTOMER, GENERAL).mentioning_bot();
    first.send(&fake);
    let sorry = reply_text(&fake, first.id, WENT_WRONG).await;
    assert!(!sorry.contains(ANSWER), "{sorry}");
    let second = Msg::new(&fake, CHANNEL, CUSTOMER, GENERAL).mentioning_bot();
    second.send(&fake);
    assert_eq!(reply_text(&fake, second.id, ANSWER).await, ANSWER);

    // `/ask` whose answer panics after the deferral, then `/ask` again.
    let texts = ask_command(&fake, WENT_WRONG).await;
    assert!(!texts.iter().any(|text| text.contains(ANSWER)), "{texts:?}");
    let texts = ask_command(&fake, ANSWER).await;
    assert!(
        !texts.iter().any(|text| text.contains(WENT_WRONG)),
        "{texts:?}"
    );

    assert_eq!(
        backend.requests().len(),
        4,
        "each question reached the model once"
    );
    let created: Vec<Value> = fake.created().into_iter().map(|c| c.message).collect();
    assert_eq!(created.len(), 2, "one reply per message: {created:?}");
}
