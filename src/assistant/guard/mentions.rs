//! Mentions: mass mentions and mention syntax broken so that no reply can ping.

use std::sync::LazyLock;

use regex::Regex;

use super::{Finding, Rule};

/// Zero-width space, inserted to break mention syntax.
const ZERO_WIDTH_SPACE: char = '\u{200B}';

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
