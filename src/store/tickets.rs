//! Hand-off tickets: a customer's question handed to the team, the staff thread it is
//! worked in, who claimed it and when, and the answer it was resolved with.
//!
//! A customer has at most one unresolved ticket: opening another returns it. Tickets
//! belong to the customer (`user_key`): `user export` lists them and `user forget`
//! deletes them. Resolving a ticket also makes its candidate FAQ entry (see
//! [`super::candidates`]).

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::privacy::erased_since;
use super::{offload, Store, StoreError, UnixMillis};

/// One ticket as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    /// Its row id, shown as the ticket number.
    pub id: i64,
    /// The customer.
    pub user: String,
    /// Where the customer asked (`None`: a direct message).
    pub channel_id: Option<String>,
    /// The customer's question message, replied to when the ticket is resolved.
    pub question_message_id: Option<String>,
    /// The question handed off.
    pub question: String,
    /// The staff thread the ticket is worked in, once opened.
    pub thread_id: Option<String>,
    /// When it was opened.
    pub opened_at: UnixMillis,
    /// The staff member who claimed it last, if any.
    pub claimed_by: Option<String>,
    /// When it was claimed.
    pub claimed_at: Option<UnixMillis>,
    /// The staff member who resolved it; `None` while it is open.
    pub resolved_by: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<UnixMillis>,
    /// The staff's answer, as posted to the customer.
    pub answer: Option<String>,
    /// What the question was routed to when the ticket opened.
    #[serde(flatten)]
    pub routing: TicketRouting,
}

/// What the bot made of a ticket's question: the routed topic, its confidence and the
/// closest knowledge entries, for staff to answer without asking again.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TicketRouting {
    /// The topic (a FAQ entry's intent, else the entry or source id) the question was
    /// routed to, if any.
    pub topic: Option<String>,
    /// The routing confidence in [0, 1].
    pub confidence: Option<f32>,
    /// Titles of the closest knowledge entries, closest first.
    pub closest: Vec<String>,
}

/// What a new ticket is about.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    /// The customer.
    pub user: &'a str,
    /// Where the customer asked (`None`: a direct message).
    pub channel_id: Option<&'a str>,
    /// The customer's question message, if known.
    pub question_message_id: Option<&'a str>,
    /// The question handed off.
    pub question: &'a str,
    /// When the ticket is opened.
    pub at: UnixMillis,
    /// What the bot made of the question (topic, confidence, closest entries).
    pub routing: TicketRouting,
}

const COLUMNS: &str = "id, user_key, channel_id, question_message_id, question, thread_id, \
    opened_at, claimed_by, claimed_at, resolved_by, resolved_at, answer, topic, confidence, \
    closest";

fn ticket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        id: r.get(0)?,
        user: r.get(1)?,
        channel_id: r.get(2)?,
        question_message_id: r.get(3)?,
        question: r.get(4)?,
        thread_id: r.get(5)?,
        opened_at: r.get(6)?,
        claimed_by: r.get(7)?,
        claimed_at: r.get(8)?,
        resolved_by: r.get(9)?,
        resolved_at: r.get(10)?,
        answer: r.get(11)?,
        routing: TicketRouting {
            topic: r.get(12)?,
            confidence: r.get(13)?,
            closest: serde_json::from_str(&r.get::<_, String>(14)?).unwrap_or_default(),
        },
    })
}

impl Store {
    /// Opens a ticket, or returns the customer's unresolved one; `true` when it is new.
    pub fn open_ticket(&self, new: &NewTicket<'_>) -> Result<(Ticket, bool), StoreError> {
        let opened = self.open_ticket_checked(new, None)?;
        Ok(opened.expect("a ticket opened without an erasure check is always stored"))
    }

    /// [`Store::open_ticket`] unless the asker was forgotten after the erasure `seen`
    /// (when the turn that opens it began): then `None`, and nothing is written. The check
    /// and the insert are one write transaction.
    pub fn open_ticket_unless_erased(
        &self,
        new: &NewTicket<'_>,
        seen: i64,
    ) -> Result<Option<(Ticket, bool)>, StoreError> {
        self.open_ticket_checked(new, Some(seen))
    }

    fn open_ticket_checked(
        &self,
        new: &NewTicket<'_>,
        seen: Option<i64>,
    ) -> Result<Option<(Ticket, bool)>, StoreError> {
        offload(|| {
            let mut connection = self.lock();
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(seen) = seen {
                if erased_since(&tx, &[new.user], seen)? {
                    return Ok(None);
                }
            }
            let open = tx
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM tickets WHERE user_key = ?1 AND resolved_at IS NULL
                         ORDER BY id LIMIT 1"
                    ),
                    params![new.user],
                    ticket_row,
                )
                .optional()?;
            if let Some(open) = open {
                return Ok(Some((open, false)));
            }
            tx.execute(
                "INSERT INTO tickets (user_key, channel_id, question_message_id, question, opened_at,
                     topic, confidence, closest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    new.user,
                    new.channel_id,
                    new.question_message_id,
                    super::capped(new.question),
                    new.at,
                    new.routing.topic,
                    new.routing.confidence,
                    serde_json::to_string(&new.routing.closest).unwrap_or_else(|_| "[]".into()),
                ],
            )?;
            let id = tx.last_insert_rowid();
            let ticket = tx.query_row(
                &format!("SELECT {COLUMNS} FROM tickets WHERE id = ?1"),
                params![id],
                ticket_row,
            )?;
            tx.commit()?;
            Ok(Some((ticket, true)))
        })
    }

    /// The ticket `id`, if it exists.
    pub fn ticket(&self, id: i64) -> Result<Option<Ticket>, StoreError> {
        offload(|| {
            Ok(self
                .lock()
                .query_row(
                    &format!("SELECT {COLUMNS} FROM tickets WHERE id = ?1"),
                    params![id],
                    ticket_row,
                )
                .optional()?)
        })
    }

    /// Records the staff thread of ticket `id`.
    pub fn set_ticket_thread(&self, id: i64, thread_id: &str) -> Result<(), StoreError> {
        offload(|| {
            self.lock().execute(
                "UPDATE tickets SET thread_id = ?2 WHERE id = ?1",
                params![id, thread_id],
            )?;
            Ok(())
        })
    }

    /// `staff` claims ticket `id` (a later claim takes it over); the ticket after, `None`
    /// when it does not exist or is resolved.
    pub fn claim_ticket(
        &self,
        id: i64,
        staff: &str,
        at: UnixMillis,
    ) -> Result<Option<Ticket>, StoreError> {
        offload(|| {
            let changed = self.lock().execute(
                "UPDATE tickets SET claimed_by = ?2, claimed_at = ?3
                 WHERE id = ?1 AND resolved_at IS NULL",
                params![id, staff, at],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            self.ticket(id)
        })
    }

    /// Resolves ticket `id` with `answer` and makes its candidate FAQ entry, in one
    /// transaction; the ticket after, `None` when it does not exist or was resolved already.
    pub fn resolve_ticket(
        &self,
        id: i64,
        staff: &str,
        answer: &str,
        at: UnixMillis,
    ) -> Result<Option<Ticket>, StoreError> {
        offload(|| {
            let mut connection = self.lock();
            let tx = connection.transaction()?;
            let changed = tx.execute(
                "UPDATE tickets SET resolved_by = ?2, resolved_at = ?3, answer = ?4,
                     claimed_by = coalesce(claimed_by, ?2), claimed_at = coalesce(claimed_at, ?3)
                 WHERE id = ?1 AND resolved_at IS NULL",
                params![id, staff, at, answer],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            let ticket = tx.query_row(
                &format!("SELECT {COLUMNS} FROM tickets WHERE id = ?1"),
                params![id],
                ticket_row,
            )?;
            super::candidates::add_for_ticket(&tx, &ticket)?;
            tx.commit()?;
            Ok(Some(ticket))
        })
    }

    pub(super) fn tickets_of(&self, user: &str) -> Result<Vec<Ticket>, StoreError> {
        offload(|| {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM tickets WHERE user_key = ?1 ORDER BY id"
            ))?;
            let rows = statement
                .query_map(params![user], ticket_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(user: &str) -> NewTicket<'_> {
        NewTicket {
            user,
            channel_id: Some("c"),
            question_message_id: Some("m"),
            question: "where is my parcel",
            at: 10,
            routing: TicketRouting {
                topic: Some("track_order".into()),
                confidence: Some(0.25),
                closest: vec!["Where is my order?".into()],
            },
        }
    }

    #[test]
    fn one_open_ticket_per_customer_claimed_then_resolved_once() {
        let store = Store::open_in_memory().unwrap();
        let (ticket, created) = store.open_ticket(&new("ann")).unwrap();
        assert!(created);
        let (again, created) = store.open_ticket(&new("ann")).unwrap();
        assert_eq!((again.id, created), (ticket.id, false));
        store.set_ticket_thread(ticket.id, "t1").unwrap();
        let claimed = store.claim_ticket(ticket.id, "mod", 20).unwrap().unwrap();
        assert_eq!(
            (claimed.claimed_by.as_deref(), claimed.claimed_at),
            (Some("mod"), Some(20))
        );
        let resolved = store
            .resolve_ticket(ticket.id, "mod2", "It left today.", 30)
            .unwrap()
            .unwrap();
        assert_eq!(resolved.answer.as_deref(), Some("It left today."));
        assert_eq!(resolved.claimed_by.as_deref(), Some("mod"));
        assert_eq!(resolved.thread_id.as_deref(), Some("t1"));
        assert_eq!(resolved.routing, new("ann").routing, "the routing is kept");
        assert_eq!(
            store.resolve_ticket(ticket.id, "mod", "again", 40).unwrap(),
            None
        );
        assert_eq!(store.claim_ticket(ticket.id, "mod", 40).unwrap(), None);
        let (next, created) = store.open_ticket(&new("ann")).unwrap();
        assert!(created && next.id != ticket.id);
    }

    #[test]
    fn tickets_are_exported_and_forgotten_with_their_customer() {
        let store = Store::open_in_memory().unwrap();
        store.open_ticket(&new("ann")).unwrap();
        store.open_ticket(&new("bob")).unwrap();
        let export = store.export_user("ann").unwrap();
        assert_eq!(export["tickets"][0]["question"], "where is my parcel");
        assert_eq!(export["tickets"][0]["topic"], "track_order");
        assert_eq!(export["tickets"][0]["closest"][0], "Where is my order?");
        let report = store.forget_user("ann").unwrap();
        assert_eq!(report.tickets, 1);
        assert!(store.tickets_of("ann").unwrap().is_empty());
        assert_eq!(store.tickets_of("bob").unwrap().len(), 1);
    }
}
