//! A fake Discord for the tests: REST and gateway on 127.0.0.1 (a random port), started by
//! each test itself. It records every REST request (method, path, query, JSON body, time)
//! and every gateway frame it receives, injects any gateway event, and fails on demand
//! (drop the gateway socket, answer 500, answer 429 with `retry_after`, process a request
//! and then answer 500 as if the answer were lost, fail a share of requests at random).
//! Like Discord, it honours `enforce_nonce` on message creates: a nonce seen in the same
//! channel within [`NONCE_WINDOW`] returns the message already created.
//!
//! Payloads follow DESIGN.md §4: the minimal fields serenity 0.12.5 needs to deserialise.
//! `Bot` runs the real `shopkeep run` binary against it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State as AxumState;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::mpsc;

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

/// One REST request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
    /// The JSON the fake answered with, if any.
    pub response: Option<Value>,
    pub at: Instant,
}

/// How long a message create's nonce is remembered (Discord: a few minutes).
pub const NONCE_WINDOW: Duration = Duration::from_secs(300);

/// A planned failure: the next `times` requests matching method and path answer `status`.
#[derive(Debug, Clone)]
struct Failure {
    method: String,
    path_contains: String,
    status: u16,
    retry_after: Option<f64>,
    times: usize,
    /// Do the work (e.g. create the message), then answer `status`: a lost answer.
    after_processing: bool,
}

/// Random failures of message requests (`/channels/{id}/messages…`).
#[derive(Debug, Default)]
struct Chaos {
    /// Share of requests that fail, 0–1.
    rate: f64,
    rng: u64,
    /// Requests (method + path) whose last attempt failed: their next attempt succeeds.
    failed: std::collections::HashSet<String>,
    /// Failures so far: (before processing, after processing).
    counts: (usize, usize),
}

/// A message the fake created (once per distinct create, whatever the retries).
#[derive(Debug, Clone)]
pub struct Created {
    pub channel: u64,
    pub message: Value,
    pub at: Instant,
}

enum Outgoing {
    Frame(Value),
    Drop,
}

#[derive(Default)]
pub struct State {
    base_url: Mutex<String>,
    requests: Mutex<Vec<Recorded>>,
    frames: Mutex<Vec<(Instant, Value)>>,
    conn: Mutex<Option<mpsc::UnboundedSender<Outgoing>>>,
    connections: AtomicUsize,
    /// Sessions established (READY or RESUMED sent).
    sessions: AtomicUsize,
    seq: AtomicU64,
    next_id: AtomicU64,
    failures: Mutex<Vec<Failure>>,
    history: Mutex<HashMap<u64, Vec<Value>>>,
    /// Close every IDENTIFY with 4004 (authentication failed), as Discord does for a bad token.
    reject_identify: std::sync::atomic::AtomicBool,
    /// (channel, nonce) -> the message created with it, and when.
    nonces: Mutex<HashMap<(u64, String), (Value, Instant)>>,
    created: Mutex<Vec<Created>>,
    chaos: Mutex<Chaos>,
}

/// The fake Discord; stops when dropped (with the test's runtime).
pub struct FakeDiscord {
    pub addr: SocketAddr,
    pub state: Arc<State>,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts on `addr` (e.g. a port a bot is already trying to reach).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let state = Arc::new(State {
            next_id: AtomicU64::new(1_000_000_000_000_000_000),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        *state.base_url.lock().unwrap() = format!("http://{addr}");
        let app = Router::new()
            .route("/gateway-ws", get(gateway))
            .fallback(rest)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn frames(&self) -> Vec<Value> {
        self.state
            .frames
            .lock()
            .unwrap()
            .iter()
            .map(|(_, f)| f.clone())
            .collect()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    pub fn sessions(&self) -> usize {
        self.state.sessions.load(Ordering::SeqCst)
    }

    /// A fresh snowflake.
    pub fn id(&self) -> u64 {
        self.state.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Sends a dispatch event (op 0) with the next sequence number.
    pub fn dispatch(&self, event: &str, data: Value) {
        send_dispatch(&self.state, event, data);
    }

    /// Closes the gateway socket abruptly (no close frame).
    pub fn drop_gateway(&self) {
        if let Some(conn) = self.state.conn.lock().unwrap().take() {
            let _ = conn.send(Outgoing::Drop);
        }
    }

    /// The next `times` requests of `method` whose path contains `path_contains` answer
    /// `status` (with `retry_after` in the JSON body and the Retry-After header for 429).
    pub fn fail_next(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        retry_after: Option<f64>,
        times: usize,
    ) {
        self.state.failures.lock().unwrap().push(Failure {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            status,
            retry_after,
            times,
            after_processing: false,
        });
    }

    /// The next `times` matching requests are processed (a create creates its message)
    /// but answered 500, as when Discord's answer is lost on the way back.
    pub fn lose_next_answers(&self, method: &str, path_contains: &str, times: usize) {
        self.state.failures.lock().unwrap().push(Failure {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            status: 500,
            retry_after: None,
            times,
            after_processing: true,
        });
    }

    /// From now on, a share `rate` (0–1) of message requests fail with 500, half of them
    /// before and half after processing; a request's next attempt after a random failure
    /// always succeeds. `seed` makes the choice reproducible.
    pub fn chaos(&self, rate: f64, seed: u64) {
        let mut chaos = self.state.chaos.lock().unwrap();
        chaos.rate = rate;
        chaos.rng = seed | 1;
    }

    /// Random failures so far: (before processing, after processing).
    pub fn chaos_counts(&self) -> (usize, usize) {
        self.state.chaos.lock().unwrap().counts
    }

    /// Messages created (each once, whatever the retries), in order.
    pub fn created(&self) -> Vec<Created> {
        self.state.created.lock().unwrap().clone()
    }

    /// Messages created in `channel` as Discord replies to `message`.
    pub fn created_replies_to(&self, channel: u64, message: u64) -> Vec<Created> {
        self.created()
            .into_iter()
            .filter(|c| {
                c.channel == channel
                    && c.message["message_reference"]["message_id"] == json!(message.to_string())
            })
            .collect()
    }

    /// From now on, answer IDENTIFY by closing the socket with 4004 (bad token).
    pub fn reject_identify(&self) {
        self.state.reject_identify.store(true, Ordering::SeqCst);
    }

    /// Messages `GET /channels/{channel}/messages` returns (give them oldest first).
    pub fn set_history(&self, channel: u64, messages: Vec<Value>) {
        self.state.history.lock().unwrap().insert(channel, messages);
    }

    /// Polls until `check` returns something, or panics after `timeout` with `what`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = check(self) {
                return found;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; requests so far:\n{}",
                    self.describe_requests()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the bot's session is established (READY sent) `n` times in all.
    pub async fn wait_sessions(&self, n: usize) {
        self.wait_for("the gateway session", Duration::from_secs(30), |f| {
            (f.sessions() >= n).then_some(())
        })
        .await;
    }

    /// Waits until the bot has identified and registered its slash commands.
    pub async fn wait_ready(&self) {
        self.wait_sessions(1).await;
        self.wait_for("slash command registration", Duration::from_secs(15), |f| {
            f.requests()
                .iter()
                .any(|r| r.method == "PUT" && r.path.contains("/commands"))
                .then_some(())
        })
        .await;
    }

    /// When the last request arrived (cheap: copies nothing else).
    pub fn last_request_at(&self) -> Option<Instant> {
        self.state.requests.lock().unwrap().last().map(|r| r.at)
    }

    /// Every successful (2xx) request whose path ends with `suffix`, as (time, method).
    pub fn successes_ending_with(&self, suffix: &str) -> Vec<(Instant, String)> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status < 300 && r.path.ends_with(suffix))
            .map(|r| (r.at, r.method.clone()))
            .collect()
    }

    /// Waits until no request has arrived for `quiet`.
    pub async fn wait_quiet(&self, quiet: Duration, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.requests().last().map(|r| r.at);
            if last.is_none_or(|t| t.elapsed() >= quiet) {
                return;
            }
            assert!(Instant::now() < deadline, "the bot never went quiet");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Message POSTs to `channel`, in the order received.
    pub fn posts_to(&self, channel: u64) -> Vec<Recorded> {
        let path = format!("/api/v10/channels/{channel}/messages");
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == path && r.status < 300)
            .collect()
    }

    /// Every request that sends a message (channel messages, webhooks, interaction
    /// callbacks carrying a message).
    pub fn message_sends(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| {
                (r.method == "POST" || r.method == "PATCH")
                    && (is_channel_message_path(&r.path)
                        || r.path.contains("/webhooks/")
                        || r.path.ends_with("/callback"))
            })
            .collect()
    }

    pub fn describe_requests(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                let body = r.body.as_ref().map(|b| {
                    let s = b.to_string();
                    s.chars().take(200).collect::<String>()
                });
                format!(
                    "  {} {}{} -> {} {}",
                    r.method,
                    r.path,
                    r.query
                        .as_deref()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default(),
                    r.status,
                    body.unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn is_channel_message_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    matches!(
        parts.as_slice(),
        ["channels", _, "messages"] | ["channels", _, "messages", _]
    )
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

pub fn user(id: u64, name: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": bot,
    })
}

/// A message payload with the fields serenity requires.
pub fn message_json(
    id: u64,
    channel: u64,
    guild: Option<u64>,
    author: Value,
    content: &str,
) -> Value {
    let mut message = json!({
        "id": id.to_string(),
        "channel_id": channel.to_string(),
        "author": author,
        "content": content,
        "timestamp": "2026-11-28T12:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "type": 0,
    });
    if let Some(guild) = guild {
        message["guild_id"] = json!(guild.to_string());
    }
    message
}

/// A MESSAGE_CREATE payload, built step by step.
#[derive(Debug, Clone)]
pub struct Msg {
    pub id: u64,
    pub channel: u64,
    pub guild: Option<u64>,
    pub author: Value,
    pub content: String,
    pub mentions: Vec<Value>,
    pub roles: Vec<u64>,
    pub reply_to: Option<Value>,
}

impl Msg {
    /// A guild message from a customer (user id `author_id`).
    pub fn new(fake: &FakeDiscord, channel: u64, author_id: u64, content: &str) -> Self {
        Self {
            id: fake.id(),
            channel,
            guild: Some(GUILD_ID),
            author: user(author_id, &format!("user{author_id}"), false),
            content: content.to_string(),
            mentions: Vec::new(),
            roles: Vec::new(),
            reply_to: None,
        }
    }

    /// Mentions the bot: `<@BOT_ID>` in front of the text and in `mentions`.
    pub fn mentioning_bot(mut self) -> Self {
        self.content = format!("<@{BOT_ID}> {}", self.content);
        self.mentions.push(user(BOT_ID, "shopkeep", true));
        self
    }

    pub fn sent_by_bot(mut self, id: u64) -> Self {
        self.author = user(id, "otherbot", true);
        self
    }

    pub fn dm(mut self) -> Self {
        self.guild = None;
        self
    }

    /// A Discord reply to `message` (a message payload), referenced in full.
    pub fn replying_to(mut self, message: Value) -> Self {
        self.reply_to = Some(message);
        self
    }

    /// A reply that carries only `message_reference` (no `referenced_message`).
    pub fn json_reference_only(&self) -> Value {
        let mut m = self.json();
        if let Some(object) = m.as_object_mut() {
            object.remove("referenced_message");
        }
        m
    }

    pub fn json(&self) -> Value {
        let mut m = message_json(
            self.id,
            self.channel,
            self.guild,
            self.author.clone(),
            &self.content,
        );
        m["mentions"] = json!(self.mentions);
        if self.guild.is_some() {
            m["member"] = json!({"roles": self.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(), "deaf": false, "mute": false});
        }
        if let Some(reference) = &self.reply_to {
            m["type"] = json!(19);
            m["message_reference"] = json!({
                "message_id": reference["id"],
                "channel_id": reference["channel_id"],
                "guild_id": self.guild.map(|g| g.to_string()),
            });
            m["referenced_message"] = reference.clone();
        }
        m
    }

    pub fn send(&self, fake: &FakeDiscord) {
        fake.dispatch("MESSAGE_CREATE", self.json());
    }
}

/// An INTERACTION_CREATE payload for a slash command in the guild.
pub fn command_interaction(
    fake: &FakeDiscord,
    name: &str,
    options: Value,
    channel: u64,
    user_id: u64,
    roles: &[u64],
    permissions: u64,
) -> (u64, String, Value) {
    let id = fake.id();
    let token = format!("interaction-token-{id}");
    let payload = json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "type": 2,
        "data": {"id": fake.id().to_string(), "name": name, "type": 1, "options": options},
        "guild_id": GUILD_ID.to_string(),
        "channel_id": channel.to_string(),
        "member": {
            "user": user(user_id, &format!("user{user_id}"), false),
            "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "deaf": false,
            "mute": false,
            "flags": 0,
            "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "permissions": permissions.to_string(),
        },
        "token": token,
        "version": 1,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 8388608,
    });
    (id, token, payload)
}

fn send_dispatch(state: &State, event: &str, data: Value) {
    let seq = state.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let frame = json!({"op": 0, "t": event, "s": seq, "d": data});
    let conn = state.conn.lock().unwrap();
    match conn.as_ref() {
        Some(conn) => {
            let _ = conn.send(Outgoing::Frame(frame));
        }
        None => panic!("no gateway connection to send {event} on"),
    }
}

async fn gateway(ws: WebSocketUpgrade, AxumState(state): AxumState<Arc<State>>) -> Response {
    ws.on_upgrade(move |socket| serve_gateway(socket, state))
}

async fn serve_gateway(mut socket: WebSocket, state: Arc<State>) {
    state.connections.fetch_add(1, Ordering::SeqCst);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}});
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                let text = match message {
                    WsMessage::Text(text) => text.to_string(),
                    WsMessage::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    WsMessage::Close(_) => return,
                    _ => continue,
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                state.frames.lock().unwrap().push((Instant::now(), frame.clone()));
                match frame["op"].as_u64() {
                    Some(1) => {
                        let ack = json!({"op": 11});
                        let _ = socket.send(WsMessage::Text(ack.to_string().into())).await;
                    }
                    Some(2) if state.reject_identify.load(Ordering::SeqCst) => {
                        let close = axum::extract::ws::CloseFrame {
                            code: 4004,
                            reason: "Authentication failed.".into(),
                        };
                        let _ = socket.send(WsMessage::Close(Some(close))).await;
                        return;
                    }
                    Some(2) => {
                        *state.conn.lock().unwrap() = Some(tx.clone());
                        let base = state.base_url.lock().unwrap().replace("http://", "ws://");
                        let ready = json!({
                            "v": 10,
                            "user": user(BOT_ID, "shopkeep", true),
                            "guilds": [{"id": GUILD_ID.to_string(), "unavailable": true}],
                            "session_id": format!("session-{}", state.connections.load(Ordering::SeqCst)),
                            "resume_gateway_url": format!("{base}/gateway-ws"),
                            "application": {"id": APP_ID.to_string(), "flags": 0},
                        });
                        state.seq.store(0, Ordering::SeqCst);
                        send_dispatch(&state, "READY", ready);
                        state.sessions.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(6) => {
                        *state.conn.lock().unwrap() = Some(tx.clone());
                        send_dispatch(&state, "RESUMED", json!({}));
                        state.sessions.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
            outgoing = rx.recv() => match outgoing {
                Some(Outgoing::Frame(frame)) => {
                    if socket.send(WsMessage::Text(frame.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Outgoing::Drop) | None => return,
            }
        }
    }
}

async fn rest(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let json_body: Option<Value> = serde_json::from_slice(&body).ok();
    let (status, answer) = answer(
        &state,
        method.as_str(),
        &path,
        query.as_deref(),
        json_body.as_ref(),
    );
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
        at: Instant::now(),
    });
    match answer {
        Answer::Json(value) => (status, axum::Json(value)).into_response(),
        Answer::Empty => status.into_response(),
        Answer::RateLimited(value, retry_after) => (
            status,
            [("retry-after", format!("{retry_after}"))],
            axum::Json(value),
        )
            .into_response(),
    }
}

enum Answer {
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
        ("POST", ["channels", channel, "messages"]) => {
            let channel: u64 = channel.parse().unwrap_or(0);
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
            if let Some(nonce) = &nonce {
                message["nonce"] = json!(nonce);
                if enforce {
                    nonces.insert((channel, nonce.clone()), (message.clone(), Instant::now()));
                }
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
            ok(message_json(
                message.parse().unwrap_or(0),
                channel,
                Some(GUILD_ID),
                bot(),
                &content,
            ))
        }
        ("DELETE", ["channels", _, "messages", _]) => (StatusCode::NO_CONTENT, Answer::Empty),
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
        ("POST", ["interactions", _, _, "callback"]) => (StatusCode::NO_CONTENT, Answer::Empty),
        ("POST", ["webhooks", _, _]) => {
            ok(message_json(new_id(), 0, Some(GUILD_ID), bot(), &content))
        }
        ("PATCH", ["webhooks", _, _, "messages", _]) => {
            ok(message_json(new_id(), 0, Some(GUILD_ID), bot(), &content))
        }
        ("DELETE", ["webhooks", _, _, "messages", _]) => (StatusCode::NO_CONTENT, Answer::Empty),
        _ => not_found(),
    }
}

fn ok(value: Value) -> (StatusCode, Answer) {
    (StatusCode::OK, Answer::Json(value))
}

fn not_found() -> (StatusCode, Answer) {
    (
        StatusCode::NOT_FOUND,
        Answer::Json(json!({"message": "404: Not Found", "code": 0})),
    )
}

/// The `shopkeep run` process, pointed at a fake Discord; killed when dropped.
pub struct Bot {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

/// The token every test bot uses: recognisable, so the log test can look for it.
pub const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.SECRET-TOKEN-shopkeep-test.zZ9yY8xX7";

pub fn model_dir() -> PathBuf {
    shopkeep::config::cache_dir()
        .join("models")
        .join("tiny-gpt2")
}

impl Bot {
    /// Starts the bot with the test defaults (tiny model, 16 new tokens, no limits in the
    /// way), plus `env`, which overrides them.
    pub fn start(fake: &FakeDiscord, env: &[(&str, &str)]) -> Self {
        Self::start_at(&fake.url(), env)
    }

    /// [`Bot::start`] against the Discord API at `url` (which may not answer yet).
    pub fn start_at(url: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shopkeep"));
        command.arg("run");
        for (key, _) in std::env::vars() {
            if key.starts_with("SHOPKEEP_") || key.starts_with("DISCORD_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        let prompts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let mut settings: Vec<(String, String)> = vec![
            ("DISCORD_TOKEN".into(), TOKEN.into()),
            ("DISCORD_API_URL".into(), url.to_string()),
            ("SHOPKEEP_DB".into(), ":memory:".into()),
            (
                "SHOPKEEP_MODEL_DIR".into(),
                model_dir().display().to_string(),
            ),
            ("SHOPKEEP_MAX_NEW_TOKENS".into(), "16".into()),
            ("SHOPKEEP_THREADS".into(), "1".into()),
            ("SHOPKEEP_USER_BURST".into(), "100".into()),
            ("SHOPKEEP_USER_PER_MINUTE".into(), "1000".into()),
            ("SHOPKEEP_CHANNEL_BURST".into(), "100".into()),
            ("SHOPKEEP_CHANNEL_PER_MINUTE".into(), "1000".into()),
            ("SHOPKEEP_MOD_ROLES".into(), MOD_ROLE.to_string()),
            ("SHOPKEEP_ADMIN_ROLES".into(), ADMIN_ROLE.to_string()),
            ("RUST_LOG".into(), "shopkeep=debug,warn".into()),
        ];
        if prompts.is_dir() {
            settings.push(("SHOPKEEP_PROMPTS_DIR".into(), prompts.display().to_string()));
        }
        for (key, value) in env {
            settings.retain(|(k, _)| k != key);
            settings.push((key.to_string(), value.to_string()));
        }
        command.envs(settings);
        command.current_dir(env!("CARGO_MANIFEST_DIR"));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("could not start shopkeep");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self { child, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// The address the metrics endpoint bound, from the log line that announces it.
    pub async fn metrics_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let logs = self.logs();
            if let Some(line) = logs.lines().find(|l| l.contains("serving metrics")) {
                let addr = line
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("addr="))
                    .expect("addr= in the metrics log line");
                return addr.parse().expect("a socket address");
            }
            assert!(Instant::now() < deadline, "no metrics address in:\n{logs}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /metrics`, as text.
    pub async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.metrics_addr().await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        answer
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not exit; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- shopkeep stderr ---\n{}", self.logs());
        }
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
