//! The fake REST API: records every request and answers as Discord would (messages,
//! interaction callbacks, history, commands), or fails as planned.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::channels::{channel_object, edit_channel};
use super::fake_discord::{
    is_channel_message_path, Created, Recorded, State, INTERACTION_DEADLINE, NONCE_WINDOW,
};
use super::multipart;
use super::{message_json, user, APP_ID, BOT_ID, GUILD_ID, TOKEN};

pub(super) async fn rest(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let (json_body, files, form_refusal) = multipart::body(&headers, body).await;
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let limited = rate_limit(&state, method.as_str(), &path);
    let refused = form_refusal.or_else(|| {
        refusal(
            &path,
            authorization,
            json_body.as_ref(),
            method.as_str(),
            !files.is_empty(),
        )
    });
    let (status, mut answer) = match (refused, &limited) {
        (Some(refused), _) => refused,
        (None, Some(bucket)) if bucket.remaining.is_none() => (
            StatusCode::TOO_MANY_REQUESTS,
            Answer::RateLimited(
                json!({"message": "You are being rate limited.", "retry_after": bucket.reset_after, "global": false}),
                bucket.reset_after,
            ),
        ),
        (None, _) => answer(
            &state,
            method.as_str(),
            &path,
            query.as_deref(),
            json_body.as_ref(),
        ),
    };
    if status.is_success() && !files.is_empty() {
        multipart::attach(&state, &mut answer, &files);
    }
    let response = match &answer {
        Answer::Json(value) | Answer::RateLimited(value, _) => Some(value.clone()),
        Answer::Empty => None,
    };
    state.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path,
        query,
        body: json_body,
        status: status.as_u16(),
        response,
        files,
        at: Instant::now(),
    });
    let mut response = match answer {
        Answer::Json(value) => (status, axum::Json(value)).into_response(),
        Answer::Empty => status.into_response(),
        Answer::RateLimited(value, retry_after) => (
            status,
            [("retry-after", format!("{retry_after}"))],
            axum::Json(value),
        )
            .into_response(),
    };
    if let Some(bucket) = limited {
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            headers.insert(name, value.parse().unwrap());
        };
        set("x-ratelimit-limit", bucket.limit.to_string());
        set(
            "x-ratelimit-remaining",
            bucket.remaining.unwrap_or(0).to_string(),
        );
        set(
            "x-ratelimit-reset-after",
            format!("{:.3}", bucket.reset_after),
        );
        set("x-ratelimit-bucket", bucket.key);
    }
    response
}

/// A request's place in its rate-limit bucket.
struct BucketState {
    key: String,
    limit: u64,
    /// Requests left after this one; `None`: this one is over the limit.
    remaining: Option<u64>,
    /// Seconds until the bucket's window ends.
    reset_after: f64,
}

/// Counts a request to a rate-limited channel's message routes (see
/// `FakeDiscord::rate_limit_channel`); `None` for routes without a limit.
fn rate_limit(state: &State, method: &str, path: &str) -> Option<BucketState> {
    let parts: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    let (channel, route) = match parts.as_slice() {
        ["channels", channel, "messages"] => (channel.parse().ok()?, "messages"),
        ["channels", channel, "messages", _] => (channel.parse().ok()?, "messages/:id"),
        _ => return None,
    };
    let (limit, window) = *state.channel_limits.lock().unwrap().get(&channel)?;
    let key = format!("{method} {route} {channel}");
    let mut buckets = state.buckets.lock().unwrap();
    let (count, started) = buckets.entry(key.clone()).or_insert((0, Instant::now()));
    if started.elapsed() >= window {
        *count = 0;
        *started = Instant::now();
    }
    let reset_after = window.saturating_sub(started.elapsed()).as_secs_f64();
    let remaining = if *count < limit {
        *count += 1;
        Some(limit - *count)
    } else {
        None
    };
    Some(BucketState {
        key,
        limit,
        remaining,
        reset_after,
    })
}

/// What Discord refuses before doing anything: a request without the bot token (401;
/// interaction callbacks and webhooks need none), and a message whose content is empty
/// (without embeds or files) or over 2,000 characters (400).
fn refusal(
    path: &str,
    authorization: &str,
    body: Option<&Value>,
    method: &str,
    has_files: bool,
) -> Option<(StatusCode, Answer)> {
    let token_free =
        path.starts_with("/api/v10/interactions/") || path.starts_with("/api/v10/webhooks/");
    if !token_free && authorization != format!("Bot {TOKEN}") {
        return Some((
            StatusCode::UNAUTHORIZED,
            Answer::Json(json!({"message": "401: Unauthorized", "code": 0})),
        ));
    }
    let sends_message = matches!(method, "POST" | "PATCH")
        && (is_channel_message_path(path) || path.starts_with("/api/v10/webhooks/"));
    let message = if path.ends_with("/callback") {
        body.and_then(|b| b.get("data"))
            .filter(|d| d.get("content").is_some())
    } else if sends_message {
        body
    } else {
        None
    };
    let message = message?;
    if let Some(Err(problem)) = message.get("components").map(super::components::check) {
        return Some((
            StatusCode::BAD_REQUEST,
            Answer::Json(json!({"message": "Invalid Form Body", "code": 50035,
                "errors": {"components": {"_errors": [{"code": "INVALID", "message": problem}]}}})),
        ));
    }
    let content = message.get("content").and_then(Value::as_str).unwrap_or("");
    let has_embeds = message
        .get("embeds")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    if content.chars().count() > 2000 {
        return Some((
            StatusCode::BAD_REQUEST,
            Answer::Json(json!({"message": "Invalid Form Body", "code": 50035,
                "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}})),
        ));
    }
    if content.trim().is_empty() && !has_embeds && !has_files && method == "POST" {
        return Some((
            StatusCode::BAD_REQUEST,
            Answer::Json(json!({"message": "Cannot send an empty message", "code": 50006})),
        ));
    }
    None
}

pub(super) fn unknown(what: &str, code: u32) -> (StatusCode, Answer) {
    (
        StatusCode::NOT_FOUND,
        Answer::Json(json!({"message": format!("Unknown {what}"), "code": code})),
    )
}

pub(super) enum Answer {
    Json(Value),
    Empty,
    RateLimited(Value, f64),
}

fn answer(
    state: &State,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Answer) {
    let lost = {
        let mut failures = state.failures.lock().unwrap();
        let planned = failures
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method && path.contains(&f.path_contains));
        let mut lost = false;
        if let Some(failure) = planned {
            failure.times -= 1;
            lost = failure.after_processing;
            let status = StatusCode::from_u16(failure.status).unwrap();
            if let Some(retry_after) = failure.retry_after {
                return (
                    status,
                    Answer::RateLimited(
                        json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}),
                        retry_after,
                    ),
                );
            }
            if !lost {
                return (
                    status,
                    Answer::Json(json!({"message": "Internal Server Error", "code": 0})),
                );
            }
        }
        lost
    };
    let chaos = if lost {
        None
    } else {
        chaos_failure(state, method, path)
    };
    if chaos == Some(false) {
        return server_error();
    }
    let (status, processed) = process(state, method, path, query, body);
    if lost || chaos == Some(true) {
        // The work is done; the answer is lost.
        return server_error();
    }
    (status, processed)
}

fn server_error() -> (StatusCode, Answer) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Json(json!({"message": "Internal Server Error", "code": 0})),
    )
}

/// `Some(after_processing)` when chaos fails this request.
fn chaos_failure(state: &State, method: &str, path: &str) -> Option<bool> {
    if !path.contains("/messages") || !path.starts_with("/api/v10/channels/") {
        return None;
    }
    let mut chaos = state.chaos.lock().unwrap();
    if chaos.rate <= 0.0 {
        return None;
    }
    let key = format!("{method} {path}");
    if chaos.failed.remove(&key) {
        return None;
    }
    // xorshift64
    let mut x = chaos.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    chaos.rng = x;
    let draw = (x >> 11) as f64 / (1u64 << 53) as f64;
    if draw >= chaos.rate {
        return None;
    }
    chaos.failed.insert(key);
    let after = x & 1 == 1;
    if after {
        chaos.counts.1 += 1;
    } else {
        chaos.counts.0 += 1;
    }
    Some(after)
}

/// What the fake does and answers for a request that does not fail.
fn process(
    state: &State,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Answer) {
    let base = state.base_url.lock().unwrap().replace("http://", "ws://");
    let Some(rest) = path.strip_prefix("/api/v10/") else {
        return not_found();
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let new_id = || state.next_id.fetch_add(1, Ordering::SeqCst);
    let content = body
        .and_then(|b| b.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let bot = || user(BOT_ID, "shopkeep", true);
    match (method, parts.as_slice()) {
        ("GET", ["gateway"]) => ok(json!({"url": format!("{base}/gateway-ws")})),
        ("GET", ["gateway", "bot"]) => ok(json!({
            "url": format!("{base}/gateway-ws"),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        })),
        ("GET", ["users", "@me"]) => ok(bot()),
        ("GET", ["guilds", guild]) if *guild == GUILD_ID.to_string() => ok(super::guild_json()),
        ("PUT", ["applications", _app, "commands"])
        | ("PUT", ["applications", _app, "guilds", _, "commands"]) => {
            let guild = if parts.len() == 5 {
                Some(parts[3].to_string())
            } else {
                None
            };
            let commands: Vec<Value> = body
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    c["id"] = json!(new_id().to_string());
                    c["application_id"] = json!(APP_ID.to_string());
                    c["version"] = json!("1");
                    if c.get("type").is_none() {
                        c["type"] = json!(1);
                    }
                    if let Some(g) = &guild {
                        c["guild_id"] = json!(g);
                    }
                    c
                })
                .collect();
            ok(json!(commands))
        }
        ("GET", ["channels", channel]) => {
            let channel: u64 = channel.parse().unwrap_or(0);
            ok(channel_object(state, channel))
        }
        ("PATCH", ["channels", channel]) => {
            let channel: u64 = channel.parse().unwrap_or(0);
            edit_channel(state, channel, body)
        }
        ("POST", ["channels", channel, "messages"]) => {
            let channel: u64 = channel.parse().unwrap_or(0);
            if channel_object(state, channel)["type"] == json!(15) {
                // A forum holds posts (threads), not messages.
                return (
                    StatusCode::BAD_REQUEST,
                    Answer::Json(
                        json!({"message": "Cannot send messages in a non-text channel", "code": 50008}),
                    ),
                );
            }
            let nonce = body.and_then(|b| b.get("nonce")).and_then(|n| {
                n.as_str()
                    .map(str::to_string)
                    .or(n.as_u64().map(|n| n.to_string()))
            });
            let enforce = body
                .and_then(|b| b.get("enforce_nonce"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut nonces = state.nonces.lock().unwrap();
            if let (Some(nonce), true) = (&nonce, enforce) {
                if let Some((existing, at)) = nonces.get(&(channel, nonce.clone())) {
                    if at.elapsed() < NONCE_WINDOW {
                        return ok(existing.clone());
                    }
                }
            }
            let mut message = message_json(new_id(), channel, Some(GUILD_ID), bot(), &content);
            if let Some(reference) = body.and_then(|b| b.get("message_reference")) {
                message["message_reference"] = reference.clone();
                message["type"] = json!(19);
            }
            if let Some(components) = body.and_then(|b| b.get("components")) {
                message["components"] = components.clone();
            }
            if let Some(nonce) = &nonce {
                message["nonce"] = json!(nonce);
                if enforce {
                    nonces.insert((channel, nonce.clone()), (message.clone(), Instant::now()));
                }
            }
            if let Some(id) = message["id"].as_str().and_then(|s| s.parse().ok()) {
                state.live_messages.lock().unwrap().insert((channel, id));
                state.messages.lock().unwrap().insert(id, message.clone());
            }
            state.created.lock().unwrap().push(Created {
                channel,
                message: message.clone(),
                at: Instant::now(),
            });
            ok(message)
        }
        ("PATCH", ["channels", channel, "messages", message]) => {
            let channel: u64 = channel.parse().unwrap_or(0);
            let message: u64 = message.parse().unwrap_or(0);
            if !state
                .live_messages
                .lock()
                .unwrap()
                .contains(&(channel, message))
            {
                return unknown("Message", 10008);
            }
            let mut messages = state.messages.lock().unwrap();
            let current = messages
                .entry(message)
                .or_insert_with(|| message_json(message, channel, Some(GUILD_ID), bot(), &content));
            for key in ["content", "components"] {
                if let Some(value) = body.and_then(|b| b.get(key)) {
                    current[key] = value.clone();
                }
            }
            ok(current.clone())
        }
        ("DELETE", ["channels", channel, "messages", message]) => {
            let key = (channel.parse().unwrap_or(0), message.parse().unwrap_or(0));
            if !state.live_messages.lock().unwrap().remove(&key) {
                return unknown("Message", 10008);
            }
            state.messages.lock().unwrap().remove(&key.1);
            (StatusCode::NO_CONTENT, Answer::Empty)
        }
        ("POST", ["channels", _, "typing"]) => (StatusCode::NO_CONTENT, Answer::Empty),
        ("GET", ["channels", channel, "messages"]) => {
            let limit: usize = query
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("limit="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(50);
            let channel: u64 = channel.parse().unwrap_or(0);
            let history = state
                .history
                .lock()
                .unwrap()
                .get(&channel)
                .cloned()
                .unwrap_or_default();
            let before: Option<u64> = query
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("before="))
                .and_then(|v| v.parse().ok());
            let id_of = |m: &Value| m["id"].as_str().and_then(|s| s.parse::<u64>().ok());
            // Discord lists the newest first, at most 100, older than `before` if given.
            let newest_first: Vec<Value> = history
                .into_iter()
                .rev()
                .filter(|m| before.is_none_or(|b| id_of(m).is_some_and(|id| id < b)))
                .take(limit.min(100))
                .collect();
            ok(json!(newest_first))
        }
        ("POST", ["interactions", id, token, "callback"]) => {
            let mut interactions = state.interactions.lock().unwrap();
            let Some(interaction) = interactions.get_mut(&id.parse().unwrap_or(0)) else {
                return unknown("interaction", 10062);
            };
            if interaction.token != *token
                || interaction.dispatched.elapsed() > INTERACTION_DEADLINE
            {
                return unknown("interaction", 10062);
            }
            let kind = body.and_then(|b| b["type"].as_u64()).unwrap_or(0);
            // Commands: a message (4), a deferral (5), a modal (9); components also an
            // update of their message (7) or a silent deferral (6).
            // Modal submits: no modal (9).
            let allowed: &[u64] = match interaction.kind {
                3 => &[4, 5, 6, 7, 9],
                5 => &[4, 5, 6, 7],
                _ => &[4, 5, 9],
            };
            if !allowed.contains(&kind) {
                return (
                    StatusCode::BAD_REQUEST,
                    Answer::Json(json!({"message": "Invalid Form Body", "code": 50035,
                        "errors": {"type": {"_errors": [{"code": "INVALID", "message": "not a response type for this interaction"}]}}})),
                );
            }
            if interaction.acknowledged {
                return (
                    StatusCode::BAD_REQUEST,
                    Answer::Json(
                        json!({"message": "Interaction has already been acknowledged.", "code": 40060}),
                    ),
                );
            }
            let data = body.map(|b| b["data"].clone()).unwrap_or(Value::Null);
            if kind == 9 {
                if let Err(problem) = super::components::check_modal(&data) {
                    return super::channels::invalid_form("data", &problem);
                }
                state.modals.lock().unwrap().push(data.clone());
            }
            if kind == 7 {
                // The component's message is updated in place.
                let mut messages = state.messages.lock().unwrap();
                if let Some(current) = interaction.message.and_then(|m| messages.get_mut(&m)) {
                    for key in ["content", "components"] {
                        if let Some(value) = data.get(key) {
                            current[key] = value.clone();
                        }
                    }
                }
            }
            interaction.acknowledged = true;
            (StatusCode::NO_CONTENT, Answer::Empty)
        }
        ("POST", ["channels", channel, "messages", message, "threads"]) => {
            super::channels::create_thread_on_message(
                state,
                channel.parse().unwrap_or(0),
                message.parse().unwrap_or(0),
                body,
            )
        }
        ("POST", ["channels", channel, "threads"]) => {
            super::channels::create_thread(state, channel.parse().unwrap_or(0), body, new_id())
        }
        ("POST", ["webhooks", _, token]) => {
            let mut interactions = state.interactions.lock().unwrap();
            let Some(interaction) = acknowledged(&mut interactions, token) else {
                return unknown("Webhook", 10015);
            };
            let id = new_id();
            interaction.follow_ups.insert(id);
            ok(message_json(id, 0, Some(GUILD_ID), bot(), &content))
        }
        ("PATCH", ["webhooks", _, token, "messages", message])
        | ("DELETE", ["webhooks", _, token, "messages", message]) => {
            let mut interactions = state.interactions.lock().unwrap();
            let Some(interaction) = acknowledged(&mut interactions, token) else {
                return unknown("Webhook", 10015);
            };
            let id = if *message == "@original" {
                None
            } else {
                let id: u64 = message.parse().unwrap_or(0);
                if !interaction.follow_ups.contains(&id) {
                    return unknown("Message", 10008);
                }
                Some(id)
            };
            if method == "DELETE" {
                if let Some(id) = id {
                    interaction.follow_ups.remove(&id);
                }
                return (StatusCode::NO_CONTENT, Answer::Empty);
            }
            let id = id.unwrap_or_else(|| *interaction.original.get_or_insert_with(new_id));
            let channel = interaction.channel;
            let mut messages = state.messages.lock().unwrap();
            let current = messages
                .entry(id)
                .or_insert_with(|| message_json(id, channel, Some(GUILD_ID), bot(), &content));
            for key in ["content", "components"] {
                if let Some(value) = body.and_then(|b| b.get(key)) {
                    current[key] = value.clone();
                }
            }
            ok(current.clone())
        }
        _ => not_found(),
    }
}

/// The acknowledged interaction whose token is `token`.
fn acknowledged<'a>(
    interactions: &'a mut std::collections::HashMap<u64, super::fake_discord::Interaction>,
    token: &str,
) -> Option<&'a mut super::fake_discord::Interaction> {
    interactions
        .values_mut()
        .find(|i| i.token == token && i.acknowledged)
}

pub(super) fn ok(value: Value) -> (StatusCode, Answer) {
    (StatusCode::OK, Answer::Json(value))
}

fn not_found() -> (StatusCode, Answer) {
    (
        StatusCode::NOT_FOUND,
        Answer::Json(json!({"message": "404: Not Found", "code": 0})),
    )
}
