//! Spelling correction against the shop's own vocabulary: a word the knowledge never uses
//! ("pakage", "retrun", "paypl") becomes the closest word it does use ("package", "return",
//! "paypal"), so retrieval and catalogue cues see what the customer meant.

use std::collections::HashMap;
use std::sync::Arc;

use super::distance::{edit_distance_within, LetterCounts};
use super::text::normalise;
use crate::engine::TextEmbedder;

/// Words shorter than this are never corrected ("hw", "til", "u").
const MIN_LENGTH: usize = 4;

/// A word is part of the vocabulary at this weight: one use in the shop's own texts (weight
/// 5), or several in data-set phrasings (weight 1 each), which carry customers' own typos
/// ("methds") that must not count as words.
const KNOWN_WEIGHT: u32 = 3;

/// The shop's vocabulary with how often each word occurs.
#[derive(Clone, Default)]
pub(super) struct Speller {
    counts: HashMap<String, u32>,
    /// Vocabulary words (with their letter counts) by length in characters, for quick
    /// candidate lookup.
    by_length: HashMap<usize, Vec<(String, LetterCounts)>>,
    /// Knows common words of the language, which are never "corrected" ("exactly" is not
    /// a misspelt "exact").
    common: Option<Arc<dyn TextEmbedder>>,
}

impl std::fmt::Debug for Speller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speller")
            .field("words", &self.counts.len())
            .finish()
    }
}

impl Speller {
    /// Learns the words of `texts` (normalised), each text with a weight (how much its
    /// words count when two corrections tie); `common` knows the language's common words.
    pub(super) fn learn<'a>(
        texts: impl IntoIterator<Item = (&'a str, u32)>,
        common: Option<Arc<dyn TextEmbedder>>,
    ) -> Speller {
        let mut counts: HashMap<String, u32> = HashMap::new();
        for (text, weight) in texts {
            for word in normalise(text).split(' ').filter(|w| !w.is_empty()) {
                *counts.entry(word.to_string()).or_insert(0) += weight;
            }
        }
        let mut by_length: HashMap<usize, Vec<(String, LetterCounts)>> = HashMap::new();
        counts.retain(|_, count| *count >= KNOWN_WEIGHT);
        for word in counts.keys() {
            by_length
                .entry(word.chars().count())
                .or_default()
                .push((word.clone(), LetterCounts::of(word)));
        }
        for words in by_length.values_mut() {
            words.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Speller {
            counts,
            by_length,
            common,
        }
    }

    /// The text normalised, each unknown word of at least four letters replaced by the
    /// known word closest to it: one edit away for words up to six letters, two from seven;
    /// ties go to the more frequent word. Known words, numbers and words with no close
    /// match stay as they are.
    pub(super) fn correct(&self, text: &str) -> String {
        normalise(text)
            .split(' ')
            .map(|word| self.correct_word(word).unwrap_or_else(|| word.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn correct_word(&self, word: &str) -> Option<String> {
        let length = word.chars().count();
        if length < MIN_LENGTH
            || self.counts.contains_key(word)
            || !word.chars().all(char::is_alphabetic)
            || self
                .common
                .as_ref()
                .is_some_and(|model| model.knows_word(word))
        {
            return None;
        }
        let budget = if length <= 6 { 1 } else { 2 };
        let letters = LetterCounts::of(word);
        let mut best: Option<(usize, u32, &String)> = None;
        for candidate_length in length.saturating_sub(budget).max(MIN_LENGTH)..=length + budget {
            for (candidate, candidate_letters) in
                self.by_length.get(&candidate_length).into_iter().flatten()
            {
                if letters.distance_at_least(candidate_letters) > budget {
                    continue;
                }
                let Some(distance) = edit_distance_within(word, candidate, budget) else {
                    continue;
                };
                let count = self.counts[candidate];
                let better = match best {
                    None => true,
                    Some((d, c, _)) => distance < d || (distance == d && count > c),
                };
                if better {
                    best = Some((distance, count, candidate));
                }
            }
        }
        best.map(|(_, _, candidate)| candidate.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_words_become_the_closest_known_word() {
        let speller = Speller::learn(
            [
                ("Where is my package? Track the order.", 5),
                (
                    "Return policy: return within 30 days. Pay with PayPal at checkout.",
                    5,
                ),
            ],
            None,
        );
        assert_eq!(speller.correct("wher is my pakage"), "where is my package");
        assert_eq!(speller.correct("retrun polcy?"), "return policy");
        assert_eq!(
            speller.correct("cn i use paypl at chekout"),
            "cn i use paypal at checkout"
        );
        assert_eq!(speller.correct("ordr 12345 zurich"), "order zurich");
    }

    #[test]
    fn a_rare_typo_in_the_phrasings_is_not_a_word() {
        let speller = Speller::learn(
            [
                ("Which payment methods do you accept?", 5),
                ("what payment methds can I use", 1),
            ],
            None,
        );
        assert_eq!(speller.correct("payment methds"), "payment methods");
    }
}
