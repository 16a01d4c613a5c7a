//! `shopkeep eval intents`: how well questions are routed to the right knowledge entry,
//! measured on a labelled CSV (`utterance,intent` columns, e.g. Bitext's dev.csv).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use crate::assistant::knowledge::{DatasetPhrasing, Knowledge, Method};

/// Accuracy of one intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntentScore {
    /// Utterances of this intent routed to it.
    pub correct: usize,
    /// Utterances of this intent.
    pub total: usize,
}

/// The result of an evaluation run.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentReport {
    /// Utterances evaluated.
    pub total: usize,
    /// Utterances routed to their own intent.
    pub correct: usize,
    /// The same, per intent (by the dataset's intent name).
    pub per_intent: BTreeMap<String, IntentScore>,
    /// (expected, predicted) -> count, for wrong predictions only.
    pub confusions: BTreeMap<(String, String), usize>,
    /// Mean wall time to rank one utterance, in microseconds.
    pub micros_per_question: f64,
}

impl IntentReport {
    /// correct / total (0 for an empty set).
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Routes each example to the best FAQ entry and compares that entry's intent with the
/// label. An entry without an intent, or no entry at all, predicts "(none)".
pub fn evaluate_intents(
    knowledge: &Knowledge,
    examples: &[DatasetPhrasing],
    method: Method,
) -> IntentReport {
    let mut per_intent: BTreeMap<String, IntentScore> = BTreeMap::new();
    let mut confusions = BTreeMap::new();
    let mut correct = 0;
    let started = Instant::now();
    for example in examples {
        let predicted = knowledge
            .best_entry(&example.utterance, method)
            .and_then(|(entry, _)| entry.intent.clone())
            .unwrap_or_else(|| "(none)".to_string());
        let score = per_intent.entry(example.intent.clone()).or_default();
        score.total += 1;
        if predicted == example.intent {
            score.correct += 1;
            correct += 1;
        } else {
            *confusions
                .entry((example.intent.clone(), predicted))
                .or_insert(0) += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    IntentReport {
        total: examples.len(),
        correct,
        per_intent,
        confusions,
        micros_per_question: if examples.is_empty() {
            0.0
        } else {
            elapsed * 1e6 / examples.len() as f64
        },
    }
}

impl fmt::Display for IntentReport {
    /// Per-intent accuracy, the ten most frequent confusions, timing, and as the last line
    /// `accuracy: 0.XXX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<28} {:>8} {:>6}", "intent", "correct", "acc")?;
        for (intent, score) in &self.per_intent {
            let accuracy = score.correct as f64 / score.total.max(1) as f64;
            writeln!(
                f,
                "{intent:<28} {:>4}/{:<3} {accuracy:>6.3}",
                score.correct, score.total
            )?;
        }
        let mut confusions: Vec<_> = self.confusions.iter().collect();
        confusions.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        writeln!(f, "top confusions (expected -> predicted):")?;
        if confusions.is_empty() {
            writeln!(f, "  none")?;
        }
        for ((expected, predicted), count) in confusions.into_iter().take(10) {
            writeln!(f, "  {count:>3}  {expected} -> {predicted}")?;
        }
        writeln!(
            f,
            "questions: {}, time per question: {:.1} µs",
            self.total, self.micros_per_question
        )?;
        write!(f, "accuracy: {:.3}", self.accuracy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::knowledge::{FaqEntry, KnowledgeSources, RoutingSettings};

    fn entry(id: &str, intent: &str, question: &str) -> FaqEntry {
        FaqEntry {
            id: id.into(),
            intent: Some(intent.into()),
            question: question.into(),
            answer: "a".into(),
            examples: vec![],
            tags: vec![],
            link: None,
            policies: vec![],
            handoff: false,
        }
    }

    fn example(utterance: &str, intent: &str) -> DatasetPhrasing {
        DatasetPhrasing {
            utterance: utterance.into(),
            intent: intent.into(),
        }
    }

    #[test]
    fn counts_hits_and_confusions() {
        let knowledge = Knowledge::build(KnowledgeSources {
            faq: vec![
                entry("track", "track_order", "where is my order"),
                entry("refund", "get_refund", "I want a refund"),
            ],
            routing: RoutingSettings::default(),
            ..KnowledgeSources::default()
        })
        .unwrap();
        let examples = [
            example("where is my order now", "track_order"),
            example("refund please", "get_refund"),
            example("i want my order refunded", "cancel_order"),
        ];
        let report = evaluate_intents(&knowledge, &examples, Method::default());
        assert_eq!((report.correct, report.total), (2, 3));
        assert_eq!(
            report.per_intent["cancel_order"],
            IntentScore {
                correct: 0,
                total: 1
            }
        );
        assert_eq!(report.confusions.len(), 1);
        let text = report.to_string();
        assert!(text.lines().last().unwrap() == "accuracy: 0.667", "{text}");
    }
}
