//! Process metrics in the Prometheus text format, served on `GET /metrics` when
//! `SHOPKEEP_METRICS_ADDR` is set (off by default).
//!
//! Counters and histograms live in one process-wide [`METRICS`] of atomics, so recording is
//! a few relaxed atomic adds and never blocks or fails. The backend's health, queue depth
//! and batch size are read from its [`Backend::status`] at scrape time.
//!
//! Exposed series (all prefixed `shopkeep_`):
//! - `requests_total{source="message"|"command"}`: questions routed to the assistant;
//! - `answers_total`: answers whose final text was posted;
//! - `refusals_total{reason="limited"|"busy"|"too_long"|"error"}`;
//! - `backend_up` (1 while the backend can answer: a server's circuit breaker is closed),
//!   `queue_depth`, `batch_size` (gauges, from the backend; batch size for the embedded
//!   engine only);
//! - `generated_tokens_total`, `generation_seconds_total` (their ratio is the rate),
//!   `last_tokens_per_second` (decode rate of the last answer);
//! - `first_reply_seconds`, `final_reply_seconds` (histograms: from the gateway event to
//!   the first message posted, and to the final text posted);
//! - `discord_errors_total{kind=...}`: every failed Discord request attempt by kind;
//! - `discord_send_failures_total`: requests given up for good (after the retries).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::backend::{Backend, SharedBackend};

/// Why a question was not answered by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A per-user or per-channel rate limit.
    Limited,
    /// The generation queue was full.
    Busy,
    /// The question was longer than allowed.
    TooLong,
    /// The generation failed (the user got an apology).
    Error,
    /// A general model answer failed the reply check (the user got the off-topic reply).
    ReplyCheck,
}

impl Refusal {
    const ALL: [Refusal; 5] = [
        Refusal::Limited,
        Refusal::Busy,
        Refusal::TooLong,
        Refusal::Error,
        Refusal::ReplyCheck,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::Limited => "limited",
            Refusal::Busy => "busy",
            Refusal::TooLong => "too_long",
            Refusal::Error => "error",
            Refusal::ReplyCheck => "reply_check",
        }
    }
}

/// Where a question came from, for `requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A chat message (a mention, a reply, a DM, a support channel).
    Message,
    /// A slash command.
    Command,
}

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// A fixed-bucket latency histogram.
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    /// Sum of observations in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (index, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[index].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

/// Every metric the process records; see the module docs for the names.
pub struct Metrics {
    requests: [AtomicU64; 2],
    answers: AtomicU64,
    refusals: [AtomicU64; Refusal::ALL.len()],
    generated_tokens: AtomicU64,
    /// Generation time (prefill + decode) in microseconds.
    generation_us: AtomicU64,
    /// `f64` bits of the last decode rate.
    last_tokens_per_second: AtomicU64,
    /// Failed platform request attempts by kind label, in the order first declared.
    platform_errors: Mutex<Vec<(&'static str, u64)>>,
    discord_send_failures: AtomicU64,
    /// From the gateway event to the first message of the reply.
    pub first_reply: Histogram,
    /// From the gateway event to the final text of the reply.
    pub final_reply: Histogram,
}

/// The process-wide metrics.
pub static METRICS: Metrics = Metrics::new();

impl Metrics {
    const fn new() -> Self {
        Self {
            requests: [const { AtomicU64::new(0) }; 2],
            answers: AtomicU64::new(0),
            refusals: [const { AtomicU64::new(0) }; Refusal::ALL.len()],
            generated_tokens: AtomicU64::new(0),
            generation_us: AtomicU64::new(0),
            last_tokens_per_second: AtomicU64::new(0),
            platform_errors: Mutex::new(Vec::new()),
            discord_send_failures: AtomicU64::new(0),
            first_reply: Histogram::new(),
            final_reply: Histogram::new(),
        }
    }

    /// Counts a question routed to the assistant (`shopkeep_requests_total`).
    pub fn request(&self, source: Source) {
        self.requests[source as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answer whose final text was posted (`shopkeep_answers_total`).
    pub fn answer(&self) {
        self.answers.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a question the model did not answer (`shopkeep_refusals_total`).
    pub fn refusal(&self, reason: Refusal) {
        self.refusals[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One finished generation: `tokens` generated in `prefill_ms` plus the decode time
    /// implied by `tokens_per_s` (the decode rate of the tokens after the first).
    pub fn generation(&self, tokens: usize, prefill_ms: f64, tokens_per_s: f64) {
        let decode_s = if tokens_per_s > 0.0 {
            tokens.saturating_sub(1) as f64 / tokens_per_s
        } else {
            0.0
        };
        let seconds = prefill_ms / 1000.0 + decode_s;
        self.generated_tokens
            .fetch_add(tokens as u64, Ordering::Relaxed);
        if seconds.is_finite() && seconds > 0.0 {
            self.generation_us
                .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        }
        if tokens_per_s.is_finite() {
            self.last_tokens_per_second
                .store(tokens_per_s.to_bits(), Ordering::Relaxed);
        }
    }

    /// Declares the kinds of failed request the chat adapter counts (label values of
    /// `discord_errors_total`), so each shows from the first scrape, at 0.
    pub fn declare_platform_errors(&self, kinds: &[&'static str]) {
        let mut counts = self
            .platform_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for kind in kinds {
            if !counts.iter().any(|(k, _)| k == kind) {
                counts.push((kind, 0));
            }
        }
    }

    /// One failed request attempt to the chat platform, by the adapter's kind label.
    pub fn platform_error(&self, kind: &'static str) {
        let mut counts = self
            .platform_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, count)) => *count += 1,
            None => counts.push((kind, 1)),
        }
    }

    /// Counts a request given up for good after its retries
    /// (`shopkeep_discord_send_failures_total`).
    pub fn discord_send_failure(&self) {
        self.discord_send_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric; health, queue depth and batch size
    /// come from `backend` when given.
    pub fn render(&self, backend: Option<&dyn Backend>) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP shopkeep_requests_total Questions routed to the assistant.\n# TYPE shopkeep_requests_total counter"
        );
        for (source, label) in [(Source::Message, "message"), (Source::Command, "command")] {
            let _ = writeln!(
                out,
                "shopkeep_requests_total{{source=\"{label}\"}} {}",
                load(&self.requests[source as usize])
            );
        }
        counter(
            &mut out,
            "shopkeep_answers_total",
            "Answers whose final text was posted.",
            load(&self.answers),
        );
        let _ = writeln!(
            out,
            "# HELP shopkeep_refusals_total Questions not answered by the model, by reason.\n# TYPE shopkeep_refusals_total counter"
        );
        for reason in Refusal::ALL {
            let _ = writeln!(
                out,
                "shopkeep_refusals_total{{reason=\"{}\"}} {}",
                reason.label(),
                load(&self.refusals[reason as usize])
            );
        }
        if let Some(backend) = backend {
            let status = backend.status();
            gauge(
                &mut out,
                "shopkeep_backend_up",
                "1 while the model backend can answer, 0 while it is down.",
                if status.healthy { 1.0 } else { 0.0 },
            );
            gauge(
                &mut out,
                "shopkeep_queue_depth",
                "Generations queued or running.",
                status.pending as f64,
            );
            if let Some(batch_size) = status.batch_size {
                gauge(
                    &mut out,
                    "shopkeep_batch_size",
                    "Sequences in the running decode batch.",
                    batch_size as f64,
                );
            }
        }
        counter(
            &mut out,
            "shopkeep_generated_tokens_total",
            "Tokens generated.",
            load(&self.generated_tokens),
        );
        let _ = writeln!(
            out,
            "# HELP shopkeep_generation_seconds_total Time spent generating (prefill and decode).\n# TYPE shopkeep_generation_seconds_total counter\nshopkeep_generation_seconds_total {}",
            load(&self.generation_us) as f64 / 1e6
        );
        gauge(
            &mut out,
            "shopkeep_last_tokens_per_second",
            "Decode rate of the last finished generation.",
            f64::from_bits(load(&self.last_tokens_per_second)),
        );
        self.first_reply.render(
            &mut out,
            "shopkeep_first_reply_seconds",
            "From the gateway event to the first message of the reply.",
        );
        self.final_reply.render(
            &mut out,
            "shopkeep_final_reply_seconds",
            "From the gateway event to the final text of the reply.",
        );
        let _ = writeln!(
            out,
            "# HELP shopkeep_discord_errors_total Failed Discord request attempts, by kind.\n# TYPE shopkeep_discord_errors_total counter"
        );
        for (kind, count) in self
            .platform_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "shopkeep_discord_errors_total{{kind=\"{kind}\"}} {count}"
            );
        }
        counter(
            &mut out,
            "shopkeep_discord_send_failures_total",
            "Discord requests given up for good, after the retries.",
            load(&self.discord_send_failures),
        );
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// The metrics endpoint could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not serve metrics on {addr}: {source}")]
pub struct MetricsError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why it could not be bound.
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` and serves `GET /metrics` (anything else: 404) in a background task, for
/// as long as the runtime runs. Returns the bound address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    backend: Option<SharedBackend>,
) -> Result<SocketAddr, MetricsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError { addr, source })?;
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let backend = backend.clone();
            tokio::spawn(async move {
                let mut request = Vec::with_capacity(1024);
                let mut buf = [0u8; 1024];
                // Read the request head (at most 8 KiB, 5 s).
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let head = String::from_utf8_lossy(&request);
                let mut words = head.split_whitespace();
                let response = match (words.next(), words.next()) {
                    (Some("GET"), Some(path)) if path.split('?').next() == Some("/metrics") => {
                        let body = METRICS.render(backend.as_deref());
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_millis(50));
        histogram.observe(Duration::from_millis(700));
        histogram.observe(Duration::from_secs(500));
        let mut out = String::new();
        histogram.render(&mut out, "x", "test");
        assert!(out.contains("x_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"120\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
        assert!(out.contains("x_sum 500.75\n"), "{out}");
    }

    #[tokio::test]
    async fn the_endpoint_serves_metrics_and_nothing_else() {
        let addr = serve("127.0.0.1:0".parse().unwrap(), None).await.unwrap();
        METRICS.refusal(Refusal::TooLong);
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let answer = get("/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let line = answer
            .lines()
            .find(|l| l.starts_with("shopkeep_refusals_total{reason=\"too_long\"}"))
            .unwrap();
        let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value >= 1);
        assert!(get("/other").await.starts_with("HTTP/1.1 404"));
    }
}
