//! Rate limits and admission.
//!
//! - Keyed GCRA limiters (governor): one per user (burst, then `user_per_minute`) and one per
//!   channel. A refused question costs the other limiter nothing: the user limiter is asked
//!   first and the channel limiter only when the user was allowed.
//! - A refused key gets at most one notice per window: the first refusal says when to try
//!   again; later refusals before that moment are silent.
//! - Staff (moderators, admins) skip both limiters when `exempt_staff` is set.
//! - Global admission ([`Limits::admit`]): at most `max_queue` generations queued or running,
//!   and at most [`queue_token_bound`] tokens among them (each generation's prompt plus its
//!   reply room, the key/value cache it can grow to); more are refused at once ([`Busy`])
//!   instead of queueing without bound (text-generation-inference's "overloaded").
//! - Limiter state is pruned every [`PRUNE_EVERY_CHECKS`] checks and on [`Limits::prune`].

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::inbound::Role;
use crate::backend::ModelSummary;
use crate::config::LimitSettings;
use crate::metrics::{Refusal, METRICS};

/// Limiter state is pruned after this many checks (besides explicit [`Limits::prune`]).
pub const PRUNE_EVERY_CHECKS: u64 = 4096;

/// Key/value cache the default token bound allows for all queued and running generations
/// together, when the backend says how much a token takes (512 MiB).
pub const DEFAULT_QUEUE_KV_BYTES: usize = 512 << 20;

type KeyedLimiter<C> =
    RateLimiter<String, DefaultKeyedStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Which limit refused a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The asker's own limit (burst, then per minute).
    User,
    /// The channel's limit, shared by everyone asking there.
    Channel,
}

/// The verdict on one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The question may go on.
    Allowed,
    /// A rate limit refused it.
    Limited {
        /// The limit that refused it.
        scope: LimitScope,
        /// How long until this key may ask again.
        retry_after: Duration,
        /// Whether to tell them: true for the first refusal of the window only.
        notify: bool,
    },
}

/// The generation queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the generation queue is full")]
pub struct Busy;

/// What the asker looks like to the limiter.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The asker's user key.
    pub user_id: &'a str,
    /// The channel asked in; `None` (a DM or the terminal) has no channel limit.
    pub channel_id: Option<&'a str>,
    /// Who is asking; staff skip the limits when `exempt_staff` is on.
    pub role: Role,
}

/// Per-user and per-channel limiters, notice bookkeeping and the admission semaphore.
pub struct Limits<C: Clock + Clone = DefaultClock> {
    clock: C,
    exempt_staff: bool,
    per_user: KeyedLimiter<C>,
    per_channel: KeyedLimiter<C>,
    /// Refused key ("user:ID" / "channel:ID") -> end of the window in which it was told.
    notified_until: DashMap<String, C::Instant>,
    admission: Arc<Semaphore>,
    max_queue: usize,
    /// Tokens (prompt plus reply room) of the admitted generations, out of `max_tokens`.
    tokens: Arc<Semaphore>,
    max_tokens: usize,
    checks: AtomicU64,
}

/// Who a claim on the generation queue is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A customer's question (or a moderator's draft): may use the whole queue.
    Customer,
    /// A moderator job (a summary's chunks): admitted only while a quarter of the queue's
    /// places and of its tokens (at least one place, at least one context) stays free for
    /// customers afterwards.
    Background,
}

/// What one admission asks of the generation queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Generations (queue places), at least one.
    pub places: usize,
    /// Their tokens together: each generation's prompt plus its reply room
    /// ([`generation_tokens`]).
    pub tokens: usize,
    /// Which share of the queue it may use.
    pub priority: Priority,
}

impl Claim {
    /// One customer generation of `tokens` tokens.
    pub fn customer(tokens: usize) -> Self {
        Self {
            places: 1,
            tokens,
            priority: Priority::Customer,
        }
    }
}

/// Places and tokens held in the generation queue; dropping it gives them back.
#[derive(Debug)]
pub struct Admission {
    _places: OwnedSemaphorePermit,
    _tokens: OwnedSemaphorePermit,
}

/// The tokens one generation can hold in the queue: its prompt plus the reply room, never
/// more than the model's context.
pub fn generation_tokens(prompt_tokens: usize, max_new_tokens: usize, context: usize) -> usize {
    prompt_tokens.saturating_add(max_new_tokens).min(context)
}

/// The queue's token bound: `max_queue_tokens` when set; else, when the backend says how many
/// bytes of key/value cache a token holds, as many tokens as [`DEFAULT_QUEUE_KV_BYTES`]
/// holds; else (a server, whose memory is its own) `max_queue` full contexts, so places
/// alone bound it. Always at least one full context (a single longest prompt must be
/// admissible) and at most `max_queue` full contexts (more could never be used).
pub fn queue_token_bound(settings: &LimitSettings, model: &ModelSummary) -> usize {
    let context = model.context_length.max(1);
    let all_places = settings.max_queue.max(1).saturating_mul(context);
    let chosen = match (settings.max_queue_tokens, model.kv_bytes_per_token) {
        (Some(tokens), _) => tokens,
        (None, Some(bytes)) => DEFAULT_QUEUE_KV_BYTES / bytes.max(1),
        (None, None) => all_places,
    };
    chosen.clamp(context, all_places.max(context))
}

impl Limits<DefaultClock> {
    /// Limits on the real clock, the queue's token bound chosen for `model`
    /// ([`queue_token_bound`]).
    pub fn new(settings: &LimitSettings, model: &ModelSummary) -> Self {
        Self::with_clock(settings, model, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limits<C> {
    /// Limits on the given clock (governor's `FakeRelativeClock` in tests). Zero burst or
    /// rate settings are treated as 1.
    pub fn with_clock(settings: &LimitSettings, model: &ModelSummary, clock: C) -> Self {
        let user_quota = quota(settings.user_burst, settings.user_per_minute);
        let channel_quota = quota(settings.channel_burst, settings.channel_per_minute);
        let max_tokens = queue_token_bound(settings, model);
        if settings
            .max_queue_tokens
            .is_some_and(|tokens| tokens < max_tokens)
        {
            tracing::warn!(
                configured = settings.max_queue_tokens,
                used = max_tokens,
                "SHOPKEEP_MAX_QUEUE_TOKENS is below the model's context; raised to one context"
            );
        }
        tracing::debug!(
            places = settings.max_queue.max(1),
            tokens = max_tokens,
            "generation queue bound"
        );
        Self {
            tokens: Arc::new(Semaphore::new(max_tokens)),
            max_tokens,
            per_user: RateLimiter::dashmap_with_clock(user_quota, clock.clone()),
            per_channel: RateLimiter::dashmap_with_clock(channel_quota, clock.clone()),
            clock,
            exempt_staff: settings.exempt_staff,
            notified_until: DashMap::new(),
            admission: Arc::new(Semaphore::new(settings.max_queue.max(1))),
            max_queue: settings.max_queue.max(1),
            checks: AtomicU64::new(0),
        }
    }

    /// Checks (and, when allowed, spends) the asker's user and channel allowance.
    pub fn check(&self, asker: Asker<'_>) -> Verdict {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY_CHECKS
            == PRUNE_EVERY_CHECKS - 1
        {
            self.prune();
        }
        if self.exempt_staff && asker.role >= Role::Moderator {
            return Verdict::Allowed;
        }
        if let Err(refusal) = self.per_user.check_key(&asker.user_id.to_string()) {
            return self.limited(LimitScope::User, asker.user_id, refusal);
        }
        if let Some(channel) = asker.channel_id {
            if let Err(refusal) = self.per_channel.check_key(&channel.to_string()) {
                return self.limited(LimitScope::Channel, channel, refusal);
            }
        }
        Verdict::Allowed
    }

    fn limited(
        &self,
        scope: LimitScope,
        key: &str,
        refusal: governor::NotUntil<C::Instant>,
    ) -> Verdict {
        let now = self.clock.now();
        let retry_at = refusal.earliest_possible();
        let notice_key = match scope {
            LimitScope::User => format!("user:{key}"),
            LimitScope::Channel => format!("channel:{key}"),
        };
        let mut notify = false;
        self.notified_until
            .entry(notice_key)
            .and_modify(|until| {
                if now >= *until {
                    *until = retry_at;
                    notify = true;
                }
            })
            .or_insert_with(|| {
                notify = true;
                retry_at
            });
        Verdict::Limited {
            scope,
            retry_after: refusal.wait_time_from(now),
            notify,
        }
    }

    /// The one admission to the generation queue: takes `claim`'s places and tokens together,
    /// or neither. A customer claim takes what is free; a background claim only what leaves
    /// the customers' reserve free ([`Priority::Background`]). A claim larger than its class
    /// may ever hold is cut to that (so it is admitted only while nothing else holds those
    /// places or tokens). Hold the
    /// [`Admission`] until the generations end. A refusal is counted
    /// (`shopkeep_refusals_total{reason="busy"}`) and logged with what was short.
    pub fn admit(&self, claim: Claim) -> Result<Admission, Busy> {
        let (places, tokens, reserved_places, reserved_tokens) = match claim.priority {
            Priority::Customer => (
                claim.places.clamp(1, self.max_queue),
                claim.tokens.clamp(1, self.max_tokens),
                0,
                0,
            ),
            Priority::Background => (
                claim.places.clamp(1, self.background_places()),
                claim.tokens.clamp(1, self.background_tokens()),
                self.max_queue - self.background_places(),
                self.max_tokens - self.background_tokens(),
            ),
        };
        let free_places = self.admission.available_permits();
        let free_tokens = self.tokens.available_permits();
        let taken = (free_places >= places + reserved_places
            && free_tokens >= tokens + reserved_tokens)
            .then(|| {
                let places = self
                    .admission
                    .clone()
                    .try_acquire_many_owned(u32::try_from(places).ok()?)
                    .ok()?;
                let tokens = self
                    .tokens
                    .clone()
                    .try_acquire_many_owned(u32::try_from(tokens).ok()?)
                    .ok()?;
                Some(Admission {
                    _places: places,
                    _tokens: tokens,
                })
            })
            .flatten();
        taken.ok_or_else(|| {
            METRICS.refusal(Refusal::Busy);
            tracing::info!(
                priority = ?claim.priority,
                places,
                tokens,
                queued = self.admitted(),
                queued_tokens = self.admitted_tokens(),
                max_queue = self.max_queue,
                max_tokens = self.max_tokens,
                "refused: the generation queue is full"
            );
            Busy
        })
    }

    /// Places a moderator job may take at once ([`Priority::Background`]): the queue
    /// less the quarter kept free for customers (at least one place each).
    pub fn background_places(&self) -> usize {
        (self.max_queue - self.max_queue.div_ceil(4)).max(1)
    }

    /// Tokens a moderator job may take at once: the token bound less the quarter kept free
    /// for customers (at least one token).
    pub fn background_tokens(&self) -> usize {
        (self.max_tokens - self.max_tokens.div_ceil(4)).max(1)
    }

    /// Generations admitted and not yet finished.
    pub fn admitted(&self) -> usize {
        self.max_queue - self.admission.available_permits()
    }

    /// Tokens of the generations admitted and not yet finished.
    pub fn admitted_tokens(&self) -> usize {
        self.max_tokens - self.tokens.available_permits()
    }

    /// The queue's token bound ([`queue_token_bound`]).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Forgets limiter state that no longer limits anyone (and the notice marks whose
    /// window has passed), and returns the memory.
    pub fn prune(&self) {
        self.per_user.retain_recent();
        self.per_user.shrink_to_fit();
        self.per_channel.retain_recent();
        self.per_channel.shrink_to_fit();
        let now = self.clock.now();
        self.notified_until.retain(|_, until| *until > now);
        self.notified_until.shrink_to_fit();
    }

    /// Keys held (users, channels, notice marks), for tests and metrics.
    pub fn tracked_keys(&self) -> usize {
        self.per_user.len() + self.per_channel.len() + self.notified_until.len()
    }
}

/// `burst` at once, then `per_minute` spread evenly over a minute.
fn quota(burst: u32, per_minute: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

/// The notice for a limited asker: short, and says when to try again (whole seconds,
/// rounded up).
pub fn limited_notice(scope: LimitScope, retry_after: Duration) -> String {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    match scope {
        LimitScope::User => {
            format!("You're sending questions quickly — please try again in {seconds} s.")
        }
        LimitScope::Channel => {
            format!("This channel is getting a lot of questions — please try again in {seconds} s.")
        }
    }
}

/// The notice when the generation queue is full.
pub const BUSY_NOTICE: &str =
    "I'm answering a lot of questions right now — please try again in a minute.";

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn settings() -> LimitSettings {
        LimitSettings {
            user_burst: 3,
            user_per_minute: 6, // one every 10 s
            channel_burst: 5,
            channel_per_minute: 60,
            max_queue: 2,
            max_queue_tokens: None,
            exempt_staff: true,
            max_question_chars: 2000,
        }
    }

    /// A model with a 1,000-token context whose tokens take 1 KiB of cache each.
    fn model() -> ModelSummary {
        ModelSummary {
            name: "test".into(),
            prompt_format: crate::backend::PromptFormat::Chatml,
            context_length: 1000,
            kv_bytes_per_token: Some(1024),
        }
    }

    fn limits() -> (Limits<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (
            Limits::with_clock(&settings(), &model(), clock.clone()),
            clock,
        )
    }

    fn background(places: usize, tokens: usize) -> Claim {
        Claim {
            places,
            tokens,
            priority: Priority::Background,
        }
    }

    fn customer<'a>(user: &'a str, channel: &'a str) -> Asker<'a> {
        Asker {
            user_id: user,
            channel_id: Some(channel),
            role: Role::Customer,
        }
    }

    fn allowed(limits: &Limits<FakeRelativeClock>, asker: Asker<'_>) -> bool {
        limits.check(asker) == Verdict::Allowed
    }

    #[test]
    fn burst_then_refused() {
        let (limits, _) = limits();
        for _ in 0..3 {
            assert!(allowed(&limits, customer("alice", "c1")));
        }
        match limits.check(customer("alice", "c1")) {
            Verdict::Limited {
                scope: LimitScope::User,
                retry_after,
                notify: true,
            } => assert_eq!(retry_after, Duration::from_secs(10)),
            other => panic!("expected a user limit with a notice, got {other:?}"),
        }
    }

    #[test]
    fn refill_at_the_configured_rate() {
        let (limits, clock) = limits();
        for _ in 0..3 {
            assert!(allowed(&limits, customer("alice", "c1")));
        }
        assert!(!allowed(&limits, customer("alice", "c1")));
        clock.advance(Duration::from_secs(9));
        assert!(
            !allowed(&limits, customer("alice", "c1")),
            "not refilled yet"
        );
        clock.advance(Duration::from_secs(1));
        assert!(
            allowed(&limits, customer("alice", "c1")),
            "one refilled after 10 s"
        );
        assert!(!allowed(&limits, customer("alice", "c1")), "only one");
        clock.advance(Duration::from_secs(30));
        for _ in 0..3 {
            assert!(allowed(&limits, customer("alice", "c1")), "burst refilled");
        }
        assert!(!allowed(&limits, customer("alice", "c1")));
    }

    #[test]
    fn users_are_limited_independently() {
        let (limits, _) = limits();
        for _ in 0..3 {
            assert!(allowed(&limits, customer("alice", "c1")));
        }
        assert!(
            !allowed(&limits, customer("alice", "c2")),
            "per user, whatever the channel"
        );
        assert!(allowed(&limits, customer("bob", "c2")));
    }

    #[test]
    fn a_limited_user_does_not_spend_the_channel_allowance() {
        let (limits, _) = limits();
        for _ in 0..20 {
            limits.check(customer("alice", "c1"));
        }
        // Alice got 3 of the channel's 5; two more users can still ask there.
        assert!(allowed(&limits, customer("bob", "c1")));
        assert!(allowed(&limits, customer("carol", "c1")));
        assert!(matches!(
            limits.check(customer("dave", "c1")),
            Verdict::Limited {
                scope: LimitScope::Channel,
                notify: true,
                ..
            }
        ));
        assert!(
            allowed(&limits, customer("dave", "c2")),
            "other channels are not affected"
        );
    }

    #[test]
    fn one_notice_per_window() {
        let (limits, clock) = limits();
        let mut notices = 0;
        // 15 questions in 2 s: 3 answered, 1 notice, the rest silent.
        for _ in 0..15 {
            if let Verdict::Limited { notify: true, .. } = limits.check(customer("alice", "c1")) {
                notices += 1;
            }
            clock.advance(Duration::from_millis(133));
        }
        assert_eq!(notices, 1);
        // After the window, a refusal is announced again (once).
        clock.advance(Duration::from_secs(10));
        assert!(allowed(&limits, customer("alice", "c1")));
        let verdicts: Vec<_> = (0..3)
            .map(|_| limits.check(customer("alice", "c1")))
            .collect();
        let notified = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Limited { notify: true, .. }))
            .count();
        assert_eq!(notified, 1, "{verdicts:?}");
    }

    #[test]
    fn staff_are_exempt_only_when_configured() {
        let (limits, _) = limits();
        let moderator = Asker {
            role: Role::Moderator,
            ..customer("mod", "c9")
        };
        for _ in 0..20 {
            assert!(allowed(&limits, moderator));
        }
        let strict = Limits::with_clock(
            &LimitSettings {
                exempt_staff: false,
                ..settings()
            },
            &model(),
            FakeRelativeClock::default(),
        );
        let admin = Asker {
            role: Role::Admin,
            ..moderator
        };
        let answered = (0..20).filter(|_| allowed(&strict, admin)).count();
        assert_eq!(answered, 3);
    }

    #[test]
    fn moderator_jobs_take_their_places_and_leave_room_for_customers() {
        let settings = LimitSettings {
            max_queue: 8,
            ..settings()
        };
        let limits = Limits::with_clock(&settings, &model(), FakeRelativeClock::default());
        assert_eq!(limits.background_places(), 6);
        let summary = limits
            .admit(background(6, 60))
            .expect("6 places and 2 spare");
        assert_eq!(limits.admitted(), 6);
        assert!(
            limits.admit(background(1, 10)).is_err(),
            "the last two places are for customers"
        );
        let customers: Vec<_> = (0..2)
            .map(|_| limits.admit(Claim::customer(10)).unwrap())
            .collect();
        assert!(limits.admit(Claim::customer(10)).is_err());
        drop(summary);
        drop(customers);
        assert_eq!((limits.admitted(), limits.admitted_tokens()), (0, 0));
        let all = limits
            .admit(background(100, 10))
            .expect("clamped to the background places");
        assert_eq!(limits.admitted(), 6);
        drop(all);
    }

    #[test]
    fn admission_is_bounded_and_released_with_the_permit() {
        let (limits, _) = limits();
        let first = limits.admit(Claim::customer(10)).unwrap();
        let _second = limits.admit(Claim::customer(10)).unwrap();
        assert_eq!(limits.admit(Claim::customer(10)).unwrap_err(), Busy);
        assert_eq!(limits.admitted(), 2);
        drop(first);
        assert!(limits.admit(Claim::customer(10)).is_ok());
    }

    #[test]
    fn the_queue_counts_tokens_so_near_context_prompts_cannot_fill_it() {
        // 16 places; a 2,000-token context whose tokens take 45 KiB each (SmolLM2-135M):
        // 16 full contexts would be 1.4 GiB of cache, the bound keeps it to 512 MiB.
        let settings = LimitSettings {
            max_queue: 16,
            ..settings()
        };
        let model = ModelSummary {
            context_length: 2000,
            kv_bytes_per_token: Some(45 * 1024),
            ..model()
        };
        let limits = Limits::with_clock(&settings, &model, FakeRelativeClock::default());
        assert_eq!(limits.max_tokens(), DEFAULT_QUEUE_KV_BYTES / (45 * 1024));
        let near_context = generation_tokens(1900, 200, 2000);
        assert_eq!(near_context, 2000);
        let held: Vec<_> = (0..16)
            .map_while(|_| limits.admit(Claim::customer(near_context)).ok())
            .collect();
        assert_eq!(held.len(), limits.max_tokens() / 2000);
        assert!(
            held.len() < 16,
            "{} near-context prompts admitted",
            held.len()
        );
        assert!(limits.admitted_tokens() * 45 * 1024 <= DEFAULT_QUEUE_KV_BYTES);
        // Short questions still fit in what is left, up to the places.
        let short: Vec<_> = (0..16)
            .map_while(|_| limits.admit(Claim::customer(100)).ok())
            .collect();
        assert_eq!(held.len() + short.len(), 16);
        drop(held);
        assert_eq!(limits.admitted(), short.len());
    }

    #[test]
    fn the_token_bound_is_configurable_and_holds_one_context_at_least() {
        let with = |max_queue_tokens, kv_bytes_per_token| {
            let settings = LimitSettings {
                max_queue: 4,
                max_queue_tokens,
                ..settings()
            };
            let model = ModelSummary {
                kv_bytes_per_token,
                ..model()
            };
            queue_token_bound(&settings, &model)
        };
        assert_eq!(with(Some(2500), Some(1024)), 2500, "configured");
        assert_eq!(with(Some(10), None), 1000, "at least one context");
        assert_eq!(
            with(Some(1_000_000), None),
            4000,
            "at most every place full"
        );
        assert_eq!(with(None, None), 4000, "a server: places alone bound it");
        assert_eq!(with(None, Some(512 << 10)), 1024, "512 MiB of cache");
        let limits = Limits::with_clock(
            &LimitSettings {
                max_queue_tokens: Some(10),
                ..settings()
            },
            &model(),
            FakeRelativeClock::default(),
        );
        let longest = limits
            .admit(Claim::customer(5000))
            .expect("cut to the bound");
        assert_eq!(limits.admitted_tokens(), 1000);
        assert!(limits.admit(Claim::customer(1)).is_err());
        drop(longest);
    }

    #[test]
    fn a_background_job_leaves_a_quarter_of_the_tokens_to_customers() {
        let settings = LimitSettings {
            max_queue: 16,
            max_queue_tokens: Some(4000),
            ..settings()
        };
        let limits = Limits::with_clock(&settings, &model(), FakeRelativeClock::default());
        assert_eq!(limits.background_tokens(), 3000);
        let customer = limits.admit(Claim::customer(1000)).unwrap();
        assert!(
            limits.admit(background(2, 2001)).is_err(),
            "it would eat into the customers' thousand"
        );
        let summary = limits.admit(background(2, 2000)).unwrap();
        assert!(limits.admit(Claim::customer(1000)).is_ok());
        drop((customer, summary));
    }

    #[test]
    fn prune_forgets_state_that_no_longer_limits() {
        let (limits, clock) = limits();
        for i in 0..100 {
            limits.check(customer(&format!("user{i}"), "c1"));
        }
        for _ in 0..5 {
            limits.check(customer("alice", "c2"));
        }
        assert!(limits.tracked_keys() >= 100);
        clock.advance(Duration::from_secs(5));
        limits.prune();
        assert!(limits.tracked_keys() >= 100, "still limiting: kept");
        clock.advance(Duration::from_secs(120));
        limits.prune();
        assert_eq!(limits.tracked_keys(), 0);
        // Pruned users start fresh.
        for _ in 0..3 {
            assert!(allowed(&limits, customer("alice", "c2")));
        }
    }

    #[test]
    fn notices_say_when_to_try_again() {
        assert_eq!(
            limited_notice(LimitScope::User, Duration::from_millis(11_200)),
            "You're sending questions quickly — please try again in 12 s."
        );
        assert!(limited_notice(LimitScope::Channel, Duration::ZERO).contains("in 1 s"));
    }
}
