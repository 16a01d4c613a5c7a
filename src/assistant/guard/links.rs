//! Links: URLs outside the allowed domains are removed.

use std::sync::LazyLock;

use regex::Regex;

use super::{Finding, GuardInput, Rule};

static LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"https?://([A-Za-z0-9.-]+)[^\s)\]>]*").expect("valid regex"));

pub(super) fn allowed_domains(input: &GuardInput<'_>) -> Vec<String> {
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
        let text = replace_blocked_phrases(
            "Guaranteed FREE forever",
            &["free forever".into()],
            "[removed]",
            &mut findings,
        );
        assert_eq!(text, "Guaranteed [removed]");
        assert_eq!(findings.len(), 2);
    }
}
