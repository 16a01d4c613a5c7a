//! Mass mentions broken so that no generated text can ping a whole server or channel.
//!
//! This is the core's part of "generated text never pings anyone": `@everyone` and `@here`
//! are broken wherever they appear. A platform's own mention syntax (Discord's `<@id>`,
//! `<@&id>`, `<#id>`) is broken by its adapter, last, on every text it sends (for Discord,
//! `discord::mentions`), and the adapter sends with no mentions allowed as well.

use std::sync::LazyLock;

use regex::Regex;

use super::{Finding, Rule};

/// Zero-width space, inserted to break a mention; adapters break their own syntax with it
/// too.
pub const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// Mass mentions match wherever they appear ("@everyonet", "a@here"), not only as whole
/// words: whether a platform pings is not decided by word boundaries.
static MASS_MENTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"@(everyone|here)").expect("valid regex"));

/// Breaks mass mentions (`@everyone`, `@here`, anywhere in a word) with a zero-width space
/// after the `@`, recording a [`Rule::Mention`] finding for each. The result has none
/// left: a second pass finds nothing.
pub fn neutralise_mass_mentions(text: &str, findings: &mut Vec<Finding>) -> String {
    MASS_MENTION
        .replace_all(text, |caps: &regex::Captures<'_>| {
            findings.push(Finding {
                rule: Rule::Mention,
                detail: caps[0].to_string(),
            });
            format!("@{ZERO_WIDTH_SPACE}{}", &caps[1])
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mass_mentions_are_broken_and_addresses_kept() {
        let mut findings = Vec::new();
        let text = neutralise_mass_mentions(
            "hey @everyone and @here, write to me@example.com",
            &mut findings,
        );
        assert!(
            !text.contains("@everyone") && !text.contains("@here"),
            "{text}"
        );
        assert!(text.contains("me@example.com"));
        assert_eq!(findings.len(), 2);
        let mut again = Vec::new();
        assert_eq!(neutralise_mass_mentions(&text, &mut again), text);
        assert!(again.is_empty());
    }

    #[test]
    fn mass_mentions_inside_words_are_broken_too() {
        // Found by the `guard` fuzz target: "@everyonet" kept its ping.
        let mut findings = Vec::new();
        let text = neutralise_mass_mentions("@everyonet, x@here and @heres", &mut findings);
        assert!(
            !text.contains("@everyone") && !text.contains("@here"),
            "{text}"
        );
        assert_eq!(findings.len(), 3);
    }
}
