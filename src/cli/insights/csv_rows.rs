//! The insights as CSV: a `section,key,value` header, then one row per figure, topic,
//! unanswered question (its text as the key, the times asked as the value) and per-day
//! count (the date as the key).

use anyhow::Result;

use shopkeep::assistant::moderation::insights::Insights;

/// Every figure as a `section,key,value` row.
pub(super) fn csv(insights: &Insights) -> Result<String> {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |section: &str, key: &str, value: String| {
        rows.push((section.to_string(), key.to_string(), value));
    };
    let optional = |value: Option<u64>| value.map(|v| v.to_string()).unwrap_or_default();
    row("window", "first_date", insights.window.first_date());
    row("window", "last_date", insights.window.last_date());
    row("window", "days", insights.daily.len().to_string());
    row("window", "questions", insights.questions.to_string());
    let o = &insights.outcomes;
    for (key, value) in [
        ("answered", o.answered),
        ("handoff", o.handoff),
        ("limited", o.limited),
        ("busy", o.busy),
        ("failed", o.failed),
    ] {
        row("outcome", key, value.to_string());
    }
    let d = &insights.deflection;
    row("deflection", "deflected", d.deflected.to_string());
    row(
        "deflection",
        "share",
        d.share.map(|s| format!("{s:.4}")).unwrap_or_default(),
    );
    let t = &insights.tickets;
    for (key, value) in [
        ("opened", t.opened),
        ("claimed", t.claimed),
        ("resolved", t.resolved),
        ("open_now", t.open_now),
    ] {
        row("tickets", key, value.to_string());
    }
    row(
        "tickets",
        "median_claim_secs",
        optional(t.median_claim_secs),
    );
    row(
        "tickets",
        "median_resolve_secs",
        optional(t.median_resolve_secs),
    );
    row("feedback", "up", insights.feedback.up.to_string());
    row("feedback", "down", insights.feedback.down.to_string());
    for topic in &insights.topics {
        row("topic", &topic.intent, topic.questions.to_string());
    }
    for topic in &insights.unanswered_topics {
        let name = topic.topic.as_deref().unwrap_or("");
        row("unanswered_topic", name, topic.questions.to_string());
    }
    for item in &insights.unanswered {
        let section = format!("unanswered_{}", item.reason);
        row(&section, &item.question, item.times.to_string());
    }
    for day in &insights.daily {
        for (section, value) in [
            ("day_answered", day.answered),
            ("day_handed_off", day.handed_off),
            ("day_not_answered", day.not_answered),
            ("day_helpful", day.helpful),
            ("day_not_helpful", day.not_helpful),
        ] {
            row(section, &day.date, value.to_string());
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["section", "key", "value"])?;
    for (section, key, value) in &rows {
        writer.write_record([section, key, value])?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}
