//! The entries of the shop's knowledge as data: FAQ entries, policies, catalogue products
//! and their prices, and example phrasings from a data set.

use std::fmt;

use serde::Serialize;

/// An amount of money in the shop currency, in cents; parsed from "12.90" or 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Price {
    /// The amount in cents (1290 is 12.90).
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
    /// Unique among the entries; cited and logged.
    pub id: String,
    /// The customer-service intent this entry answers (a Bitext intent name in the demo).
    pub intent: Option<String>,
    /// The canonical question; also the entry's title in citations.
    pub question: String,
    /// The shop's answer, quoted or given to the model as the facts.
    pub answer: String,
    /// Phrasings written by the shop.
    pub examples: Vec<String>,
    /// Topic words; with the intent name they describe the entry's topic.
    pub tags: Vec<String>,
    /// A page cited with the answer, if any.
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
    /// Unique among the policies; FAQ entries name it in `policies`.
    pub id: String,
    /// The title shown in citations.
    pub title: String,
    /// The policy's text; its sentences are retrievable passages.
    pub text: String,
    /// A page cited with it, if any.
    pub link: Option<String>,
}

/// One catalogue product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    /// Unique within the catalogue.
    pub id: String,
    /// The name shown to customers, unless a translation names it in their language.
    pub name: String,
    /// The price in the shop currency; the only price the guard lets a reply state for it.
    pub price: Price,
    /// Units in stock; 0 is sold out.
    pub stock: u32,
    /// What the product is; the only source of its properties.
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
    /// The customer's words.
    pub utterance: String,
    /// The intent they express; entries with the same intent get the phrasing.
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
