//! Stock: claims about a catalogue product's stock that the catalogue contradicts are
//! removed with their sentence.

use std::sync::LazyLock;

use regex::Regex;

use super::{replace_sentences, sentence_around, Finding, Rule};
use crate::assistant::knowledge::{Knowledge, Product};

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
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just after its last character.
    pub end: usize,
    /// What it claims.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::demo;
    use crate::assistant::content::PromptSet;
    use crate::assistant::guard::*;

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
        let domains = allowed_domains(&rules, &set.knowledge, &set.shop);
        let input = GuardInput {
            rules: &rules,
            knowledge: &set.knowledge,
            shop: &set.shop,
            route: &route,
            domains: &domains,
        };
        let guarded = guard_reply("The Fireside Chai is in stock.", &input, false);
        assert_eq!(guarded.text, "The Fireside Chai is in stock.");
    }
}
