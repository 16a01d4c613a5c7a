//! The insights as plain text for a terminal: a block of labelled figures, then the
//! lists, each row aligned.

use std::fmt::Write;

use shopkeep::assistant::moderation::insights::{duration_text, Insights};
use shopkeep::assistant::shorten::one_line;

/// Width of the labels column.
const LABEL: usize = 18;

/// The figures under `heading`, in plain text.
pub(super) fn text(insights: &Insights, heading: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{heading} ({} to {}, UTC)\n",
        insights.window.first_date(),
        insights.window.last_date()
    );
    let mut figure = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<LABEL$}{value}");
    };
    figure("Questions", insights.questions.to_string());
    let d = &insights.deflection;
    figure(
        "Deflection",
        match d.share {
            Some(share) => format!(
                "{:.1} % ({} answered by the bot with no hand-off and no thumbs down)",
                share * 100.0,
                d.deflected
            ),
            None => "no questions".to_string(),
        },
    );
    figure("Hand-offs", insights.outcomes.handoff.to_string());
    let t = &insights.tickets;
    let median = |secs: Option<u64>| secs.map(duration_text).unwrap_or_else(|| "none".into());
    figure(
        "Tickets",
        format!(
            "{} opened ({} claimed, {} resolved), {} open now",
            t.opened, t.claimed, t.resolved, t.open_now
        ),
    );
    figure("Median to claim", median(t.median_claim_secs));
    figure("Median to resolve", median(t.median_resolve_secs));
    let o = &insights.outcomes;
    figure(
        "Outcomes",
        format!(
            "answered {}, handed off {}, rate-limited {}, busy {}, failed {}",
            o.answered, o.handoff, o.limited, o.busy, o.failed
        ),
    );
    figure(
        "Feedback",
        format!(
            "{} helpful, {} not helpful",
            insights.feedback.up, insights.feedback.down
        ),
    );
    list(
        &mut out,
        "Top topics",
        insights
            .topics
            .iter()
            .map(|t| (t.intent.clone(), t.questions.to_string())),
    );
    list(
        &mut out,
        "Top unanswered topics (closest topic)",
        insights.unanswered_topics.iter().map(|t| {
            let name = t.topic.as_deref().unwrap_or("(no close topic)");
            (name.to_string(), t.questions.to_string())
        }),
    );
    list(
        &mut out,
        "Not answered confidently (what the FAQ should cover next)",
        insights.unanswered.iter().map(|u| {
            let why = match (u.reason, &u.closest_intent) {
                ("handoff", _) => "handed off".to_string(),
                (_, Some(intent)) => format!("weak match to {intent}"),
                (_, None) => "weak match".to_string(),
            };
            (
                format!("\"{}\" ×{}", one_line(&u.question, 100), u.times),
                format!("({why})"),
            )
        }),
    );
    list(
        &mut out,
        "Per day: answered / handed off / not answered / helpful / not helpful",
        insights.daily.iter().map(|d| {
            let counts = format!(
                "{} / {} / {} / {} / {}",
                d.answered, d.handed_off, d.not_answered, d.helpful, d.not_helpful
            );
            (d.date.clone(), counts)
        }),
    );
    out
}

/// A titled list of (name, value) rows, names padded to the longest; "(none)" if empty.
fn list(out: &mut String, title: &str, rows: impl Iterator<Item = (String, String)>) {
    let rows: Vec<(String, String)> = rows.collect();
    let _ = writeln!(out, "\n{title}");
    if rows.is_empty() {
        out.push_str("  (none)\n");
    }
    let width = rows
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    for (name, value) in rows {
        let _ = writeln!(out, "  {name:<width$}  {value}");
    }
}
