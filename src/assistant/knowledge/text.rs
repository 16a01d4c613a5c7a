//! Text normalisation and the hashed features that lexical matching uses.

use std::collections::HashMap;

/// English idioms whose words mean something else on their own, with a plain wording: "torn
/// between the teapots" is a choice, not damage ("torn" is a synonym of "broken").
const IDIOMS: [(&str, &str); 3] = [
    ("torn between", "choosing between"),
    ("dying to", "keen to"),
    ("killing it", "doing well"),
];

/// `text` with [`IDIOMS`] in plain words (whole words, any case).
pub(super) fn without_idioms(text: &str) -> String {
    let mut plain = text.to_string();
    for (idiom, meaning) in IDIOMS {
        let lower = plain.to_lowercase();
        if lower.len() != plain.len() {
            continue;
        }
        let mut from = 0;
        let mut rewritten = String::with_capacity(plain.len());
        while let Some(at) = lower[from..].find(idiom).map(|at| at + from) {
            let end = at + idiom.len();
            let whole_word = !lower[..at].ends_with(char::is_alphanumeric)
                && !lower[end..].starts_with(char::is_alphanumeric);
            rewritten.push_str(&plain[from..at]);
            rewritten.push_str(if whole_word { meaning } else { &plain[at..end] });
            from = end;
        }
        rewritten.push_str(&plain[from..]);
        plain = rewritten;
    }
    plain
}

/// Lowercases, drops apostrophes, turns other punctuation into spaces, drops long digit
/// runs (order numbers carry no meaning for matching) and collapses whitespace.
pub fn normalise(text: &str) -> String {
    normalise_mapped(text).0
}

/// [`normalise`], plus for every byte of the result the byte range in `text` of the
/// character it came from (a separating space gets the range of the character after it).
pub(crate) fn normalise_mapped(text: &str) -> (String, Vec<(usize, usize)>) {
    // Words of the result, each with the source range of every byte.
    let mut words: Vec<(String, Vec<(usize, usize)>)> = Vec::new();
    let mut word = String::new();
    let mut spans = Vec::new();
    for (at, c) in text.char_indices() {
        if c == '\'' || c == '’' {
            continue;
        }
        if c.is_alphanumeric() {
            let span = (at, at + c.len_utf8());
            for lower in c.to_lowercase() {
                word.push(lower);
                spans.extend(std::iter::repeat_n(span, lower.len_utf8()));
            }
        } else if !word.is_empty() {
            words.push((std::mem::take(&mut word), std::mem::take(&mut spans)));
        }
    }
    if !word.is_empty() {
        words.push((word, spans));
    }
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len());
    let long_number = |w: &str| w.len() >= 3 && w.bytes().all(|b| b.is_ascii_digit());
    for (word, spans) in words.into_iter().filter(|(w, _)| !long_number(w)) {
        if !out.is_empty() {
            out.push(' ');
            map.push(spans[0]);
        }
        out.push_str(&word);
        map.extend(spans);
    }
    (out, map)
}

/// A light English stem: strips a plural "s" ("orders" -> "order").
pub(crate) fn stem(word: &str) -> String {
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        word[..word.len() - 1].to_string()
    } else {
        word.to_string()
    }
}

/// Words and word pairs, or character n-grams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeatureKind {
    Word,
    Chars,
}

/// Calls `emit` with the kind and hashed key of every feature of the text (each word
/// replaced by its canonical synonym first): word unigrams, word bigrams and character 3-5-grams of each word padded with spaces.
pub(crate) fn for_each_feature(
    text: &str,
    synonyms: &HashMap<String, String>,
    mut emit: impl FnMut(FeatureKind, u64),
) {
    let normalised = normalise(text);
    let words: Vec<&str> = normalised
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| synonyms.get(w).map(String::as_str).unwrap_or(w))
        .collect();
    for (position, word) in words.iter().enumerate() {
        emit(FeatureKind::Word, hash_feature(b'w', &[word.as_bytes()]));
        if let Some(next) = words.get(position + 1) {
            let pair = [word.as_bytes(), b" ", next.as_bytes()];
            emit(FeatureKind::Word, hash_feature(b'b', &pair));
        }
        let padded: Vec<char> = std::iter::once(' ')
            .chain(word.chars())
            .chain(std::iter::once(' '))
            .collect();
        for n in 3..=5 {
            if padded.len() < n {
                break;
            }
            for window in padded.windows(n) {
                let gram: String = window.iter().collect();
                emit(FeatureKind::Chars, hash_feature(b'c', &[gram.as_bytes()]));
            }
        }
    }
}

/// FNV-1a over a kind byte and the parts.
pub(crate) fn hash_feature(kind: u8, parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |byte: u8| {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(kind);
    for part in parts {
        for &byte in *part {
            feed(byte);
        }
    }
    hash
}

/// True for Chinese, Japanese and Korean characters, which are written without spaces.
pub(super) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF)
}

/// English words that carry no topic: function words, question words, politeness and chat
/// filler, and the words of catalogue questions themselves ("price", "cheapest").
const FILLER_WORDS: &[&str] = &[
    "a",
    "able",
    "about",
    "above",
    "abt",
    "actually",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anything",
    "are",
    "as",
    "at",
    "atm",
    "availability",
    "available",
    "bag",
    "bags",
    "bc",
    "be",
    "been",
    "below",
    "best",
    "better",
    "between",
    "both",
    "bought",
    "bout",
    "btw",
    "but",
    "buy",
    "buying",
    "by",
    "can",
    "carry",
    "cheap",
    "cheapest",
    "compare",
    "cost",
    "costs",
    "could",
    "currently",
    "cuz",
    "da",
    "dat",
    "dear",
    "describe",
    "detail",
    "details",
    "did",
    "difference",
    "dis",
    "do",
    "does",
    "doesnt",
    "dont",
    "dunno",
    "each",
    "eur",
    "euro",
    "euros",
    "exactly",
    "expensive",
    "flavor",
    "flavors",
    "flavour",
    "flavours",
    "for",
    "friend",
    "from",
    "get",
    "give",
    "gonna",
    "good",
    "got",
    "gotta",
    "guys",
    "hav",
    "have",
    "hello",
    "help",
    "here",
    "hey",
    "hi",
    "how",
    "hv",
    "i",
    "id",
    "idk",
    "if",
    "im",
    "in",
    "info",
    "information",
    "into",
    "is",
    "it",
    "its",
    "ive",
    "just",
    "kind",
    "know",
    "left",
    "less",
    "like",
    "looking",
    "lot",
    "love",
    "loves",
    "made",
    "many",
    "maybe",
    "me",
    "more",
    "most",
    "much",
    "my",
    "need",
    "new",
    "nice",
    "no",
    "not",
    "now",
    "of",
    "offer",
    "ok",
    "okay",
    "on",
    "one",
    "ones",
    "option",
    "options",
    "or",
    "order",
    "ordered",
    "our",
    "pack",
    "packs",
    "please",
    "pls",
    "plz",
    "possible",
    "ppl",
    "price",
    "priced",
    "prices",
    "r",
    "really",
    "recommend",
    "recommendation",
    "right",
    "rn",
    "sell",
    "selling",
    "shop",
    "should",
    "smth",
    "so",
    "some",
    "someone",
    "something",
    "sort",
    "sth",
    "still",
    "stock",
    "store",
    "suggest",
    "tell",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "this",
    "tho",
    "those",
    "thx",
    "to",
    "too",
    "ty",
    "type",
    "u",
    "under",
    "up",
    "ur",
    "us",
    "versus",
    "very",
    "vs",
    "wanna",
    "want",
    "was",
    "wat",
    "wats",
    "we",
    "well",
    "were",
    "what",
    "whats",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "wut",
    "y",
    "ya",
    "yo",
    "you",
    "your",
    "yours",
];

/// The words of a question that carry its topic: normalised, plural "s" stripped, filler and
/// numbers dropped.
pub(super) fn content_words(text: &str) -> Vec<String> {
    normalise(text)
        .split(' ')
        .filter(|w| !w.is_empty() && !w.bytes().all(|b| b.is_ascii_digit()))
        .filter(|w| !FILLER_WORDS.contains(w))
        .map(stem)
        .filter(|w| !FILLER_WORDS.contains(&w.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idioms_are_reworded_as_whole_words_only() {
        assert_eq!(
            without_idioms("Torn between the teapot and the kyusu"),
            "choosing between the teapot and the kyusu"
        );
        assert_eq!(
            without_idioms("the bag was torn open"),
            "the bag was torn open"
        );
        assert_eq!(without_idioms("unforetorn betweenx"), "unforetorn betweenx");
        assert_eq!(
            without_idioms("Café: torn between"),
            "Café: choosing between"
        );
    }
}
