//! Insights on Discord: the figures as markdown (for `/insights` and the daily digest)
//! and the chart, attached to the `/insights` answer as a PNG follow-up.

use std::fmt::Write;

use serenity::builder::CreateAttachment;
use serenity::http::{LightMethod, Route};
use serenity::model::id::ApplicationId;

use super::rest::{Rest, RestError};
use crate::assistant::moderation::insights::{duration_text, Insights};
use crate::assistant::shorten::one_line;

/// The chart's file name on Discord.
pub const CHART_FILE: &str = "insights.png";

/// Discord's ephemeral message flag.
const EPHEMERAL: u64 = 64;

/// The figures as Discord markdown under `heading` (bold). Question text is quoted as
/// data: one line each, shortened; every message is sent with no mentions allowed.
pub fn markdown(insights: &Insights, heading: &str) -> String {
    let mut out = String::new();
    let (from, to) = (insights.window.first_date(), insights.window.last_date());
    let span = if from == to {
        format!("{to}, UTC")
    } else {
        format!("{from} to {to}, UTC")
    };
    let _ = writeln!(
        out,
        "**{heading}** ({span}): {} question{}",
        insights.questions,
        plural(insights.questions)
    );
    let d = &insights.deflection;
    let share = d
        .share
        .map(|s| format!(" ({:.0} %)", s * 100.0))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "**Deflection**: {} of {}{share} answered by the bot with no hand-off and no 👎",
        d.deflected, insights.questions
    );
    let t = &insights.tickets;
    let median = |secs: Option<u64>| secs.map(duration_text).unwrap_or_else(|| "–".into());
    let _ = writeln!(
        out,
        "**Hand-offs**: {} · tickets opened {} · median time to claim {} · to resolve {} · open tickets now {}",
        insights.outcomes.handoff,
        t.opened,
        median(t.median_claim_secs),
        median(t.median_resolve_secs),
        t.open_now
    );
    let o = &insights.outcomes;
    let _ = writeln!(
        out,
        "**Outcomes**: answered {} · handed off {} · rate-limited {} · busy {} · failed {}",
        o.answered, o.handoff, o.limited, o.busy, o.failed
    );
    let _ = writeln!(
        out,
        "**Feedback on answers**: 👍 {} · 👎 {}",
        insights.feedback.up, insights.feedback.down
    );
    out.push_str("\n**Top topics**\n");
    if insights.topics.is_empty() {
        out.push_str("- No routed questions yet.\n");
    }
    for topic in &insights.topics {
        let _ = writeln!(out, "- {}: {}", topic.intent, topic.questions);
    }
    out.push_str("\n**Top unanswered topics** (closest topic of what the bot could not answer)\n");
    if insights.unanswered_topics.is_empty() {
        out.push_str("- None.\n");
    }
    for topic in &insights.unanswered_topics {
        let name = topic.topic.as_deref().unwrap_or("no close topic");
        let _ = writeln!(out, "- {name}: {}", topic.questions);
    }
    out.push_str("\n**Not answered confidently** (what the FAQ should cover next)\n");
    if insights.unanswered.is_empty() {
        out.push_str("- None.\n");
    }
    for item in &insights.unanswered {
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
        let _ = writeln!(
            out,
            "- \"{}\" ×{} ({reason})",
            one_line(&item.question, 120),
            item.times
        );
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Posts the chart `png` as an ephemeral follow-up of the interaction `token`, with
/// `caption` as its text.
pub async fn post_chart(
    rest: &Rest,
    application_id: ApplicationId,
    token: &str,
    caption: &str,
    png: Vec<u8>,
) -> Result<(), RestError> {
    let mut file = CreateAttachment::bytes(png, CHART_FILE);
    file.description = Some(caption.to_string());
    let message = serde_json::json!({"content": caption, "flags": EPHEMERAL});
    rest.send_with_file(
        "post the insights chart",
        Route::WebhookFollowupMessages {
            application_id,
            token,
        },
        LightMethod::Post,
        message,
        file,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::moderation::insights::{compute, Readings, Window, DAY_MS};
    use crate::store::{CastVote, QuestionOutcome, QuestionRecord, TicketTimes, Vote};

    fn asked(at: i64, question: &str, confidence: f32, outcome: QuestionOutcome) -> QuestionRecord {
        QuestionRecord {
            at,
            user: "u".into(),
            channel_id: None,
            question: question.into(),
            entry_id: Some("entry-track".into()),
            intent: Some("track_order".into()),
            confidence: Some(confidence),
            outcome,
        }
    }

    #[test]
    fn every_figure_is_shown() {
        let now = 20_000 * DAY_MS + 3_600_000;
        let readings = Readings {
            records: vec![
                asked(
                    now - 10,
                    "where is my `parcel`",
                    0.2,
                    QuestionOutcome::Answered,
                ),
                asked(
                    now - 9,
                    "do you sell tractors?",
                    0.1,
                    QuestionOutcome::Handoff,
                ),
                asked(
                    now - 8,
                    "Do you sell tractors?",
                    0.1,
                    QuestionOutcome::Handoff,
                ),
                asked(now - 7, "spam", 0.0, QuestionOutcome::Limited),
            ],
            votes: vec![CastVote {
                at: now - 5,
                vote: Vote::Up,
            }],
            down_voted_answers: 0,
            tickets: vec![TicketTimes {
                opened_at: now - 8,
                claimed_at: Some(now - 8 + 240_000),
                resolved_at: None,
            }],
            open_tickets: 3,
        };
        let insights = compute(Window::last_days(now, 7), &readings);
        let text = markdown(&insights, "Insights, last 7 days");
        for part in [
            "**Insights, last 7 days** (2024-09-28 to 2024-10-04, UTC): 4 questions",
            "**Deflection**: 1 of 4 (25 %)",
            "**Hand-offs**: 2 · tickets opened 1 · median time to claim 4 min · to resolve – · open tickets now 3",
            "rate-limited 1",
            "👍 1 · 👎 0",
            "**Top topics**\n- track_order: 1\n",
            "(closest topic of what the bot could not answer)\n- track_order: 3\n",
            "\"do you sell tractors?\" ×2 (handed off)",
            "\"where is my 'parcel'\" ×1 (weak match to track_order)",
        ] {
            assert!(text.contains(part), "{part} missing:\n{text}");
        }
        assert!(!text.contains('`'), "{text}");
    }
}
