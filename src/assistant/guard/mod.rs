//! Checks on generated text before it is posted. Pure functions: text in, cleaned text and
//! findings out, so the caller can log every finding.
//!
//! Rules (configurable in prompts/guard.toml, see [`GuardRules`]):
//! - invisible characters (bidi overrides, zero-width) are stripped first;
//! - mass mentions: `@everyone` and `@here` get a zero-width space so they never ping,
//!   even if a message is posted without allowed_mentions (a platform's own mention
//!   syntax, such as Discord's `<@123>`, is broken by its adapter on every text it sends);
//! - prices: an amount of money that is not the catalogue price of a product named in the
//!   question or the reply, nor an amount in the facts the answer was grounded in, removes
//!   its whole sentence;
//! - stock: a claim that a catalogue product is in stock, out of stock, back later or has
//!   a number of units left, when the catalogue's stock says otherwise, removes its whole
//!   sentence (see [`remove_contradicting_stock_claims`]);
//! - links: URLs outside the allowed domains are removed;
//! - blocked phrases: replaced;
//! - length: capped at a word boundary;
//! - citations: grounded answers end with "Source: <title> (<link>)".

mod blocked;
mod length;
mod links;
mod mentions;
mod money;
mod personal;
mod stock;

use serde::{Deserialize, Serialize};

use super::knowledge::{Knowledge, Route};
use super::shop::Shop;

pub use blocked::BlockedPhrases;
use length::fit_lines;
pub use length::{cap_length, citations, MIN_MAX_CHARS};
pub use links::{allowed_domains, host_of, remove_foreign_links};
pub use mentions::{neutralise_mass_mentions, ZERO_WIDTH_SPACE};
use money::allowed_prices;
pub use money::{find_money, remove_unverified_prices, MoneyMention};
pub use personal::redact_personal_data;
pub use stock::{
    find_stock_claims, remove_contradicting_stock_claims, Bound, StockClaim, StockMention,
};

/// Guard settings from prompts/guard.toml; every field is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardRules {
    /// Longest reply in characters, citations included (Discord allows 2,000).
    pub max_chars: usize,
    /// Remove sentences with prices that are not in the catalogue or the facts.
    pub check_prices: bool,
    /// Phrases (case-insensitive) replaced by `blocked_replacement`.
    pub blocked_phrases: BlockedPhrases,
    /// What replaces a blocked phrase (may be empty).
    pub blocked_replacement: String,
    /// Domains links may point to (subdomains included). Empty: any domain. The shop's
    /// website and the domains of knowledge links are always allowed.
    pub allowed_link_domains: Vec<String>,
    /// Append "Source: …" lines to grounded answers.
    pub cite_sources: bool,
    /// What replaces a sentence with an unverified price.
    pub price_replacement: String,
    /// Remove sentences whose stock claim about a catalogue product contradicts the
    /// catalogue (see [`remove_contradicting_stock_claims`]).
    pub check_stock: bool,
    /// What replaces a sentence with a contradicting stock claim.
    pub stock_replacement: String,
    /// Replace e-mail addresses (except on allowed domains), phone numbers and card
    /// numbers in generated text with `personal_data_replacement`.
    pub redact_personal_data: bool,
    /// What replaces redacted personal data (may be empty).
    pub personal_data_replacement: String,
}

impl Default for GuardRules {
    fn default() -> Self {
        Self {
            max_chars: 1900,
            check_prices: true,
            blocked_phrases: BlockedPhrases::default(),
            blocked_replacement: "[removed]".into(),
            allowed_link_domains: Vec::new(),
            cite_sources: true,
            price_replacement:
                "(I removed a price I could not verify; please check the product page.)".into(),
            check_stock: true,
            stock_replacement:
                "(I removed a stock statement that did not match our catalogue; please check the product page.)"
                    .into(),
            redact_personal_data: true,
            personal_data_replacement: "[redacted]".into(),
        }
    }
}

/// Which rule produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A mass mention was broken.
    Mention,
    /// A sentence with an unverified price was replaced.
    Price,
    /// A sentence with a stock claim the catalogue contradicts was replaced.
    Stock,
    /// A link outside the allowed domains was removed.
    Link,
    /// A blocked phrase was replaced.
    BlockedPhrase,
    /// The text was cut to the length cap.
    Length,
    /// An e-mail address, phone number or card number was redacted.
    PersonalData,
}

/// One thing the guard changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule that changed the text.
    pub rule: Rule,
    /// What it changed (the removed text or a description); untrusted, quote it.
    pub detail: String,
}

/// The cleaned text and what was changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guarded {
    /// The text to post.
    pub text: String,
    /// Every change, in the order the rules ran; empty when nothing changed.
    pub findings: Vec<Finding>,
}

/// What the guard checks a reply against.
pub struct GuardInput<'a> {
    /// The rules from guard.toml.
    pub rules: &'a GuardRules,
    /// The knowledge: catalogue prices and stock, link domains.
    pub knowledge: &'a Knowledge,
    /// The shop's currency and website.
    pub shop: &'a Shop,
    /// The route the reply was generated for (its products and grounded entries).
    pub route: &'a Route,
    /// The hosts links may point to: [`allowed_domains`] of the same rules, knowledge and
    /// shop (empty allows every link).
    pub domains: &'a [String],
}

/// Runs every rule on a generated reply. With `finished` false (a streaming partial) the
/// citations are left out; everything else is the same, so a partial never shows what the
/// final text would remove.
pub fn guard_reply(text: &str, input: &GuardInput<'_>, finished: bool) -> Guarded {
    let mut findings = Vec::new();
    let visible = super::invisible::strip_invisible(text);
    let mut text = neutralise_mass_mentions(&visible, &mut findings);
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
    if input.rules.check_stock {
        text = remove_contradicting_stock_claims(
            &text,
            input.knowledge,
            &input.route.products,
            &input.rules.stock_replacement,
            &mut findings,
        );
    }
    let domains = input.domains;
    if input.rules.redact_personal_data {
        text = redact_personal_data(
            &text,
            domains,
            &input.rules.personal_data_replacement,
            &mut findings,
        );
    }
    text = remove_foreign_links(&text, domains, &mut findings);
    text =
        input
            .rules
            .blocked_phrases
            .replace(&text, &input.rules.blocked_replacement, &mut findings);
    // What the rules removed (with empty replacements, say) may have joined a mention
    // back together: "@" + "free forever" + "everyone".
    text = neutralise_mass_mentions(&text, &mut findings);
    // Citations take at most half of the length cap (whole source lines, in order), so
    // the reply, citations included, never exceeds `max_chars`.
    let citations = if finished && input.rules.cite_sources {
        fit_lines(&citations(input.route), input.rules.max_chars / 2)
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

/// Replaces each of the byte ranges `sentences` (as found by [`sentence_around`]; a range
/// inside another is dropped) by `replacement`.
fn replace_sentences(text: &str, mut sentences: Vec<(usize, usize)>, replacement: &str) -> String {
    sentences.sort();
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for (start, end) in sentences {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::demo;

    #[test]
    fn removals_cannot_join_a_mention_back_together() {
        let set = demo();
        let mut rules = set.guard.clone();
        rules.blocked_replacement.clear();
        rules.personal_data_replacement.clear();
        let route = set.knowledge.route("hi");
        let domains = allowed_domains(&rules, &set.knowledge, &set.shop);
        let input = GuardInput {
            rules: &rules,
            knowledge: &set.knowledge,
            shop: &set.shop,
            route: &route,
            domains: &domains,
        };
        for reply in ["Hi @free forevereveryone", "call @+44 20 7946 0958here"] {
            let guarded = guard_reply(reply, &input, true);
            assert!(
                !guarded.text.contains("@everyone") && !guarded.text.contains("@here"),
                "{reply:?} -> {:?}",
                guarded.text
            );
            assert!(
                guarded.findings.iter().any(|f| f.rule == Rule::Mention),
                "{reply:?}"
            );
        }
    }
}
