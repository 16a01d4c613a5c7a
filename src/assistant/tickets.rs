//! Hand-off tickets, Discord-free: opened for a question handed to the team (at most one
//! unresolved per customer), claimed by staff, and resolved with a staff answer that
//! passes the output guard before it reaches the customer. Stored in SQLite
//! ([`crate::store::Ticket`]), exported and forgotten with the customer.

use super::conversation::conversation_key;
use super::knowledge::{Route, RouteKind};
use super::question::language::Lang;
use super::{Assistant, AssistantError};
use crate::store::{NewTicket, Ticket};

/// Where the customer asked.
#[derive(Debug, Clone)]
pub struct TicketPlace {
    pub asker: String,
    pub guild_id: Option<String>,
    pub channel_id: Option<String>,
    /// The customer's message (replied to when resolved).
    pub question_message_id: Option<String>,
}

/// A ticket opened (or found open) for a customer.
#[derive(Debug, Clone)]
pub struct OpenedTicket {
    pub ticket: Ticket,
    /// Whether it is new (`false`: the customer's unresolved ticket, already with staff).
    pub new: bool,
    /// The customer's turns in that place (question, answer), oldest first.
    pub conversation: Vec<(String, String)>,
}

impl Assistant {
    /// Opens a ticket for `question`, or returns the customer's unresolved one, with the
    /// conversation so far. Waits for a turn of the customer in flight to finish first.
    pub async fn open_ticket(
        &self,
        place: TicketPlace,
        question: &str,
    ) -> Result<OpenedTicket, AssistantError> {
        let turn = self
            .conversations
            .lock_user(&conversation_key(&place.asker, place.guild_id.as_deref()))
            .await;
        let conversation = self
            .conversations
            .history(&turn)?
            .into_iter()
            .map(|turn| (turn.question, turn.answer))
            .collect();
        let (ticket, new) = self.store().open_ticket(&NewTicket {
            user: &place.asker,
            channel_id: place.channel_id.as_deref(),
            question_message_id: place.question_message_id.as_deref(),
            question,
            at: self.conversations.now_ms(),
        })?;
        if new {
            tracing::info!(ticket = ticket.id, "ticket opened");
        }
        Ok(OpenedTicket {
            ticket,
            new,
            conversation,
        })
    }

    /// Records where ticket `id` is worked (a staff thread).
    pub fn set_ticket_thread(&self, id: i64, thread: &str) -> Result<(), AssistantError> {
        Ok(self.store().set_ticket_thread(id, thread)?)
    }

    /// `staff` claims ticket `id`; `None` when it does not exist or is resolved.
    pub fn claim_ticket(&self, id: i64, staff: &str) -> Result<Option<Ticket>, AssistantError> {
        Ok(self
            .store()
            .claim_ticket(id, staff, self.conversations.now_ms())?)
    }

    /// Resolves ticket `id` with `staff`'s `answer`, cleaned by the output guard (mentions
    /// neutralised, personal data redacted, unverified prices and links checked) and
    /// stored as posted; `None` when the ticket does not exist or is resolved already.
    pub fn resolve_ticket(
        &self,
        id: i64,
        staff: &str,
        answer: &str,
    ) -> Result<Option<Ticket>, AssistantError> {
        let route = Route::empty(RouteKind::General, Lang::En);
        let guarded = self.prompts.current().guard_reply(&route, answer, true);
        if !guarded.findings.is_empty() {
            tracing::info!(
                ticket = id,
                findings = guarded.findings.len(),
                "the guard changed a staff answer"
            );
        }
        Ok(self
            .store()
            .resolve_ticket(id, staff, &guarded.text, self.conversations.now_ms())?)
    }
}
