//! The fake Discord keeps Discord's rules, so the bot's tests exercise them: the token on
//! every API call, 2,000 characters at most and no empty messages, unknown messages are
//! 404, an interaction is acknowledged once and within 3 s.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const CHANNEL: u64 = 540_000_000_000_000_001;

async fn call(
    fake: &FakeDiscord,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, format!("{}/api/v10{path}", fake.url()));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bot {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_calls_need_the_token_and_messages_follow_discords_limits() {
    use reqwest::Method;
    let fake = FakeDiscord::start().await;
    let messages = format!("/channels/{CHANNEL}/messages");
    assert_eq!(
        call(&fake, Method::GET, "/users/@me", None, None).await.0,
        401
    );
    assert_eq!(
        call(&fake, Method::GET, "/users/@me", Some("wrong"), None)
            .await
            .0,
        401
    );
    assert_eq!(
        call(&fake, Method::GET, "/users/@me", Some(TOKEN), None)
            .await
            .0,
        200
    );

    let too_long = json!({"content": "x".repeat(2001)});
    let (status, answer) = call(&fake, Method::POST, &messages, Some(TOKEN), Some(too_long)).await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50035)));
    let empty = json!({"content": "  "});
    let (status, answer) = call(&fake, Method::POST, &messages, Some(TOKEN), Some(empty)).await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50006)));
    let exactly = json!({"content": "é".repeat(2000)});
    let (status, created) = call(&fake, Method::POST, &messages, Some(TOKEN), Some(exactly)).await;
    assert_eq!(status, 200);

    let id = created["id"].as_str().unwrap();
    let edit = json!({"content": "edited"});
    let mine = format!("{messages}/{id}");
    assert_eq!(
        call(&fake, Method::PATCH, &mine, Some(TOKEN), Some(edit.clone()))
            .await
            .0,
        200
    );
    let unknown = format!("{messages}/123");
    let (status, answer) = call(&fake, Method::PATCH, &unknown, Some(TOKEN), Some(edit)).await;
    assert_eq!((status, answer["code"].clone()), (404, json!(10008)));
    assert_eq!(
        call(&fake, Method::DELETE, &mine, Some(TOKEN), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&fake, Method::DELETE, &mine, Some(TOKEN), None)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interaction_is_acknowledged_once_within_three_seconds() {
    use reqwest::Method;
    let (fake, _bot) = started(&[]).await;
    let deferral = json!({"type": 5});
    // Answered at once: the first acknowledgement counts, a second is refused.
    let (id, token, payload) =
        command_interaction(&fake, "unknown-command", json!([]), CHANNEL, 1, &[], 0);
    fake.dispatch("INTERACTION_CREATE", payload);
    fake.wait_quiet(Duration::from_millis(500), ANSWER_WAIT)
        .await;
    let callback = format!("/interactions/{id}/{token}/callback");
    let (status, answer) = call(&fake, Method::POST, &callback, None, Some(deferral.clone())).await;
    assert_eq!(
        (status, answer["code"].clone()),
        (400, json!(40060)),
        "the bot did not answer first"
    );
    // The original response can be edited once acknowledged; a follow-up id must exist.
    let original = format!("/webhooks/{APP_ID}/{token}/messages/@original");
    assert_eq!(
        call(
            &fake,
            Method::PATCH,
            &original,
            None,
            Some(json!({"content": "x"}))
        )
        .await
        .0,
        200
    );
    let follow_up = format!("/webhooks/{APP_ID}/{token}/messages/42");
    assert_eq!(
        call(
            &fake,
            Method::PATCH,
            &follow_up,
            None,
            Some(json!({"content": "x"}))
        )
        .await
        .0,
        404
    );

    // Acknowledged too late: Discord has forgotten the interaction. (Recorded as if
    // dispatched, not sent to the bot, then answered after 3 s.)
    let late_id = fake.id();
    let late_token = format!("late-{late_id}");
    fake.note_interaction(late_id, &late_token);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let callback = format!("/interactions/{late_id}/{late_token}/callback");
    let (status, answer) = call(&fake, Method::POST, &callback, None, Some(deferral)).await;
    assert_eq!((status, answer["code"].clone()), (404, json!(10062)));
}
