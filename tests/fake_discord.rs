//! The fake Discord keeps Discord's rules, so the bot's tests exercise them: the token on
//! every API call, 2,000 characters at most and no empty messages, unknown messages are
//! 404, an interaction is acknowledged once and within 3 s, with a response its type allows;
//! forums take posts, not messages, and only their own tags; buttons keep Discord's limits.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::components::custom_ids;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forums_take_posts_not_messages_and_only_their_own_tags() {
    use reqwest::Method;
    let fake = FakeDiscord::start().await;
    let (forum_id, post, chat_thread) = (fake.id(), fake.id(), fake.id());
    let forum = forum_json(&fake, forum_id, &["a", "b", "c", "d", "e", "f"]);
    fake.add_channel(forum.clone());
    fake.add_channel(thread_json(post, forum_id, 1, "a post"));
    fake.add_channel(thread_json(chat_thread, CHANNEL, 1, "chat"));

    let (status, thread) = call(
        &fake,
        Method::GET,
        &format!("/channels/{post}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(
        (status, thread["parent_id"].clone()),
        (200, json!(forum_id.to_string()))
    );
    let (_, plain) = call(
        &fake,
        Method::GET,
        &format!("/channels/{CHANNEL}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(plain["type"], 0);
    let into_forum = format!("/channels/{forum_id}/messages");
    let (status, answer) = call(
        &fake,
        Method::POST,
        &into_forum,
        Some(TOKEN),
        Some(json!({"content": "hi"})),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50008)));

    let tags = |names: &[&str]| json!({"applied_tags": names.iter().map(|n| tag_id(&forum, n)).collect::<Vec<_>>()});
    let edit = |channel: u64, body: Value| {
        let fake = &fake;
        async move {
            call(
                fake,
                Method::PATCH,
                &format!("/channels/{channel}"),
                Some(TOKEN),
                Some(body),
            )
            .await
            .0
        }
    };
    assert_eq!(edit(post, tags(&["a", "b", "c", "d", "e", "f"])).await, 400);
    assert_eq!(edit(post, json!({"applied_tags": ["12345"]})).await, 400);
    assert_eq!(edit(post, json!({"applied_tags": [1]})).await, 400);
    assert_eq!(edit(post, tags(&["a", "a"])).await, 400);
    assert_eq!(edit(chat_thread, json!({"applied_tags": []})).await, 400);
    assert_eq!(edit(post, tags(&["b", "c"])).await, 200);
    assert_eq!(
        fake.channel(post).unwrap()["applied_tags"],
        tags(&["b", "c"])["applied_tags"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_follow_discords_limits_and_presses_take_component_responses() {
    use reqwest::Method;
    let fake = FakeDiscord::start().await;
    let messages = format!("/channels/{CHANNEL}/messages");
    let button = |id: &str| json!({"type": 2, "style": 2, "label": "x", "custom_id": id});
    let with = |rows: Value| json!({"content": "answer", "components": rows});
    let post = |body: Value| {
        let (fake, messages) = (&fake, &messages);
        async move { call(fake, Method::POST, messages, Some(TOKEN), Some(body)).await }
    };
    let six: Vec<Value> = (0..6).map(|i| button(&format!("b{i}"))).collect();
    assert_eq!(
        post(with(json!([{"type": 1, "components": six}]))).await.0,
        400
    );
    assert_eq!(
        post(with(
            json!([{"type": 1, "components": [button("a"), button("a")]}])
        ))
        .await
        .0,
        400
    );
    assert_eq!(
        post(with(
            json!([{"type": 1, "components": [button(&"x".repeat(101))]}])
        ))
        .await
        .0,
        400
    );
    assert_eq!(
        post(with(json!([button("a")]))).await.0,
        400,
        "a button outside a row"
    );
    let (status, created) = post(with(
        json!([{"type": 1, "components": [button("a"), button("b")]}]),
    ))
    .await;
    assert_eq!(status, 200);
    let message: u64 = created["id"].as_str().unwrap().parse().unwrap();
    // Edits replace the components; a press sees the message as it is now.
    let edited =
        json!({"content": "answer", "components": [{"type": 1, "components": [button("c")]}]});
    assert_eq!(
        call(
            &fake,
            Method::PATCH,
            &format!("{messages}/{message}"),
            Some(TOKEN),
            Some(edited)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        custom_ids(&fake.message(message).unwrap()["components"]),
        ["c"]
    );

    let (press, token) = fake.press(message, "c", 7);
    let callback = format!("/interactions/{press}/{token}/callback");
    let update = json!({"type": 7, "data": {"content": "updated"}});
    assert_eq!(
        call(&fake, Method::POST, &callback, None, Some(update.clone()))
            .await
            .0,
        204
    );
    assert_eq!(
        call(&fake, Method::POST, &callback, None, Some(update.clone()))
            .await
            .0,
        400
    );
    // A slash command cannot answer by updating a message.
    let command = fake.id();
    fake.note_interaction(command, "cmd");
    let callback = format!("/interactions/{command}/cmd/callback");
    assert_eq!(
        call(&fake, Method::POST, &callback, None, Some(update))
            .await
            .0,
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_open_in_text_channels_and_modals_keep_discords_limits() {
    use reqwest::Method;
    let fake = FakeDiscord::start().await;
    let threads = format!("/channels/{CHANNEL}/threads");
    let open = |path: String, body: Value| {
        let fake = &fake;
        async move { call(fake, Method::POST, &path, Some(TOKEN), Some(body)).await }
    };
    let (status, thread) = open(threads.clone(), json!({"name": "Ticket 1", "type": 12})).await;
    assert_eq!(
        (status, thread["parent_id"].clone()),
        (201, json!(CHANNEL.to_string()))
    );
    let id: u64 = thread["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(fake.channel(id).unwrap()["type"], 12);
    assert_eq!(
        open(threads.clone(), json!({"name": "", "type": 12}))
            .await
            .0,
        400
    );
    assert_eq!(open(threads, json!({"name": "x", "type": 0})).await.0, 400);
    assert_eq!(
        open(format!("/channels/{id}/threads"), json!({"name": "x"}))
            .await
            .0,
        400
    );

    let posted = call(
        &fake,
        Method::POST,
        &format!("/channels/{CHANNEL}/messages"),
        Some(TOKEN),
        Some(
            json!({"content": "t", "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "Resolve", "custom_id": "r"}]}]}),
        ),
    )
    .await
    .1;
    let message: u64 = posted["id"].as_str().unwrap().parse().unwrap();
    let input = |label: &str| json!({"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 2, "label": label}]});
    let modal = |title: &str, label: &str| json!({"type": 9, "data": {"custom_id": "m", "title": title, "components": [input(label)]}});
    for bad in [
        modal(&"t".repeat(46), "Answer"),
        modal("Resolve", ""),
        modal("", "Answer"),
    ] {
        let (press, token) = fake.press(message, "r", 7);
        let callback = format!("/interactions/{press}/{token}/callback");
        assert_eq!(
            call(&fake, Method::POST, &callback, None, Some(bad))
                .await
                .0,
            400
        );
    }
    let (press, token) = fake.press(message, "r", 7);
    let callback = format!("/interactions/{press}/{token}/callback");
    assert_eq!(
        call(
            &fake,
            Method::POST,
            &callback,
            None,
            Some(modal("Resolve", "Answer"))
        )
        .await
        .0,
        204
    );
    assert_eq!(fake.modals().len(), 1);
    let (submit, token) = fake.submit_modal("m", &[("a", "done")], 7, &[], CHANNEL);
    let callback = format!("/interactions/{submit}/{token}/callback");
    // A submitted modal cannot open another modal.
    assert_eq!(
        call(
            &fake,
            Method::POST,
            &callback,
            None,
            Some(modal("Again", "Answer"))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(
            &fake,
            Method::POST,
            &callback,
            None,
            Some(json!({"type": 5, "data": {"flags": 64}}))
        )
        .await
        .0,
        204
    );
}

/// A message with files, as a multipart form: `payload_json` and `files[n]` parts.
async fn post_form(
    fake: &FakeDiscord,
    path: &str,
    payload: &str,
    files: &[(&str, &str, &[u8])],
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new().text("payload_json", payload.to_string());
    for (field, filename, bytes) in files {
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(filename.to_string())
            .mime_str("image/png")
            .unwrap();
        form = form.part(field.to_string(), part);
    }
    let response = reqwest::Client::new()
        .post(format!("{}/api/v10{path}", fake.url()))
        .header("Authorization", format!("Bot {TOKEN}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_come_as_multipart_forms_that_name_each_file_in_the_attachments_list() {
    let fake = FakeDiscord::start().await;
    let messages = format!("/channels/{CHANNEL}/messages");
    let listed = r#"{"content": "", "attachments": [{"id": 0, "filename": "chart.png"}]}"#;
    let file: &[u8] = b"\x89PNG not really";
    // A file alone is a message; the answer lists it as an attachment.
    let (status, message) =
        post_form(&fake, &messages, listed, &[("files[0]", "chart.png", file)]).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["attachments"][0]["filename"], "chart.png");
    assert_eq!(message["attachments"][0]["size"], file.len());
    let recorded = fake.requests().into_iter().last().unwrap();
    assert_eq!(recorded.files.len(), 1);
    assert_eq!(recorded.files[0].bytes, file);
    assert_eq!(body(&recorded)["attachments"][0]["id"], 0);
    // Refused: a file the attachments list does not name, an entry with no file, a
    // payload that is not JSON, and no file and no content.
    for (payload, files) in [
        (listed, vec![("files[1]", "chart.png", file)]),
        (listed, vec![]),
        (
            r#"{"content": "x", "attachments": [{"id": 0, "filename": "other.png"}]}"#,
            vec![("files[0]", "chart.png", file)],
        ),
        ("{not json", vec![("files[0]", "chart.png", file)]),
        (r#"{"content": ""}"#, vec![]),
    ] {
        let (status, answer) = post_form(&fake, &messages, payload, &files).await;
        assert_eq!(
            status,
            400,
            "{payload} with {} files: {answer}",
            files.len()
        );
    }
}
