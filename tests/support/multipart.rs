//! Message bodies sent as multipart forms (messages with files), read as Discord reads
//! them: a `payload_json` part holding the message JSON, and a `files[n]` part per file,
//! where `n` is the `id` of an entry of the message's `attachments` list that names the
//! same file. Discord refuses a form that breaks these rules (400), more than 10 files,
//! or a file over 10 MiB (413).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart};
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{json, Value};

use super::fake_discord::State;
use super::rest::Answer;
use std::sync::atomic::Ordering;

/// Most files on one message.
pub const MAX_FILES: usize = 10;
/// Largest file Discord takes from a bot in a server without boosts.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// One file of a multipart message, as received.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The form field: `files[n]`.
    pub field: String,
    /// `n` of `files[n]`.
    pub index: u64,
    /// The part's file name.
    pub filename: String,
    /// The part's content type, if it named one.
    pub content_type: Option<String>,
    /// The file itself.
    pub bytes: Vec<u8>,
}

/// A request's body as the fake reads it: its JSON (the `payload_json` of a multipart
/// form, else the body itself), the form's files, and Discord's refusal of a bad form.
pub(super) async fn body(
    headers: &HeaderMap,
    body: Bytes,
) -> (Option<Value>, Vec<Upload>, Option<(StatusCode, Answer)>) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_multipart(content_type) {
        return (serde_json::from_slice(&body).ok(), Vec::new(), None);
    }
    match read(content_type, body).await {
        Ok((payload, files)) => (Some(payload), files, None),
        Err((status, answer)) => (None, Vec::new(), Some((status, Answer::Json(answer)))),
    }
}

/// Whether a request's content type is a multipart form.
pub fn is_multipart(content_type: &str) -> bool {
    content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
}

/// The message JSON and the files of a multipart body, or Discord's refusal (status and
/// JSON answer).
pub async fn read(
    content_type: &str,
    body: Bytes,
) -> Result<(Value, Vec<Upload>), (StatusCode, Value)> {
    let request = Request::builder()
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("a request");
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| invalid(&format!("not a multipart form: {e}")))?;
    let mut payload: Option<Value> = None;
    let mut uploads = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| invalid(&format!("broken multipart form: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "payload_json" {
            let text = field.text().await.map_err(|e| invalid(&e.to_string()))?;
            payload = Some(
                serde_json::from_str(&text)
                    .map_err(|_| invalid("payload_json is not valid JSON"))?,
            );
            continue;
        }
        let Some(index) = name
            .strip_prefix("files[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return Err(invalid(&format!("unexpected form field {name:?}")));
        };
        let filename = field
            .file_name()
            .map(str::to_string)
            .ok_or_else(|| invalid(&format!("{name} has no file name")))?;
        let content_type = field.content_type().map(str::to_string);
        let bytes = field.bytes().await.map_err(|e| invalid(&e.to_string()))?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"message": "Request entity too large", "code": 40005}),
            ));
        }
        uploads.push(Upload {
            field: name,
            index,
            filename,
            content_type,
            bytes: bytes.to_vec(),
        });
    }
    if uploads.len() > MAX_FILES {
        return Err(invalid("more than 10 files"));
    }
    let payload = payload.unwrap_or_else(|| json!({}));
    check_attachments(&payload, &uploads)?;
    Ok((payload, uploads))
}

/// Each file has an `attachments` entry with its index as `id` and its file name, and each
/// entry with a small id (a new file, not an existing attachment's snowflake) has a file.
fn check_attachments(payload: &Value, uploads: &[Upload]) -> Result<(), (StatusCode, Value)> {
    let listed = payload
        .get("attachments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let id_of = |entry: &Value| {
        entry.get("id").and_then(|id| {
            id.as_u64()
                .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
        })
    };
    for upload in uploads {
        let entry = listed
            .iter()
            .find(|entry| id_of(entry) == Some(upload.index));
        match entry {
            None => {
                return Err(invalid(&format!(
                    "{} has no attachments entry with id {}",
                    upload.field, upload.index
                )))
            }
            Some(entry) if entry.get("filename") != Some(&json!(upload.filename)) => {
                return Err(invalid(&format!(
                    "attachments[id={}] names another file than {}",
                    upload.index, upload.field
                )))
            }
            Some(_) => {}
        }
    }
    for entry in &listed {
        let id = id_of(entry).ok_or_else(|| invalid("an attachments entry has no id"))?;
        if id < MAX_FILES as u64 && !uploads.iter().any(|u| u.index == id) {
            return Err(invalid(&format!("attachments[id={id}] has no files[{id}]")));
        }
    }
    Ok(())
}

/// The attachment objects Discord puts on a message created with `uploads`.
pub fn attachment_objects(
    base_url: &str,
    ids: impl Iterator<Item = u64>,
    uploads: &[Upload],
) -> Value {
    let objects: Vec<Value> = uploads
        .iter()
        .zip(ids)
        .map(|(upload, id)| {
            json!({
                "id": id.to_string(),
                "filename": upload.filename,
                "size": upload.bytes.len(),
                "content_type": upload.content_type,
                "url": format!("{base_url}/attachments/{id}/{}", upload.filename),
                "proxy_url": format!("{base_url}/attachments/{id}/{}", upload.filename),
            })
        })
        .collect();
    Value::Array(objects)
}

/// Puts the attachment objects of `files` on the message the request created or edited
/// (its answer, and the message as the fake keeps it).
pub(super) fn attach(state: &State, answer: &mut Answer, files: &[Upload]) {
    let Answer::Json(message) = answer else {
        return;
    };
    let base = state.base_url.lock().unwrap().clone();
    let ids = std::iter::repeat_with(|| state.next_id.fetch_add(1, Ordering::SeqCst));
    message["attachments"] = attachment_objects(&base, ids, files);
    let Some(id) = message["id"].as_str().and_then(|s| s.parse::<u64>().ok()) else {
        return;
    };
    if let Some(kept) = state.messages.lock().unwrap().get_mut(&id) {
        kept["attachments"] = message["attachments"].clone();
    }
}

fn invalid(problem: &str) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({"message": "Invalid Form Body", "code": 50035,
            "errors": {"files": {"_errors": [{"code": "INVALID", "message": problem}]}}}),
    )
}
