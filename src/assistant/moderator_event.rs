//! What the assistant tells moderators about, for the adapter's moderator log.

use super::guard::Finding;

/// Something moderators should see, posted by the adapter to the moderator log channel.
#[derive(Debug, Clone)]
pub enum ModeratorEvent {
    /// A shop question the knowledge does not cover: a human should follow up.
    Handoff {
        /// The asker's user key.
        user_id: String,
        /// Where it was asked; `None` in a DM or the terminal.
        channel_id: Option<String>,
        /// The question, as asked.
        question: String,
        /// Titles of the closest knowledge entries.
        closest: Vec<String>,
        /// A case for a person (not a gap in the knowledge): a double charge, a missing
        /// parcel, an upset customer.
        needs_person: bool,
        /// The user's earlier turns (question, answer), oldest first.
        conversation: Vec<(String, String)>,
    },
    /// The output guard changed a generated reply.
    GuardFired {
        /// The asker's user key.
        user_id: String,
        /// Where it was asked; `None` in a DM or the terminal.
        channel_id: Option<String>,
        /// The question, as asked.
        question: String,
        /// The model's reply before the guard changed it (untrusted text; show it quoted).
        raw_output: String,
        /// What the guard found and changed.
        findings: Vec<Finding>,
    },
}
