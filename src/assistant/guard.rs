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
//! - stock: a claim that a catalogue product is in stock, out of stock, back later or has
//!   a number of units left, when the catalogue's stock says otherwise, removes its whole
//!   sentence (see [`remove_contradicting_stock_claims`]);
//! - links: URLs outside the allowed domains are removed;
//! - blocked phrases: replaced;
//! - length: capped at a word boundary;
//! - citations: grounded answers end with "Source: <title> (<link>)".

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::knowledge::{Knowledge, Price, Product, Route, RouteKind};
use super::prompts::Shop;

/// Zero-width space, inserted to break mention syntax.
const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// The smallest `max_chars` guard.toml may set.
pub const MIN_MAX_CHARS: usize = 100;

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
    /// Remove sentences whose stock claim about a catalogue product contradicts the
    /// catalogue (see [`remove_contradicting_stock_claims`]).
    pub check_stock: bool,
    /// What replaces a sentence with a contradicting stock claim.
    pub stock_replacement: String,
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
    Mention,
    Price,
    Stock,
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
    if input.rules.check_stock {
        text = remove_contradicting_stock_claims(
            &text,
            input.knowledge,
            &input.route.products,
            &input.rules.stock_replacement,
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
    // What the rules removed (with empty replacements, say) may have joined a mention
    // back together: "@" + "free forever" + "everyone".
    text = neutralise_mentions(&text, &mut findings);
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

/// Mention syntax. Mass mentions match wherever they appear ("@everyonet", "a@here"), not
/// only as whole words: whether Discord pings is not decided by word boundaries.
static MENTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<(@[!&]?|#)(\d+)>|@(everyone|here)").expect("valid regex"));

/// Breaks mass mentions (`@everyone`, `@here`, anywhere in a word) and user, role and
/// channel mention syntax with a zero-width space. The result has no mention left: a
/// second pass finds nothing.
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
    let mut sentences = Vec::new();
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
        sentences.push(sentence_around(text, money.start, money.end));
    }
    replace_sentences(text, sentences, replacement)
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

/// What a text says about a product's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockClaim {
    /// At least one unit now: "in stock", "available", "back in stock", "restocked",
    /// "almost sold out", "selling fast", "only a few left", or a negated "out of stock".
    InStock,
    /// No unit now: "out of stock", "sold out", "unavailable", "none left", a negated
    /// "in stock" / "available" ("we don't have it in stock"), or a restock to come
    /// ("back in stock soon", "will be available next week", "expected back").
    OutOfStock,
    /// A number of units: "only 3 left", "18 in stock", "more than 10 available".
    Count(Bound, u64),
}

/// How a [`StockClaim::Count`] relates to the stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// "3 left", "only 3 left", "just 3 in stock".
    Exactly,
    /// "more than 3", "over 3".
    MoreThan,
    /// "at least 3".
    AtLeast,
    /// "fewer than 3", "less than 3", "under 3".
    FewerThan,
}

impl StockClaim {
    /// True when a catalogue stock of `stock` units makes the claim false.
    pub fn contradicts(self, stock: u32) -> bool {
        let stock = u64::from(stock);
        match self {
            StockClaim::InStock => stock == 0,
            StockClaim::OutOfStock => stock > 0,
            StockClaim::Count(Bound::Exactly, n) => stock != n,
            StockClaim::Count(Bound::MoreThan, n) => stock <= n,
            StockClaim::Count(Bound::AtLeast, n) => stock < n,
            StockClaim::Count(Bound::FewerThan, n) => stock >= n,
        }
    }
}

/// A stock claim found in text: its byte range and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockMention {
    pub start: usize,
    pub end: usize,
    pub claim: StockClaim,
    /// Where the claim's clause starts (after the last ",", "and", "but", … before it).
    pub clause_start: usize,
    /// The words before the claim in its clause name nothing: only pronouns, auxiliaries,
    /// adverbs and the like ("Yes, it is in stock", "we have it in stock", "Sold out").
    /// Such a claim is about something named earlier or asked about.
    pub implied_subject: bool,
}

/// Stock phrases, most specific first (at one position the first alternative that matches
/// wins, so "back in stock soon" is a restock to come, not "back in stock").
static STOCK: LazyLock<Regex> = LazyLock::new(|| {
    let word = r"[\w'’-]+";
    let number = r"\d{1,9}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve";
    let later = r"(?:will|should|would|to)\s+be\s+back\s+(?:in\s+stock|available)|(?:will|should|would|to)\s+be\s+(?:in\s+stock|available)\s+(?:again|soon|shortly|later|next|by|within|from)|back\s+in\s+stock\s+(?:soon|shortly|later|next|once|when|after|by|within)|restock(?:ed|ing)?\s+(?:soon|shortly|later|next|by|within)|available\s+(?:again\s+)?(?:soon|shortly|later|next)|(?:expected|due|coming)\s+back";
    let low = r"(?:almost|nearly|practically)\s+(?:sold\s+out|out\s+of\s+stock|gone)|selling\s+fast|running\s+low|low\s+(?:on\s+)?stock|limited\s+stock|(?:only\s+|just\s+)?a\s+few\s+left";
    let out = r"out\s+of\s+stock|sold\s+out|unavailable|none\s+left|no\s+(?:more\s+)?(?:stock|units?|pieces?)\s+left";
    let count = format!(
        r"(?:(?P<bound>more\s+than|over|at\s+least|fewer\s+than|less\s+than|under|only|just)\s+)?(?P<n>{number})\s+(?:(?P<units>(?:{word}\s+){{0,2}}?)(?:left|in\s+stock|remaining)|available)"
    );
    let back = r"back\s+in\s+stock|restocked";
    let in_stock = r"in\s+stock|available";
    Regex::new(&format!(
        r"(?i)\b(?:(?P<later>{later})|(?P<low>{low})|(?P<out>{out})|(?P<count>{count})|(?P<back>{back})|(?P<in>{in_stock}))\b"
    ))
    .expect("valid regex")
});

/// What may follow "available" for it to be about stock ("available now", "available."),
/// rather than about a variant or a service ("available in blue", "available for pickup").
static AVAILABLE_FOLLOW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:\s*(?:[.!?,;:)\]]|$)|\s+(?:now|right\s+now|today|at\s+the\s+moment|to\s+(?:order|buy|purchase)|until|online|again|in\s+stock)\b)")
        .expect("valid regex")
});

/// Words that turn "in stock" into its opposite when they come shortly before it in the
/// same clause ("we don't have the Kiln Teapot in stock", "no chai in stock").
fn is_negation(word: &str) -> bool {
    matches!(word, "not" | "never" | "no" | "none" | "cannot" | "nothing") || word.ends_with("n't")
}

/// Words that end the clause a claim is looked up in.
fn ends_clause(word: &str) -> bool {
    matches!(
        word,
        "and"
            | "but"
            | "or"
            | "so"
            | "while"
            | "whereas"
            | "because"
            | "though"
            | "although"
            | "however"
            | "yet"
    )
}

/// Words that make a clause a question or a hedge rather than a claim ("I'm not sure
/// whether the mug is in stock", "please check if it is available").
fn is_hedge(word: &str) -> bool {
    matches!(
        word,
        "if" | "whether" | "sure" | "certain" | "might" | "may" | "maybe" | "perhaps" | "check"
    )
}

/// Words that name nothing by themselves: a clause made only of these before a claim
/// leaves its subject implied.
fn is_function_word(word: &str) -> bool {
    is_negation(word)
        || matches!(
            word,
            "it" | "its"
                | "it's"
                | "they"
                | "they're"
                | "them"
                | "this"
                | "that"
                | "these"
                | "those"
                | "there"
                | "there's"
                | "we"
                | "we're"
                | "we've"
                | "i"
                | "i'm"
                | "you"
                | "one"
                | "ones"
                | "is"
                | "are"
                | "was"
                | "were"
                | "be"
                | "been"
                | "being"
                | "has"
                | "have"
                | "had"
                | "do"
                | "does"
                | "did"
                | "got"
                | "get"
                | "currently"
                | "now"
                | "still"
                | "also"
                | "already"
                | "again"
                | "right"
                | "unfortunately"
                | "sadly"
                | "alas"
                | "sorry"
                | "yes"
                | "yep"
                | "good"
                | "great"
                | "news"
                | "all"
                | "both"
                | "just"
                | "only"
                | "in"
                | "at"
                | "the"
                | "a"
                | "an"
                | "moment"
                | "today"
                | "actually"
                | "indeed"
                | "fully"
                | "completely"
                | "totally"
                | "temporarily"
        )
}

/// How many words before a claim in its clause are searched for a negation or a hedge.
const CLAUSE_WORDS: usize = 6;

/// Time units: "only 3 days left" is about a deadline, not stock.
fn is_time_unit(word: &str) -> bool {
    matches!(
        word.trim_end_matches('s'),
        "second" | "minute" | "hour" | "day" | "week" | "month" | "year"
    )
}

/// Every stock claim in the text, in order. A question ("Is the mug in stock?") or a
/// hedged clause is not a claim; a negation in the clause before the phrase flips
/// "in stock" / "available" / "back in stock" to out of stock and "out of stock" /
/// "sold out" to in stock. Whole words, any case.
pub fn find_stock_claims(text: &str) -> Vec<StockMention> {
    let mut claims = Vec::new();
    for caps in STOCK.captures_iter(text) {
        let Some(whole) = caps.get(0) else {
            continue;
        };
        let (start, end) = (whole.start(), whole.end());
        let sentence = sentence_around(text, start, end);
        if text[sentence.0..sentence.1].trim_end().ends_with('?') {
            continue;
        }
        let (clause, clause_start) = clause_before(&text[sentence.0..start]);
        let near = &clause[..clause.len().min(CLAUSE_WORDS)];
        if near.iter().any(|w| is_hedge(w)) {
            continue;
        }
        let negated = near.iter().any(|w| is_negation(w));
        let claim = if caps.name("later").is_some() {
            StockClaim::OutOfStock
        } else if caps.name("low").is_some() {
            StockClaim::InStock
        } else if caps.name("out").is_some() {
            if negated {
                StockClaim::InStock
            } else {
                StockClaim::OutOfStock
            }
        } else if caps.name("count").is_some() {
            let units = caps.name("units").map_or("", |m| m.as_str());
            if units
                .split_whitespace()
                .any(|w| is_time_unit(&w.to_lowercase()))
                || negated
            {
                continue;
            }
            let Some(n) = caps.name("n").and_then(|m| parse_count(m.as_str())) else {
                continue;
            };
            let bound = match caps.name("bound").map(|m| m.as_str().to_lowercase()) {
                Some(b) if b.starts_with("more") || b == "over" => Bound::MoreThan,
                Some(b) if b.starts_with("at") => Bound::AtLeast,
                Some(b) if b.starts_with("fewer") || b.starts_with("less") || b == "under" => {
                    Bound::FewerThan
                }
                _ => Bound::Exactly,
            };
            StockClaim::Count(bound, n)
        } else {
            let available = whole.as_str().eq_ignore_ascii_case("available");
            if available && !AVAILABLE_FOLLOW.is_match(&text[end..]) {
                continue;
            }
            if negated {
                StockClaim::OutOfStock
            } else {
                StockClaim::InStock
            }
        };
        claims.push(StockMention {
            start,
            end,
            claim,
            clause_start: sentence.0 + clause_start,
            implied_subject: clause.iter().all(|w| is_function_word(w)),
        });
    }
    claims
}

static WORD_TOKEN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\S+").expect("valid regex"));

/// The clause of `text` (a sentence up to a claim) that ends at the claim: its words,
/// lowercased and nearest first, and the byte offset where it starts. It starts after the
/// last clause-ending punctuation or word ("and", "but", …), or at an opening bracket,
/// quote or dash.
fn clause_before(text: &str) -> (Vec<String>, usize) {
    let mut words = Vec::new();
    let tokens: Vec<regex::Match<'_>> = WORD_TOKEN.find_iter(text).collect();
    for token in tokens.iter().rev() {
        let lower = token.as_str().to_lowercase().replace('’', "'");
        if lower.ends_with([',', ';', ':', '(', ')', '"', '—', '–']) {
            return (words, token.end());
        }
        let word = lower.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        if ends_clause(word) {
            return (words, token.end());
        }
        if !word.is_empty() {
            words.push(word.to_string());
        }
        if lower.starts_with(['(', '"', '—', '–']) {
            return (words, token.start());
        }
    }
    (words, 0)
}

fn parse_count(number: &str) -> Option<u64> {
    const WORDS: [&str; 12] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ];
    let lower = number.to_lowercase();
    match WORDS.iter().position(|w| *w == lower) {
        Some(i) => Some(i as u64 + 1),
        None => lower.parse().ok(),
    }
}

/// Removes each sentence with a stock claim (see [`find_stock_claims`]) that the
/// catalogue's stock for the claimed product contradicts, replacing it once by
/// `replacement`. The product a claim is about is, in order:
/// 1. a product named in the claim's clause, before the claim: the one named last ("The
///    mug is in stock but the chai is sold out" checks the mug, then the chai);
/// 2. when the claim's subject is implied ([`StockMention::implied_subject`]: "it is in
///    stock", "back in stock soon", "only 3 left of the Clay Kyusu"): the product named
///    last before the claim in its sentence, else the first one named after it in its
///    sentence, else the one named last in an earlier sentence ("The chai is lovely. It is
///    in stock." checks the chai), else the product the question named if it named
///    exactly one (`question_products`; "Yes, it is in stock!").
///
/// Any other claim is about something else ("Gift cards are available", "The chai isn't
/// in stock, but similar teas are in stock", a product the catalogue does not list): it
/// cannot contradict the catalogue and is left alone, as is a true claim. Every catalogue
/// product has a stock figure, so every attributed claim is checked.
pub fn remove_contradicting_stock_claims(
    text: &str,
    knowledge: &Knowledge,
    question_products: &[Product],
    replacement: &str,
    findings: &mut Vec<Finding>,
) -> String {
    let claims = find_stock_claims(text);
    if claims.is_empty() {
        return text.to_string();
    }
    let mentions = knowledge.product_mentions(text);
    let last_in = |from: usize, to: usize| {
        mentions
            .iter()
            .filter(|m| from <= m.start && m.end <= to)
            .max_by_key(|m| (m.end, m.start))
    };
    let mut sentences = Vec::new();
    for claim in claims {
        let sentence = sentence_around(text, claim.start, claim.end);
        let named = last_in(claim.clause_start, claim.start).or_else(|| {
            if !claim.implied_subject {
                return None;
            }
            last_in(sentence.0, claim.start)
                .or_else(|| {
                    mentions
                        .iter()
                        .find(|m| claim.end <= m.start && m.end <= sentence.1)
                })
                .or_else(|| last_in(0, sentence.0))
        });
        let product = match (named, question_products) {
            (Some(mention), _) => knowledge.product(mention),
            (None, [only]) if claim.implied_subject => only,
            _ => continue,
        };
        if !claim.claim.contradicts(product.stock) {
            continue;
        }
        findings.push(Finding {
            rule: Rule::Stock,
            detail: format!(
                "stock claim {:?} about {} contradicts the catalogue ({} in stock)",
                &text[claim.start..claim.end],
                product.name,
                product.stock
            ),
        });
        sentences.push(sentence);
    }
    replace_sentences(text, sentences, replacement)
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

/// The longest run of whole leading lines of `text` within `max_chars` characters; empty
/// when not even the first non-empty line fits.
fn fit_lines(text: &str, max_chars: usize) -> String {
    let mut kept = String::new();
    let mut has_content = false;
    for line in text.split_inclusive('\n') {
        if kept.chars().count() + line.trim_end_matches('\n').chars().count() > max_chars {
            break;
        }
        kept.push_str(line);
        has_content |= !line.trim().is_empty();
    }
    if has_content {
        kept.trim_end_matches('\n').to_string()
    } else {
        String::new()
    }
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
    fn mass_mentions_inside_words_are_broken_too() {
        // Found by the `guard` fuzz target: "@everyonet" kept its ping.
        let mut findings = Vec::new();
        let text = neutralise_mentions("@everyonet, x@here and @heres", &mut findings);
        assert!(
            !text.contains("@everyone") && !text.contains("@here"),
            "{text}"
        );
        assert_eq!(findings.len(), 3);
    }

    #[test]
    fn removals_cannot_join_a_mention_back_together() {
        let set = demo();
        let mut rules = set.guard.clone();
        rules.blocked_replacement.clear();
        rules.personal_data_replacement.clear();
        let route = set.knowledge.route("hi");
        let input = GuardInput {
            rules: &rules,
            knowledge: &set.knowledge,
            shop: &set.shop,
            route: &route,
        };
        for reply in [
            "Hi @free forevereveryone",
            "ping <@free forever123>",
            "call @+44 20 7946 0958here",
        ] {
            let guarded = guard_reply(reply, &input, true);
            assert!(
                !guarded.text.contains("@everyone")
                    && !guarded.text.contains("@here")
                    && !guarded.text.contains("<@123>"),
                "{reply:?} -> {:?}",
                guarded.text
            );
            assert!(
                guarded.findings.iter().any(|f| f.rule == Rule::Mention),
                "{reply:?}"
            );
        }
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
    fn citations_longer_than_half_the_cap_keep_only_whole_lines_that_fit() {
        let mut set = demo();
        let mut route = set.knowledge.route("where is my parcel??");
        let hit = route.hits[0].clone();
        route.hits.extend([hit.clone(), hit]);
        let all = citations(&route);
        assert!(all.matches("Source:").count() >= 2, "{all}");
        let first_line = all.trim_start().lines().next().unwrap().chars().count();
        for max_chars in [
            MIN_MAX_CHARS,
            2 * (first_line + 2),
            2 * (first_line + 2) + 1,
        ] {
            set.guard.max_chars = max_chars;
            let guarded = set.guard_reply(&route, &"word ".repeat(100), true);
            assert!(
                guarded.text.chars().count() <= max_chars,
                "{max_chars}: {}",
                guarded.text
            );
            let sources = guarded.text.matches("Source:").count();
            let expected = usize::from(max_chars / 2 >= first_line + 2);
            assert!(sources >= expected && sources < all.matches("Source:").count());
            assert!(
                guarded.text.starts_with("word"),
                "the answer keeps its room"
            );
        }
        assert_eq!(fit_lines("\n\nSource: a\nSource: b", 5), "");
        assert_eq!(fit_lines("\n\nSource: a\nSource: b", 11), "\n\nSource: a");
        assert_eq!(
            fit_lines("\n\nSource: a\nSource: b", 21),
            "\n\nSource: a\nSource: b"
        );
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

    /// The stock rule alone on `text`, with the products the question named.
    fn stock_checked(set: &PromptSet, question: &str, text: &str) -> (String, Vec<Finding>) {
        let route = set.knowledge.route(question);
        let mut findings = Vec::new();
        let out = remove_contradicting_stock_claims(
            text,
            &set.knowledge,
            &route.products,
            "[stock?]",
            &mut findings,
        );
        assert!(findings.iter().all(|f| f.rule == Rule::Stock));
        (out, findings)
    }

    #[test]
    fn stock_claims_are_found_with_their_meaning() {
        let claims: Vec<StockClaim> = find_stock_claims(
            "It is in stock. Sold out. Only 3 left. We have 18 teapots in stock. More than \
             ten available. Fewer than 5 remaining. We don't have it in stock. It is not sold \
             out. Back in stock soon! It is back in stock. Almost sold out. It is available now.",
        )
        .into_iter()
        .map(|m| m.claim)
        .collect();
        assert_eq!(
            claims,
            [
                StockClaim::InStock,
                StockClaim::OutOfStock,
                StockClaim::Count(Bound::Exactly, 3),
                StockClaim::Count(Bound::Exactly, 18),
                StockClaim::Count(Bound::MoreThan, 10),
                StockClaim::Count(Bound::FewerThan, 5),
                StockClaim::OutOfStock,
                StockClaim::InStock,
                StockClaim::OutOfStock,
                StockClaim::InStock,
                StockClaim::InStock,
                StockClaim::InStock,
            ]
        );
        // Questions, hedges, variants, services and deadlines are not stock claims.
        for text in [
            "Is the chai in stock?",
            "I'm not sure whether the chai is in stock.",
            "Please check if the mug is available.",
            "The mug is available in blue.",
            "Gift wrapping is available for the teapot",
            "Only 3 days left to order for Christmas.",
            "Leaf tea keeps for months.",
        ] {
            assert_eq!(find_stock_claims(text), [], "{text}");
        }
    }

    #[test]
    fn stock_claims_that_match_the_catalogue_are_kept() {
        let set = demo();
        // The catalogue: Clay Kyusu 6, Fireside Chai 0, Speckled Mug 120, Kiln Teapot 18.
        for text in [
            "The Clay Kyusu is in stock (6 left).",
            "Sadly the Fireside Chai is sold out. It will be back in stock soon.",
            "The mug is in stock, but the chai is out of stock.",
            "We have 18 Kiln Teapots in stock and more than 100 Speckled Mugs available.",
            "Fireside Chai: €7.90, out of stock right now. Assam black tea. Back in stock soon.",
            "The Fireside Chai isn't in stock, but similar teas are in stock.",
        ] {
            let (out, findings) = stock_checked(&set, "tell me about your teas", text);
            assert_eq!(out, text);
            assert!(findings.is_empty(), "{text}: {findings:?}");
        }
    }

    #[test]
    fn contradicting_stock_claims_remove_their_sentence() {
        let set = demo();
        let cases = [
            // "in stock" when the catalogue has none (a colon does not end a sentence).
            (
                "Good news: the Fireside Chai is in stock! Enjoy.",
                "[stock?] Enjoy.",
            ),
            // "sold out" / "out of stock" when it has some.
            ("The Speckled Mug is sold out. Sorry!", "[stock?] Sorry!"),
            ("Sorry, we don't have the Kiln Teapot in stock.", "[stock?]"),
            // A count that differs.
            (
                "Hurry, only 3 left of the Clay Kyusu. It ships fast.",
                "[stock?] It ships fast.",
            ),
            ("The Speckled Mug will be back in stock soon.", "[stock?]"),
        ];
        for (text, expected) in cases {
            let (out, findings) = stock_checked(&set, "tell me about your teas", text);
            assert_eq!(out, expected, "{text}");
            assert_eq!(findings.len(), 1, "{text}: {findings:?}");
        }
        let (_, findings) =
            stock_checked(&set, "hi", "The Clay Kyusu has only 3 left. Lovely pot.");
        assert_eq!(
            findings[0].detail,
            "stock claim \"only 3 left\" about Clay Kyusu contradicts the catalogue (6 in stock)"
        );
    }

    #[test]
    fn stock_claims_about_other_products_are_unaffected() {
        let set = demo();
        let (out, findings) = stock_checked(
            &set,
            "is the chai in stock?",
            "The Fireside Chai is in stock. The Speckled Mug is in stock. Similar teas are in \
             stock too. Gift cards are available.",
        );
        assert_eq!(
            out,
            "[stock?] The Speckled Mug is in stock. Similar teas are in stock too. Gift cards \
             are available."
        );
        assert_eq!(findings.len(), 1);
        // Each claim is checked against the product named before it in its sentence.
        let (out, _) = stock_checked(
            &set,
            "hi",
            "The mug is sold out and the chai is in stock while the teapot is in stock.",
        );
        assert_eq!(out, "[stock?]");
        let (out, _) = stock_checked(&set, "hi", "The mug is in stock and the chai is out.");
        assert_eq!(out, "The mug is in stock and the chai is out.");
    }

    #[test]
    fn stock_matching_ignores_case_and_knows_aliases_and_pronouns() {
        let set = demo();
        for text in [
            "the KYUSU is SOLD OUT.",
            "LAPSANG SOUCHONG: Out Of Stock.",
            "The Smoky Lapsang is lovely. Unfortunately it is currently unavailable.",
        ] {
            let (out, findings) = stock_checked(&set, "hello", text);
            assert!(out.contains("[stock?]"), "{text}: {out}");
            assert_eq!(findings.len(), 1, "{text}");
        }
        // The product the question named, when the reply only says "it".
        let (out, _) = stock_checked(&set, "is the chai in stock?", "Yes, it is in stock!");
        assert_eq!(out, "[stock?]");
        let (out, _) = stock_checked(&set, "is the mug in stock?", "Yes, it is in stock!");
        assert_eq!(out, "Yes, it is in stock!");
        // With two products asked about, "it" is ambiguous and left alone.
        let (out, _) = stock_checked(
            &set,
            "is the chai or the mug in stock?",
            "Yes, it is in stock!",
        );
        assert_eq!(out, "Yes, it is in stock!");
    }

    #[test]
    fn stock_rule_runs_in_the_guard_and_on_streaming_partials() {
        let set = demo();
        let route = set.knowledge.route("is the Fireside Chai in stock?");
        let replacement = &set.guard.stock_replacement;
        let guarded = set.guard_reply(
            &route,
            "Yes, the Fireside Chai is in stock. It costs €7.90.",
            true,
        );
        assert!(
            guarded
                .text
                .starts_with(&format!("{replacement} It costs €7.90.")),
            "{}",
            guarded.text
        );
        assert_eq!(
            guarded
                .findings
                .iter()
                .filter(|f| f.rule == Rule::Stock)
                .count(),
            1
        );
        // A partial: the finished sentence is checked, the unfinished tail is left as it is.
        let partial = set.guard_reply(
            &route,
            "The Fireside Chai is in stock. Our Speckled M",
            false,
        );
        assert_eq!(partial.text, format!("{replacement} Our Speckled M"));
        for cut in [
            "The Fireside Chai is in st",
            "The Fireside Chai is",
            "Thé Fireside Chai — ",
            "Only 3",
        ] {
            let partial = set.guard_reply(&route, cut, false);
            assert_eq!(partial.text, cut.trim(), "{cut}");
            assert!(partial.findings.is_empty(), "{cut}");
        }
        // The claim as far as it has streamed is already removed.
        let partial = set.guard_reply(&route, "Yes, it is in stock", false);
        assert_eq!(&partial.text, replacement);
        // Turned off, nothing is checked.
        let mut rules = set.guard.clone();
        rules.check_stock = false;
        let input = GuardInput {
            rules: &rules,
            knowledge: &set.knowledge,
            shop: &set.shop,
            route: &route,
        };
        let guarded = guard_reply("The Fireside Chai is in stock.", &input, false);
        assert_eq!(guarded.text, "The Fireside Chai is in stock.");
    }
}
