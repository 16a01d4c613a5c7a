//! The entries of the shop's knowledge as data: FAQ entries, policies, catalogue products
//! and their prices, and example phrasings from a data set.

use std::fmt;

use serde::Serialize;

/// An amount of money in the shop currency, in cents; parsed from "12.90" or 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Price {
    pub cents: u64,
}

impl Price {
    /// Parses a plain decimal with a dot and at most two decimals ("12", "12.9", "12.90").
    /// Anything else ("12,90", "12.90 EUR", "-3", "") is `None`.
    pub fn parse_decimal(text: &str) -> Option<Price> {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > 2 {
            return None;
        }
        let whole: u64 = whole.parse().ok()?;
        let cents: u64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<u64>().ok()? * 10,
            _ => fraction.parse().ok()?,
        };
        whole
            .checked_mul(100)?
            .checked_add(cents)
            .map(|cents| Price { cents })
    }
}

impl fmt::Display for Price {
    /// Always two decimals with a dot: "12.90".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.cents / 100, self.cents % 100)
    }
}

/// One FAQ entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaqEntry {
    pub id: String,
    /// The customer-service intent this entry answers (a Bitext intent name in the demo).
    pub intent: Option<String>,
    /// The canonical question; also the entry's title in citations.
    pub question: String,
    pub answer: String,
    /// Phrasings written by the shop.
    pub examples: Vec<String>,
    pub tags: Vec<String>,
    pub link: Option<String>,
    /// Ids of policies whose text goes into the prompt with this entry.
    pub policies: Vec<String>,
    /// The entry's topic needs a person (a double charge, a missing parcel): the answer is
    /// given and the question is handed to the team with the conversation so far.
    pub handoff: bool,
}

/// One shop policy (shipping, returns, payment, privacy, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub id: String,
    pub title: String,
    pub text: String,
    pub link: Option<String>,
}

/// One catalogue product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub price: Price,
    pub stock: u32,
    pub description: String,
    /// Other names customers use; matched like the name.
    pub aliases: Vec<String>,
    /// Category ids (`[category_names]` in catalogue.toml lists their words per language).
    pub categories: Vec<String>,
    /// Names in other languages: (language code, names); the first is shown to customers
    /// who write in that language, all are matched like aliases.
    pub translations: Vec<(String, Vec<String>)>,
}

impl Product {
    /// The name, aliases and translated names, in that order.
    pub fn all_names(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .chain(self.translations.iter().flat_map(|(_, names)| names))
    }

    /// The name to show a customer writing in `lang` (a language code such as "de").
    pub fn name_in(&self, lang: &str) -> &str {
        self.translations
            .iter()
            .find(|(code, _)| code == lang)
            .and_then(|(_, names)| names.first())
            .unwrap_or(&self.name)
    }
}

/// An example phrasing taken from a data set (not the shop's own text), keyed by intent.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetPhrasing {
    pub utterance: String,
    pub intent: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_only_plain_decimals() {
        assert_eq!(Price::parse_decimal("12.90"), Some(Price { cents: 1290 }));
        assert_eq!(Price::parse_decimal("12.9"), Some(Price { cents: 1290 }));
        assert_eq!(Price::parse_decimal("7"), Some(Price { cents: 700 }));
        for bad in ["12,99 EUR", "12,99", "12.999", "", ".5", "12.", "-3", "€12"] {
            assert_eq!(Price::parse_decimal(bad), None, "{bad}");
        }
        assert_eq!(Price { cents: 705 }.to_string(), "7.05");
    }
}
