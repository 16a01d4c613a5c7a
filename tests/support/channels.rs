//! The fake's channels: threads (opened alone or on a message), forums and their tags, as
//! `GET` and `PATCH /channels/{id}` see them.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::fake_discord::State;
use super::rest::{ok, unknown, Answer};
use super::GUILD_ID;

/// The channel object for `id`: one the test added, else a text channel of the server.
pub(super) fn channel_object(state: &State, id: u64) -> Value {
    state
        .channels
        .lock()
        .unwrap()
        .get(&id)
        .cloned()
        .unwrap_or_else(|| {
            json!({"id": id.to_string(), "type": 0, "guild_id": GUILD_ID.to_string(),
                "name": format!("channel-{id}"), "position": 0, "permission_overwrites": [],
                "nsfw": false, "parent_id": null})
        })
}

pub(super) fn invalid_form(field: &str, message: &str) -> (StatusCode, Answer) {
    (
        StatusCode::BAD_REQUEST,
        Answer::Json(json!({"message": "Invalid Form Body", "code": 50035,
            "errors": {field: {"_errors": [{"code": "INVALID", "message": message}]}}})),
    )
}

/// `PATCH /channels/{id}`: only `applied_tags` of a forum post is supported, checked as
/// Discord does: the channel must be a thread in a forum, every tag one the forum offers,
/// at most 5, no repeats.
pub(super) fn edit_channel(state: &State, id: u64, body: Option<&Value>) -> (StatusCode, Answer) {
    let Some(body) = body.and_then(Value::as_object) else {
        return invalid_form("_", "a JSON object is required");
    };
    let mut channels = state.channels.lock().unwrap();
    let Some(thread) = channels.get(&id).cloned() else {
        return unknown("Channel", 10003);
    };
    if let Some(key) = body.keys().find(|k| *k != "applied_tags") {
        panic!("the fake does not edit a channel's {key}");
    }
    let Some(tags) = body.get("applied_tags").and_then(Value::as_array) else {
        return invalid_form("applied_tags", "must be a list of snowflakes");
    };
    let forum = thread["parent_id"]
        .as_str()
        .and_then(|p| p.parse::<u64>().ok())
        .and_then(|p| channels.get(&p).cloned());
    let is_post = matches!(thread["type"].as_u64(), Some(11 | 12))
        && forum.as_ref().is_some_and(|f| f["type"] == json!(15));
    let Some(forum) = forum.filter(|_| is_post) else {
        return invalid_form("applied_tags", "tags can only be applied to forum posts");
    };
    let offered: Vec<&Value> = forum["available_tags"]
        .as_array()
        .map(|t| t.iter().map(|t| &t["id"]).collect())
        .unwrap_or_default();
    if tags.len() > 5 {
        return invalid_form("applied_tags", "Must be 5 or fewer in length.");
    }
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        if !tag.is_string() || !offered.contains(&tag) || !seen.insert(tag.to_string()) {
            return invalid_form("applied_tags", "unknown or repeated tag");
        }
    }
    let mut updated = thread;
    updated["applied_tags"] = json!(tags);
    channels.insert(id, updated.clone());
    ok(updated)
}

/// `POST /channels/{parent}/threads` without a message: a public (11) or private (12)
/// thread in a text channel, named 1 to 100 characters; it exists from now on.
pub(super) fn create_thread(
    state: &State,
    parent: u64,
    body: Option<&Value>,
    id: u64,
) -> (StatusCode, Answer) {
    let Some(body) = body else {
        return invalid_form("_", "a JSON object is required");
    };
    if channel_object(state, parent)["type"] != json!(0) {
        return invalid_form(
            "type",
            "threads without a message open only in text channels",
        );
    }
    let name = body["name"].as_str().unwrap_or("");
    if name.is_empty() || name.chars().count() > 100 {
        return invalid_form("name", "must be 1 to 100 characters");
    }
    let kind = body["type"].as_u64().unwrap_or(12);
    if !matches!(kind, 11 | 12) {
        return invalid_form("type", "a thread is type 11 or 12");
    }
    let thread = json!({
        "id": id.to_string(), "type": kind, "guild_id": GUILD_ID.to_string(), "name": name,
        "parent_id": parent.to_string(), "owner_id": super::BOT_ID.to_string(),
        "invitable": body.get("invitable").cloned().unwrap_or(json!(true)),
        "flags": 0, "applied_tags": [],
    });
    state.channels.lock().unwrap().insert(id, thread.clone());
    (StatusCode::CREATED, Answer::Json(thread))
}

/// `POST /channels/{channel}/messages/{message}/threads`: a public thread (11) on a message
/// of a text channel, named 1 to 100 characters, with the message's id, as Discord gives
/// it; a second thread on the same message is refused (code 160004).
pub(super) fn create_thread_on_message(
    state: &State,
    channel: u64,
    message: u64,
    body: Option<&Value>,
) -> (StatusCode, Answer) {
    let Some(body) = body else {
        return invalid_form("_", "a JSON object is required");
    };
    if channel_object(state, channel)["type"] != json!(0) {
        return invalid_form("channel", "threads on messages open only in text channels");
    }
    let name = body["name"].as_str().unwrap_or("");
    if name.is_empty() || name.chars().count() > 100 {
        return invalid_form("name", "must be 1 to 100 characters");
    }
    let mut channels = state.channels.lock().unwrap();
    if channels.contains_key(&message) {
        return (
            StatusCode::BAD_REQUEST,
            Answer::Json(
                json!({"message": "A thread has already been created for this message",
                "code": 160004}),
            ),
        );
    }
    let thread = json!({
        "id": message.to_string(), "type": 11, "guild_id": GUILD_ID.to_string(), "name": name,
        "parent_id": channel.to_string(), "owner_id": super::BOT_ID.to_string(),
        "flags": 0, "applied_tags": [],
    });
    channels.insert(message, thread.clone());
    (StatusCode::CREATED, Answer::Json(thread))
}
