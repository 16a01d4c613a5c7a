//! Who may do what: the adapter resolves the asker's [`Role`] from its platform's roles and
//! permissions, then asks [`may`].

use super::inbound::Role;

/// What a person can ask the assistant to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask a question.
    Ask,
    /// Have the assistant forget their own conversation.
    Forget,
    /// Summarise a channel.
    Summarise,
    /// Read the question-log insights.
    Insights,
    /// Draft a product description or post.
    Draft,
    /// Reload the prompts folder.
    ReloadPrompts,
    /// Accept a team answer as a new FAQ entry (it changes the prompts folder).
    AcceptKnowledge,
}

/// Whether someone with `role` may do `action`: everyone asks and forgets, moderators use
/// the moderator tools, admins reload the prompts and add team answers to the FAQ.
pub fn may(role: Role, action: Action) -> bool {
    let needed = match action {
        Action::Ask | Action::Forget => Role::Customer,
        Action::Summarise | Action::Insights | Action::Draft => Role::Moderator,
        Action::ReloadPrompts | Action::AcceptKnowledge => Role::Admin,
    };
    role >= needed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moderator_tools_need_a_moderator_and_reloads_an_admin() {
        assert!(may(Role::Customer, Action::Ask) && may(Role::Customer, Action::Forget));
        for action in [Action::Summarise, Action::Insights, Action::Draft] {
            assert!(!may(Role::Customer, action));
            assert!(may(Role::Moderator, action) && may(Role::Admin, action));
        }
        for action in [Action::ReloadPrompts, Action::AcceptKnowledge] {
            assert!(!may(Role::Moderator, action));
            assert!(may(Role::Admin, action));
        }
    }
}
