//! The fake gateway: HELLO, heartbeats, READY or RESUMED, dispatches injected by the test,
//! a dropped socket or a refused IDENTIFY on demand. A zombie connection (on demand) gets
//! no heartbeat ACKs and no dispatches, as a half-dead connection to Discord does; its
//! session keeps the events for a RESUME, and a new IDENTIFY starts a session without them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State as AxumState;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::fake_discord::{Outgoing, State};
use super::{user, APP_ID, BOT_ID, GUILD_ID};

pub(super) fn send_dispatch(state: &State, event: &str, data: Value) {
    if event == "INTERACTION_CREATE" {
        let id = data["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        state.interactions.lock().unwrap().insert(
            id,
            super::fake_discord::Interaction {
                kind: data["type"].as_u64().unwrap_or(2),
                token: data["token"].as_str().unwrap_or("").to_string(),
                dispatched: Instant::now(),
                acknowledged: false,
                follow_ups: Default::default(),
                original: None,
                channel: data["channel_id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                message: data["message"]["id"].as_str().and_then(|s| s.parse().ok()),
            },
        );
    }
    let mut dispatched = state.dispatched.lock().unwrap();
    let seq = state.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let frame = json!({"op": 0, "t": event, "s": seq, "d": data});
    dispatched.push(frame.clone());
    // A zombie connection is dead both ways: the session keeps the event (a RESUME replays
    // it), but nothing reaches the bot over it.
    let zombie =
        state.zombie_connection.load(Ordering::SeqCst) == state.connections.load(Ordering::SeqCst);
    if zombie {
        return;
    }
    if let Some(conn) = state.conn.lock().unwrap().as_ref() {
        let _ = conn.send(Outgoing::Frame(frame));
    }
}

/// Closes the socket with `code`.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let close = axum::extract::ws::CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let _ = socket.send(WsMessage::Close(Some(close))).await;
}

/// Whether a RESUME (`d`) names the current session and a sequence number already sent.
fn resume_is_valid(state: &State, d: &Value) -> bool {
    let session = state.session_id.lock().unwrap().clone();
    let seq = d["seq"].as_u64();
    session.is_some()
        && d["session_id"].as_str() == session.as_deref()
        && seq.is_some_and(|seq| seq <= state.seq.load(Ordering::SeqCst))
        && d["token"]
            .as_str()
            .is_some_and(|t| t.ends_with(super::TOKEN))
}

pub(super) async fn gateway(
    ws: WebSocketUpgrade,
    AxumState(state): AxumState<Arc<State>>,
) -> Response {
    ws.on_upgrade(move |socket| serve_gateway(socket, state))
}

async fn serve_gateway(mut socket: WebSocket, state: Arc<State>) {
    let number = state.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let interval = state.heartbeat_ms.load(Ordering::SeqCst);
    let hello = json!({"op": 10, "d": {"heartbeat_interval": interval}});
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
                    Some(1) if state.zombie_connection.load(Ordering::SeqCst) == number => {}
                    Some(1) => {
                        let ack = json!({"op": 11});
                        let _ = socket.send(WsMessage::Text(ack.to_string().into())).await;
                    }
                    Some(2) if state.reject_identify.load(Ordering::SeqCst) => {
                        close(&mut socket, 4004, "Authentication failed.").await;
                        return;
                    }
                    Some(2) if state.reject_intents.load(Ordering::SeqCst) => {
                        close(&mut socket, 4014, "Disallowed intent(s).").await;
                        return;
                    }
                    Some(2) => {
                        let base = state.base_url.lock().unwrap().replace("http://", "ws://");
                        let session = format!("session-{number}");
                        let ready = json!({
                            "v": 10,
                            "user": user(BOT_ID, "shopkeep", true),
                            "guilds": [{"id": GUILD_ID.to_string(), "unavailable": true}],
                            "session_id": session,
                            "resume_gateway_url": format!("{base}/gateway-ws"),
                            "application": {"id": APP_ID.to_string(), "flags": 0},
                        });
                        {
                            let mut dispatched = state.dispatched.lock().unwrap();
                            dispatched.clear();
                            state.seq.store(0, Ordering::SeqCst);
                        }
                        *state.session_id.lock().unwrap() = Some(session);
                        *state.conn.lock().unwrap() = Some(tx.clone());
                        send_dispatch(&state, "READY", ready);
                        state.sessions.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(6) if resume_is_valid(&state, &frame["d"]) => {
                        // Replay what the bot missed, then RESUMED, as Discord does.
                        let from = frame["d"]["seq"].as_u64().unwrap_or(0);
                        let missed: Vec<Value> = state
                            .dispatched
                            .lock()
                            .unwrap()
                            .iter()
                            .filter(|f| f["s"].as_u64().is_some_and(|s| s > from))
                            .cloned()
                            .collect();
                        for event in missed {
                            if socket.send(WsMessage::Text(event.to_string().into())).await.is_err() {
                                return;
                            }
                        }
                        *state.conn.lock().unwrap() = Some(tx.clone());
                        send_dispatch(&state, "RESUMED", json!({}));
                        state.sessions.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(6) => {
                        // Not this session, or a sequence never sent: identify afresh.
                        let invalid = json!({"op": 9, "d": false});
                        let _ = socket.send(WsMessage::Text(invalid.to_string().into())).await;
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
