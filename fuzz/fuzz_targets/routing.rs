//! Message routing and mention stripping (src/discord/events.rs) on arbitrary messages.
//!
//! Input: one flags byte, then the message content (lossy UTF-8). Checks: routing never
//! panics; the bot itself and other bots are never answered; an answered question has no
//! mention of the bot left, no surrounding whitespace, and stripping it again changes
//! nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shopkeep::discord::events::{strip_mention, MessageFacts, RoutingRules};

const BOT: u64 = 1000;
const SUPPORT: u64 = 42;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let content = String::from_utf8_lossy(rest).into_owned();
    let bit = |n: u8| flags & (1 << n) != 0;
    let rules = RoutingRules {
        bot_id: BOT,
        guilds: vec![1],
        support_channels: vec![SUPPORT],
        answer_dms: bit(0),
        mod_roles: vec![7],
        admin_roles: vec![9],
    };
    let author_id = if bit(1) { BOT } else { 5 };
    let facts = MessageFacts {
        author_id,
        author_name: "fuzz".into(),
        author_is_bot: bit(2),
        is_regular: bit(3),
        guild_id: (!bit(4)).then_some(1),
        channel_id: if bit(5) { SUPPORT } else { 2 },
        parent_channel_id: bit(5).then_some(SUPPORT).filter(|_| bit(6)),
        content: content.clone(),
        mentions: if bit(6) { vec![BOT] } else { Vec::new() },
        replies_to_bot: bit(7),
        roles: vec![7],
    };
    let routed = rules.route(&facts);
    if author_id == BOT || facts.author_is_bot || !facts.is_regular {
        assert!(
            routed.is_none(),
            "answered itself, a bot or a system message"
        );
    }
    if let Some(inbound) = routed {
        let text = inbound.text;
        assert!(
            !text.contains(&format!("<@{BOT}>")),
            "mention left: {text:?}"
        );
        assert!(
            !text.contains(&format!("<@!{BOT}>")),
            "mention left: {text:?}"
        );
        assert_eq!(text.trim(), text, "untrimmed");
        assert_eq!(
            strip_mention(&text, BOT),
            text,
            "stripping is not idempotent"
        );
    }
});
