//! The check a model's free-text reply to a general question or small talk must pass before
//! a customer sees it. A small model drifts: it plays a person with a life ("welcome to my
//! humble abode"), invents shop facts (prices, discounts, delivery times), loops, or
//! trails off into fragments. A reply that fails is replaced by a template; the check only
//! says why.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::assistant::question::{detect, Lang};

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
    /// delivery times.
    ShopClaim,
    /// Not in English (the prompt and the fallback templates are).
    NotEnglish,
    /// Not readable text: markup or prompt leftovers, mostly non-words, unbalanced
    /// brackets, or an answer with nothing to do with the question.
    Incoherent,
}

/// A general answer or small-talk reply longer than this is not brief.
pub const MAX_REPLY_CHARS: usize = 600;

/// Whether `reply`, the model's answer to `question`, may be shown to a customer.
pub fn check_reply(question: &str, reply: &str) -> Result<(), ReplyProblem> {
    let reply = reply.trim();
    if !reply.chars().any(char::is_alphabetic) {
        return Err(ReplyProblem::Empty);
    }
    if reply.chars().count() > MAX_REPLY_CHARS {
        return Err(ReplyProblem::TooLong);
    }
    let words = lower_words(reply);
    if is_repetitive(reply, &words) {
        return Err(ReplyProblem::Repetitive);
    }
    if OFF_PERSONA.is_match(&reply.to_lowercase()) {
        return Err(ReplyProblem::OffPersona);
    }
    if makes_shop_claim(question, reply) {
        return Err(ReplyProblem::ShopClaim);
    }
    if detect(reply) != Lang::En {
        return Err(ReplyProblem::NotEnglish);
    }
    if is_incoherent(reply, &words) {
        return Err(ReplyProblem::Incoherent);
    }
    Ok(())
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

/// Phrases of a model that plays a person, talks about its own life or home, or about being
/// a language model. Matched on the lower-cased reply.
static OFF_PERSONA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:",
        r"as an ai|ai language model|language model|large language|openai|chatgpt|",
        r"i(?:'m| am) (?:a |an )?(?:human|person|real person|man|woman|girl|boy|guy|",
        r"student|teacher|baker|chef|writer|mother|father|mom|dad|\d+ years old)\b|",
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
        r"business days|working days|in stock|out of stock|our (?:shop|store|website|",
        r"products|prices|team|customers|policy)|we (?:sell|offer|ship|have|carry|stock)\b)"
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

/// Text that should never be in a reply: prompt markup, code, links, role labels.
static LEFTOVERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)<\|?/?(?:im_start|im_end|endoftext|question|system|user|assistant)\|?>?|</?\w+>|```|\{\{|\}\}|https?://|(?:^|\n)\s*(?:user|assistant|system|customer|question|answer)\s*:",
    )
    .expect("leftover pattern is valid")
});

/// More than this share of words that are not words (no vowel, digits inside letters,
/// over 20 letters) makes a reply unreadable.
const MAX_NON_WORD_SHARE: f32 = 0.25;

fn is_incoherent(reply: &str, words: &[String]) -> bool {
    if LEFTOVERS.is_match(reply) {
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
