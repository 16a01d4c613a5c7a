//! Reading a customer's question before it is routed: which language it is in
//! ([`language`]), what it asks about a product or price ([`cues`]), and whether the whole
//! message is small talk ([`small_talk`]). Pure functions over the text; no knowledge, no model.

mod cue_phrases;
pub mod cues;
pub mod language;
mod price_bounds;
pub mod small_talk;
mod typos;

pub use cues::{cues, cues_in, Cues};
pub use language::{detect, Lang};
pub use small_talk::{small_talk, SmallTalk};

use std::collections::HashMap;

/// Lower-case `text` and replace the accented Latin letters of German, French and Spanish
/// by their plain forms (`ß` becomes `ss`, `œ` becomes `oe`), so "Cuánto" and "cuanto" or
/// "coûte" and "coute" compare equal. Other characters are kept as they are.
pub(crate) fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => folded.push('a'),
            'ç' => folded.push('c'),
            'è' | 'é' | 'ê' | 'ë' => folded.push('e'),
            'ì' | 'í' | 'î' | 'ï' => folded.push('i'),
            'ñ' => folded.push('n'),
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => folded.push('o'),
            'ù' | 'ú' | 'û' | 'ü' => folded.push('u'),
            'ÿ' => folded.push('y'),
            'ß' => folded.push_str("ss"),
            'œ' => folded.push_str("oe"),
            'æ' => folded.push_str("ae"),
            '’' | '‘' | '`' | '´' => folded.push('\''),
            other => folded.push(other),
        }
    }
    folded
}

/// Whether `c` is a Chinese character or Japanese kana, which are written without spaces
/// and so are treated one character at a time.
pub(crate) fn is_cjk(c: char) -> bool {
    is_han(c) || is_kana(c)
}

/// Hiragana, katakana (full and half width) and the prolonged sound mark.
pub(crate) fn is_kana(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{309F}' | '\u{30A0}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{FF66}'..='\u{FF9F}')
}

/// CJK unified ideographs (Chinese characters, also Japanese kanji).
pub(crate) fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2A6DF}')
}

/// French words that end in an apostrophe and join the next word ("l'article", "jusqu'à").
const FRENCH_ELISIONS: [&str; 12] = [
    "l", "d", "j", "qu", "c", "n", "s", "m", "t", "jusqu", "lorsqu", "puisqu",
];

/// The words of `text` after [`fold`]: runs of letters and digits, apostrophes dropped
/// inside a word ("what's" is "whats") except after a French elision ("jusqu'à" is
/// "jusqu", "a"), and every Chinese or Japanese character a word of
/// its own.
pub(crate) fn words(text: &str) -> Vec<String> {
    let folded = fold(text);
    let mut words = Vec::new();
    let mut current = String::new();
    for c in folded.chars() {
        if is_cjk(c) {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            words.push(c.to_string());
        } else if c.is_alphanumeric() {
            current.push(c);
        } else if c == '\'' && !current.is_empty() {
            if FRENCH_ELISIONS.contains(&current.as_str()) {
                words.push(std::mem::take(&mut current));
            }
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// A list of phrases (space-separated, already folded) indexed by first word, so that
/// matching a question against it costs one lookup per word of the question, however long
/// the list.
pub(crate) struct Phrases {
    by_first: HashMap<&'static str, Vec<&'static str>>,
}

impl Phrases {
    /// Indexes `phrases`.
    pub(crate) fn new(phrases: &[&'static str]) -> Phrases {
        let mut by_first: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for &phrase in phrases {
            let first = phrase.split(' ').next().unwrap_or_default();
            by_first.entry(first).or_default().push(phrase);
        }
        Phrases { by_first }
    }

    /// Whether `words` contains one of the phrases as consecutive words.
    pub(crate) fn any_in(&self, words: &[String]) -> bool {
        words.iter().enumerate().any(|(start, word)| {
            self.by_first.get(word.as_str()).is_some_and(|phrases| {
                phrases
                    .iter()
                    .any(|phrase| phrase_positions(&words[start..], phrase).next() == Some(0))
            })
        })
    }
}

/// Start indices in `words` where `phrase` (space-separated, already folded) begins.
pub(crate) fn phrase_positions<'a>(
    words: &'a [String],
    phrase: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    let length = phrase.split(' ').count();
    let first = phrase.split(' ').next().unwrap_or_default();
    (0..words.len()).filter(move |&start| {
        words[start] == first
            && start + length <= words.len()
            && phrase
                .split(' ')
                .zip(&words[start..])
                .all(|(part, word)| part == word.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_removes_accents_and_case() {
        assert_eq!(fold("¿Cuánto cuesta?"), "¿cuanto cuesta?");
        assert_eq!(fold("Größe Coûte Œuvre"), "grosse coute oeuvre");
    }

    #[test]
    fn words_split_latin_runs_and_single_cjk_characters() {
        assert_eq!(words("What's the price?"), ["whats", "the", "price"]);
        assert_eq!(words("Sencha多少钱"), ["sencha", "多", "少", "钱"]);
        assert_eq!(
            words("jusqu'à 10 €, c'est"),
            ["jusqu", "a", "10", "c", "est"]
        );
        assert_eq!(words("I don't"), ["i", "dont"]);
    }

    #[test]
    fn a_phrase_list_matches_like_each_of_its_phrases() {
        let list = Phrases::new(&["how much", "price", "in stock", "how"]);
        for (text, expected) in [
            ("how much is the mug", true),
            ("what is the price", true),
            ("is it in stock", true),
            ("in the stock room", false),
            ("showcase", false),
            ("and how", true),
            ("", false),
        ] {
            assert_eq!(list.any_in(&words(text)), expected, "{text:?}");
        }
    }

    #[test]
    fn phrases_match_whole_words_only() {
        let text = words("how much is the mug");
        assert_eq!(phrase_positions(&text, "how much").collect::<Vec<_>>(), [0]);
        assert_eq!(phrase_positions(&text, "much mug").next(), None);
        assert_eq!(phrase_positions(&words("showcase"), "how").next(), None);
    }
}
