//! A circuit breaker: after a run of failures the server is taken out of service, so that
//! answers fail at once with the apology instead of each waiting for a timeout; the health
//! check puts it back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Consecutive failures that open the circuit.
pub(crate) const FAILURES_TO_OPEN: usize = 3;

#[derive(Debug, Default)]
pub(crate) struct Breaker {
    failures: AtomicUsize,
    open: AtomicBool,
}

impl Breaker {
    /// A breaker that starts open: the server has not answered its health check yet.
    pub(crate) fn opened() -> Self {
        let breaker = Self::default();
        breaker.open.store(true, Ordering::SeqCst);
        breaker
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// A request the server answered; the run of failures ends.
    pub(crate) fn record_success(&self) {
        self.failures.store(0, Ordering::SeqCst);
    }

    /// A request the server failed; returns `true` when this failure opened the circuit.
    pub(crate) fn record_failure(&self) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        failures >= FAILURES_TO_OPEN && !self.open.swap(true, Ordering::SeqCst)
    }

    /// The health check passed: back in service with a clean record. Returns `true` when
    /// the circuit was open.
    pub(crate) fn close(&self) -> bool {
        self.failures.store(0, Ordering::SeqCst);
        self.open.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_opens_it_and_only_the_health_check_closes_it() {
        let breaker = Breaker::default();
        assert!(!breaker.is_open());
        assert!(!breaker.record_failure());
        assert!(!breaker.record_failure());
        breaker.record_success();
        assert!(!breaker.record_failure() && !breaker.record_failure());
        assert!(
            breaker.record_failure(),
            "the third failure in a row opens it"
        );
        assert!(breaker.is_open());
        assert!(!breaker.record_failure(), "opened once");
        breaker.record_success();
        assert!(breaker.is_open());
        assert!(breaker.close());
        assert!(!breaker.is_open() && !breaker.close());
        assert!(Breaker::opened().is_open());
    }
}
