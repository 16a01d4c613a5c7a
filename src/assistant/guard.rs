//! Checks on generated text before it is posted. Pure functions: text in, cleaned text and
//! findings out, so the caller can log every finding.
//!
//! Rules (configurable in prompts/guard.toml, see [`GuardRules`]):
//! - mentions: `@everyone`, `@here`, `<@123>`, `<@!123>`, `<@&123>`, `<#123>` get a
//!   zero-width space so they never ping, even if a message is posted without
//!   allowed_mentions;
//! - prices: an amount of money that is not the catalogue price of a product named in the
//!   question or the reply, nor an amount in the facts the answer was grounded in, removes
//!   its whole sentence;
//! - links: URLs outside the allowed domains are removed;
//! - blocked phrases: replaced;
//! - length: capped at a word boundary;
//! - citations: grounded answers end with "Source: <title> (<link>)".

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::knowledge::{Knowledge, Price, Route, RouteKind};
use super::prompts::Shop;

/// Zero-width space, inserted to break mention syntax.
const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// Guard settings from prompts/guard.toml; every field is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardRules {
    /// Longest reply in characters, citations included (Discord allows 2,000).
    pub max_chars: usize,
    /// Remove sentences with prices that are not in the catalogue or the facts.
    pub check_prices: bool,
    /// Phrases (case-insensitive) replaced by `blocked_replacement`.
    pub blocked_phrases: Vec<String>,
    pub blocked_replacement: String,
    /// Domains links may point to (subdomains included). Empty: any domain. The shop's
    /// website and the domains of knowledge links are always allowed.
    pub allowed_link_domains: Vec<String>,
    /// Append "Source: …" lines to grounded answers.
    pub cite_sources: bool,
    /// What replaces a sentence with an unverified price.
    pub price_replacement: String,
    /// Replace e-mail addresses (except on allowed domains), phone numbers and card
    /// numbers in generated text with `personal_data_replacement`.
    pub redact_personal_data: bool,
    pub personal_data_replacement: String,
}

impl Default for GuardRules {
    fn default() -> Self {
        Self {
            max_chars: 1900,
            check_prices: true,
            blocked_phrases: Vec::new(),
            blocked_replacement: "[removed]".into(),
            allowed_link_domains: Vec::new(),
            cite_sources: true,
            price_replacement:
                "(I removed a price I could not verify; please check the product page.)".into(),
            redact_personal_data: true,
            personal_data_replacement: "[redacted]".into(),
        }
    }
}

/// Which rule produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Mention,
    Price,
    Link,
    BlockedPhrase,
    Length,
    PersonalData,
}

/// One thing the guard changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub detail: String,
}

/// The cleaned text and what was changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guarded {
    pub text: String,
    pub findings: Vec<Finding>,
}

/// What the guard checks a reply against.
pub struct GuardInput<'a> {
    pub rules: &'a GuardRules,
    pub knowledge: &'a Knowledge,
    pub shop: &'a Shop,
    /// The route the reply was generated for (its products and grounded entries).
    pub route: &'a Route,
}

/// Runs every rule on a generated reply. With `finished` false (a streaming partial) the
/// citations are left out; everything else is the same, so a partial never shows what the
/// final text would remove.
pub fn guard_reply(text: &str, input: &GuardInput<'_>, finished: bool) -> Guarded {
    let mut findings = Vec::new();
    let mut text = neutralise_mentions(text, &mut findings);
    if input.rules.check_prices {
        let allowed = allowed_prices(&text, input);
        text = remove_unverified_prices(
            &text,
            &input.shop.currency,
            &allowed,
            &input.rules.price_replacement,
            &mut findings,
        );
    }
    let domains = allowed_domains(input);
    if input.rules.redact_personal_data {
        text = redact_personal_data(
            &text,
            &domains,
            &input.rules.personal_data_replacement,
            &mut findings,
        );
    }
    text = remove_foreign_links(&text, &domains, &mut findings);
    text = replace_blocked_phrases(
        &text,
        &input.rules.blocked_phrases,
        &input.rules.blocked_replacement,
        &mut findings,
    );
    let citations = if finished && input.rules.cite_sources {
        citations(input.route)
    } else {
        String::new()
    };
    let budget = input
        .rules
        .max_chars
        .saturating_sub(citations.chars().count());
    text = cap_length(text.trim(), budget, &mut findings);
    if !citations.is_empty() {
        text.push_str(&citations);
    }
    Guarded { text, findings }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@([a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,})\b")
        .expect("valid regex")
});
/// 13–19 digits, optionally grouped by spaces or dashes (card numbers).
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("valid regex"));
/// Phone numbers: an optional +country code, then 7–14 more digits with the usual separators.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}")
        .expect("valid regex")
});

/// Replaces what looks like personal data in generated text: e-mail addresses not on an
/// allowed domain, card numbers (13–19 digits passing the Luhn check) and phone numbers
/// (at least 8 digits). Prices and order-like short numbers are left alone.
pub fn redact_personal_data(
    text: &str,
    allowed_domains: &[String],
    replacement: &str,
    findings: &mut Vec<Finding>,
) -> String {
    let mut report = |what: &str| {
        findings.push(Finding {
            rule: Rule::PersonalData,
            detail: format!("redacted {what}"),
        })
    };
    let text = EMAIL.replace_all(text, |c: &regex::Captures| {
        let domain = c[1].to_lowercase();
        if domain_allowed(&domain, allowed_domains) {
            c[0].to_string()
        } else {
            report("an e-mail address");
            replacement.to_string()
        }
    });
    let text = CARD.replace_all(&text, |c: &regex::Captures| {
        let digits: Vec<u32> = c[0].chars().filter_map(|ch| ch.to_digit(10)).collect();
        if luhn_valid(&digits) {
            report("a card number");
            replacement.to_string()
        } else {
            c[0].to_string()
        }
    });
    let text = PHONE.replace_all(&text, |c: &regex::Captures| {
        let digits = c[0].chars().filter(char::is_ascii_digit).count();
        if digits >= 8 && !ISO_DATE.is_match(&c[0]) {
            report("a phone number");
            replacement.to_string()
        } else {
            c[0].to_string()
        }
    });
    text.into_owned()
}

fn domain_allowed(domain: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|d| domain == d.as_str() || domain.ends_with(&format!(".{d}")))
}

fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                (d * 2) % 9 + u32::from(d == 9) * 9
            } else {
                d
            }
        })
        .sum();
    digits.len() >= 13 && sum % 10 == 0
}

static ISO_DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}$").expect("valid regex"));

static MENTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<(@[!&]?|#)(\d+)>|@(everyone|here)\b").expect("valid regex"));

/// Breaks mass mentions and user, role and channel mention syntax with a zero-width space.
pub fn neutralise_mentions(text: &str, findings: &mut Vec<Finding>) -> String {
    MENTION
        .replace_all(text, |caps: &regex::Captures<'_>| {
            findings.push(Finding {
                rule: Rule::Mention,
                detail: caps[0].to_string(),
            });
            match caps.get(3) {
                Some(word) => format!("@{ZERO_WIDTH_SPACE}{}", word.as_str()),
                None => format!("<{ZERO_WIDTH_SPACE}{}{}>", &caps[1], &caps[2]),
            }
        })
        .into_owned()
}

/// A money amount found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyMention {
    pub start: usize,
    pub end: usize,
    /// ISO code ("EUR", "USD", "GBP").
    pub currency: String,
    pub amount: Price,
}

static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    let amount = r"(\d{1,7}(?:[.,]\d{1,2})?)";
    let code = r"(EUR|USD|GBP|CHF|euros?|dollars?|pounds?|bucks)";
    Regex::new(&format!(
        r"(?i)([$€£])\s?{amount}|\b{code}\s?{amount}\b|\b{amount}\s?(?:([$€£])|{code}\b)"
    ))
    .expect("valid regex")
});

fn currency_code(marker: &str) -> String {
    match marker.to_lowercase().as_str() {
        "$" | "usd" | "dollar" | "dollars" | "bucks" => "USD",
        "€" | "eur" | "euro" | "euros" => "EUR",
        "£" | "gbp" | "pound" | "pounds" => "GBP",
        "chf" => "CHF",
        _ => "?",
    }
    .to_string()
}

/// Every amount of money in the text ("$12.99", "12,99 €", "EUR 12", "12 euros").
pub fn find_money(text: &str) -> Vec<MoneyMention> {
    MONEY
        .captures_iter(text)
        .filter_map(|caps| {
            let whole = caps.get(0)?;
            let (marker, amount) = if let (Some(m), Some(a)) = (caps.get(1), caps.get(2)) {
                (m.as_str(), a.as_str())
            } else if let (Some(m), Some(a)) = (caps.get(3), caps.get(4)) {
                (m.as_str(), a.as_str())
            } else {
                let a = caps.get(5)?.as_str();
                let m = caps.get(6).or(caps.get(7))?.as_str();
                (m, a)
            };
            Some(MoneyMention {
                start: whole.start(),
                end: whole.end(),
                currency: currency_code(marker),
                amount: Price::parse_decimal(&amount.replace(',', "."))?,
            })
        })
        .collect()
}

/// Prices a reply may state: catalogue prices of products named in the route or in the
/// reply, plus amounts written in the grounded facts (entries and their policies).
fn allowed_prices(reply: &str, input: &GuardInput<'_>) -> Vec<Price> {
    let knowledge = input.knowledge;
    let mut allowed: Vec<Price> = input.route.products.iter().map(|p| p.price).collect();
    allowed.extend(knowledge.products_mentioned(reply).iter().map(|p| p.price));
    if input.route.kind == RouteKind::Grounded {
        for hit in &input.route.hits {
            if let Some(entry) = knowledge.entry(&hit.entry_id) {
                let mut texts = vec![entry.answer.as_str()];
                for policy in &entry.policies {
                    if let Some(policy) = knowledge.policy(policy) {
                        texts.push(&policy.text);
                    }
                }
                for text in texts {
                    allowed.extend(find_money(text).into_iter().map(|m| m.amount));
                }
            }
        }
    }
    allowed
}

/// Removes each sentence that states an amount in another currency than the shop's or an
/// amount not in `allowed`, replacing it once by `replacement`.
pub fn remove_unverified_prices(
    text: &str,
    shop_currency: &str,
    allowed: &[Price],
    replacement: &str,
    findings: &mut Vec<Finding>,
) -> String {
    let mut sentences_to_remove: Vec<(usize, usize)> = Vec::new();
    for money in find_money(text) {
        let verified =
            money.currency.eq_ignore_ascii_case(shop_currency) && allowed.contains(&money.amount);
        if verified {
            continue;
        }
        findings.push(Finding {
            rule: Rule::Price,
            detail: format!("unverified price {:?}", &text[money.start..money.end]),
        });
        let span = sentence_around(text, money.start, money.end);
        if !sentences_to_remove
            .iter()
            .any(|&(s, e)| s <= span.0 && span.1 <= e)
        {
            sentences_to_remove.push(span);
        }
    }
    sentences_to_remove.sort();
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for (start, end) in sentences_to_remove {
        if start < cursor {
            continue;
        }
        out.push_str(&text[cursor..start]);
        out.push_str(replacement);
        cursor = end;
    }
    out.push_str(&text[cursor..]);
    out
}

/// The byte range of the sentence holding `start..end`: from after the previous ".", "!",
/// "?" followed by whitespace (or a line break) to the next one, inclusive.
fn sentence_around(text: &str, start: usize, end: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let is_end = |i: usize| {
        bytes[i] == b'\n'
            || (matches!(bytes[i], b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace()))
    };
    let mut sentence_start = start;
    while sentence_start > 0 && !is_end(sentence_start - 1) {
        sentence_start -= 1;
    }
    while sentence_start < start && bytes[sentence_start] == b' ' {
        sentence_start += 1;
    }
    let mut sentence_end = end;
    while sentence_end < bytes.len() && !is_end(sentence_end) {
        sentence_end += 1;
    }
    if sentence_end < bytes.len() && bytes[sentence_end] != b'\n' {
        sentence_end += 1;
    }
    (sentence_start, sentence_end)
}

static LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"https?://([A-Za-z0-9.-]+)[^\s)\]>]*").expect("valid regex"));

fn allowed_domains(input: &GuardInput<'_>) -> Vec<String> {
    if input.rules.allowed_link_domains.is_empty() {
        return Vec::new();
    }
    let mut domains = input.rules.allowed_link_domains.clone();
    let knowledge_links = input
        .knowledge
        .faq
        .iter()
        .filter_map(|e| e.link.as_deref())
        .chain(
            input
                .knowledge
                .policies
                .iter()
                .filter_map(|p| p.link.as_deref()),
        )
        .chain(input.shop.website.as_deref());
    for link in knowledge_links {
        if let Some(caps) = LINK.captures(link) {
            domains.push(caps[1].to_lowercase());
        }
    }
    domains
}

/// Replaces links whose domain is not in `domains` (or a subdomain of one) by
/// "[link removed]". An empty list allows every link.
pub fn remove_foreign_links(text: &str, domains: &[String], findings: &mut Vec<Finding>) -> String {
    if domains.is_empty() {
        return text.to_string();
    }
    LINK.replace_all(text, |caps: &regex::Captures<'_>| {
        let host = caps[1].to_lowercase();
        let allowed = domains.iter().any(|d| {
            let d = d.to_lowercase();
            host == d || host.ends_with(&format!(".{d}"))
        });
        if allowed {
            caps[0].to_string()
        } else {
            findings.push(Finding {
                rule: Rule::Link,
                detail: caps[0].to_string(),
            });
            "[link removed]".to_string()
        }
    })
    .into_owned()
}

/// Replaces every case-insensitive occurrence of each phrase.
pub fn replace_blocked_phrases(
    text: &str,
    phrases: &[String],
    replacement: &str,
    findings: &mut Vec<Finding>,
) -> String {
    let mut text = text.to_string();
    for phrase in phrases.iter().filter(|p| !p.trim().is_empty()) {
        let pattern = Regex::new(&format!("(?i){}", regex::escape(phrase)))
            .expect("escaped phrase is a valid regex");
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

/// Cuts text longer than `max_chars` characters at the last space before the limit and
/// ends it with "…".
pub fn cap_length(text: &str, max_chars: usize, findings: &mut Vec<Finding>) -> String {
    let length = text.chars().count();
    if length <= max_chars {
        return text.to_string();
    }
    findings.push(Finding {
        rule: Rule::Length,
        detail: format!("{length} characters cut to {max_chars}"),
    });
    let keep: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    let cut = match keep.rfind(char::is_whitespace) {
        Some(at) if at > keep.len() / 2 => &keep[..at],
        _ => &keep,
    };
    format!("{}…", cut.trim_end())
}

/// "\n\nSource: title (link)" lines for a grounded route's entries; empty otherwise.
pub fn citations(route: &Route) -> String {
    if route.kind != RouteKind::Grounded || route.hits.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n");
    for hit in &route.hits {
        match &hit.link {
            Some(link) => out.push_str(&format!("\nSource: {} ({link})", hit.title)),
            None => out.push_str(&format!("\nSource: {}", hit.title)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::prompts::PromptSet;

    fn demo() -> PromptSet {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts");
        PromptSet::load(&dir).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn mentions_are_broken() {
        let mut findings = Vec::new();
        let text = neutralise_mentions(
            "hey @everyone and @here, ping <@123> <@!4> <@&56> <#78> me@example.com",
            &mut findings,
        );
        assert!(!text.contains("@everyone") && !text.contains("@here"));
        for raw in ["<@123>", "<@!4>", "<@&56>", "<#78>"] {
            assert!(!text.contains(raw), "{text}");
        }
        assert!(text.contains("me@example.com"));
        assert_eq!(findings.len(), 6);
    }

    #[test]
    fn money_is_found_in_common_spellings() {
        let found: Vec<(String, String)> =
            find_money("$12.99, 12,99 EUR, €12, 7 euros, GBP 3.5, 40€ and 2024 orders")
                .into_iter()
                .map(|m| (m.currency, m.amount.to_string()))
                .collect();
        let expected = [
            ("USD", "12.99"),
            ("EUR", "12.99"),
            ("EUR", "12.00"),
            ("EUR", "7.00"),
            ("GBP", "3.50"),
            ("EUR", "40.00"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(c, a)| (c.to_string(), a.to_string()))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn invented_prices_are_removed_and_catalogue_prices_kept() {
        let set = demo();
        let question = "how much is the Clay Kyusu?";
        let route = set.knowledge.route(question);
        let reply = "The Clay Kyusu costs €54.00. Today it is only €19.99 for you! Enjoy.";
        let guarded = set.guard_reply(&route, reply, true);
        assert!(guarded.text.contains("€54.00"), "{}", guarded.text);
        assert!(!guarded.text.contains("19.99"), "{}", guarded.text);
        assert!(guarded.text.contains("Enjoy."));
        assert_eq!(
            guarded
                .findings
                .iter()
                .filter(|f| f.rule == Rule::Price)
                .count(),
            1
        );
        // Same amount in another currency is not the catalogue price.
        let guarded = set.guard_reply(&route, "It is $54.00.", true);
        assert!(!guarded.text.contains("54"), "{}", guarded.text);
    }

    #[test]
    fn grounded_fact_amounts_are_allowed_and_sources_cited() {
        let set = demo();
        let route = set.knowledge.route("which delivery options do you have?");
        assert_eq!(route.kind, RouteKind::Grounded);
        let guarded = set.guard_reply(&route, "Express costs 9.90 EUR and takes 1-2 days.", true);
        assert!(guarded.findings.is_empty(), "{:?}", guarded.findings);
        assert!(guarded.text.contains("9.90 EUR"));
        assert!(guarded.text.contains("Source: Which delivery options do you offer? (https://kettleandkiln.example/help/shipping)"), "{}", guarded.text);
        let partial = set.guard_reply(&route, "Express costs 9.90 EUR", false);
        assert!(!partial.text.contains("Source:"));
    }

    #[test]
    fn small_talk_may_not_state_prices() {
        let set = demo();
        let route = set.knowledge.route("what is the capital of France?");
        let guarded = set.guard_reply(&route, "Paris. A trip there costs about 300 EUR.", true);
        assert_eq!(
            guarded.text,
            "Paris. (I removed a price I could not verify; please check the product page.)"
        );
        assert!(!guarded.text.contains("Source:"));
    }

    #[test]
    fn length_is_capped_with_citations_inside_the_limit() {
        let set = demo();
        let route = set.knowledge.route("where is my parcel??");
        let long = "word ".repeat(1000);
        let guarded = set.guard_reply(&route, &long, true);
        assert!(guarded.text.chars().count() <= set.guard.max_chars);
        assert!(guarded.text.contains("Source:"));
        assert!(guarded.findings.iter().any(|f| f.rule == Rule::Length));
    }

    #[test]
    fn links_outside_allowed_domains_and_blocked_phrases_are_removed() {
        let mut findings = Vec::new();
        let text = remove_foreign_links(
            "see https://kettleandkiln.example/help and https://evil.example/x and https://shop.kettleandkiln.example",
            &["kettleandkiln.example".to_string()],
            &mut findings,
        );
        assert_eq!(text, "see https://kettleandkiln.example/help and [link removed] and https://shop.kettleandkiln.example");
        let text = replace_blocked_phrases(
            "Guaranteed FREE forever",
            &["free forever".into()],
            "[removed]",
            &mut findings,
        );
        assert_eq!(text, "Guaranteed [removed]");
        assert_eq!(findings.len(), 2);
    }

    #[test]
    fn personal_data_is_redacted_but_shop_addresses_dates_and_prices_stay() {
        let mut findings = Vec::new();
        let allowed = vec!["kettleandkiln.example".to_string()];
        let text = "Mail jane.doe@gmail.com or support@kettleandkiln.example, call +44 20 7946 0958, \
                    card 4111 1111 1111 1111 (not 4111 1111 1111 1112), shipped 2026-11-28 for €54.00.";
        let out = redact_personal_data(text, &allowed, "[redacted]", &mut findings);
        assert_eq!(
            out,
            "Mail [redacted] or support@kettleandkiln.example, call [redacted], \
                    card [redacted] (not [redacted]), shipped 2026-11-28 for €54.00."
        );
        // The invalid card number still looks like a phone number; it is redacted as one.
        assert_eq!(findings.len(), 4);
        assert!(findings.iter().all(|f| f.rule == Rule::PersonalData));
    }
}
