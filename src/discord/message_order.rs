//! One user's questions are answered one at a time, in the order they were written.
//!
//! serenity hands each gateway event to its own task, so two messages from one user can
//! reach the handler in either order. [`MessageOrder::take`] orders them by message id (Discord ids
//! grow with creation time): a message waits [`REORDER_WINDOW`] for earlier ones to show
//! up, then until every earlier pending message of the same user has been answered.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// How long a message waits for an earlier one from the same user that is still on its way
/// through serenity's tasks.
pub const REORDER_WINDOW: Duration = Duration::from_millis(100);

#[derive(Default)]
struct UserTurns {
    /// (messages waiting, by id; whether one is being answered)
    state: Mutex<(BTreeSet<u64>, bool)>,
    changed: Notify,
}

/// Per-user turn-taking; see the module docs.
#[derive(Default)]
pub struct MessageOrder {
    users: Mutex<HashMap<u64, Arc<UserTurns>>>,
}

/// Holding it means it is this message's turn; dropping it passes the turn on.
pub struct MessageTurn<'a> {
    turns: &'a MessageOrder,
    user: u64,
    entry: Arc<UserTurns>,
}

impl MessageOrder {
    /// Waits for `message`'s turn among `user`'s messages.
    pub async fn take(&self, user: u64, message: u64) -> MessageTurn<'_> {
        let entry = {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(users.entry(user).or_default())
        };
        entry
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .insert(message);
        tokio::time::sleep(REORDER_WINDOW).await;
        loop {
            let notified = entry.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = entry.state.lock().unwrap_or_else(|e| e.into_inner());
                if !state.1 && state.0.first() == Some(&message) {
                    state.0.remove(&message);
                    state.1 = true;
                    break;
                }
            }
            notified.await;
        }
        MessageTurn {
            turns: self,
            user,
            entry,
        }
    }
}

impl Drop for MessageTurn<'_> {
    fn drop(&mut self) {
        let idle = {
            let mut state = self.entry.state.lock().unwrap_or_else(|e| e.into_inner());
            state.1 = false;
            state.0.is_empty()
        };
        self.entry.changed.notify_waiters();
        if idle {
            let mut users = self.turns.users.lock().unwrap_or_else(|e| e.into_inner());
            // Forget the user unless someone else holds the entry (a message just arriving).
            if users
                .get(&self.user)
                .is_some_and(|e| Arc::ptr_eq(e, &self.entry) && Arc::strong_count(e) == 2)
            {
                users.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn later_message_arriving_first_still_goes_second() {
        let turns = Arc::new(MessageOrder::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let run = |id: u64, delay: u64| {
            let (turns, order) = (Arc::clone(&turns), Arc::clone(&order));
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let _turn = turns.take(7, id).await;
                order.lock().unwrap().push(id);
                tokio::time::sleep(Duration::from_millis(30)).await;
            })
        };
        let second = run(20, 0);
        let first = run(10, 20);
        let other_user = {
            let turns = Arc::clone(&turns);
            tokio::spawn(async move {
                let _turn = turns.take(8, 5).await;
            })
        };
        let (a, b, c) = tokio::join!(second, first, other_user);
        a.unwrap();
        b.unwrap();
        c.unwrap();
        assert_eq!(*order.lock().unwrap(), vec![10, 20]);
        assert!(
            turns.users.lock().unwrap().is_empty(),
            "idle users are forgotten"
        );
    }
}
