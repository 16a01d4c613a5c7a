//! Hand-off tickets, Discord-free: opened for a question handed to the team (at most one
//! unresolved per customer) with what the bot made of it (the routed topic, its confidence
//! and the closest knowledge entries), claimed by staff, and resolved with a staff answer
//! that passes the output guard before it reaches the customer. Stored in SQLite
//! ([`crate::store::Ticket`]), exported and forgotten with the customer; resolving one
//! makes a candidate FAQ entry ([`super::learning`]).

use super::conversation::conversation_key;
use super::error::AssistantError;
use super::knowledge::{Knowledge, Method, PreviousTurn, Route, RouteKind};
use super::learning::{accept_candidate, AcceptError, Accepted, CandidateEdits};
use super::question::language::Lang;
use super::service::{Assistant, ReloadReport};
use crate::store::{NewTicket, Ticket, TicketRouting};

/// What a customer whose ticket is still open is told when they are handed off again.
pub const STILL_WITH_THE_TEAM: &str = "Your earlier question is still with the team, and I've \
    added this one to it; a person will follow up here.";

/// Where the customer asked.
#[derive(Debug, Clone)]
pub struct TicketPlace {
    /// The customer's user key.
    pub asker: String,
    /// The server asked in; `None` for a direct message.
    pub guild_id: Option<String>,
    /// The channel (or thread) asked in.
    pub channel_id: Option<String>,
    /// The customer's message (replied to when resolved).
    pub question_message_id: Option<String>,
}

/// A ticket opened (or found open) for a customer.
#[derive(Debug, Clone)]
pub struct OpenedTicket {
    /// The ticket as stored.
    pub ticket: Ticket,
    /// Whether it is new (`false`: the customer's unresolved ticket, already with staff).
    pub new: bool,
    /// The customer's turns in that place (question, answer), oldest first.
    pub conversation: Vec<(String, String)>,
}

impl Assistant {
    /// Opens a ticket for `question`, or returns the customer's unresolved one, with the
    /// conversation so far. Waits for a turn of the customer in that place to finish
    /// first. `None` when the customer was forgotten meanwhile: nothing is stored.
    pub async fn open_ticket(
        &self,
        place: TicketPlace,
        question: &str,
    ) -> Result<Option<OpenedTicket>, AssistantError> {
        let turn = self
            .conversations
            .lock_user(&conversation_key(&place.asker, place.guild_id.as_deref()))
            .await;
        let conversation: Vec<(String, String)> = self
            .conversations
            .history(&turn)?
            .into_iter()
            .map(|turn| (turn.question, turn.answer))
            .collect();
        // The turn before this question's own, for a follow-up.
        let previous = conversation
            .iter()
            .rev()
            .find(|(asked, _)| asked != question)
            .map(|(asked, answered)| PreviousTurn {
                question: asked,
                answer: answered,
            });
        let routing = ticket_routing(&self.prompts.current().knowledge, question, previous);
        let new_ticket = NewTicket {
            user: &place.asker,
            channel_id: place.channel_id.as_deref(),
            question_message_id: place.question_message_id.as_deref(),
            question,
            at: self.conversations.now_ms(),
            routing,
        };
        let Some((ticket, new)) = self
            .store()
            .open_ticket_unless_erased(&new_ticket, turn.erasures_seen())?
        else {
            tracing::info!("no ticket: the customer was forgotten meanwhile");
            return Ok(None);
        };
        if new {
            tracing::info!(ticket = ticket.id, "ticket opened");
        }
        Ok(Some(OpenedTicket {
            ticket,
            new,
            conversation,
        }))
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

/// What the knowledge makes of a ticket's question now: the topic it routes to (the best
/// entry's intent, else its id, else the first cited source), the confidence, and the
/// closest entries (the route's own, else the FAQ classifier's nearest).
pub fn ticket_routing(
    knowledge: &Knowledge,
    question: &str,
    previous: Option<PreviousTurn>,
) -> TicketRouting {
    let route = knowledge.route_in(question, previous);
    let best = route.hits.first();
    let topic = best
        .map(|hit| hit.intent.clone().unwrap_or_else(|| hit.entry_id.clone()))
        .or_else(|| route.sources.first().map(|source| source.id.clone()));
    let wanted = knowledge.routing.closest_topics.max(1);
    let mut closest: Vec<String> = route.hits.iter().map(|hit| hit.title.clone()).collect();
    if closest.is_empty() {
        closest = knowledge
            .rank(question, Method::Combined)
            .into_iter()
            .take(wanted)
            .map(|(index, _)| knowledge.faq[index].question.clone())
            .collect();
    }
    closest.truncate(wanted);
    TicketRouting {
        topic,
        confidence: Some(route.confidence),
        closest,
    }
}

impl Assistant {
    /// Accepts the candidate FAQ entry of ticket `ticket_id` as it is (on `by`'s word,
    /// whom the adapter checked may [`super::policy::Action::AcceptKnowledge`]), writes it
    /// into the prompts folder in service, and reloads the prompts so that it answers the
    /// next customer at once.
    pub async fn accept_ticket_answer(
        &self,
        ticket_id: i64,
        by: &str,
    ) -> Result<(Accepted, ReloadReport), AssistantError> {
        let store = self.store().clone();
        let dir = self.prompts.dir().to_path_buf();
        let by = by.to_string();
        let at = self.conversations.now_ms();
        let accepted = tokio::task::spawn_blocking(move || {
            let candidate = store
                .candidate_of_ticket(ticket_id)?
                .ok_or(AcceptError::NoCandidate(ticket_id))?;
            accept_candidate(
                &store,
                &dir,
                candidate.id,
                &CandidateEdits::default(),
                &by,
                at,
            )
        })
        .await
        .map_err(AssistantError::Task)?
        .map_err(AssistantError::Accept)?;
        let reload = self.reload_prompts()?;
        Ok((accepted, reload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::demo;

    #[test]
    fn a_ticket_knows_its_topic_confidence_and_closest_entries() {
        let set = demo();
        let covered = ticket_routing(&set.knowledge, "What is your return policy?", None);
        assert!(covered.topic.is_some(), "{covered:?}");
        assert!(covered.confidence.unwrap() > 0.0, "{covered:?}");
        assert!(!covered.closest.is_empty(), "{covered:?}");
        let uncovered = ticket_routing(
            &set.knowledge,
            "do you sell refurbished tractors with a lifetime warranty?",
            None,
        );
        assert!(!uncovered.closest.is_empty(), "{uncovered:?}");
        assert!(
            uncovered.confidence.unwrap() < covered.confidence.unwrap(),
            "{uncovered:?} vs {covered:?}"
        );
        assert!(uncovered.closest.len() <= set.knowledge.routing.closest_topics);
    }
}
