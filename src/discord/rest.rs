//! Sending to Discord's REST API with retries, and with no mentions allowed.
//!
//! Every send the bot makes goes through [`Rest::send`]: it builds the request with
//! serenity's routes (so `DISCORD_API_URL` applies), keeps Discord's rate limits itself
//! ([`super::ratelimit`]; the same code in production and tests), retries 5xx answers, timeouts and connection errors with backoff, honours
//! a 429's `retry_after`, and forces `allowed_mentions` to the client's no-mentions default
//! on every message body, so no code path can forget it.
//!
//! A request that fails for good (after the last attempt, or refused with a 4xx) is logged
//! at error level within the caller's span and counted in
//! `shopkeep_discord_send_failures_total`; every failed attempt is counted by kind in
//! `shopkeep_discord_errors_total`. Message creates carry a `nonce` with `enforce_nonce`
//! (see [`super::reply`]), so retrying a create whose answer was lost never posts twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use serenity::builder::{CreateAllowedMentions, CreateAttachment};
use serenity::http::{Http, HttpBuilder, LightMethod, Multipart, MultipartUpload, Request, Route};
use serenity::model::id::ChannelId;

use super::ratelimit::RateLimits;
use super::settings::DiscordToken;
use crate::metrics::METRICS;

/// Attempts per send (the first try plus retries).
const MAX_ATTEMPTS: u32 = 4;
/// Longest wait honoured for a 429's `retry_after`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Timeout of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A send that failed for good (after retries, where retrying made sense).
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Discord (or the proxy) answered with an error status.
    #[error("Discord answered {status} to {what}: {message}")]
    Status {
        /// The request, in words ("send a message").
        what: &'static str,
        /// The HTTP status code.
        status: u16,
        /// Discord's error message, or the start of the answer's body.
        message: String,
    },
    /// The request did not get an answer (connection refused, timeout, …).
    #[error("could not reach Discord for {what}: {detail}")]
    Transport {
        /// The request, in words.
        what: &'static str,
        /// The transport error (without the URL).
        detail: String,
    },
    /// A payload could not be encoded or an answer decoded.
    #[error("bad payload for {what}: {detail}")]
    Payload {
        /// The request, in words.
        what: &'static str,
        /// What could not be encoded or decoded, and why.
        detail: String,
    },
}

/// The allowed-mentions policy of every message the bot sends: nothing may be pinged, not
/// even the author of the message replied to. Serialises to
/// `{"parse":[],"users":[],"roles":[],"replied_user":false}`.
pub fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new().replied_user(false)
}

/// The serenity HTTP client for `token`: no mentions allowed by default ([`no_mentions`]),
/// serenity's own rate limiter off ([`Rest`] keeps Discord's limits, in production as in the
/// tests), and every request sent to `api_url` instead of discord.com when one is given.
pub fn discord_http(token: &DiscordToken, api_url: Option<&str>) -> Http {
    let mut builder = HttpBuilder::new(token.expose())
        .default_allowed_mentions(no_mentions())
        .ratelimiter_disabled(true);
    if let Some(url) = api_url {
        builder = builder.proxy(url);
    }
    builder.build()
}

/// Where a body's `allowed_mentions` sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A message payload: `allowed_mentions` at the top level.
    Message,
    /// An interaction callback: inside `data`, when there is one.
    Callback,
    /// Not a message (no `allowed_mentions`).
    Other,
}

/// What a request carries.
enum Payload {
    /// A JSON body, with `allowed_mentions` where [`Body`] says.
    Json(Value, Body),
    /// A multipart form (a message with files), ready to send.
    Form(Multipart),
}

/// How hard a request is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Retried on 429, 5xx and transport errors; a final failure is a lost send
    /// (`discord_send_failures_total`, logged as an error).
    Retried,
    /// One attempt (the typing indicator); a failure is counted by kind and logged only.
    BestEffort,
}

/// The REST sender; cheap to clone.
#[derive(Clone)]
pub struct Rest {
    http: Arc<Http>,
    client: reqwest::Client,
    no_mentions: Value,
    limits: Arc<RateLimits>,
}

impl Rest {
    /// A sender over `http` (its token and API address); every body gets `http`'s default
    /// allowed-mentions policy, else [`no_mentions`].
    pub fn new(http: Arc<Http>) -> Self {
        let policy = http
            .default_allowed_mentions
            .clone()
            .unwrap_or_else(no_mentions);
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            http,
            client,
            limits: Arc::new(RateLimits::default()),
            no_mentions: serde_json::to_value(policy).unwrap_or_else(|_| {
                serde_json::json!({"parse": [], "users": [], "roles": [], "replied_user": false})
            }),
        }
    }

    /// The serenity client requests are built with (the one the gateway client uses).
    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// Shows "typing…" in `channel_id` (Discord shows it for about 10 s). One attempt, no
    /// retry: the caller renews it anyway. A failure is counted in
    /// `discord_errors_total` by kind and logged, but is not a lost message.
    pub async fn typing(&self, channel_id: ChannelId) -> Result<(), RestError> {
        self.send_with_params(
            "show the typing indicator",
            Route::ChannelTyping { channel_id },
            LightMethod::Post,
            None,
            None,
            Delivery::BestEffort,
        )
        .await
        .map(|_| ())
    }

    /// Sends one request; returns the JSON answer (`None` for an empty answer such as 204).
    ///
    /// Retries up to [`MAX_ATTEMPTS`] times on 429 (after `retry_after`), 5xx and transport
    /// errors (after 0.5 s, 1 s, 2 s); fails at once on other statuses.
    pub async fn send(
        &self,
        what: &'static str,
        route: Route<'_>,
        method: LightMethod,
        body: Option<Value>,
        kind: Body,
    ) -> Result<Option<Value>, RestError> {
        let payload = body.map(|body| Payload::Json(body, kind));
        self.send_with_params(what, route, method, None, payload, Delivery::Retried)
            .await
    }

    /// Sends one message with a file attached, the way Discord takes it: a multipart
    /// form whose `payload_json` is `message` (mentions forced off, as on every message)
    /// with `attachments: [{"id": 0, "filename": …}]`, and whose `files[0]` part is the
    /// file. Retried as [`Rest::send`] is.
    pub async fn send_with_file(
        &self,
        what: &'static str,
        route: Route<'_>,
        method: LightMethod,
        mut message: Value,
        file: CreateAttachment,
    ) -> Result<Option<Value>, RestError> {
        self.enforce_no_mentions(&mut message, Body::Message);
        message["attachments"] = serde_json::json!([{
            "id": 0,
            "filename": file.filename,
            "description": file.description,
        }]);
        let form = Multipart {
            upload: MultipartUpload::Attachments(vec![file]),
            fields: Vec::new(),
            payload_json: Some(message.to_string()),
        };
        self.send_with_params(
            what,
            route,
            method,
            None,
            Some(Payload::Form(form)),
            Delivery::Retried,
        )
        .await
    }

    /// One page of a channel's history: up to `limit` (1–100) message objects older than
    /// `before` (a message id; None: the newest), newest first, as Discord sends them.
    pub async fn channel_messages_page(
        &self,
        channel_id: ChannelId,
        limit: u8,
        before: Option<u64>,
    ) -> Result<Vec<Value>, RestError> {
        const WHAT: &str = "read a channel's messages";
        let mut params = vec![("limit", limit.to_string())];
        if let Some(before) = before {
            params.push(("before", before.to_string()));
        }
        let answer = self
            .send_with_params(
                WHAT,
                Route::ChannelMessages { channel_id },
                LightMethod::Get,
                Some(params),
                None,
                Delivery::Retried,
            )
            .await?;
        match answer {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(RestError::Payload {
                what: WHAT,
                detail: "the answer is not a list of messages".into(),
            }),
        }
    }

    async fn send_with_params(
        &self,
        what: &'static str,
        route: Route<'_>,
        method: LightMethod,
        params: Option<Vec<(&'static str, String)>>,
        payload: Option<Payload>,
        delivery: Delivery,
    ) -> Result<Option<Value>, RestError> {
        let (bytes, form) = match payload {
            None => (None, None),
            Some(Payload::Form(form)) => (None, Some(form)),
            Some(Payload::Json(mut body, kind)) => {
                self.enforce_no_mentions(&mut body, kind);
                let bytes = serde_json::to_vec(&body).map_err(|e| RestError::Payload {
                    what,
                    detail: e.to_string(),
                })?;
                (Some(bytes), None)
            }
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = Request::new(route, method)
                .body(bytes.clone())
                .multipart(form.clone())
                .params(params.clone());
            let outcome = self.execute(request).await;
            // The error, and how long to wait before a retry (None: not worth retrying).
            let (error, retry_in) = match outcome {
                Ok(response) => {
                    let status = response.status();
                    let retry_header = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok());
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        // 204, or any answer that is not JSON: success with nothing to read.
                        return Ok(serde_json::from_str(&text).ok());
                    }
                    let json: Option<Value> = serde_json::from_str(&text).ok();
                    let message = json
                        .as_ref()
                        .and_then(|j| j.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or(text.as_str())
                        .chars()
                        .take(300)
                        .collect::<String>();
                    let error = RestError::Status {
                        what,
                        status: status.as_u16(),
                        message,
                    };
                    if status.as_u16() == 429 {
                        let retry_after = json
                            .as_ref()
                            .and_then(|j| j.get("retry_after"))
                            .and_then(Value::as_f64)
                            .or(retry_header)
                            .unwrap_or(1.0);
                        let wait = Duration::try_from_secs_f64(retry_after.max(0.0))
                            .unwrap_or(MAX_RETRY_AFTER)
                            .min(MAX_RETRY_AFTER);
                        METRICS.platform_error(DiscordErrorKind::RateLimited.label());
                        (error, Some(wait))
                    } else if status.is_server_error() {
                        METRICS.platform_error(DiscordErrorKind::ServerError.label());
                        (error, Some(backoff(attempt)))
                    } else {
                        METRICS.platform_error(DiscordErrorKind::Refused.label());
                        (error, None)
                    }
                }
                Err(detail) => {
                    METRICS.platform_error(DiscordErrorKind::Transport.label());
                    (
                        RestError::Transport { what, detail },
                        Some(backoff(attempt)),
                    )
                }
            };
            let retry_in =
                retry_in.filter(|_| delivery == Delivery::Retried && attempt < MAX_ATTEMPTS);
            let Some(wait) = retry_in else {
                match delivery {
                    // Logged inside the caller's span, which carries the guild, channel,
                    // user and message ids of the event being answered.
                    Delivery::Retried => {
                        METRICS.discord_send_failure();
                        tracing::error!(%error, attempts = attempt, "giving up on a Discord request");
                    }
                    Delivery::BestEffort => {
                        tracing::warn!(%error, "a best-effort Discord request failed; not retried");
                    }
                }
                return Err(error);
            };
            tracing::warn!(%error, attempt, wait_ms = wait.as_millis() as u64, "retrying a Discord request");
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt, within the rate limits ([`RateLimits`]): waits for the request's
    /// bucket (and a global limit), sends, and takes the answer's rate-limit headers.
    async fn execute(&self, request: Request<'_>) -> Result<reqwest::Response, String> {
        let bucket = request.route_ref().ratelimiting_bucket();
        let _turn = self.limits.acquire(bucket).await;
        let builder = request
            .build(&self.client, self.http.token(), self.http.proxy.as_deref())
            .map_err(|e| e.to_string())?;
        let response = builder
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let global = (response.status().as_u16() == 429
            && RateLimits::is_global(response.headers()))
        .then(|| {
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok())
                .unwrap_or(Duration::from_secs(1))
        });
        self.limits.update(bucket, response.headers(), global);
        Ok(response)
    }

    fn enforce_no_mentions(&self, body: &mut Value, kind: Body) {
        let target = match kind {
            Body::Message => Some(body),
            Body::Callback => body.get_mut("data"),
            Body::Other => None,
        };
        if let Some(Value::Object(map)) = target {
            map.insert("allowed_mentions".into(), self.no_mentions.clone());
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 * 2u64.pow(attempt.saturating_sub(1).min(3)))
}

/// The `id` of a message in a JSON answer.
pub fn message_id(answer: &Option<Value>) -> Option<u64> {
    answer
        .as_ref()?
        .get("id")?
        .as_str()
        .and_then(|s| s.parse().ok())
}

/// What went wrong with one Discord request attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscordErrorKind {
    /// A 5xx answer.
    ServerError,
    /// A 429 answer.
    RateLimited,
    /// Any other error status (not retried).
    Refused,
    /// No answer: connection refused, reset, timeout.
    Transport,
    /// Gateway discovery failed at start (the bot keeps retrying).
    GatewayUnreachable,
}

impl DiscordErrorKind {
    /// Every kind, for [`crate::metrics::Metrics::declare_platform_errors`].
    pub const ALL: [DiscordErrorKind; 5] = [
        DiscordErrorKind::ServerError,
        DiscordErrorKind::RateLimited,
        DiscordErrorKind::Refused,
        DiscordErrorKind::Transport,
        DiscordErrorKind::GatewayUnreachable,
    ];

    /// The `kind` label value of `discord_errors_total`.
    pub fn label(self) -> &'static str {
        match self {
            DiscordErrorKind::ServerError => "server_error",
            DiscordErrorKind::RateLimited => "rate_limited",
            DiscordErrorKind::Refused => "refused",
            DiscordErrorKind::Transport => "transport",
            DiscordErrorKind::GatewayUnreachable => "gateway_unreachable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_mentions_allows_nothing() {
        let value = serde_json::to_value(no_mentions()).unwrap();
        assert_eq!(value["parse"], serde_json::json!([]));
        assert_eq!(value["users"], serde_json::json!([]));
        assert_eq!(value["roles"], serde_json::json!([]));
        assert_eq!(value["replied_user"], serde_json::json!(false));
    }

    #[test]
    fn policy_is_forced_on_message_bodies() {
        let http = Arc::new(
            serenity::http::HttpBuilder::new("token")
                .default_allowed_mentions(no_mentions())
                .build(),
        );
        let rest = Rest::new(http);
        let mut body = serde_json::json!({"content": "@everyone", "allowed_mentions": {"parse": ["everyone"]}});
        rest.enforce_no_mentions(&mut body, Body::Message);
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
        let mut callback = serde_json::json!({"type": 4, "data": {"content": "@here"}});
        rest.enforce_no_mentions(&mut callback, Body::Callback);
        assert_eq!(
            callback["data"]["allowed_mentions"]["parse"],
            serde_json::json!([])
        );
    }
}
