//! The insights as one self-contained HTML file: the figures, the chart inline (a PNG as a
//! `data:` URL), and the tables. It has no script and fetches nothing: its Content Security
//! Policy allows only inline styles and `data:` images. It is also well-formed XML
//! (every element closed, every attribute quoted), so any XML parser can check it.

use std::fmt::Write;

use anyhow::{Context, Result};
use base64::Engine;

use shopkeep::assistant::moderation::insights::{duration_text, Insights};
use shopkeep::insights_chart;

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
.span { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { text-align: left; padding: 0.25rem 0.8rem 0.25rem 0; border-bottom: 1px solid #ddd; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
";

/// The report under `heading`.
pub(super) fn report(insights: &Insights, heading: &str) -> Result<String> {
    let png = insights_chart::png(&insights.daily).context("could not draw the chart")?;
    let chart = base64::engine::general_purpose::STANDARD.encode(png);
    let (from, to) = (insights.window.first_date(), insights.window.last_date());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>{title}</h1>\n<p class=\"span\">{from} to {to} (UTC)</p>\n",
        title = escape(heading),
    );
    figures(&mut out, insights);
    let _ = write!(
        out,
        "<h2>Questions and feedback per day</h2>\n\
         <img src=\"data:image/png;base64,{chart}\" width=\"{w}\" height=\"{h}\" \
         alt=\"Questions per day, answered by the bot, handed off and not answered; feedback per day\"/>\n",
        w = insights_chart::WIDTH,
        h = insights_chart::HEIGHT,
    );
    table(
        &mut out,
        "Per day",
        &[
            "Date",
            "Answered by the bot",
            "Handed off",
            "Not answered",
            "Helpful",
            "Not helpful",
        ],
        insights.daily.iter().map(|d| {
            vec![
                d.date.clone(),
                d.answered.to_string(),
                d.handed_off.to_string(),
                d.not_answered.to_string(),
                d.helpful.to_string(),
                d.not_helpful.to_string(),
            ]
        }),
    );
    table(
        &mut out,
        "Top topics",
        &["Topic", "Questions"],
        insights
            .topics
            .iter()
            .map(|t| vec![t.intent.clone(), t.questions.to_string()]),
    );
    table(
        &mut out,
        "Top unanswered topics",
        &["Closest topic", "Questions"],
        insights.unanswered_topics.iter().map(|t| {
            let name = t.topic.as_deref().unwrap_or("(no close topic)");
            vec![name.to_string(), t.questions.to_string()]
        }),
    );
    table(
        &mut out,
        "Not answered confidently (what the FAQ should cover next)",
        &["Question", "Times", "Why"],
        insights.unanswered.iter().map(|u| {
            let why = match (u.reason, &u.closest_intent) {
                ("handoff", _) => "handed off".to_string(),
                (_, Some(intent)) => format!("weak match to {intent}"),
                (_, None) => "weak match".to_string(),
            };
            vec![u.question.clone(), u.times.to_string(), why]
        }),
    );
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

/// The headline figures as a two-column table.
fn figures(out: &mut String, insights: &Insights) {
    let d = &insights.deflection;
    let t = &insights.tickets;
    let o = &insights.outcomes;
    let median = |secs: Option<u64>| secs.map(duration_text).unwrap_or_else(|| "–".into());
    let rows = [
        ("Questions", insights.questions.to_string()),
        (
            "Deflection",
            match d.share {
                Some(share) => format!(
                    "{:.1} % ({} of {})",
                    share * 100.0,
                    d.deflected,
                    insights.questions
                ),
                None => "no questions".to_string(),
            },
        ),
        ("Hand-offs", o.handoff.to_string()),
        ("Tickets opened", t.opened.to_string()),
        ("Median time to claim", median(t.median_claim_secs)),
        ("Median time to resolve", median(t.median_resolve_secs)),
        ("Open tickets now", t.open_now.to_string()),
        ("Answered by the bot", o.answered.to_string()),
        ("Not answered", o.not_answered().to_string()),
        ("Helpful", insights.feedback.up.to_string()),
        ("Not helpful", insights.feedback.down.to_string()),
    ];
    out.push_str("<table class=\"figures\">\n");
    for (name, value) in rows {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    out.push_str("</table>\n");
}

/// A titled table; numbers (cells of digits) are right-aligned; "None." if empty.
fn table(out: &mut String, title: &str, header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let _ = writeln!(out, "<h2>{}</h2>", escape(title));
    let rows: Vec<Vec<String>> = rows.collect();
    if rows.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    out.push_str("<table>\n<tr>");
    for name in header {
        let _ = write!(out, "<th>{}</th>", escape(name));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let class = if !cell.is_empty() && cell.chars().all(|c| c.is_ascii_digit()) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(&cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// `text` safe in HTML text and quoted attributes; control characters become spaces.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
