//! What customers need, from the question log and feedback (the store, never Discord):
//! the top topics, the questions the bot could not answer confidently (what the FAQ should
//! cover next), 👍/👎 feedback on its answers, and refusals. Shown by `/insights` and
//! `shopkeep insights`.

use std::collections::HashMap;

use serde::Serialize;

use crate::store::{FeedbackTally, QuestionOutcome, QuestionRecord, Store, StoreError, UnixMillis};

/// An answered question routed with a confidence below this counts as "not confident":
/// just above the bar for a grounded answer (`routing.grounded_confidence`, 0.33 by
/// default), so only borderline matches are listed.
pub const LOW_CONFIDENCE: f32 = 0.35;
/// Rows read from the question log at most.
const MAX_ROWS: usize = 100_000;
/// Topics and unanswered questions listed at most.
pub const MAX_LISTED: usize = 10;
const DAY_MS: i64 = 86_400_000;

/// How many questions went to one intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicCount {
    pub intent: String,
    pub questions: u64,
}

/// A question the bot could not answer confidently, with how often it was asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unanswered {
    pub question: String,
    pub times: u64,
    /// "handoff" (no entry matched) or "low_confidence" (answered from a weak match).
    pub reason: &'static str,
    /// The closest entry's intent, if any.
    pub closest_intent: Option<String>,
    pub confidence: Option<f32>,
    /// When it was last asked (Unix ms).
    pub last_at: UnixMillis,
}

/// Questions by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub answered: u64,
    pub handoff: u64,
    pub limited: u64,
    pub busy: u64,
    pub failed: u64,
}

/// The insights over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insights {
    pub days: u32,
    /// Window start (Unix ms).
    pub since: UnixMillis,
    pub questions: u64,
    pub outcomes: OutcomeCounts,
    /// Most asked first (ties by name), at most [`MAX_LISTED`].
    pub topics: Vec<TopicCount>,
    /// Most asked first, then most recent; at most [`MAX_LISTED`].
    pub unanswered: Vec<Unanswered>,
    pub feedback: FeedbackTally,
}

/// Reads the insights of the last `days` days (ending at `now`) from the store.
pub fn from_store(store: &Store, now: UnixMillis, days: u32) -> Result<Insights, StoreError> {
    let since = now.saturating_sub(i64::from(days) * DAY_MS);
    let records = store.questions_since(since, MAX_ROWS)?;
    let feedback = store.feedback_tally_since(since)?;
    Ok(compute(&records, feedback, days, since))
}

/// The insights of `records` (the question log of the window) and the window's feedback.
///
/// Topics count the questions routed to a knowledge entry (outcomes answered or failed),
/// by the entry's intent. Unanswered are hand-offs and answers from a match below
/// [`LOW_CONFIDENCE`], grouped by their text (case and surrounding spaces ignored).
pub fn compute(
    records: &[QuestionRecord],
    feedback: FeedbackTally,
    days: u32,
    since: UnixMillis,
) -> Insights {
    let mut outcomes = OutcomeCounts::default();
    let mut topics: HashMap<String, u64> = HashMap::new();
    let mut unanswered: HashMap<String, Unanswered> = HashMap::new();
    for record in records {
        match record.outcome {
            QuestionOutcome::Answered => outcomes.answered += 1,
            QuestionOutcome::Handoff => outcomes.handoff += 1,
            QuestionOutcome::Limited => outcomes.limited += 1,
            QuestionOutcome::Busy => outcomes.busy += 1,
            QuestionOutcome::Failed => outcomes.failed += 1,
        }
        let routed = matches!(
            record.outcome,
            QuestionOutcome::Answered | QuestionOutcome::Failed
        );
        let topic = record.intent.clone().or(record.entry_id.clone());
        if routed {
            if let Some(topic) = &topic {
                *topics.entry(topic.clone()).or_default() += 1;
            }
        }
        let reason = match record.outcome {
            QuestionOutcome::Handoff => Some("handoff"),
            QuestionOutcome::Answered
                if record.entry_id.is_some()
                    && record.confidence.is_some_and(|c| c < LOW_CONFIDENCE) =>
            {
                Some("low_confidence")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            let key = record.question.trim().to_lowercase();
            let entry = unanswered.entry(key).or_insert_with(|| Unanswered {
                question: record.question.trim().to_string(),
                times: 0,
                reason,
                closest_intent: topic.clone(),
                confidence: record.confidence,
                last_at: record.at,
            });
            entry.times += 1;
            entry.last_at = entry.last_at.max(record.at);
        }
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
    Insights {
        days,
        since,
        questions: records.len() as u64,
        outcomes,
        topics,
        unanswered,
        feedback,
    }
}

impl Insights {
    /// Plain text (Discord markdown) for people. Question text is quoted as data: one
    /// line each, shortened; the adapter still sends it with no mentions allowed.
    pub fn to_text(&self) -> String {
        let o = &self.outcomes;
        let mut out = format!(
            "**Insights, last {} day{}**: {} question{}\n",
            self.days,
            plural(self.days as u64),
            self.questions,
            plural(self.questions)
        );
        out.push_str("\n**Top topics**\n");
        if self.topics.is_empty() {
            out.push_str("- No routed questions yet.\n");
        }
        for topic in &self.topics {
            out.push_str(&format!("- {}: {}\n", topic.intent, topic.questions));
        }
        out.push_str("\n**Not answered confidently** (what the FAQ should cover next)\n");
        if self.unanswered.is_empty() {
            out.push_str("- None.\n");
        }
        for item in &self.unanswered {
            let reason = match item.reason {
                "handoff" => "handed off".to_string(),
                _ => format!(
                    "weak match{}",
                    item.closest_intent
                        .as_ref()
                        .map(|i| format!(" to {i}"))
                        .unwrap_or_default()
                ),
            };
            out.push_str(&format!(
                "- \"{}\" ×{} ({reason})\n",
                one_line(&item.question, 120),
                item.times
            ));
        }
        out.push_str(&format!(
            "\n**Feedback on answers**: 👍 {} · 👎 {}\n",
            self.feedback.up, self.feedback.down
        ));
        out.push_str(&format!(
            "**Outcomes**: answered {} · handed off {} · rate-limited {} · busy {} · failed {}\n",
            o.answered, o.handoff, o.limited, o.busy, o.failed
        ));
        out
    }

    /// CSV with a `section,key,value` header: one row per figure, topic and unanswered
    /// question (its text as the key, the times asked as the value).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("section,key,value\n");
        let mut row = |section: &str, key: &str, value: String| {
            out.push_str(&format!("{section},{},{value}\n", csv_field(key)));
        };
        row("window", "days", self.days.to_string());
        row("window", "questions", self.questions.to_string());
        let o = &self.outcomes;
        for (key, value) in [
            ("answered", o.answered),
            ("handoff", o.handoff),
            ("limited", o.limited),
            ("busy", o.busy),
            ("failed", o.failed),
        ] {
            row("outcome", key, value.to_string());
        }
        row("feedback", "up", self.feedback.up.to_string());
        row("feedback", "down", self.feedback.down.to_string());
        for topic in &self.topics {
            row("topic", &topic.intent, topic.questions.to_string());
        }
        for item in &self.unanswered {
            row(
                &format!("unanswered_{}", item.reason),
                &item.question,
                item.times.to_string(),
            );
        }
        out
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

use crate::assistant::shorten::one_line;

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FeedbackRecord, Vote};

    fn record(
        at: i64,
        question: &str,
        intent: Option<&str>,
        confidence: Option<f32>,
        outcome: QuestionOutcome,
    ) -> QuestionRecord {
        QuestionRecord {
            at,
            user: "u".into(),
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
        let now = 100 * DAY_MS;
        let rows = [
            // Too old for a 7-day window.
            record(
                now - 9 * DAY_MS,
                "where is my order?",
                Some("track_order"),
                Some(0.9),
                Answered,
            ),
            record(
                now - 3 * DAY_MS,
                "where is my order?",
                Some("track_order"),
                Some(0.9),
                Answered,
            ),
            record(
                now - 2 * DAY_MS,
                "track my parcel",
                Some("track_order"),
                Some(0.8),
                Answered,
            ),
            record(
                now - 2 * DAY_MS,
                "refund please",
                Some("get_refund"),
                Some(0.7),
                Answered,
            ),
            record(
                now - DAY_MS,
                "do you sell tractors?",
                Some("track_order"),
                Some(0.1),
                Handoff,
            ),
            record(now - 1000, "Do you sell tractors? ", None, None, Handoff),
            record(
                now - 900,
                "is the mug ok in an oven",
                Some("product_care"),
                Some(0.34),
                Answered,
            ),
            record(now - 800, "spam", None, None, Limited),
            record(now - 700, "busy?", None, None, Busy),
            record(now - 600, "hello", None, Some(0.05), Answered),
        ];
        for row in &rows {
            store.log_question(row).unwrap();
        }
        for (at, user, vote) in [
            (now - 9 * DAY_MS, "a", Vote::Down),
            (now - 500, "b", Vote::Up),
            (now - 400, "c", Vote::Up),
            (now - 300, "d", Vote::Down),
        ] {
            store
                .record_feedback(&FeedbackRecord {
                    at,
                    message_id: format!("m-{user}"),
                    user: user.into(),
                    vote,
                })
                .unwrap();
        }
        store
    }

    #[test]
    fn counts_over_the_window_from_a_seeded_store() {
        let store = seeded();
        let insights = from_store(&store, 100 * DAY_MS, 7).unwrap();
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
        let all_time = from_store(&store, 100 * DAY_MS, 30).unwrap();
        assert_eq!(all_time.questions, 10);
        assert_eq!(all_time.topics[0].questions, 3);
        assert_eq!(all_time.feedback, FeedbackTally { up: 2, down: 2 });
    }

    #[test]
    fn text_and_csv_show_every_part() {
        let insights = from_store(&seeded(), 100 * DAY_MS, 7).unwrap();
        let text = insights.to_text();
        for part in [
            "last 7 days",
            "track_order: 2",
            "\"do you sell tractors?\" ×2 (handed off)",
            "weak match to product_care",
            "👍 2 · 👎 1",
            "rate-limited 1 · busy 1",
        ] {
            assert!(text.contains(part), "{part} missing:\n{text}");
        }
        let csv = insights.to_csv();
        assert!(csv.starts_with("section,key,value\n"));
        assert!(csv.contains("topic,track_order,2\n"), "{csv}");
        assert!(
            csv.contains("unanswered_handoff,do you sell tractors?,2\n"),
            "{csv}"
        );
        assert!(csv.contains("feedback,down,1\n"));
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
    }
}
