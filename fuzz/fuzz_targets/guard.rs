//! The output guard (src/assistant/guard/) on arbitrary generated text, with the demo
//! shop's prompts/ folder, followed by the Discord adapter's mention neutraliser
//! (src/discord/mentions.rs), which every text the bot sends passes last.
//!
//! Input: one flags byte, one byte for the length limit, then the question and the reply
//! (lossy UTF-8) separated by the first NUL; without a NUL the question is empty.
//! Flags: bit 0 finished (citations added), bit 1 empty replacements for every rule (a
//! legal guard.toml), bit 2 a small `max_chars` (`MIN_MAX_CHARS` plus the second byte,
//! so citations may not fit). Checks the contract of `guard_reply`:
//! - it never panics;
//! - no mass mention ("@everyone", "@here") is left in the guard's output, whatever the
//!   other rules removed around them; a second pass of the mass-mention rule finds nothing;
//! - after the adapter's neutraliser no user, role or channel mention ("<@1>", "<@!1>",
//!   "<@&1>", "<#1>") is left either, and a second pass changes nothing;
//! - the output has at most `max_chars` characters, citations included;
//! - a streaming partial (`finished` false) is the finished text without its citations,
//!   which are whole leading lines of the route's citations (unless the length cap cut
//!   either text, as their budgets differ).

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use shopkeep::assistant::content::PromptSet;
use shopkeep::assistant::guard::{
    citations, guard_reply, neutralise_mass_mentions, GuardInput, Guarded, Rule, MIN_MAX_CHARS,
};
use shopkeep::discord::mentions;

static SET: LazyLock<PromptSet> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts");
    PromptSet::load(&dir).unwrap_or_else(|e| panic!("{e}"))
});

/// Discord mention syntax that pings: `@everyone`, `@here`, `<@id>`, `<@!id>`, `<@&id>`,
/// `<#id>`.
fn unneutralised_mention(text: &str) -> Option<String> {
    for mass in ["@everyone", "@here"] {
        if text.contains(mass) {
            return Some(mass.to_string());
        }
    }
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices('<') {
        let rest = &bytes[at + 1..];
        let after = match rest {
            [b'@', b'!' | b'&', tail @ ..] => tail,
            [b'@' | b'#', tail @ ..] => tail,
            _ => continue,
        };
        let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && after.get(digits) == Some(&b'>') {
            return Some(text[at..at + (bytes.len() - at).min(24)].to_string());
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let [flags, limit, rest @ ..] = data else {
        return;
    };
    let input = String::from_utf8_lossy(rest);
    let (question, reply) = input.split_once('\0').unwrap_or(("", &input));
    let finished = flags & 1 != 0;
    let set = &*SET;
    let mut rules = set.guard.clone();
    if flags & 2 != 0 {
        rules.blocked_replacement.clear();
        rules.price_replacement.clear();
        rules.stock_replacement.clear();
        rules.personal_data_replacement.clear();
    }
    if flags & 4 != 0 {
        rules.max_chars = MIN_MAX_CHARS + usize::from(*limit);
    }
    let route = set.knowledge.route(question);
    let guard_input = GuardInput {
        rules: &rules,
        knowledge: &set.knowledge,
        shop: &set.shop,
        route: &route,
    };
    let guarded = guard_reply(reply, &guard_input, finished);
    let text = &guarded.text;

    for mass in ["@everyone", "@here"] {
        assert!(!text.contains(mass), "mass mention {mass:?} left in {text:?}");
    }
    let mut again = Vec::new();
    neutralise_mass_mentions(text, &mut again);
    assert!(
        again.is_empty(),
        "second mass-mention pass found {again:?} in {text:?}"
    );
    let sent = mentions::neutralise(text);
    if let Some(mention) = unneutralised_mention(&sent) {
        panic!("mention {mention:?} left in {sent:?}");
    }
    assert_eq!(mentions::neutralise(&sent), sent, "a second pass changed {sent:?}");

    let length = text.chars().count();
    assert!(
        length <= rules.max_chars,
        "{length} chars > max_chars {}",
        rules.max_chars
    );
    // The other half of the call: everything but the citations must be the same.
    let other = guard_reply(reply, &guard_input, !finished);
    let (full, partial) = if finished {
        (&guarded, &other)
    } else {
        (&other, &guarded)
    };
    let cut = |g: &Guarded| g.findings.iter().any(|f| f.rule == Rule::Length);
    if !cut(full) && !cut(partial) {
        let cited = full
            .text
            .strip_prefix(&partial.text)
            .unwrap_or_else(|| panic!("finished {:?} vs partial {:?}", full.text, partial.text));
        let all = if rules.cite_sources {
            citations(&route)
        } else {
            String::new()
        };
        assert!(
            all.starts_with(cited)
                && (cited.is_empty()
                    || all[cited.len()..].starts_with('\n')
                    || all.len() == cited.len()),
            "citations {cited:?} are not whole lines of {all:?}"
        );
    }
});
