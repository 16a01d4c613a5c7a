//! The check a model's free-text reply to a general question or small talk must pass before
//! a customer sees it. A small model drifts: it plays a person with a life ("welcome to my
//! humble abode"), invents shop facts (prices, discounts, delivery times), loops, or
//! trails off into fragments. A reply that fails is replaced by a template; the check only
//! says why.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::assistant::question::{detect, small_talk, Lang, SmallTalk};

/// Why a model reply must not reach a customer, in the order [`check_reply`] tests them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyProblem {
    /// No letters at all.
    Empty,
    /// Longer than a brief answer ([`MAX_REPLY_CHARS`]).
    TooLong,
    /// The same words or sentences over and over.
    Repetitive,
    /// Not the shop's assistant: claims to be a person, talks about its own life or home,
    /// or about being a language model.
    OffPersona,
    /// States shop facts no model may state: prices, discounts, orders, shipping promises,
    /// delivery times, or what kind of business the shop is.
    ShopClaim,
    /// Not in English (the prompt and the fallback templates are).
    NotEnglish,
    /// Not readable text: markup or prompt leftovers, an echo of the question instead of
    /// an answer, mostly non-words, unbalanced brackets, or a sentence left unfinished.
    Incoherent,
    /// The question asks for live information (the weather, the time or date, news) that a
    /// model without tools cannot know, so any answer is made up.
    Unknowable,
}

/// A general answer or small-talk reply longer than this (about two sentences) is not
/// brief. Measured on the default 135M model (tests/data/model_replies.toml): of its
/// replies over this length after trimming, all but one were rambling or wrong.
pub const MAX_REPLY_CHARS: usize = 240;

/// Whether `reply`, the model's answer to `question`, may be shown to a customer. `reply` is
/// the text the customer would see: trim an unfinished last sentence with
/// [`complete_sentences`] first. The first problem found is returned.
pub fn check_reply(question: &str, reply: &str) -> Result<(), ReplyProblem> {
    let reply = reply.trim();
    if !reply.chars().any(char::is_alphabetic) {
        return Err(ReplyProblem::Empty);
    }
    if asks_live_information(question) {
        return Err(ReplyProblem::Unknowable);
    }
    if reply.chars().count() > MAX_REPLY_CHARS {
        return Err(ReplyProblem::TooLong);
    }
    let words = lower_words(reply);
    if is_repetitive(reply, &words) {
        return Err(ReplyProblem::Repetitive);
    }
    if is_off_persona(reply) {
        return Err(ReplyProblem::OffPersona);
    }
    if makes_shop_claim(question, reply) {
        return Err(ReplyProblem::ShopClaim);
    }
    if is_not_english(reply, &words) {
        return Err(ReplyProblem::NotEnglish);
    }
    if is_incoherent(question, reply, &words) {
        return Err(ReplyProblem::Incoherent);
    }
    Ok(())
}

/// Questions about the weather, the time or date, or the news.
static LIVE_INFORMATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(?:weather|forecast|temperature (?:today|now|outside)|what time is it|",
        r"what(?:'s| is) the time|what(?:'s| is) (?:the date|today's date)|what day is (?:it|today)|",
        r"(?:latest|today's|breaking) news|stock market|exchange rate)\b"
    ))
    .expect("live information pattern is valid")
});

fn asks_live_information(question: &str) -> bool {
    LIVE_INFORMATION.is_match(question)
}

/// `reply` without a last sentence the model did not finish (cut by the token limit), when
/// at least one finished sentence comes before it; otherwise `reply` trimmed.
pub fn complete_sentences(reply: &str) -> &str {
    let reply = reply.trim();
    if reply.ends_with(SENTENCE_ENDS) {
        return reply;
    }
    match reply.rfind(SENTENCE_ENDS) {
        Some(end) if end > 0 => {
            let end = end + reply[end..].chars().next().map_or(1, char::len_utf8);
            reply[..end].trim_end()
        }
        _ => reply,
    }
}

const SENTENCE_ENDS: [char; 6] = ['.', '!', '?', '…', '"', ')'];

fn lower_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|word| word.trim_matches('\'').to_lowercase())
        .filter(|word| !word.is_empty())
        .collect()
}

/// A word trigram repeated this often, or this share of trigrams being repeats, is a loop.
const MAX_TRIGRAM_REPEATS: usize = 3;
const MAX_REPEATED_TRIGRAM_SHARE: f32 = 0.3;
/// The same word this many times in a row ("very very very very").
const MAX_WORD_RUN: usize = 4;

fn is_repetitive(reply: &str, words: &[String]) -> bool {
    let mut run = 1;
    for pair in words.windows(2) {
        run = if pair[0] == pair[1] { run + 1 } else { 1 };
        if run >= MAX_WORD_RUN {
            return true;
        }
    }
    let mut trigrams: HashMap<&[String], usize> = HashMap::new();
    for trigram in words.windows(3) {
        *trigrams.entry(trigram).or_default() += 1;
    }
    let total = words.len().saturating_sub(2);
    let repeats: usize = trigrams.values().map(|count| count - 1).sum();
    if trigrams.values().any(|&count| count >= MAX_TRIGRAM_REPEATS)
        || (total >= 10 && repeats as f32 / total as f32 >= MAX_REPEATED_TRIGRAM_SHARE)
    {
        return true;
    }
    let mut sentences: Vec<String> = reply
        .split(['.', '!', '?', '\n'])
        .map(|sentence| lower_words(sentence).join(" "))
        .filter(|sentence| sentence.split(' ').count() >= 3)
        .collect();
    let count = sentences.len();
    sentences.sort();
    sentences.dedup();
    sentences.len() < count
}

/// Whether the reply plays someone other than the shop's assistant: a person with a job,
/// a home or a life, a language model, or a narrator who talks about "the customer".
fn is_off_persona(reply: &str) -> bool {
    let lower = reply.to_lowercase().replace('’', "'");
    if OFF_PERSONA.is_match(&lower) || ROLE_LEAK.is_match(&lower) {
        return true;
    }
    if SELF_DESCRIPTION
        .captures_iter(&lower)
        .any(|found| !ASSISTANT_WORDS.is_match(&found[1]))
    {
        return true;
    }
    lower
        .split(['.', '!', '?', '\n', ';'])
        .any(|sentence| FIRST_PERSON.is_match(sentence) && PRIVATE_LIFE.is_match(sentence))
}

/// "I am (not) a/an ..." with the words that follow, which must describe an assistant.
static SELF_DESCRIPTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bi(?:'m| am)(?: not)? (?:just |only |simply )?(?:a|an) ((?:[\w-]+ ?){1,5})")
        .expect("self description pattern is valid")
});
static ASSISTANT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:assistant|bot|chatbot|ai|helper|support|virtual)\b")
        .expect("assistant pattern is valid")
});
static FIRST_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:i|i'm|i've|i'd|me|my|mine|myself)\b").expect("first person pattern is valid")
});
/// A private life, a trade the shop does not have, and the things people do off work.
static PRIVATE_LIFE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:dinner|lunch|breakfast|drinks|party|vacation|holiday|weekend|sleep|tired|",
        r"hungry|bored|married|single|birthday|hobby|hobbies|bak(?:e|er|ery|ing)|culinary|",
        r"cooking|recipes?|chef|pastry|blogger|meals?|dish(?:es)?|tasted|salary|boss|school|",
        r"college|abode|dating|on a mission)\b"
    ))
    .expect("private life pattern is valid")
});
/// Talking about the conversation's roles or markup instead of to the customer.
static ROLE_LEAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bthe (?:customer|user|assistant|chatbot)\b|\bsystem prompt\b|</?question>")
        .expect("role leak pattern is valid")
});

/// Phrases of a model that plays a person, talks about its own life or home, or about being
/// a language model. Matched on the lower-cased reply.
static OFF_PERSONA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:",
        r"as an ai|ai language model|language model|large language|openai|chatgpt|",
        r"i(?:'m| am) (?:a |an )?(?:human|person|real person|\d+ years old)\b|",
        r"humble abode|my (?:home|house|kitchen|garden|apartment|room|life|family|",
        r"wife|husband|kids|children|son|daughter|mom|mum|dad|mother|father|parents|",
        r"friends?|boyfriend|girlfriend|dog|cat|job|boss|childhood|grandma|grandmother)\b|",
        r"i live in|i was born|when i was (?:a |young|little)|i grew up|my name is|",
        r"i(?:'m| am) (?:just )?(?:a )?little|lost in the world|",
        r"i don't have (?:personal|feelings|emotions|a body)|i cannot browse|",
        r"welcome to my|come visit me|my own (?:experience|opinion|life)",
        r")"
    ))
    .expect("persona pattern is valid")
});

/// Shop facts a model must never state on its own.
static SHOP_CLAIM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:[€$£]\s*\d|\d\s*(?:€|\$|£|euros?\b|dollars?\b|usd\b|eur\b)|",
        r"\b(?:\d+\s*%\s*off|discount|coupon|promo(?:tion)? code|voucher|free shipping|",
        r"on sale|special offer|",
        r"your order|order number|tracking number|refund|money back|",
        r"(?:will|should) (?:arrive|be delivered|ship)|ships? (?:within|in|today|tomorrow)|",
        r"deliver(?:ed|y)? (?:within|in|by)|within \d+ (?:business |working )?(?:days|hours)|",
        r"business days|working days|in stock|out of stock|family[- ]owned|small business|",
        r"founded in|established in|(?:the|a|our) (?:business|company)\b|",
        r"(?:respected|known|local|online) (?:business|company|shop|store)\b|our (?:shop|store|website|",
        r"products|prices|team|customers|policy)|we (?:sell|offer|ship|have|carry|stock)\b))"
    ))
    .expect("shop claim pattern is valid")
});

/// A claim phrase counts unless the customer's question used the same words: "what does
/// 'free shipping' mean?" may be answered with "free shipping".
fn makes_shop_claim(question: &str, reply: &str) -> bool {
    let question = question.to_lowercase();
    SHOP_CLAIM
        .find_iter(&reply.to_lowercase())
        .any(|claim| !question.contains(claim.as_str().trim()))
}

/// Replies in another language, or English with whole phrases of another one ("Le Coeur
/// de la France"): at least [`MIN_FOREIGN_WORDS`] function words of German, French or
/// Spanish that are not English words, making up [`MIN_FOREIGN_SHARE`] of the reply.
fn is_not_english(reply: &str, words: &[String]) -> bool {
    if detect(reply) != Lang::En {
        return true;
    }
    let foreign = words
        .iter()
        .filter(|word| FOREIGN_FUNCTION_WORDS.contains(&word.as_str()))
        .count();
    foreign >= MIN_FOREIGN_WORDS && foreign as f32 >= MIN_FOREIGN_SHARE * words.len() as f32
}

const MIN_FOREIGN_WORDS: usize = 3;
const MIN_FOREIGN_SHARE: f32 = 0.15;
const FOREIGN_FUNCTION_WORDS: &[&str] = &[
    "le", "la", "les", "de", "du", "des", "est", "une", "et", "el", "los", "las", "es", "y", "una",
    "der", "die", "das", "und", "ist", "ein", "eine", "mit", "für", "avec", "pour", "dans", "con",
    "por", "para", "del", "il", "di", "che",
];

/// Text that should never be in a reply: prompt markup, code, links, role labels, and the
/// quiz framing ("The correct answer is: ...", "A fun fact is: ...") the small model falls
/// into when it has misread the question.
static LEFTOVERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)<\|?/?(?:im_start|im_end|endoftext|question|system|user|assistant)\|?>?|</?\w+>|^\s*<|```|\bthe correct answer (?:is|would be)\b|\b(?:is|are|would be): |\{\{|\}\}|https?://|(?:^|\n)\s*(?:user|assistant|system|customer|question|answer|q|a)\s*:",
    )
    .expect("leftover pattern is valid")
});

/// More than this share of words that are not words (no vowel, digits inside letters,
/// over 20 letters) makes a reply unreadable.
const MAX_NON_WORD_SHARE: f32 = 0.25;

fn is_incoherent(question: &str, reply: &str, words: &[String]) -> bool {
    if LEFTOVERS.is_match(reply) || echoes(question, words) {
        return true;
    }
    if words.len() > MAX_UNFINISHED_WORDS && !reply.trim_end().ends_with(FINISHED_ENDS) {
        return true;
    }
    if words.len() >= MIN_WORDS_FOR_A_VERB
        && !reply.ends_with('?')
        && !words.iter().any(|word| is_common_verb(word))
    {
        return true;
    }
    let non_words = words.iter().filter(|word| !looks_like_word(word)).count();
    if !words.is_empty() && non_words as f32 / words.len() as f32 > MAX_NON_WORD_SHARE {
        return true;
    }
    let symbols = reply
        .chars()
        .filter(|c| !(c.is_alphanumeric() || c.is_whitespace() || ".,!?'\"-:;()’".contains(*c)))
        .count();
    if symbols * 10 > reply.chars().count() {
        return true;
    }
    unbalanced(reply, '(', ')') || unbalanced(reply, '[', ']')
}

/// A reply of this many words needs a verb: without one it is a fragment ("A common
/// misinterpretation of the equation 2 + 2.") rather than an answer. A question back
/// ("A book? What kind of book?") may be elliptical.
const MIN_WORDS_FOR_A_VERB: usize = 5;

/// Auxiliaries, contractions, the commonest verbs, and words with a verb's ending ("-s",
/// "-ed", "-ing"; plural nouns pass too, which keeps the rule lenient): nearly every English
/// sentence or line of verse has one.
fn is_common_verb(word: &str) -> bool {
    const VERBS: &[&str] = &[
        "is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had", "do",
        "does", "did", "can", "could", "will", "would", "shall", "should", "may", "might", "must",
        "need", "let", "make", "makes", "made", "get", "gets", "got", "go", "goes", "went", "come",
        "comes", "came", "take", "takes", "took", "see", "know", "think", "say", "says", "said",
        "give", "gives", "try", "like", "love", "want", "help", "enjoy", "hope", "thank", "thanks",
        "brings", "means", "became", "called", "known",
    ];
    VERBS.contains(&word)
        || ["'s", "'re", "'m", "'ll", "'ve", "'d", "n't"]
            .iter()
            .any(|ending| word.ends_with(ending))
        || (word.len() >= 4
            && ["s", "ed", "ing"]
                .iter()
                .any(|ending| word.ends_with(ending)))
}

/// A reply this long must end like a finished sentence (a short one may be a phrase).
const MAX_UNFINISHED_WORDS: usize = 8;
const FINISHED_ENDS: [char; 9] = ['.', '!', '?', '…', '"', ')', '*', ':', '\''];

/// Whether the reply repeats the question instead of answering it: it contains the whole
/// question (three words or more), or it is short and every word of it is the question's,
/// with "I" and "you" swapped ("How am I today?" for "how are you today?"). Returning a
/// greeting, thanks or goodbye ("Good morning!") is a reply, not an echo.
fn echoes(question: &str, words: &[String]) -> bool {
    let question_words: Vec<String> = lower_words(question)
        .into_iter()
        .map(|word| word.replace('\'', ""))
        .collect();
    let greets = matches!(
        small_talk(question),
        Some(SmallTalk::Greeting | SmallTalk::Thanks | SmallTalk::Goodbye)
    );
    if words.is_empty() || greets {
        return false;
    }
    let reply_words: Vec<String> = words.iter().map(|word| word.replace('\'', "")).collect();
    if question_words.len() >= 3
        && reply_words
            .windows(question_words.len())
            .any(|window| window == question_words.as_slice())
    {
        return true;
    }
    let swapped = |word: &str| -> String {
        match word {
            "i" | "me" => "you",
            "my" => "your",
            "am" => "are",
            "im" => "youre",
            other => other,
        }
        .to_string()
    };
    reply_words.len() <= question_words.len() + 2
        && reply_words
            .iter()
            .all(|word| question_words.contains(&swapped(word)) || question_words.contains(word))
}

fn looks_like_word(word: &str) -> bool {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    if letters == 0 {
        return true;
    }
    if digits > 0 && !ORDINAL.is_match(word) {
        return false;
    }
    letters <= 20
        && (letters <= 3
            || word
                .chars()
                .any(|c| "aeiouyáéíóúäöüàèìòù".contains(c.to_ascii_lowercase())))
}

static ORDINAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d+(?:st|nd|rd|th|s|am|pm|km|kg|g|ml|cm|m|c|f)$")
        .expect("ordinal pattern is valid")
});

fn unbalanced(text: &str, open: char, close: char) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth < 0 {
                return true;
            }
        }
    }
    depth > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Fixture {
        reply: Vec<Labelled>,
    }

    #[derive(serde::Deserialize)]
    struct Labelled {
        question: String,
        reply: String,
        good: bool,
    }

    /// The default model's replies to general questions and small talk, labelled by hand.
    /// Measured: agreement 0.857 on 98 replies; fires on 1 of 19 good replies and lets 13 of
    /// 79 bad ones through, nearly all of them confident factual errors ("the largest planet
    /// is Neptune") that no check of the text's form can see. The bounds below hold that.
    #[test]
    fn agrees_with_hand_labels_on_real_model_replies() {
        let fixture: Fixture = toml::from_str(include_str!("../../tests/data/model_replies.toml"))
            .expect("fixture parses");
        let (mut fired_on_good, mut good, mut passed_bad, mut bad) = (0, 0, 0, 0);
        let mut disagreements = Vec::new();
        let mut problems: HashMap<ReplyProblem, usize> = HashMap::new();
        for labelled in &fixture.reply {
            let verdict = check_reply(&labelled.question, complete_sentences(&labelled.reply));
            if let Err(problem) = verdict {
                *problems.entry(problem).or_default() += 1;
            }
            if labelled.good {
                good += 1;
                if verdict.is_err() {
                    fired_on_good += 1;
                    disagreements.push(format!("fired {verdict:?} on good: {:?}", labelled.reply));
                }
            } else {
                bad += 1;
                if verdict.is_ok() {
                    passed_bad += 1;
                    disagreements.push(format!("let bad through: {:?}", labelled.reply));
                }
            }
        }
        let total = good + bad;
        let agreement = (total - fired_on_good - passed_bad) as f32 / total as f32;
        eprintln!(
            "reply check on {total} labelled replies: agreement {agreement:.3}, fired on {fired_on_good}/{good} good, let through {passed_bad}/{bad} bad; fired: {problems:?}\n{}",
            disagreements.join("\n")
        );
        assert!(good >= 10 && bad >= 10, "the fixture needs both kinds");
        assert!(agreement >= 0.85, "agreement {agreement:.3}");
        assert!(
            fired_on_good * 10 <= good,
            "fires on over 10% of good replies"
        );
        assert!(
            passed_bad * 5 <= bad,
            "lets over 20% of bad replies through"
        );
    }

    #[test]
    fn short_sensible_answers_pass() {
        for (question, reply) in [
            (
                "What is the capital of France?",
                "The capital of France is Paris.",
            ),
            ("hi there!", "Hi, what can I help you with?"),
            ("What is 2 + 2?", "2 + 2 is 4."),
            (
                "Write me a short poem about tea.",
                "Steam curls from the cup,\nleaves unfold in quiet heat,\nthe morning slows down.",
            ),
            (
                "are you a bot?",
                "Yes, I'm a chatbot, the shop's assistant.",
            ),
        ] {
            assert_eq!(check_reply(question, reply), Ok(()), "{reply:?}");
        }
    }

    #[test]
    fn each_problem_is_named() {
        let q = "tell me something";
        assert_eq!(check_reply(q, "  ...  "), Err(ReplyProblem::Empty));
        assert_eq!(
            check_reply(q, &"Tea is nice. ".repeat(40)),
            Err(ReplyProblem::TooLong)
        );
        assert_eq!(
            check_reply(q, "I like it. I like it. I like it a lot."),
            Err(ReplyProblem::Repetitive)
        );
        assert_eq!(
            check_reply(q, "What brings you to my humble abode?"),
            Err(ReplyProblem::OffPersona)
        );
        assert_eq!(
            check_reply(q, "I'm a small-town baker with a passion for bread."),
            Err(ReplyProblem::OffPersona)
        );
        assert_eq!(
            check_reply(q, "As an AI language model, I cannot do that."),
            Err(ReplyProblem::OffPersona)
        );
        assert_eq!(
            check_reply(q, "Sure! Our teapots cost €5 today."),
            Err(ReplyProblem::ShopClaim)
        );
        assert_eq!(
            check_reply(q, "Your parcel will arrive within 2 days."),
            Err(ReplyProblem::ShopClaim)
        );
        assert_eq!(
            check_reply(q, "L'art de France est une langue française."),
            Err(ReplyProblem::NotEnglish)
        );
        assert_eq!(
            check_reply(q, "<|im_start|>assistant Hello"),
            Err(ReplyProblem::Incoherent)
        );
        assert_eq!(
            check_reply("what's the weather like?", "Sunny and warm."),
            Err(ReplyProblem::Unknowable)
        );
    }

    #[test]
    fn echoes_of_the_question_are_incoherent() {
        assert_eq!(
            check_reply("How do I brew green tea?", "How do I brew green tea?"),
            Err(ReplyProblem::Incoherent)
        );
        assert_eq!(
            check_reply("how are you today?", "How am I today?"),
            Err(ReplyProblem::Incoherent)
        );
        assert_eq!(
            check_reply("how are you today?", "Very well, thank you for asking!"),
            Ok(())
        );
    }

    #[test]
    fn a_claim_the_question_itself_raised_is_not_invented() {
        assert_eq!(
            check_reply(
                "what does free shipping mean?",
                "Free shipping means the seller pays the postage."
            ),
            Ok(())
        );
    }

    #[test]
    fn unfinished_last_sentences_are_dropped() {
        assert_eq!(
            complete_sentences("Paris is the capital. It has many"),
            "Paris is the capital."
        );
        assert_eq!(complete_sentences("Done!  "), "Done!");
        assert_eq!(complete_sentences("no end at all"), "no end at all");
        assert_eq!(
            check_reply(
                "tell me about tea",
                "Tea is made from the leaves of the camellia plant and it is"
            ),
            Err(ReplyProblem::Incoherent)
        );
    }
}
