//! Discord's rate limits, kept by the bot itself, the same way in production and in the
//! tests (serenity's own limiter is off in both, so the tested path is the one that runs).
//!
//! Each route and major parameter (a channel, a guild, a webhook; serenity's
//! [`RatelimitingBucket`]) is a bucket. After every answer the bucket takes Discord's
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset-After`; a request to a bucket with
//! nothing remaining waits for its reset first. A 429 marked global (`"global": true` or
//! `X-RateLimit-Global`) holds every request for its `retry_after`; other 429s are retried
//! by [`super::rest`] after their `retry_after`, and they refresh the bucket too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serenity::http::RatelimitingBucket;
use tokio::time::Instant;

/// Longest wait honoured from a header (a wrong header must not stall the bot).
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u64,
    reset_at: Instant,
}

/// The rate-limit state of every bucket; share one per bot.
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<RatelimitingBucket, Bucket>>,
    /// One request at a time per bucket, so each learns the limits the last one was told.
    turns: Mutex<HashMap<RatelimitingBucket, Arc<tokio::sync::Mutex<()>>>>,
    global_until: Mutex<Option<Instant>>,
}

/// A request's turn in its bucket: held from [`RateLimits::acquire`] until its answer's
/// headers are taken ([`RateLimits::update`]).
pub type BucketTurn = tokio::sync::OwnedMutexGuard<()>;

impl RateLimits {
    /// How long a request to `bucket` must wait now (zero: go).
    pub fn wait_for(&self, bucket: RatelimitingBucket) -> Duration {
        let now = Instant::now();
        let global = self
            .global_until
            .lock()
            .ok()
            .and_then(|until| *until)
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        let route = self
            .buckets
            .lock()
            .ok()
            .and_then(|buckets| buckets.get(&bucket).copied())
            .filter(|b| b.remaining == 0)
            .map_or(Duration::ZERO, |b| {
                b.reset_at.saturating_duration_since(now)
            });
        global.max(route)
    }

    /// Waits for the bucket's turn and until a request to it may go, and counts it against
    /// the bucket. Hold the returned turn until the answer's headers are taken.
    pub async fn acquire(&self, bucket: RatelimitingBucket) -> BucketTurn {
        let turn = self
            .turns
            .lock()
            .map(|mut turns| Arc::clone(turns.entry(bucket).or_default()))
            .unwrap_or_default();
        let turn = turn.lock_owned().await;
        loop {
            let wait = self.wait_for(bucket);
            if wait.is_zero() {
                break;
            }
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "waiting for a Discord rate limit"
            );
            tokio::time::sleep(wait).await;
        }
        if let Ok(mut buckets) = self.buckets.lock() {
            if let Some(b) = buckets.get_mut(&bucket) {
                b.remaining = b.remaining.saturating_sub(1);
            }
        }
        turn
    }

    /// Takes the rate-limit headers of an answer to a `bucket` request; `global_retry`
    /// is a 429's `retry_after` when the limit hit was the global one.
    pub fn update(
        &self,
        bucket: RatelimitingBucket,
        headers: &HeaderMap,
        global_retry: Option<Duration>,
    ) {
        let now = Instant::now();
        if let Some(wait) = global_retry {
            if let Ok(mut until) = self.global_until.lock() {
                *until = Some(now + wait.min(MAX_WAIT));
            }
        }
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let (Some(remaining), Some(reset_after)) = (
            number("x-ratelimit-remaining"),
            number("x-ratelimit-reset-after"),
        ) else {
            return;
        };
        let reset_after = Duration::from_secs_f64(reset_after).min(MAX_WAIT);
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.insert(
                bucket,
                Bucket {
                    remaining: remaining as u64,
                    reset_at: now + reset_after,
                },
            );
        }
    }

    /// Whether the headers of a 429 say the global limit was hit.
    pub fn is_global(headers: &HeaderMap) -> bool {
        headers
            .get("x-ratelimit-global")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::http::Route;
    use serenity::model::id::ChannelId;

    fn bucket(channel: u64) -> RatelimitingBucket {
        Route::ChannelMessages {
            channel_id: ChannelId::new(channel),
        }
        .ratelimiting_bucket()
    }

    fn headers(remaining: &str, reset_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", remaining.parse().unwrap());
        headers.insert("x-ratelimit-reset-after", reset_after.parse().unwrap());
        headers
    }

    #[tokio::test]
    async fn an_exhausted_bucket_waits_for_its_reset_and_others_do_not() {
        let limits = RateLimits::default();
        limits.update(bucket(1), &headers("0", "0.3"), None);
        assert!(limits.wait_for(bucket(1)) > Duration::from_millis(200));
        assert_eq!(limits.wait_for(bucket(2)), Duration::ZERO);
        let started = Instant::now();
        drop(limits.acquire(bucket(1)).await);
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(limits.wait_for(bucket(1)), Duration::ZERO);
    }

    #[tokio::test]
    async fn remaining_requests_are_counted_down() {
        let limits = RateLimits::default();
        limits.update(bucket(1), &headers("1", "5"), None);
        assert_eq!(limits.wait_for(bucket(1)), Duration::ZERO);
        drop(limits.acquire(bucket(1)).await);
        assert!(limits.wait_for(bucket(1)) > Duration::from_secs(4));
    }

    #[test]
    fn a_global_limit_holds_every_bucket() {
        let limits = RateLimits::default();
        limits.update(bucket(1), &HeaderMap::new(), Some(Duration::from_secs(3)));
        assert!(limits.wait_for(bucket(2)) > Duration::from_secs(2));
        let mut global = HeaderMap::new();
        global.insert("x-ratelimit-global", "true".parse().unwrap());
        assert!(RateLimits::is_global(&global));
    }
}
