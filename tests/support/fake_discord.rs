//! The fake Discord's state and the handle a test holds: what it recorded, failures to
//! plan, and waits. Its REST answers are in [`super::rest`], its gateway in
//! [`super::gateway`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::gateway::{self, send_dispatch};
use super::rest;

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
    /// The files of a multipart message (its JSON, `payload_json`, is `body`).
    pub files: Vec<super::multipart::Upload>,
    pub at: Instant,
}

/// How long a message create's nonce is remembered (Discord: a few minutes).
pub const NONCE_WINDOW: Duration = Duration::from_secs(300);

/// A planned failure: the next `times` requests matching method and path answer `status`.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub(super) method: String,
    pub(super) path_contains: String,
    pub(super) status: u16,
    pub(super) retry_after: Option<f64>,
    pub(super) times: usize,
    /// Do the work (e.g. create the message), then answer `status`: a lost answer.
    pub(super) after_processing: bool,
}

/// Random failures of message requests (`/channels/{id}/messages…`).
#[derive(Debug, Default)]
pub(super) struct Chaos {
    /// Share of requests that fail, 0–1.
    pub(super) rate: f64,
    pub(super) rng: u64,
    /// Requests (method + path) whose last attempt failed: their next attempt succeeds.
    pub(super) failed: std::collections::HashSet<String>,
    /// Failures so far: (before processing, after processing).
    pub(super) counts: (usize, usize),
}

/// A message the fake created (once per distinct create, whatever the retries).
#[derive(Debug, Clone)]
pub struct Created {
    pub channel: u64,
    pub message: Value,
    pub at: Instant,
}

pub(super) enum Outgoing {
    Frame(Value),
    Drop,
}

#[derive(Default)]
pub struct State {
    pub(super) base_url: Mutex<String>,
    pub(super) requests: Mutex<Vec<Recorded>>,
    pub(super) frames: Mutex<Vec<(Instant, Value)>>,
    pub(super) conn: Mutex<Option<mpsc::UnboundedSender<Outgoing>>>,
    pub(super) connections: AtomicUsize,
    /// Sessions established (READY or RESUMED sent).
    pub(super) sessions: AtomicUsize,
    pub(super) seq: AtomicU64,
    pub(super) next_id: AtomicU64,
    pub(super) failures: Mutex<Vec<Failure>>,
    pub(super) history: Mutex<HashMap<u64, Vec<Value>>>,
    /// Close every IDENTIFY with 4004 (authentication failed), as Discord does for a bad token.
    pub(super) reject_identify: std::sync::atomic::AtomicBool,
    /// (channel, nonce) -> the message created with it, and when.
    pub(super) nonces: Mutex<HashMap<(u64, String), (Value, Instant)>>,
    pub(super) created: Mutex<Vec<Created>>,
    pub(super) chaos: Mutex<Chaos>,
    /// HELLO's heartbeat interval, in milliseconds.
    pub(super) heartbeat_ms: AtomicU64,
    /// The connection (by number, counting from 1) whose heartbeats get no ACK: a zombie.
    pub(super) zombie_connection: AtomicUsize,
    /// Close every IDENTIFY with 4014 (disallowed intents).
    pub(super) reject_intents: std::sync::atomic::AtomicBool,
    /// The current session's id (from READY), for RESUME checks.
    pub(super) session_id: Mutex<Option<String>>,
    /// Every dispatch of the current session, by sequence number, for replay on RESUME.
    pub(super) dispatched: Mutex<Vec<Value>>,
    /// Messages that exist now, as (channel, id): created by the bot and not deleted.
    pub(super) live_messages: Mutex<std::collections::HashSet<(u64, u64)>>,
    /// Interactions dispatched, by id.
    pub(super) interactions: Mutex<HashMap<u64, Interaction>>,
    /// Rate limits per channel: (requests per window, window), per route of the channel.
    pub(super) channel_limits: Mutex<HashMap<u64, (u64, Duration)>>,
    /// Per bucket (method + route + channel): requests in the current window, and its start.
    pub(super) buckets: Mutex<HashMap<String, (u64, Instant)>>,
    /// Modals the bot showed (the callbacks' `data`), in order.
    pub(super) modals: Mutex<Vec<Value>>,
    /// The bot's channel messages as they are now (content and components), by id.
    pub(super) messages: Mutex<HashMap<u64, Value>>,
    /// Channel objects the test created (threads, forums, text channels), by id; any other
    /// id reads as a plain text channel of the server.
    pub(super) channels: Mutex<HashMap<u64, Value>>,
}

/// An interaction the fake dispatched, and what the bot did with it.
#[derive(Debug, Clone)]
pub(super) struct Interaction {
    /// 2: a slash command, 3: a message component (a button press).
    pub(super) kind: u64,
    pub(super) token: String,
    pub(super) dispatched: Instant,
    pub(super) acknowledged: bool,
    /// Follow-up messages created through its webhook.
    pub(super) follow_ups: std::collections::HashSet<u64>,
    /// The original response's message id, once it has content.
    pub(super) original: Option<u64>,
    /// The channel it came from.
    pub(super) channel: u64,
    /// A component interaction's message.
    pub(super) message: Option<u64>,
}

/// How long Discord waits for an interaction's first response.
pub const INTERACTION_DEADLINE: Duration = Duration::from_secs(3);

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
            heartbeat_ms: AtomicU64::new(41_250),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        *state.base_url.lock().unwrap() = format!("http://{addr}");
        let app = Router::new()
            .route("/gateway-ws", get(gateway::gateway))
            .fallback(rest::rest)
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

    /// Sends a dispatch event (op 0) with the next sequence number; while the bot is
    /// disconnected it is kept, and replayed when the bot resumes (as Discord does).
    pub fn dispatch(&self, event: &str, data: Value) {
        send_dispatch(&self.state, event, data);
    }

    /// Records an interaction as dispatched now without sending it (to test the deadline).
    pub fn note_interaction(&self, id: u64, token: &str) {
        self.state.interactions.lock().unwrap().insert(
            id,
            Interaction {
                kind: 2,
                token: token.to_string(),
                dispatched: Instant::now(),
                acknowledged: false,
                follow_ups: Default::default(),
                original: None,
                channel: 0,
                message: None,
            },
        );
    }

    /// Adds (or replaces) a channel object, as `GET /channels/{id}` will answer it.
    pub fn add_channel(&self, channel: Value) {
        let id = channel["id"].as_str().and_then(|s| s.parse().ok()).unwrap();
        self.state.channels.lock().unwrap().insert(id, channel);
    }

    /// The channel object as it is now (tags applied by the bot included).
    pub fn channel(&self, id: u64) -> Option<Value> {
        self.state.channels.lock().unwrap().get(&id).cloned()
    }

    /// A member opens a thread (a forum post, for a forum parent): the channel exists from
    /// now on and THREAD_CREATE is dispatched with `newly_created`, as Discord does before
    /// the starter message's MESSAGE_CREATE.
    pub fn create_thread(&self, thread: Value) {
        self.add_channel(thread.clone());
        let mut event = thread;
        event["newly_created"] = json!(true);
        self.dispatch("THREAD_CREATE", event);
    }

    /// The bot's channel message `id` as it is now (content, components), if it exists.
    pub fn message(&self, id: u64) -> Option<Value> {
        self.state.messages.lock().unwrap().get(&id).cloned()
    }

    /// `user` presses the button `custom_id` on the bot's message `message` in `channel`:
    /// INTERACTION_CREATE of type 3 with the message as it is now. Panics when the message
    /// has no such button (Discord shows only the buttons a message has). Returns the
    /// interaction's id and token.
    pub fn press(&self, message: u64, custom_id: &str, user_id: u64) -> (u64, String) {
        self.press_with_roles(message, custom_id, user_id, &[])
    }

    /// [`FakeDiscord::press`] by a member with `roles`.
    pub fn press_with_roles(
        &self,
        message: u64,
        custom_id: &str,
        user_id: u64,
        roles: &[u64],
    ) -> (u64, String) {
        let current = self
            .message(message)
            .unwrap_or_else(|| panic!("no message {message} to press a button on"));
        assert!(
            super::components::custom_ids(&current["components"]).contains(&custom_id.to_string()),
            "message {message} has no button {custom_id}: {}",
            current["components"]
        );
        let (id, token, payload) =
            super::components::press_payload(self, &current, custom_id, user_id, roles);
        self.dispatch("INTERACTION_CREATE", payload);
        (id, token)
    }

    /// Modals the bot showed so far (each callback's `data`).
    pub fn modals(&self) -> Vec<Value> {
        self.state.modals.lock().unwrap().clone()
    }

    /// `user` (a member with `roles`) fills in and submits the modal `custom_id` the bot
    /// showed: INTERACTION_CREATE of type 5 with `values` (text input custom id, text) in
    /// `channel`. Panics when the
    /// bot never showed that modal. Returns the interaction's id and token.
    pub fn submit_modal(
        &self,
        custom_id: &str,
        values: &[(&str, &str)],
        user_id: u64,
        roles: &[u64],
        channel: u64,
    ) -> (u64, String) {
        assert!(
            self.modals()
                .iter()
                .any(|m| m["custom_id"] == json!(custom_id)),
            "the bot showed no modal {custom_id}"
        );
        let (id, token, payload) = super::components::modal_submit_payload(
            self,
            custom_id,
            values,
            (user_id, roles),
            channel,
        );
        self.dispatch("INTERACTION_CREATE", payload);
        (id, token)
    }

    /// HELLO announces this heartbeat interval from the next connection on.
    pub fn set_heartbeat_interval(&self, interval: Duration) {
        self.state
            .heartbeat_ms
            .store(interval.as_millis() as u64, Ordering::SeqCst);
    }

    /// The current connection becomes a zombie: its heartbeats get no ACK and dispatches no
    /// longer reach it (they stay in the session, for a RESUME to replay); the next
    /// connection works again.
    pub fn stop_acking_heartbeats(&self) {
        self.state
            .zombie_connection
            .store(self.connections(), Ordering::SeqCst);
    }

    /// Sends a non-dispatch frame (op 7 reconnect, op 9 invalid session, …) on the
    /// current connection.
    pub fn send_op(&self, op: u64, d: Value) {
        if let Some(conn) = self.state.conn.lock().unwrap().as_ref() {
            let _ = conn.send(Outgoing::Frame(json!({"op": op, "d": d})));
        }
    }

    /// From now on, answer IDENTIFY by closing the socket with 4014 (disallowed intents).
    pub fn reject_intents(&self) {
        self.state.reject_intents.store(true, Ordering::SeqCst);
    }

    /// Gateway frames the bot sent with opcode `op`, in order.
    pub fn frames_with_op(&self, op: u64) -> Vec<Value> {
        self.frames()
            .into_iter()
            .filter(|f| f["op"] == json!(op))
            .collect()
    }

    /// The session id of the current session (from READY).
    pub fn session_id(&self) -> Option<String> {
        self.state.session_id.lock().unwrap().clone()
    }

    /// The sequence number of the last dispatch sent.
    pub fn last_sequence(&self) -> u64 {
        self.state.seq.load(Ordering::SeqCst)
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

    /// Message routes of `channel` allow `limit` requests per `window` each, as Discord's
    /// buckets do: every answer carries `X-RateLimit-Limit`, `-Remaining`, `-Reset-After`
    /// and `-Bucket`, and a request over the limit gets a 429 (not global).
    pub fn rate_limit_channel(&self, channel: u64, limit: u64, window: Duration) {
        self.state
            .channel_limits
            .lock()
            .unwrap()
            .insert(channel, (limit, window));
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

pub(super) fn is_channel_message_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    matches!(
        parts.as_slice(),
        ["channels", _, "messages"] | ["channels", _, "messages", _]
    )
}
