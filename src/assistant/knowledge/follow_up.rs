//! Follow-up questions: short, elliptical questions that only make sense with the customer's
//! previous question ("and how long does that take?", "what about the teapot?", "is it in
//! stock?").

use super::text::{content_words, normalise};

/// The customer's previous turn in a conversation: what they asked and what was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousTurn<'a> {
    /// The previous question, as written.
    pub question: &'a str,
    /// The answer it got, as posted.
    pub answer: &'a str,
}

/// Openings that continue the previous question.
const CONTINUATIONS: [&str; 9] = [
    "and ",
    "what about ",
    "how about ",
    "also ",
    "same for ",
    "and what about ",
    "what if ",
    "ok and ",
    "but ",
];

/// Words that point back at something said before.
const BACK_REFERENCES: [&str; 10] = [
    "it", "that", "this", "they", "them", "those", "these", "one", "ones", "there",
];

/// Whether the question points back at something said before ("it", "those", "that one").
pub(super) fn refers_back(question: &str) -> bool {
    normalise(question)
        .split(' ')
        .any(|word| BACK_REFERENCES.contains(&word))
}

/// The longest question whose back-reference is taken to point at the previous turn: "how
/// much does it hold, and what's the price?" (9 words) does; a longer question usually says
/// what "it" is.
const BACK_REFERENCE_WORDS: usize = 10;

/// Whether the question leans on the previous one: it opens like a continuation, refers back
/// ("it", "that", "those") in at most [`BACK_REFERENCE_WORDS`] words, or is a fragment of at
/// most two topic words.
pub(super) fn is_elliptical(question: &str) -> bool {
    let normalised = normalise(question);
    let padded = format!("{normalised} ");
    if CONTINUATIONS
        .iter()
        .any(|opening| padded.starts_with(opening))
    {
        return true;
    }
    let words: Vec<&str> = normalised.split(' ').collect();
    if words.len() <= BACK_REFERENCE_WORDS && words.iter().any(|w| BACK_REFERENCES.contains(w)) {
        return true;
    }
    let topic_words = content_words(question).len();
    words.len() <= 4 && topic_words <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elliptical_questions_are_recognised() {
        for question in [
            "and how long does that take?",
            "what about the teapot?",
            "is it in stock?",
            "how much?",
            "and express?",
            "how much does it hold, and whats the price?",
        ] {
            assert!(is_elliptical(question), "{question}");
        }
        for question in [
            "How long does standard delivery to Belgium take?",
            "Which payment methods do you accept for orders from Norway?",
            "I ordered it on Monday and it still has not arrived, where is my parcel now?",
        ] {
            assert!(!is_elliptical(question), "{question}");
        }
    }
}
