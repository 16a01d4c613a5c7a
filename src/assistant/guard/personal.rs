//! Personal data: e-mail addresses, card numbers and phone numbers redacted.

use std::sync::LazyLock;

use regex::Regex;

use super::{Finding, Rule};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::guard::*;

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
