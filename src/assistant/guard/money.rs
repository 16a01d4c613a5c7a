//! Prices: amounts of money that neither the catalogue nor the grounded facts state are
//! removed with their sentence.

use std::sync::LazyLock;

use regex::Regex;

use super::{replace_sentences, sentence_around, Finding, GuardInput, Rule};
use crate::assistant::knowledge::{Price, RouteKind};

/// An amount of money found in text ([`find_money`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyMention {
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just after its last character.
    pub end: usize,
    /// ISO code ("EUR", "USD", "GBP").
    pub currency: String,
    /// The amount, in cents.
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
pub(super) fn allowed_prices(reply: &str, input: &GuardInput<'_>) -> Vec<Price> {
    let knowledge = input.knowledge;
    let mut allowed: Vec<Price> = input.route.products.iter().map(|p| p.price).collect();
    allowed.extend(knowledge.products_mentioned(reply).iter().map(|p| p.price));
    if input.route.kind == RouteKind::Grounded {
        for source in &input.route.sources {
            for text in knowledge.source_texts(source) {
                allowed.extend(find_money(text).into_iter().map(|m| m.amount));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::demo;
    use crate::assistant::guard::*;

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
}
