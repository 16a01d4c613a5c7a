//! Links: URLs outside the allowed domains are removed.

use std::sync::LazyLock;

use regex::Regex;

use super::{Finding, GuardRules, Rule};
use crate::assistant::knowledge::Knowledge;
use crate::assistant::shop::Shop;

/// Top-level domains whose bare names (`evil-shop.com`, `www.x.shop/path`) count as links:
/// clients make them clickable, or readers copy them. TLDs that are also common English
/// words (`.is`, `.to`, `.in`, `.me`, `.co`, `.us`) are left out, so a missing space after
/// a full stop is not a link.
const BARE_TLDS: &str = "com|net|org|io|shop|store|info|biz|xyz|app|dev|ly|gg|tv|ru|cn|uk|de|fr|nl|eu|ca|au|top|online|site|link|click|live|club|vip|pro|cc|ws|su|example";

/// A link: any `scheme://…` (scheme in any case), or a bare domain with one of
/// [`BARE_TLDS`] (letters of any script, digits, `%` and `-` in its labels) and an optional
/// path. Ends before whitespace, brackets, quotes and backticks.
static LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)\b[a-z][a-z0-9+.-]*://[^\s<>()\[\]"'`]+|(?:[\p{{L}}\p{{N}}%-]+\.)+(?:{BARE_TLDS})\b(?:[/?#][^\s<>()\[\]"'`]*)?"#
    ))
    .expect("valid regex")
});

/// The host a link points to, as a browser would resolve it: lower case, IDN in punycode
/// (`xn--…`), percent-encoding decoded, user info (`allowed.example@evil.example`)
/// skipped. `None` when the link does not parse.
pub fn host_of(link: &str) -> Option<String> {
    let absolute = if link.contains("://") {
        link.to_string()
    } else {
        format!("http://{link}")
    };
    let url = url::Url::parse(&absolute).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// A configured or knowledge domain, normalised like [`host_of`].
fn normalised_domain(domain: &str) -> Option<String> {
    host_of(domain.trim().trim_start_matches("*."))
}

/// The hosts replies may link to: guard.toml's `allowed_link_domains` and the hosts of
/// every knowledge link and the shop's website, each normalised like [`host_of`]. Empty
/// (every link allowed) when guard.toml lists none. Parses every link, so a prompt set
/// computes it once, when it is loaded.
pub fn allowed_domains(rules: &GuardRules, knowledge: &Knowledge, shop: &Shop) -> Vec<String> {
    if rules.allowed_link_domains.is_empty() {
        return Vec::new();
    }
    let mut domains: Vec<String> = rules
        .allowed_link_domains
        .iter()
        .filter_map(|d| normalised_domain(d))
        .collect();
    let knowledge_links = knowledge
        .faq
        .iter()
        .filter_map(|e| e.link.as_deref())
        .chain(knowledge.policies.iter().filter_map(|p| p.link.as_deref()))
        .chain(shop.website.as_deref());
    domains.extend(knowledge_links.filter_map(host_of));
    domains
}

/// Replaces links whose host is not in `domains` (or a subdomain of one) by
/// "[link removed]". Schemes match in any case, hosts are compared after IDN (punycode)
/// and percent-decoding, bare domains count (not the domain of an e-mail address), and a
/// link that does not parse is removed. An empty list allows every link.
pub fn remove_foreign_links(text: &str, domains: &[String], findings: &mut Vec<Finding>) -> String {
    if domains.is_empty() || !LINK.is_match(text) {
        return text.to_string();
    }
    let domains: Vec<String> = domains
        .iter()
        .filter_map(|d| normalised_domain(d))
        .collect();
    LINK.replace_all(text, |caps: &regex::Captures<'_>| {
        let found = caps.get(0).expect("the whole match");
        let link = found.as_str();
        let in_email = !link.contains("://") && text[..found.start()].ends_with('@');
        let allowed = in_email
            || host_of(link).is_some_and(|host| {
                domains
                    .iter()
                    .any(|d| host == *d || host.ends_with(&format!(".{d}")))
            });
        if allowed {
            link.to_string()
        } else {
            findings.push(Finding {
                rule: Rule::Link,
                detail: link.to_string(),
            });
            "[link removed]".to_string()
        }
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::guard::*;

    #[test]
    fn links_outside_allowed_domains_and_blocked_phrases_are_removed() {
        let mut findings = Vec::new();
        let text = remove_foreign_links(
            "see https://kettleandkiln.example/help and https://evil.example/x and https://shop.kettleandkiln.example",
            &["kettleandkiln.example".to_string()],
            &mut findings,
        );
        assert_eq!(text, "see https://kettleandkiln.example/help and [link removed] and https://shop.kettleandkiln.example");
        let text = BlockedPhrases::from(vec!["free forever".to_string()]).replace(
            "Guaranteed FREE forever",
            "[removed]",
            &mut findings,
        );
        assert_eq!(text, "Guaranteed [removed]");
        assert_eq!(findings.len(), 2);
    }

    fn filtered(text: &str) -> String {
        remove_foreign_links(
            text,
            &["kettleandkiln.example".to_string()],
            &mut Vec::new(),
        )
    }

    #[test]
    fn schemes_match_in_any_case() {
        assert_eq!(
            filtered("go to HTTPS://EVIL.example/x now"),
            "go to [link removed] now"
        );
        assert_eq!(filtered("Http://evil.example"), "[link removed]");
        assert_eq!(filtered("ftp://evil.example/f"), "[link removed]");
        assert_eq!(
            filtered("HTTPS://KettleAndKiln.example/help"),
            "HTTPS://KettleAndKiln.example/help"
        );
    }

    #[test]
    fn look_alike_percent_encoded_and_disguised_hosts_are_removed() {
        // A Cyrillic "і" in the shop's name: a different (punycode) host.
        assert_eq!(
            filtered("https://kettleandk\u{456}ln.example/help"),
            "[link removed]"
        );
        assert_eq!(filtered("https://evil%2Eexample/x"), "[link removed]");
        assert_eq!(
            filtered("https://kettleandkiln.example@evil.example/"),
            "[link removed]"
        );
        assert_eq!(
            filtered("https://k%65ttleandkiln.example/"),
            "https://k%65ttleandkiln.example/"
        );
        assert_eq!(
            filtered("see [the help](https://evil.example/help)"),
            "see [the help]([link removed])"
        );
    }

    #[test]
    fn bare_domains_count_as_links() {
        assert_eq!(
            filtered("order at evil-shop.com/deals today"),
            "order at [link removed] today"
        );
        assert_eq!(filtered("try www.evil.shop"), "try [link removed]");
        assert_eq!(
            filtered("we are kettleandkiln.example"),
            "we are kettleandkiln.example"
        );
        // The domain of an e-mail address is the personal-data rule's business.
        assert_eq!(filtered("write to ann@gmail.com"), "write to ann@gmail.com");
        // Ordinary sentences are left alone.
        assert_eq!(
            filtered("It costs 12.50 e.g. today. Done."),
            "It costs 12.50 e.g. today. Done."
        );
    }

    #[test]
    fn hosts_are_normalised_like_a_browser() {
        assert_eq!(
            host_of("HTTPS://Ex.Example/a").as_deref(),
            Some("ex.example")
        );
        assert_eq!(
            host_of("bücher.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(
            host_of("https://a.example@b.example/").as_deref(),
            Some("b.example")
        );
    }
}
