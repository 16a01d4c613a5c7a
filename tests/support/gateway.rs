//! The fake gateway: HELLO, heartbeats, READY or RESUMED, dispatches injected by the test,
//! a dropped socket or a refused IDENTIFY on demand.

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

pub(super) async fn gateway(
    ws: WebSocketUpgrade,
    AxumState(state): AxumState<Arc<State>>,
) -> Response {
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
