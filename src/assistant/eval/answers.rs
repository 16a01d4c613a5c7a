//! `shopkeep eval answers`: realistic customer questions run through [`Assistant::handle`],
//! the same pipeline as Discord, each checked against its expected outcome.
//!
//! The file is TOML with one `[[case]]` per question:
//! `id`, `category`, `question`, `expect` ("answer" | "handoff" | "any"), optional `user`
//! (cases with the same user are one conversation, asked in file order), `must_include`
//! (each item: one of its `|`-separated alternatives appears, case-insensitive) and
//! `must_not_include` (none appears).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::assistant::{Assistant, Inbound, InboundKind, ModeratorEvent, Role};

/// What a case expects of the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// A useful reply: no hand-off.
    Answer,
    /// An honest hand-off to a person.
    Handoff,
    /// Either.
    Any,
}

/// One question with its expected outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerCase {
    /// The case's id, unique in its file.
    pub id: String,
    /// Its category, for the per-category table.
    pub category: String,
    /// Cases with the same user are one conversation, asked in file order; without one the
    /// case is asked alone (as `eval-<id>`).
    #[serde(default)]
    pub user: Option<String>,
    /// The customer's question.
    pub question: String,
    /// An answer, a hand-off, or either.
    pub expect: Expect,
    /// Phrases the reply must contain (case-insensitive); `a|b` accepts either.
    #[serde(default)]
    pub must_include: Vec<String>,
    /// Phrases the reply must not contain (case-insensitive).
    #[serde(default)]
    pub must_not_include: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<AnswerCase>,
}

/// A cases file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid answers file: {0}")]
pub struct CasesError(#[source] toml::de::Error);

/// Parses a cases file.
pub fn read_cases(text: &str) -> Result<Vec<AnswerCase>, CasesError> {
    toml::from_str::<CaseFile>(text)
        .map(|file| file.case)
        .map_err(CasesError)
}

/// What happened to one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: AnswerCase,
    /// The text the customer was shown.
    pub reply: String,
    /// Whether the question was handed to the team.
    pub handed_off: bool,
    /// Why it failed; empty when it passed.
    pub failures: Vec<String>,
    /// Time from the question to the whole reply.
    pub elapsed: Duration,
}

impl CaseResult {
    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks a reply against a case's expectations; the failures, or none.
pub fn judge(case: &AnswerCase, reply: &str, handed_off: bool) -> Vec<String> {
    let mut failures = Vec::new();
    match (case.expect, handed_off) {
        (Expect::Answer, true) => failures.push("handed off, expected an answer".to_string()),
        (Expect::Handoff, false) => failures.push("answered, expected a hand-off".to_string()),
        _ => {}
    }
    let lowered = reply.to_lowercase();
    for item in &case.must_include {
        let found = item
            .split('|')
            .any(|alternative| lowered.contains(&alternative.trim().to_lowercase()));
        if !found {
            failures.push(format!("missing {item:?}"));
        }
    }
    for item in &case.must_not_include {
        if lowered.contains(&item.to_lowercase()) {
            failures.push(format!("contains {item:?}"));
        }
    }
    failures
}

/// Asks every case in order (a conversation's cases one after another) and judges the
/// replies. A hand-off is the moderator-log event the assistant sends for the question.
pub async fn run(assistant: &Assistant, cases: &[AnswerCase]) -> AnswersReport {
    let mut events = assistant.subscribe_moderator_events();
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let user = case
            .user
            .clone()
            .unwrap_or_else(|| format!("eval-{}", case.id));
        let inbound = Inbound {
            user_id: user.clone(),
            user_name: user.clone(),
            channel_id: None,
            guild_id: None,
            text: case.question.clone(),
            kind: InboundKind::Terminal,
            role: Role::Customer,
        };
        let started = Instant::now();
        let reply = assistant.handle(inbound).await.shown_text().await;
        let elapsed = started.elapsed();
        let mut handed_off = false;
        while let Ok(event) = events.try_recv() {
            if let ModeratorEvent::Handoff { user_id, .. } = event {
                handed_off |= user_id == user;
            }
        }
        results.push(CaseResult {
            failures: judge(case, &reply, handed_off),
            case: case.clone(),
            reply,
            handed_off,
            elapsed,
        });
    }
    AnswersReport { results }
}

/// The results of a run.
#[derive(Debug, Clone)]
pub struct AnswersReport {
    /// One result per case, in the file's order.
    pub results: Vec<CaseResult>,
}

impl AnswersReport {
    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    /// passed / total (0 for no cases).
    pub fn score(&self) -> f64 {
        if self.results.is_empty() {
            0.0
        } else {
            self.passed() as f64 / self.results.len() as f64
        }
    }
}

impl fmt::Display for AnswersReport {
    /// Each failure with its reply, a table per category, and last the line
    /// `answers: X (passed/total)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut categories: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for result in &self.results {
            let entry = categories.entry(&result.case.category).or_default();
            entry.1 += 1;
            if result.passed() {
                entry.0 += 1;
            } else {
                let reply: String = result
                    .reply
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                writeln!(
                    f,
                    "FAIL {} [{}] {:?}: {}\n     reply: {}",
                    result.case.id,
                    result.case.category,
                    result.case.question,
                    result.failures.join("; "),
                    reply.chars().take(300).collect::<String>()
                )?;
            }
        }
        writeln!(f, "{:<18} {:>6} {:>6}", "category", "passed", "total")?;
        for (category, (passed, total)) in &categories {
            writeln!(f, "{category:<18} {passed:>6} {total:>6}")?;
        }
        let mut times: Vec<Duration> = self.results.iter().map(|r| r.elapsed).collect();
        times.sort();
        if let Some(median) = times.get(times.len() / 2) {
            writeln!(
                f,
                "median time per question: {:.1} ms",
                median.as_secs_f64() * 1e3
            )?;
        }
        write!(
            f,
            "answers: {:.3} ({}/{})",
            self.score(),
            self.passed(),
            self.results.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(expect: Expect, include: &[&str], exclude: &[&str]) -> AnswerCase {
        AnswerCase {
            id: "c".into(),
            category: "test".into(),
            user: None,
            question: "q".into(),
            expect,
            must_include: include.iter().map(|s| s.to_string()).collect(),
            must_not_include: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn judging_checks_outcome_alternatives_and_exclusions() {
        let answer = case(Expect::Answer, &["photo", "replace|refund"], &["not sure"]);
        assert!(judge(&answer, "Refunded at our cost; a PHOTO is enough.", false).is_empty());
        assert_eq!(judge(&answer, "A photo is enough.", false).len(), 1);
        assert_eq!(judge(&answer, "photo, refund", true).len(), 1);
        assert_eq!(
            judge(&answer, "photo, refund; I'm not sure", false).len(),
            1
        );
        let handoff = case(Expect::Handoff, &[], &[]);
        assert!(judge(&handoff, "anything", true).is_empty());
        assert_eq!(judge(&handoff, "anything", false).len(), 1);
    }

    #[test]
    fn cases_parse_with_defaults() {
        let cases = read_cases(
            "[[case]]\nid = \"a\"\ncategory = \"faq\"\nquestion = \"hi\"\nexpect = \"any\"\n",
        )
        .unwrap();
        assert_eq!(cases[0].expect, Expect::Any);
        assert!(cases[0].user.is_none());
        assert!(read_cases("[[case]]\nid = 1\n").is_err());
    }
}
