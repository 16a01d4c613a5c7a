//! Who is staff, end to end: the real `shopkeep run` binary against the fake Discord. Only
//! the shop's servers (`SHOPKEEP_GUILDS`) are served; staff status comes from configured
//! roles or server-wide permissions there, never from one channel's permissions.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const CHANNEL: u64 = 500_000_000_000_000_001;
const CUSTOMER: u64 = 400_000_000_000_000_001;
const EPHEMERAL: u64 = 64;

fn callbacks(fake: &FakeDiscord, interaction: u64) -> Vec<Recorded> {
    let prefix = format!("/api/v10/interactions/{interaction}/");
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with(&prefix))
        .collect()
}

/// Sends a command and returns its first response (a deferral or a refusal).
async fn first_response(fake: &FakeDiscord, payload: Value, id: u64) -> Value {
    fake.dispatch("INTERACTION_CREATE", payload);
    let first = fake
        .wait_for("the first response", Duration::from_secs(3), |f| {
            callbacks(f, id).into_iter().next()
        })
        .await;
    body(&first).clone()
}

fn refusal_text(response: &Value) -> String {
    assert_eq!(response["type"], json!(4), "not a refusal: {response}");
    assert_eq!(
        response["data"]["flags"].as_u64().unwrap_or(0) & EPHEMERAL,
        EPHEMERAL
    );
    response["data"]["content"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_shops_servers_and_server_wide_permissions_make_staff() {
    let (fake, _bot) = started(&[]).await;

    // Administrator in this one channel (an overwrite, or another server's view) is not
    // staff: /insights is refused.
    let (id, _, payload) =
        command_interaction(&fake, "insights", json!([]), CHANNEL, CUSTOMER, &[], 8);
    let response = first_response(&fake, payload, id).await;
    assert!(refusal_text(&response).contains("moderators"), "{response}");

    // Manage Messages granted by a role server-wide is a moderator.
    let (id, _, payload) = command_interaction(
        &fake,
        "insights",
        json!([]),
        CHANNEL,
        CUSTOMER + 1,
        &[SERVER_MOD_ROLE],
        CAN_READ,
    );
    assert_eq!(first_response(&fake, payload, id).await["type"], json!(5));

    // Another server: even a configured admin role gets a short refusal and no work.
    let (id, token, mut payload) = command_interaction(
        &fake,
        "reload-prompts",
        json!([]),
        CHANNEL,
        CUSTOMER + 2,
        &[ADMIN_ROLE],
        8,
    );
    payload["guild_id"] = json!(OTHER_GUILD_ID.to_string());
    let response = first_response(&fake, payload, id).await;
    assert!(
        refusal_text(&response).contains("only work in this shop's own"),
        "{response}"
    );

    // A mention in another server is ignored: no typing, no reply.
    let mut question =
        Msg::new(&fake, CHANNEL + 1, CUSTOMER, "where is my order?").mentioning_bot();
    question.guild = Some(OTHER_GUILD_ID);
    question.send(&fake);

    // A moderator who cannot read this channel's history cannot have it summarised.
    let (id, _, payload) = command_interaction(
        &fake,
        "summarise",
        json!([]),
        CHANNEL,
        CUSTOMER + 3,
        &[MOD_ROLE],
        1024,
    );
    let response = first_response(&fake, payload, id).await;
    assert!(
        refusal_text(&response).contains("cannot read this channel"),
        "{response}"
    );

    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    let requests = fake.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.path.contains(&format!("/channels/{}/", CHANNEL + 1))),
        "the other server's message got an answer:\n{}",
        fake.describe_requests()
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/messages")),
        "history was read:\n{}",
        fake.describe_requests()
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.path.contains(&format!("/webhooks/{APP_ID}/{token}"))),
        "the other server's command did work"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_registered_in_the_shops_servers_and_stale_global_ones_cleared() {
    let (fake, _bot) = started(&[]).await;
    let global = format!("/api/v10/applications/{APP_ID}/commands");
    let cleared = fake
        .wait_for("the global commands cleared", ANSWER_WAIT, |f| {
            f.requests()
                .into_iter()
                .find(|r| r.method == "PUT" && r.path == global && r.status == 200)
        })
        .await;
    assert_eq!(body(&cleared), &json!([]));
    let puts: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        puts,
        [
            format!("/api/v10/applications/{APP_ID}/guilds/{GUILD_ID}/commands"),
            global
        ]
    );
}
