//! Phrases the shop never wants posted, matched case-insensitively and compiled once when
//! the guard rules load, not per reply.

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Finding, Rule};

/// The `blocked_phrases` of guard.toml: a list of phrases in the file, each compiled to a
/// case-insensitive literal pattern. Blank phrases are kept in the list but match nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct BlockedPhrases {
    phrases: Vec<String>,
    patterns: Vec<(String, Regex)>,
}

impl From<Vec<String>> for BlockedPhrases {
    fn from(phrases: Vec<String>) -> Self {
        let patterns = phrases
            .iter()
            .filter(|phrase| !phrase.trim().is_empty())
            .map(|phrase| {
                let pattern = Regex::new(&format!("(?i){}", regex::escape(phrase)))
                    .expect("an escaped phrase is a valid regex");
                (phrase.clone(), pattern)
            })
            .collect();
        Self { phrases, patterns }
    }
}

impl From<BlockedPhrases> for Vec<String> {
    fn from(blocked: BlockedPhrases) -> Self {
        blocked.phrases
    }
}

impl PartialEq for BlockedPhrases {
    fn eq(&self, other: &Self) -> bool {
        self.phrases == other.phrases
    }
}

impl BlockedPhrases {
    /// The phrases as written in guard.toml.
    pub fn phrases(&self) -> &[String] {
        &self.phrases
    }

    /// `text` with every case-insensitive occurrence of each phrase replaced by
    /// `replacement`; one [`Rule::BlockedPhrase`] finding per phrase that occurred.
    pub fn replace(&self, text: &str, replacement: &str, findings: &mut Vec<Finding>) -> String {
        let mut text = text.to_string();
        for (phrase, pattern) in &self.patterns {
            if pattern.is_match(&text) {
                findings.push(Finding {
                    rule: Rule::BlockedPhrase,
                    detail: phrase.clone(),
                });
                text = pattern.replace_all(&text, replacement).into_owned();
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_replaced_in_any_case_and_each_is_reported_once() {
        let blocked = BlockedPhrases::from(vec![
            "free forever".to_string(),
            "  ".to_string(),
            "100% guaranteed".to_string(),
        ]);
        let mut findings = Vec::new();
        let text = blocked.replace(
            "Guaranteed FREE forever, free Forever, and 100% Guaranteed.",
            "[removed]",
            &mut findings,
        );
        assert_eq!(text, "Guaranteed [removed], [removed], and [removed].");
        let details: Vec<_> = findings.iter().map(|f| f.detail.as_str()).collect();
        assert_eq!(details, ["free forever", "100% guaranteed"]);
    }

    #[test]
    fn the_list_reads_and_writes_as_plain_strings() {
        #[derive(Deserialize, Serialize)]
        struct File {
            blocked_phrases: BlockedPhrases,
        }
        let file: File = toml::from_str(r#"blocked_phrases = ["a.b", "x"]"#).unwrap();
        assert_eq!(file.blocked_phrases.phrases(), ["a.b", "x"]);
        let mut findings = Vec::new();
        assert_eq!(
            file.blocked_phrases.replace("a-b a.b", "_", &mut findings),
            "a-b _"
        );
        let written = toml::to_string(&file).unwrap();
        assert!(
            written.contains(r#"blocked_phrases = ["a.b", "x"]"#),
            "{written}"
        );
    }
}
