//! Discord's mention syntax broken in every text the bot sends, so that no text from the
//! core (answers, notices, summaries, drafts) or from a customer can ping anyone.
//!
//! The core breaks mass mentions (`@everyone`, `@here`) in generated text; this breaks
//! them again along with Discord's own syntax for users (`<@id>`, `<@!id>`), roles
//! (`<@&id>`) and channels (`<#id>`), last, at the edge: [`super::reply::Reply::show`] and
//! [`super::reply::ephemeral_message`] pass every text through [`neutralise`]. Mention
//! markup the adapter writes on purpose (a ticket's customer and staff, the mod log's
//! user) is posted with `Reply::show_with_own_mentions`, its outside text quoted and
//! neutralised by the caller. Every send also carries `allowed_mentions` with nothing
//! allowed ([`super::rest`]), so even a mention that slipped through would not ping.

use std::sync::LazyLock;

use regex::Regex;

use crate::assistant::guard::{neutralise_mass_mentions, ZERO_WIDTH_SPACE};

/// User, role and channel mentions as Discord resolves them.
static MENTION_SYNTAX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<(@[!&]?|#)(\d+)>").expect("valid regex"));

/// `text` with every mention broken by a zero-width space: mass mentions after the `@`,
/// user, role and channel mentions after the `<`. The result has no mention left (a second
/// pass returns it unchanged); everything else is kept as it was.
pub fn neutralise(text: &str) -> String {
    let without_mass = neutralise_mass_mentions(text, &mut Vec::new());
    MENTION_SYNTAX
        .replace_all(&without_mass, |caps: &regex::Captures<'_>| {
            format!("<{ZERO_WIDTH_SPACE}{}{}>", &caps[1], &caps[2])
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mention Discord would resolve in `text`, found without the module's regex.
    fn pinging(text: &str) -> Option<String> {
        if let Some(mass) = ["@everyone", "@here"]
            .into_iter()
            .find(|m| text.contains(m))
        {
            return Some(mass.to_string());
        }
        let bytes = text.as_bytes();
        text.match_indices('<').find_map(|(at, _)| {
            let after = match &bytes[at + 1..] {
                [b'@', b'!' | b'&', tail @ ..] | [b'@' | b'#', tail @ ..] => tail,
                _ => return None,
            };
            let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
            (digits > 0 && after.get(digits) == Some(&b'>')).then(|| text[at..].to_string())
        })
    }

    #[test]
    fn every_kind_of_mention_is_broken_and_other_text_kept() {
        let text = neutralise(
            "hey @everyone and @here, ping <@123> <@!4> <@&56> <#78>; me@example.com <b> <@x>",
        );
        assert_eq!(pinging(&text), None, "{text}");
        for kept in ["me@example.com", "<b>", "<@x>", "hey ", "ping "] {
            assert!(text.contains(kept), "{kept} lost from {text}");
        }
        assert_eq!(
            text.chars().filter(|c| *c == ZERO_WIDTH_SPACE).count(),
            6,
            "{text}"
        );
    }

    #[test]
    fn a_mention_the_core_guard_let_through_is_broken_here() {
        // The core breaks mass mentions only; a blocked phrase removed with an empty
        // replacement joins Discord's syntax back together, and this edge breaks it.
        let set = crate::assistant::content::test_support::demo();
        let mut rules = set.guard.clone();
        rules.blocked_replacement.clear();
        let route = set.knowledge.route("hi");
        let domains = crate::assistant::guard::allowed_domains(&rules, &set.knowledge, &set.shop);
        let input = crate::assistant::guard::GuardInput {
            rules: &rules,
            knowledge: &set.knowledge,
            shop: &set.shop,
            route: &route,
            domains: &domains,
        };
        let guarded =
            crate::assistant::guard::guard_reply("ping <@free forever123> and <#9>", &input, true);
        assert!(guarded.text.contains("<@123>"), "{}", guarded.text);
        assert_eq!(pinging(&neutralise(&guarded.text)), None);
    }

    #[test]
    fn an_ephemeral_message_is_neutralised_and_allows_no_mentions() {
        let response = super::super::reply::ephemeral_message("@here: <@&5> and <#6>");
        let body = serde_json::to_value(&response).unwrap();
        let content = body["data"]["content"].as_str().unwrap();
        assert_eq!(pinging(content), None, "{content}");
        assert_eq!(
            body["data"]["allowed_mentions"]["parse"],
            serde_json::json!([])
        );
    }

    proptest::proptest! {
        #[test]
        fn no_mention_survives_and_a_second_pass_changes_nothing(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "<", ">", "@", "!", "&", "#", "12", "3", "everyone", "here", "every",
                    "one", " ", "x", "\u{200B}",
                ]),
                0..40,
            )
        ) {
            let text: String = pieces.concat();
            let once = neutralise(&text);
            proptest::prop_assert_eq!(pinging(&once), None, "{:?} -> {:?}", text, once);
            proptest::prop_assert_eq!(neutralise(&once), once.clone());
        }
    }
}
