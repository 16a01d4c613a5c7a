//! What customers need, from the question log, feedback and tickets (the store, never
//! Discord), as typed figures: the top topics, the questions the bot could not answer
//! confidently (what the FAQ should cover next) and their topics, deflection, hand-offs
//! and ticket times, 👍/👎 feedback, refusals, and every figure per UTC day. The adapters
//! render them: `/insights` and the daily digest (Discord markdown and a PNG chart),
//! `shopkeep insights` (text, JSON, CSV, an HTML report).
//!
//! docs/moderators.md defines each figure for people; the doc comments below are the
//! contract.

mod window;

use std::collections::HashMap;

use serde::Serialize;

use crate::store::{
    CastVote, FeedbackTally, QuestionOutcome, QuestionRecord, Store, StoreError, TicketTimes,
    UnixMillis, Vote,
};
pub use window::{date, start_of_day, Window, DAY_MS};

/// An answered question routed with a confidence below this counts as "not confident":
/// just above the bar for a grounded answer (`routing.grounded_confidence`, 0.33 by
/// default), so only borderline matches are listed.
pub const LOW_CONFIDENCE: f32 = 0.35;
/// Rows read from the question log at most.
const MAX_ROWS: usize = 100_000;
/// Topics and unanswered questions listed at most.
pub const MAX_LISTED: usize = 10;

/// How many questions went to one intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicCount {
    /// The intent tag (or, without one, the knowledge entry's id).
    pub intent: String,
    /// Questions routed to it.
    pub questions: u64,
}

/// A question the bot could not answer confidently, with how often it was asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unanswered {
    /// The question as first asked (trimmed).
    pub question: String,
    /// How often it was asked (case and surrounding spaces ignored).
    pub times: u64,
    /// "handoff" (no entry matched) or "low_confidence" (answered from a weak match).
    pub reason: &'static str,
    /// The closest entry's intent, if any.
    pub closest_intent: Option<String>,
    /// The routing confidence of its first asking, if retrieval ran.
    pub confidence: Option<f32>,
    /// When it was last asked (Unix ms).
    pub last_at: UnixMillis,
}

/// How many questions the bot could not answer confidently were closest to one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnansweredTopic {
    /// The closest entry's intent (or entry id); `None`: nothing was close.
    pub topic: Option<String>,
    /// Questions handed off or answered from a weak match with that closest topic.
    pub questions: u64,
}

/// Questions by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    /// Answered by the bot (quoted or generated).
    pub answered: u64,
    /// Handed to a person: the bot was not sure or the case needs one, or the asker
    /// pressed "Talk to a person" under the answer.
    pub handoff: u64,
    /// Refused by a rate limit.
    pub limited: u64,
    /// Refused because the generation queue was full.
    pub busy: u64,
    /// Admitted, but the generation failed.
    pub failed: u64,
}

impl OutcomeCounts {
    fn count(&mut self, outcome: QuestionOutcome) {
        match outcome {
            QuestionOutcome::Answered => self.answered += 1,
            QuestionOutcome::Handoff => self.handoff += 1,
            QuestionOutcome::Limited => self.limited += 1,
            QuestionOutcome::Busy => self.busy += 1,
            QuestionOutcome::Failed => self.failed += 1,
        }
    }

    /// Questions that got no answer and no hand-off: rate-limited, busy or failed.
    pub fn not_answered(&self) -> u64 {
        self.limited + self.busy + self.failed
    }
}

/// Questions the bot dealt with alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Deflection {
    /// Questions answered by the bot with no hand-off and no 👎 on the answer.
    pub deflected: u64,
    /// `deflected` as a share (0 to 1) of all questions; `None` when there were none.
    pub share: Option<f64>,
}

/// Hand-off tickets: how many were opened, and how fast staff took them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TicketFigures {
    /// Tickets opened in the window.
    pub opened: u64,
    /// Of those, how many were claimed (a ticket resolved unclaimed counts as claimed
    /// when it was resolved).
    pub claimed: u64,
    /// Of those, how many were resolved.
    pub resolved: u64,
    /// Median seconds from opening to claim, over the claimed ones; `None`: none claimed.
    pub median_claim_secs: Option<u64>,
    /// Median seconds from opening to resolution, over the resolved ones.
    pub median_resolve_secs: Option<u64>,
    /// Tickets not resolved now, whenever they were opened.
    pub open_now: u64,
}

/// The figures of one UTC calendar day of the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Its UTC midnight (Unix ms).
    pub start: UnixMillis,
    /// Questions answered by the bot.
    pub answered: u64,
    /// Questions handed off.
    pub handed_off: u64,
    /// Questions not answered: rate-limited, busy or failed.
    pub not_answered: u64,
    /// 👍 cast that day.
    pub helpful: u64,
    /// 👎 cast that day.
    pub not_helpful: u64,
}

impl DayCounts {
    /// All questions of the day.
    pub fn questions(&self) -> u64 {
        self.answered + self.handed_off + self.not_answered
    }
}

/// The insights over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insights {
    /// The period covered (`since`, `until`: Unix ms, half-open).
    #[serde(flatten)]
    pub window: Window,
    /// Questions asked in the window.
    pub questions: u64,
    /// Those questions by outcome (`handoff` is the hand-off count).
    pub outcomes: OutcomeCounts,
    /// Answered with no hand-off and no 👎.
    pub deflection: Deflection,
    /// Most asked first (ties by name), at most [`MAX_LISTED`].
    pub topics: Vec<TopicCount>,
    /// Most asked first, then most recent; at most [`MAX_LISTED`].
    pub unanswered: Vec<Unanswered>,
    /// The closest topics of the questions in `unanswered` (all of them, not only the
    /// listed ones): most questions first, at most [`MAX_LISTED`].
    pub unanswered_topics: Vec<UnansweredTopic>,
    /// Votes cast in the window.
    pub feedback: FeedbackTally,
    /// Tickets opened in the window, and those open now.
    pub tickets: TicketFigures,
    /// One entry per UTC calendar day the window touches, oldest first.
    pub daily: Vec<DayCounts>,
}

/// What the insights are computed from: the store's rows for one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    /// The question log of the window, oldest first.
    pub records: Vec<QuestionRecord>,
    /// Votes cast in the window.
    pub votes: Vec<CastVote>,
    /// Questions of the window answered by the bot that got a 👎.
    pub down_voted_answers: u64,
    /// Tickets opened in the window.
    pub tickets: Vec<TicketTimes>,
    /// Tickets not resolved now.
    pub open_tickets: u64,
}

impl Readings {
    /// Reads the rows of `window` from the store.
    pub fn from_store(store: &Store, window: Window) -> Result<Self, StoreError> {
        let mut records = store.questions_since(window.since, MAX_ROWS)?;
        records.retain(|record| window.contains(record.at));
        Ok(Self {
            records,
            votes: store.votes_cast_between(window.since, window.until)?,
            down_voted_answers: store.down_voted_answers_between(window.since, window.until)?,
            tickets: store.tickets_opened_between(window.since, window.until)?,
            open_tickets: store.open_ticket_count()?,
        })
    }
}

/// Reads the insights of `window` from the store.
pub fn from_store(store: &Store, window: Window) -> Result<Insights, StoreError> {
    Ok(compute(window, &Readings::from_store(store, window)?))
}

/// The insights of `readings` over `window`.
///
/// Topics count the questions routed to a knowledge entry (outcomes answered or failed),
/// by the entry's intent. Unanswered are hand-offs and answers from a match below
/// [`LOW_CONFIDENCE`], grouped by their text (case and surrounding spaces ignored), and by
/// their closest topic in `unanswered_topics`. Rows outside the window are ignored.
pub fn compute(window: Window, readings: &Readings) -> Insights {
    let records: Vec<&QuestionRecord> = readings
        .records
        .iter()
        .filter(|record| window.contains(record.at))
        .collect();
    let mut outcomes = OutcomeCounts::default();
    let mut topics: HashMap<String, u64> = HashMap::new();
    let mut unanswered: HashMap<String, Unanswered> = HashMap::new();
    let mut unanswered_topics: HashMap<Option<String>, u64> = HashMap::new();
    for record in &records {
        outcomes.count(record.outcome);
        let topic = record.intent.clone().or(record.entry_id.clone());
        if matches!(
            record.outcome,
            QuestionOutcome::Answered | QuestionOutcome::Failed
        ) {
            if let Some(topic) = &topic {
                *topics.entry(topic.clone()).or_default() += 1;
            }
        }
        let Some(reason) = unanswered_reason(record) else {
            continue;
        };
        *unanswered_topics.entry(topic.clone()).or_default() += 1;
        let key = record.question.trim().to_lowercase();
        let entry = unanswered.entry(key).or_insert_with(|| Unanswered {
            question: record.question.trim().to_string(),
            times: 0,
            reason,
            closest_intent: topic,
            confidence: record.confidence,
            last_at: record.at,
        });
        entry.times += 1;
        entry.last_at = entry.last_at.max(record.at);
    }
    let mut topics: Vec<TopicCount> = topics
        .into_iter()
        .map(|(intent, questions)| TopicCount { intent, questions })
        .collect();
    topics.sort_by(|a, b| b.questions.cmp(&a.questions).then(a.intent.cmp(&b.intent)));
    topics.truncate(MAX_LISTED);
    let mut unanswered: Vec<Unanswered> = unanswered.into_values().collect();
    unanswered.sort_by(|a, b| {
        b.times
            .cmp(&a.times)
            .then(b.last_at.cmp(&a.last_at))
            .then(a.question.cmp(&b.question))
    });
    unanswered.truncate(MAX_LISTED);
    let mut unanswered_topics: Vec<UnansweredTopic> = unanswered_topics
        .into_iter()
        .map(|(topic, questions)| UnansweredTopic { topic, questions })
        .collect();
    unanswered_topics.sort_by(|a, b| b.questions.cmp(&a.questions).then(a.topic.cmp(&b.topic)));
    unanswered_topics.truncate(MAX_LISTED);
    let votes: Vec<&CastVote> = readings
        .votes
        .iter()
        .filter(|vote| window.contains(vote.at))
        .collect();
    let questions = records.len() as u64;
    let deflected = outcomes
        .answered
        .saturating_sub(readings.down_voted_answers);
    Insights {
        window,
        questions,
        outcomes,
        deflection: Deflection {
            deflected,
            share: (questions > 0).then(|| deflected as f64 / questions as f64),
        },
        topics,
        unanswered,
        unanswered_topics,
        feedback: FeedbackTally {
            up: votes.iter().filter(|v| v.vote == Vote::Up).count() as u64,
            down: votes.iter().filter(|v| v.vote == Vote::Down).count() as u64,
        },
        tickets: ticket_figures(window, &readings.tickets, readings.open_tickets),
        daily: daily(window, &records, &votes),
    }
}

/// Why a question counts as not answered confidently, if it does.
fn unanswered_reason(record: &QuestionRecord) -> Option<&'static str> {
    match record.outcome {
        QuestionOutcome::Handoff => Some("handoff"),
        QuestionOutcome::Answered
            if record.entry_id.is_some()
                && record.confidence.is_some_and(|c| c < LOW_CONFIDENCE) =>
        {
            Some("low_confidence")
        }
        _ => None,
    }
}

fn ticket_figures(window: Window, tickets: &[TicketTimes], open_now: u64) -> TicketFigures {
    let opened: Vec<&TicketTimes> = tickets
        .iter()
        .filter(|t| window.contains(t.opened_at))
        .collect();
    let mut to_claim: Vec<i64> = opened
        .iter()
        .filter_map(|t| Some(t.claimed_at? - t.opened_at))
        .collect();
    let mut to_resolve: Vec<i64> = opened
        .iter()
        .filter_map(|t| Some(t.resolved_at? - t.opened_at))
        .collect();
    TicketFigures {
        opened: opened.len() as u64,
        claimed: to_claim.len() as u64,
        resolved: to_resolve.len() as u64,
        median_claim_secs: median_secs(&mut to_claim),
        median_resolve_secs: median_secs(&mut to_resolve),
        open_now,
    }
}

/// The median of durations in ms (the mean of the middle two for an even count), in
/// whole seconds rounded to nearest; `None` for no durations.
fn median_secs(durations_ms: &mut [i64]) -> Option<u64> {
    if durations_ms.is_empty() {
        return None;
    }
    durations_ms.sort_unstable();
    let middle = durations_ms.len() / 2;
    let median_ms = if durations_ms.len() % 2 == 1 {
        durations_ms[middle]
    } else {
        (durations_ms[middle - 1] + durations_ms[middle]) / 2
    };
    Some(((median_ms.max(0) + 500) / 1000) as u64)
}

fn daily(window: Window, records: &[&QuestionRecord], votes: &[&CastVote]) -> Vec<DayCounts> {
    let starts = window.day_starts();
    let mut days: Vec<DayCounts> = starts
        .iter()
        .map(|&start| DayCounts {
            date: date(start),
            start,
            answered: 0,
            handed_off: 0,
            not_answered: 0,
            helpful: 0,
            not_helpful: 0,
        })
        .collect();
    let first = starts.first().copied().unwrap_or(0);
    let index = |at: UnixMillis| usize::try_from((start_of_day(at) - first) / DAY_MS).ok();
    for record in records {
        if let Some(day) = index(record.at).and_then(|i| days.get_mut(i)) {
            match record.outcome {
                QuestionOutcome::Answered => day.answered += 1,
                QuestionOutcome::Handoff => day.handed_off += 1,
                _ => day.not_answered += 1,
            }
        }
    }
    for vote in votes {
        if let Some(day) = index(vote.at).and_then(|i| days.get_mut(i)) {
            match vote.vote {
                Vote::Up => day.helpful += 1,
                Vote::Down => day.not_helpful += 1,
            }
        }
    }
    days
}

/// `secs` for people, to two units at most: "45 s", "4 min", "2 h 5 min", "3 d 4 h".
pub fn duration_text(secs: u64) -> String {
    let (days, hours, minutes) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60);
    match secs {
        0..60 => format!("{secs} s"),
        60..3_600 => format!("{minutes} min"),
        3_600..86_400 if minutes == 0 => format!("{hours} h"),
        3_600..86_400 => format!("{hours} h {minutes} min"),
        _ if hours == 0 => format!("{days} d"),
        _ => format!("{days} d {hours} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FeedbackRecord, NewTicket};

    const NOW: UnixMillis = 100 * DAY_MS;

    /// A question asked by a user named after it (so that answers link to it).
    fn record(
        at: i64,
        question: &str,
        intent: Option<&str>,
        confidence: Option<f32>,
        outcome: QuestionOutcome,
    ) -> QuestionRecord {
        QuestionRecord {
            at,
            user: question.into(),
            channel_id: None,
            question: question.into(),
            entry_id: intent.map(|i| format!("entry-{i}")),
            intent: intent.map(str::to_string),
            confidence,
            outcome,
        }
    }

    fn seeded() -> Store {
        use QuestionOutcome::*;
        let store = Store::open_in_memory().unwrap();
        let rows = [
            // Too old for a 7-day window.
            record(
                NOW - 9 * DAY_MS,
                "where is my order?",
                Some("track_order"),
                Some(0.9),
                Answered,
            ),
            record(
                NOW - 3 * DAY_MS,
                "where is my order?",
                Some("track_order"),
                Some(0.9),
                Answered,
            ),
            record(
                NOW - 2 * DAY_MS,
                "track my parcel",
                Some("track_order"),
                Some(0.8),
                Answered,
            ),
            record(
                NOW - 2 * DAY_MS,
                "refund please",
                Some("get_refund"),
                Some(0.7),
                Answered,
            ),
            record(
                NOW - DAY_MS,
                "do you sell tractors?",
                Some("track_order"),
                Some(0.1),
                Handoff,
            ),
            record(NOW - 1000, "Do you sell tractors? ", None, None, Handoff),
            record(
                NOW - 900,
                "is the mug ok in an oven",
                Some("product_care"),
                Some(0.34),
                Answered,
            ),
            record(NOW - 800, "spam", None, None, Limited),
            record(NOW - 700, "busy?", None, None, Busy),
            record(NOW - 600, "hello", None, Some(0.05), Answered),
        ];
        for row in &rows {
            store.log_question(row).unwrap();
        }
        store
            .link_answer("m-refund", "refund please", None, NOW - 2 * DAY_MS)
            .unwrap();
        for (at, user, message, vote) in [
            (NOW - 9 * DAY_MS, "a", "m-a", Vote::Down),
            (NOW - 500, "b", "m-b", Vote::Up),
            (NOW - 400, "c", "m-c", Vote::Up),
            (NOW - 300, "d", "m-refund", Vote::Down),
        ] {
            store
                .record_feedback(&FeedbackRecord {
                    at,
                    message_id: message.into(),
                    user: user.into(),
                    vote,
                })
                .unwrap();
        }
        let open = |user: &str, at: UnixMillis| {
            let ticket = NewTicket {
                user,
                channel_id: None,
                question_message_id: None,
                question: "help",
                at,
                routing: Default::default(),
            };
            store.open_ticket(&ticket).unwrap().0.id
        };
        let resolved = open("t1", NOW - 2 * DAY_MS);
        store
            .claim_ticket(resolved, "mod", NOW - 2 * DAY_MS + 60_000)
            .unwrap();
        store
            .resolve_ticket(resolved, "mod", "done", NOW - 2 * DAY_MS + 3_600_000)
            .unwrap();
        let claimed = open("t2", NOW - DAY_MS);
        store
            .claim_ticket(claimed, "mod", NOW - DAY_MS + 120_000)
            .unwrap();
        open("t3", NOW - 9 * DAY_MS);
        store
    }

    #[test]
    fn counts_over_the_window_from_a_seeded_store() {
        let store = seeded();
        let insights = from_store(&store, Window::last_days(NOW, 7)).unwrap();
        assert_eq!(insights.questions, 9);
        assert_eq!(
            insights.outcomes,
            OutcomeCounts {
                answered: 5,
                handoff: 2,
                limited: 1,
                busy: 1,
                failed: 0
            }
        );
        // Hand-offs do not count toward the topic they were closest to.
        assert_eq!(
            insights.topics,
            [
                TopicCount {
                    intent: "track_order".into(),
                    questions: 2
                },
                TopicCount {
                    intent: "get_refund".into(),
                    questions: 1
                },
                TopicCount {
                    intent: "product_care".into(),
                    questions: 1
                },
            ]
        );
        let unanswered: Vec<(&str, u64, &str)> = insights
            .unanswered
            .iter()
            .map(|u| (u.question.as_str(), u.times, u.reason))
            .collect();
        assert_eq!(
            unanswered,
            [
                ("do you sell tractors?", 2, "handoff"),
                ("is the mug ok in an oven", 1, "low_confidence"),
            ]
        );
        assert_eq!(insights.feedback, FeedbackTally { up: 2, down: 1 });
        let all_time = from_store(&store, Window::last_days(NOW, 30)).unwrap();
        assert_eq!(all_time.questions, 10);
        assert_eq!(all_time.topics[0].questions, 3);
        assert_eq!(all_time.feedback, FeedbackTally { up: 2, down: 2 });
    }

    #[test]
    fn deflection_leaves_out_hand_offs_refusals_and_down_voted_answers() {
        let insights = from_store(&seeded(), Window::last_days(NOW, 7)).unwrap();
        // Five answered, one of them (the refund) got a 👎; nine questions in all.
        assert_eq!(insights.deflection.deflected, 4);
        assert_eq!(insights.deflection.share, Some(4.0 / 9.0));
        let empty = compute(Window::last_days(NOW, 7), &Readings::default());
        assert_eq!(empty.deflection.share, None);
    }

    #[test]
    fn ticket_medians_cover_the_tickets_opened_in_the_window() {
        let insights = from_store(&seeded(), Window::last_days(NOW, 7)).unwrap();
        assert_eq!(
            insights.tickets,
            TicketFigures {
                opened: 2,
                claimed: 2,
                resolved: 1,
                median_claim_secs: Some(90),
                median_resolve_secs: Some(3600),
                open_now: 2,
            }
        );
        assert_eq!(median_secs(&mut [3_000, 1_000, 2_000]), Some(2));
        assert_eq!(median_secs(&mut []), None);
    }

    #[test]
    fn unanswered_topics_group_by_the_closest_topic() {
        let insights = from_store(&seeded(), Window::last_days(NOW, 7)).unwrap();
        let topics: Vec<(Option<&str>, u64)> = insights
            .unanswered_topics
            .iter()
            .map(|t| (t.topic.as_deref(), t.questions))
            .collect();
        assert_eq!(
            topics,
            [
                (None, 1),
                (Some("product_care"), 1),
                (Some("track_order"), 1)
            ]
        );
    }

    #[test]
    fn every_day_of_the_window_has_its_questions_and_votes() {
        let insights = from_store(&seeded(), Window::last_days(NOW, 7)).unwrap();
        let days: Vec<(&str, [u64; 5])> = insights
            .daily
            .iter()
            .map(|d| {
                (
                    d.date.as_str(),
                    [
                        d.answered,
                        d.handed_off,
                        d.not_answered,
                        d.helpful,
                        d.not_helpful,
                    ],
                )
            })
            .collect();
        assert_eq!(
            days,
            [
                ("1970-04-05", [0; 5]),
                ("1970-04-06", [0; 5]),
                ("1970-04-07", [0; 5]),
                ("1970-04-08", [1, 0, 0, 0, 0]),
                ("1970-04-09", [2, 0, 0, 0, 0]),
                ("1970-04-10", [2, 2, 2, 2, 1]),
                ("1970-04-11", [0; 5]),
            ]
        );
        let total: u64 = insights.daily.iter().map(DayCounts::questions).sum();
        assert_eq!(total, insights.questions);
    }

    #[test]
    fn durations_read_in_two_units_at_most() {
        let cases = [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (3_599, "59 min"),
            (3_600, "1 h"),
            (7_500, "2 h 5 min"),
            (86_400, "1 d"),
            (273_600, "3 d 4 h"),
        ];
        for (secs, text) in cases {
            assert_eq!(duration_text(secs), text, "{secs}");
        }
    }
}
