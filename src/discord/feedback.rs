//! 👍/👎 reactions on the bot's own replies become feedback votes in the store (for
//! `/insights`). Other emoji, reactions by bots, and reactions on other people's messages
//! are ignored.

use serenity::all::{Reaction, ReactionType};

use super::BotState;
use crate::store::Vote;

/// The vote an emoji stands for, if any (skin-tone variants count too).
pub fn vote_of(emoji: &ReactionType) -> Option<Vote> {
    let ReactionType::Unicode(name) = emoji else {
        return None;
    };
    if name.starts_with('👍') {
        Some(Vote::Up)
    } else if name.starts_with('👎') {
        Some(Vote::Down)
    } else {
        None
    }
}

/// Records (`added`) or withdraws a vote. A reaction counts when it is on a message the
/// bot wrote: Discord names the author on reaction-add; otherwise the bot's memory of
/// recently posted messages decides. Withdrawing a vote that was never recorded is a
/// no-op.
pub async fn on_reaction(shared: &BotState, reaction: Reaction, added: bool) {
    let Some(vote) = vote_of(&reaction.emoji) else {
        return;
    };
    let Some(user) = reaction.user_id else {
        return;
    };
    let bot_id = shared.bot_id();
    if user.get() == bot_id {
        return;
    }
    let message = reaction.message_id.get();
    let on_bot_message = match reaction.message_author_id {
        Some(author) => author.get() == bot_id,
        None => shared.own_messages.contains(message),
    };
    if !on_bot_message {
        return;
    }
    let (message, user) = (message.to_string(), user.get().to_string());
    match shared
        .assistant
        .record_feedback(message, user, vote, added)
        .await
    {
        Ok(()) => tracing::info!(?vote, added, "feedback recorded"),
        Err(error) => tracing::warn!(%error, "could not record feedback"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbs_are_votes_and_other_emoji_are_not() {
        let unicode = |s: &str| ReactionType::Unicode(s.into());
        assert_eq!(vote_of(&unicode("👍")), Some(Vote::Up));
        assert_eq!(vote_of(&unicode("👍🏽")), Some(Vote::Up));
        assert_eq!(vote_of(&unicode("👎")), Some(Vote::Down));
        assert_eq!(vote_of(&unicode("❤️")), None);
    }
}
