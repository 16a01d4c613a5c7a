//! What the integration tests share; each test binary uses some of it.
//!
//! - [`fake_discord`], [`rest`] and [`gateway`]: a fake Discord, REST and gateway on
//!   127.0.0.1 (a random port), started by each test itself. It records every REST request
//!   (method, path, query, JSON body, time) and every gateway frame it receives, injects
//!   any gateway event, and fails on demand (drop the gateway socket, answer 500, answer 429
//!   with `retry_after`, process a request and then answer 500 as if the answer were lost,
//!   fail a share of requests at random). It keeps Discord's rules: `enforce_nonce` on
//!   message creates (a nonce seen in the same channel within [`NONCE_WINDOW`] returns the
//!   message already created); `Authorization: Bot <token>` on every API call but
//!   interaction callbacks and webhooks (else 401); 400 for message content that is empty
//!   or over 2,000 characters; 404 for edits and deletes of messages that do not exist;
//!   one acknowledgement per interaction, within [`INTERACTION_DEADLINE`] (else 404, and
//!   400 for a second one). Channels: `GET /channels/{id}` answers the threads (type 11,
//!   with `parent_id`) and forums (type 15, with `available_tags`) a test added, any
//!   other id as a text channel; a message posted into a forum itself is refused (400);
//!   `PATCH /channels/{thread}` sets `applied_tags` only on a forum post, only with the
//!   forum's tags, at most 5, no repeats (else 400). Message components (buttons) must
//!   keep Discord's limits (else 400); the fake keeps each of the bot's messages as it is
//!   now, and [`FakeDiscord::press`] presses one of its buttons (INTERACTION_CREATE of type
//!   3, answered like any interaction: once, within 3 s, with a response type a component
//!   allows). `POST /channels/{id}/threads` opens a thread in a text channel (201);
//!   a modal (response type 9) must keep Discord's limits, and only a modal the bot showed
//!   can be submitted ([`FakeDiscord::submit_modal`], type 5); a type 7 response updates
//!   the pressed message. Its gateway sends HELLO with a settable heartbeat interval,
//!   ACKs heartbeats (or not: a zombie connection, which no dispatch reaches either; a new
//!   IDENTIFY starts a session without what it missed), sends op 7 and op 9 on demand, checks
//!   a RESUME's session id, sequence and token (else op 9, not resumable) and replays the
//!   events the bot missed, and closes an IDENTIFY with 4004 or 4014 on demand.
//! - [`assistants`]: an assistant over any backend without Discord, and a customer's question.
//! - [`channels`] and [`components`]: threads, forums and tags; buttons and presses.
//! - [`browser`]: a page opened in headless Chromium: its console and a screenshot.
//! - [`images`]: PNGs the tests receive, decoded.
//! - [`multipart`]: messages with files, as multipart forms (`payload_json` and
//!   `files[n]` matching the `attachments` list), recorded with their files.
//! - [`payloads`]: the events a test injects, with the minimal fields serenity 0.12.5 needs
//!   to deserialise (listed there).
//! - [`bot`]: [`Bot`] runs the real `shopkeep run` binary against the fake.
//! - [`models`]: the test models, the tools' Python and a private copy of prompts/.
//! - [`cli`]: the binary's output when it succeeds, and its perplexity figure.
//! - [`engines`]: the engine on the tiny models: greedy requests, shared prompts, and
//!   generating them alone or as a batch that others join.

#![allow(dead_code, unused_imports)]

pub mod assistants;
pub mod bot;
pub mod browser;
pub mod channels;
pub mod cli;
pub mod components;
pub mod engines;
pub mod fake_discord;
pub mod gateway;
pub mod images;
pub mod models;
pub mod multipart;
pub mod payloads;
pub mod rest;

use std::time::Duration;

use serde_json::{json, Value};

pub use bot::*;
pub use fake_discord::*;
pub use models::*;
pub use payloads::*;

/// How long the tests wait for an answer from the bot.
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// The JSON body of a recorded request.
pub fn body(r: &Recorded) -> &Value {
    r.body.as_ref().expect("a JSON body")
}

/// Waits for the bot's (first) reply to the message `question` in `channel`.
pub async fn reply_to(fake: &FakeDiscord, channel: u64, question: u64) -> Recorded {
    fake.wait_for("a reply", ANSWER_WAIT, |f| {
        f.posts_to(channel)
            .into_iter()
            .find(|r| body(r)["message_reference"]["message_id"] == json!(question.to_string()))
    })
    .await
}

/// A fake Discord and a bot connected to it (READY seen), with `env` over the defaults.
pub async fn started(env: &[(&str, &str)]) -> (FakeDiscord, Bot) {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, env);
    fake.wait_ready().await;
    (fake, bot)
}

pub const BOT_ID: u64 = 900_000_000_000_000_001;
pub const APP_ID: u64 = 900_000_000_000_000_002;
pub const GUILD_ID: u64 = 800_000_000_000_000_001;
pub const OTHER_BOT_ID: u64 = 700_000_000_000_000_009;
pub const MOD_ROLE: u64 = 600_000_000_000_000_001;
pub const ADMIN_ROLE: u64 = 600_000_000_000_000_002;
/// A role of the fake's server that grants Manage Messages server-wide (not configured).
pub const SERVER_MOD_ROLE: u64 = 600_000_000_000_000_003;
/// A role of the fake's server that grants Administrator server-wide (not configured).
pub const SERVER_ADMIN_ROLE: u64 = 600_000_000_000_000_004;
/// A server that is not the shop's.
pub const OTHER_GUILD_ID: u64 = 800_000_000_000_000_099;
/// The owner of the fake's server.
pub const OWNER_ID: u64 = 400_000_000_000_000_999;
/// Channel permissions View Channel and Read Message History.
pub const CAN_READ: u64 = 1024 | 65536;

/// The fake's server as `GET /guilds/{id}` answers: @everyone may view, send and read
/// history; SERVER_MOD_ROLE has Manage Messages, SERVER_ADMIN_ROLE Administrator.
pub fn guild_json() -> Value {
    json!({
        "id": GUILD_ID.to_string(),
        "name": "Kettle & Kiln",
        "owner_id": OWNER_ID.to_string(),
        "roles": [
            {"id": GUILD_ID.to_string(), "name": "@everyone", "permissions": (1024u64 | 2048 | 65536).to_string()},
            {"id": MOD_ROLE.to_string(), "name": "mods", "permissions": "0"},
            {"id": ADMIN_ROLE.to_string(), "name": "admins", "permissions": "0"},
            {"id": SERVER_MOD_ROLE.to_string(), "name": "helpers", "permissions": (8192u64).to_string()},
            {"id": SERVER_ADMIN_ROLE.to_string(), "name": "owners", "permissions": "8"},
        ],
    })
}

/// Asserts that every message the bot sent allows no mentions at all.
pub fn assert_no_mentions_allowed(fake: &FakeDiscord) {
    let sends = fake.message_sends();
    for send in &sends {
        let body = send.body.clone().unwrap_or(Value::Null);
        let message = if send.path.ends_with("/callback") {
            match body.get("data") {
                Some(data) if data.get("content").is_some() => data.clone(),
                _ => continue,
            }
        } else {
            body
        };
        let allowed = message.get("allowed_mentions").unwrap_or_else(|| {
            panic!(
                "{} {} has no allowed_mentions: {message}",
                send.method, send.path
            )
        });
        assert_eq!(
            allowed["parse"],
            json!([]),
            "{} {}: {allowed}",
            send.method,
            send.path
        );
        for key in ["users", "roles"] {
            if let Some(list) = allowed.get(key) {
                assert_eq!(list, &json!([]), "{} {}: {allowed}", send.method, send.path);
            }
        }
        assert_ne!(allowed.get("replied_user"), Some(&json!(true)), "{allowed}");
    }
}

/// The value of the series `name` (with its labels, as written) in a Prometheus text
/// exposition, or `None` when it is not there.
pub fn metric(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}
