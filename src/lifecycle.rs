//! Work in flight and graceful shutdown, shared by the Discord adapter and the terminal chat.
//!
//! Every answer being written runs as in-flight work in an [`InFlight`]. When shutdown
//! begins ([`InFlight::shut_down`]), new work is refused, the work already running gets a
//! grace period to finish, then it is told to cancel (its [`InFlight::cancellation`] turns
//! true) and given [`CANCEL_WAIT`] to wrap up, and whatever still runs after that is aborted.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long cancelled work may take to wrap up (post what it has, marked as interrupted)
/// before it is aborted.
pub const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// The set of tasks a shutdown waits for, and the switches that end them.
pub struct InFlight {
    accepting: AtomicBool,
    tasks: Mutex<JoinSet<()>>,
    cancel: watch::Sender<bool>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new()
    }
}

impl InFlight {
    /// An empty set that accepts work.
    pub fn new() -> Self {
        Self {
            accepting: AtomicBool::new(true),
            tasks: Mutex::new(JoinSet::new()),
            cancel: watch::Sender::new(false),
        }
    }

    /// Runs `work` on the current Tokio runtime as in-flight work that shutdown waits for.
    /// Returns false, and drops `work` unstarted, once shutdown has begun.
    pub fn spawn<F>(&self, work: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(mut tasks) = self.tasks.lock() else {
            return false;
        };
        if !self.accepting.load(Ordering::SeqCst) {
            return false;
        }
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(work);
        true
    }

    /// Whether new work is still taken (shutdown has not begun).
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Turns true when in-flight work must stop: the grace period is over.
    pub fn cancellation(&self) -> watch::Receiver<bool> {
        self.cancel.subscribe()
    }

    /// Whether in-flight work has been told to stop.
    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Stops taking work, waits up to `grace` for the work in flight, then cancels it,
    /// waits up to [`CANCEL_WAIT`] more, and aborts what is left. Returns when no task runs.
    pub async fn shut_down(&self, grace: Duration) {
        self.accepting.store(false, Ordering::SeqCst);
        let mut tasks = match self.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => JoinSet::new(),
        };
        if tokio::time::timeout(grace, drain(&mut tasks)).await.is_ok() {
            return;
        }
        tracing::warn!(
            in_flight = tasks.len(),
            "grace period over: cancelling in-flight work"
        );
        self.cancel.send_replace(true);
        if tokio::time::timeout(CANCEL_WAIT, drain(&mut tasks))
            .await
            .is_err()
        {
            tasks.abort_all();
            drain(&mut tasks).await;
        }
    }
}

/// Runs `work` as a task of its own and reports whether it panicked: `Err` carries the
/// panic's message. Dropping the returned future (a shutdown abort) aborts `work` too. The
/// callers log the panic and tell the person asking that something went wrong, so a bug
/// never ends in silence.
pub async fn catch_panic<F>(work: F) -> Result<(), String>
where
    F: Future<Output = ()> + Send + 'static,
{
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(tokio::spawn(work));
    match (&mut task.0).await {
        Ok(()) => Ok(()),
        Err(error) if error.is_panic() => {
            let payload = error.into_panic();
            Err(payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string()))
        }
        Err(_) => Ok(()),
    }
}

async fn drain(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// The exit status when a second SIGTERM or SIGINT cuts the graceful shutdown short.
pub const FORCED_EXIT_STATUS: i32 = 130;

/// SIGTERM and SIGINT as one stream (Ctrl-C where Unix signals do not exist). Registered
/// once, so no signal between two waits is lost.
struct TerminationSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl TerminationSignals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => None,
            };
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some((term, int)) = &mut self.streams {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Resolves at the next SIGTERM or SIGINT (Ctrl-C where Unix signals do not exist).
/// From the first call on, those signals no longer end the process by themselves.
pub async fn termination_signal() {
    TerminationSignals::new().next().await;
}

/// A switch that turns true at the first SIGTERM or SIGINT from now on (and stays true).
/// A second one ends the process at once with [`FORCED_EXIT_STATUS`], whatever is still
/// running: the way out of a shutdown that hangs. Must be called within a Tokio runtime.
pub fn stop_on_termination() -> watch::Receiver<bool> {
    let (stop_tx, stop) = watch::channel(false);
    let mut signals = TerminationSignals::new();
    tokio::spawn(async move {
        signals.next().await;
        stop_tx.send_replace(true);
        signals.next().await;
        tracing::warn!("a second termination signal: exiting now, without waiting");
        std::process::exit(FORCED_EXIT_STATUS);
    });
    stop
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[tokio::test]
    async fn shutdown_waits_for_work_that_ends_within_the_grace_period() {
        let in_flight = InFlight::new();
        let finished = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&finished);
        assert!(in_flight.spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.store(true, Ordering::SeqCst);
        }));
        in_flight.shut_down(Duration::from_secs(10)).await;
        assert!(finished.load(Ordering::SeqCst));
        assert!(!in_flight.is_cancelled());
    }

    #[tokio::test]
    async fn work_past_the_grace_period_is_cancelled_and_then_aborted() {
        let in_flight = InFlight::new();
        let saw_cancel = Arc::new(AtomicUsize::new(0));
        // One task honours the cancellation; the other ignores it and is aborted.
        let seen = Arc::clone(&saw_cancel);
        let mut cancel = in_flight.cancellation();
        assert!(in_flight.spawn(async move {
            let _ = cancel.wait_for(|c| *c).await;
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(in_flight.spawn(std::future::pending()));
        let grace = Duration::from_millis(200);
        let started = std::time::Instant::now();
        in_flight.shut_down(grace).await;
        assert_eq!(saw_cancel.load(Ordering::SeqCst), 1);
        assert!(in_flight.is_cancelled());
        assert!(started.elapsed() >= grace + CANCEL_WAIT);
    }

    #[tokio::test]
    async fn a_panic_is_reported_with_its_message_and_work_that_ends_is_not() {
        let outcome = catch_panic(async {
            let bytes = "1é";
            let _ = bytes.split_at(bytes.len() - 1);
        })
        .await;
        assert!(outcome.unwrap_err().contains("char boundary"));
        assert_eq!(catch_panic(async {}).await, Ok(()));
    }

    #[tokio::test]
    async fn dropping_the_wrapper_aborts_the_work() {
        let ran_to_end = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran_to_end);
        let wrapped = catch_panic(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            flag.store(true, Ordering::SeqCst);
        });
        let _ = tokio::time::timeout(Duration::from_millis(20), wrapped).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!ran_to_end.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn work_is_refused_once_shutdown_has_begun() {
        let in_flight = InFlight::new();
        assert!(in_flight.is_accepting());
        in_flight.shut_down(Duration::from_secs(1)).await;
        assert!(!in_flight.is_accepting());
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        assert!(!in_flight.spawn(async move { flag.store(true, Ordering::SeqCst) }));
        tokio::task::yield_now().await;
        assert!(!ran.load(Ordering::SeqCst));
    }
}
