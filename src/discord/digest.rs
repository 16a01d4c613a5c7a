//! The daily digest: once a day at `SHOPKEEP_DIGEST_AT` (UTC), the insights of the 24
//! hours before are posted to the moderator log (`SHOPKEEP_MOD_LOG_CHANNEL`), in the
//! markdown `/insights` uses.
//!
//! The first digest is due at the first such time after the bot starts; a digest missed
//! while the bot was down is not made up, and a clock that jumps past several due times
//! posts once. Time comes from a [`Clock`], so tests move it instead of waiting a day.

use std::sync::Arc;
use std::time::Duration;

use serenity::model::id::ChannelId;

use super::reply::{OwnMessages, Reply, Target};
use super::rest::Rest;
use crate::assistant::conversation::Clock;
use crate::assistant::moderation::digest::DailyTime;
use crate::assistant::moderation::insights::{from_store, Window};
use crate::store::Store;

/// How often the running bot looks at the clock.
pub const POLL: Duration = Duration::from_secs(20);

/// The heading of every digest.
pub const HEADING: &str = "Daily digest, last 24 hours";

/// Posts a digest to `channel` every day at `at` by `clock`, looking at it every `poll`,
/// until the task is aborted.
pub fn spawn(
    store: Arc<Store>,
    rest: Rest,
    channel: u64,
    at: DailyTime,
    clock: Arc<dyn Clock>,
    poll: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut due = at.next_after(clock.now_ms());
        tracing::info!(at = %at, channel, "daily digest scheduled");
        loop {
            tokio::time::sleep(poll).await;
            let now = clock.now_ms();
            if now < due {
                continue;
            }
            due = at.next_after(now);
            post(&store, &rest, channel, now).await;
        }
    })
}

/// Reads the insights of the 24 hours up to `now` and posts them to `channel`; failures
/// are logged (the next digest comes tomorrow all the same).
async fn post(store: &Arc<Store>, rest: &Rest, channel: u64, now: i64) {
    let reading = Arc::clone(store);
    let insights =
        tokio::task::spawn_blocking(move || from_store(&reading, Window::last_24_hours(now))).await;
    let insights = match insights {
        Ok(Ok(insights)) => insights,
        Ok(Err(error)) => {
            tracing::error!(%error, "could not read the insights for the daily digest");
            return;
        }
        Err(error) => {
            tracing::error!(%error, "reading the daily digest's insights crashed");
            return;
        }
    };
    let text = super::insights::markdown(&insights, HEADING);
    let target = Target::Channel {
        channel_id: ChannelId::new(channel),
        reply_to: None,
    };
    let mut reply = Reply::new(rest.clone(), target, OwnMessages::default());
    match reply.show(&text).await {
        Ok(()) => tracing::info!(
            channel,
            questions = insights.questions,
            "daily digest posted"
        ),
        Err(error) => tracing::error!(%error, channel, "could not post the daily digest"),
    }
}
