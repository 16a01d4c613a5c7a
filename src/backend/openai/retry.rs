//! When to retry a request the server refused, and how long to wait first.

use std::time::Duration;

/// Retries after the first attempt, at most.
pub(crate) const MAX_RETRIES: u32 = 3;
/// The first wait; each retry doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// A server's Retry-After is honoured up to this long; a longer one is cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Statuses worth retrying: rate limited, or a gateway or server that is (re)starting.
pub(crate) fn retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The wait before retry number `attempt` (0 = the first retry): the server's Retry-After
/// when it sent one (capped), else a capped exponential backoff.
pub(crate) fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(wait) => wait.min(MAX_RETRY_AFTER),
        None => FIRST_BACKOFF
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(MAX_BACKOFF),
    }
}

/// A Retry-After header in seconds (the HTTP-date form is not used by model servers and
/// is ignored).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_retry_after_wins_within_its_own() {
        let waits: Vec<u64> = (0..6)
            .map(|a| backoff(a, None).as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 4000]);
        assert_eq!(
            backoff(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(backoff(5, Some(Duration::from_secs(600))), MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(500)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn only_overload_and_gateway_statuses_are_retried() {
        for status in [429, 502, 503, 504] {
            assert!(retryable(status));
        }
        for status in [200, 400, 401, 404, 500] {
            assert!(!retryable(status));
        }
    }
}
