//! Posting answers: a reply to a channel message or to an interaction, streamed by editing,
//! split into several messages past 2,000 characters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use serenity::builder::{
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    CreateMessage, EditInteractionResponse, EditMessage,
};
use serenity::http::{LightMethod, Route};
use serenity::model::id::{ApplicationId, ChannelId, InteractionId, MessageId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::mentions;
use super::rest::{message_id, no_mentions, Body, Rest, RestError};
use super::split::{split_message, DISCORD_LIMIT};
use crate::assistant::AnswerEvent;
use crate::clock::{Clock, SystemClock};

/// Shortest time between two rounds of edits of one streaming reply.
pub const EDIT_INTERVAL: Duration = Duration::from_secs(1);

/// Shown when the model finished without any text (Discord refuses empty messages).
const EMPTY_ANSWER: &str = "Sorry, I have no answer to that.";
/// Appended to a reply cut short by shutdown.
const INTERRUPTED: &str = "*(interrupted: the bot is restarting; please ask again in a minute)*";

/// How often the typing indicator is renewed (Discord shows it for about 10 s).
pub const TYPING_RENEWAL: Duration = Duration::from_secs(8);
/// Longest wait for the first typing request before a reply is posted anyway.
pub const TYPING_FIRST_WAIT: Duration = Duration::from_secs(1);

/// "typing…" in a channel while an answer is being prepared. Dropping it stops the
/// renewals; an attempt already on its way completes (so its failure is still counted).
pub struct Typing {
    _stop: oneshot::Sender<()>,
    first_attempt: Option<oneshot::Receiver<()>>,
}

impl Typing {
    /// Starts showing the indicator in `channel_id` now and renews it every
    /// [`TYPING_RENEWAL`]. A failed attempt is counted and logged by [`Rest::typing`] and
    /// tried again at the next renewal; it never stops the answer.
    pub fn start(rest: Rest, channel_id: ChannelId) -> Self {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (first_done, first_attempt) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = rest.typing(channel_id).await;
            let _ = first_done.send(());
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(TYPING_RENEWAL) => {}
                }
                let _ = rest.typing(channel_id).await;
            }
        });
        Self {
            _stop: stop,
            first_attempt: Some(first_attempt),
        }
    }

    /// Waits (at most `limit`) until the first attempt has been answered, so that a quick
    /// reply is not followed by a "typing…" that Discord would show for 10 more seconds.
    pub async fn first_attempt_settled(&mut self, limit: Duration) {
        if let Some(first) = self.first_attempt.take() {
            let _ = tokio::time::timeout(limit, first).await;
        }
    }
}

/// Where a reply goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A message in a channel, as a Discord reply to `reply_to` when given; further parts
    /// follow in the channel.
    Channel {
        /// The channel (or thread) to post in.
        channel_id: ChannelId,
        /// The message the first part replies to (Discord's reply), if any.
        reply_to: Option<MessageId>,
    },
    /// The (already deferred) original response of an interaction; further parts are
    /// follow-ups.
    Interaction {
        /// The application the interaction was sent to.
        application_id: ApplicationId,
        /// The interaction's token (valid 15 minutes), which authorises its responses.
        token: String,
        /// Whether only the person who asked sees the reply.
        ephemeral: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Posted {
    /// The interaction's original response.
    Original,
    Message(MessageId),
}

/// The ids of the last messages the bot posted (bounded), to recognise replies to them
/// when Discord does not include the referenced message. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct OwnMessages(Arc<Mutex<VecDeque<u64>>>);

impl OwnMessages {
    const CAPACITY: usize = 4096;

    /// Notes that the bot posted message `id`, forgetting the oldest past 4,096.
    pub fn remember(&self, id: u64) {
        if let Ok(mut ids) = self.0.lock() {
            if ids.len() >= Self::CAPACITY {
                ids.pop_front();
            }
            ids.push_back(id);
        }
    }

    /// Whether message `id` is one of the last 4,096 the bot posted.
    pub fn contains(&self, id: u64) -> bool {
        self.0.lock().map(|ids| ids.contains(&id)).unwrap_or(false)
    }
}

/// A reply being written: the messages posted so far and what they show.
pub struct Reply {
    rest: Rest,
    target: Target,
    /// Each part posted: where, its text, and whether it carries the buttons.
    posted: Vec<(Posted, String, bool)>,
    /// Message components (rows of buttons) the last part carries, if any.
    buttons: Option<Value>,
    /// The id of an interaction's original response, once an edit has shown it (0: not
    /// known).
    original_id: AtomicU64,
    own: OwnMessages,
    /// When the first message of this reply was posted.
    first_posted: Option<Instant>,
    /// The nonce of each part's create, kept until the part is posted, so a create that
    /// failed for good and is tried again by the next [`Reply::show`] reuses it too.
    nonces: Vec<String>,
}

/// A fresh nonce for one message create: unique within the process and across restarts
/// (it starts with the process's start time), at most 25 characters as Discord requires.
/// Every retry of the same create sends the same nonce, so with `enforce_nonce` Discord
/// returns the message already created instead of posting it twice.
pub fn new_nonce() -> String {
    static START_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = *START_MS.get_or_init(|| u64::try_from(SystemClock.now_ms()).unwrap_or(0));
    format!("{start:x}.{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Reply {
    /// A reply to `target`; the ids of messages it posts are added to `own`.
    pub fn new(rest: Rest, target: Target, own: OwnMessages) -> Self {
        Self {
            rest,
            target,
            posted: Vec::new(),
            buttons: None,
            original_id: AtomicU64::new(0),
            own,
            first_posted: None,
            nonces: Vec::new(),
        }
    }

    /// When the first message of this reply was posted, if any was.
    pub fn first_posted(&self) -> Option<Instant> {
        self.first_posted
    }

    /// Shows `text` with every mention broken ([`mentions::neutralise`]), split into parts:
    /// edits the messages whose part changed, posts new parts in order, deletes messages no
    /// longer needed. Empty text shows nothing new.
    pub async fn show(&mut self, text: &str) -> Result<(), RestError> {
        self.show_with_own_mentions(&mentions::neutralise(text))
            .await
    }

    /// [`Reply::show`] for text the adapter composed with mention markup of its own (a
    /// ticket's customer and staff, the mod log's user), which is kept; the caller has
    /// neutralised every other part. Still sent with no mentions allowed.
    pub async fn show_with_own_mentions(&mut self, text: &str) -> Result<(), RestError> {
        let parts: Vec<String> = split_message(text, DISCORD_LIMIT)
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect();
        if parts.is_empty() {
            return Ok(());
        }
        let last = parts.len() - 1;
        for (index, part) in parts.iter().enumerate() {
            let with_buttons = index == last && self.buttons.is_some();
            let buttons = |shown: bool| match (with_buttons, &self.buttons) {
                (true, Some(buttons)) => Some(buttons.clone()),
                // Buttons move to the new last part; this one drops them.
                _ if shown => Some(Value::Array(Vec::new())),
                _ => None,
            };
            match self.posted.get(index) {
                Some((_, shown, had)) if shown == part && *had == with_buttons => {}
                Some((posted, _, had)) => {
                    let (posted, components) = (*posted, buttons(*had));
                    self.edit(posted, part, components).await?;
                    self.posted[index] = (posted, part.clone(), with_buttons);
                }
                None => {
                    while self.nonces.len() <= index {
                        self.nonces.push(new_nonce());
                    }
                    let components = buttons(false);
                    let posted = self
                        .create(index, part, &self.nonces[index], components)
                        .await?;
                    self.first_posted.get_or_insert_with(Instant::now);
                    if let Posted::Message(id) = posted {
                        self.own.remember(id.get());
                    }
                    self.posted.push((posted, part.clone(), with_buttons));
                }
            }
        }
        while self.posted.len() > parts.len() {
            if let Some((posted, _, _)) = self.posted.pop() {
                // A part posted again later is a new message: it gets a new nonce.
                self.nonces.truncate(self.posted.len());
                self.delete(posted).await?;
            }
        }
        Ok(())
    }

    /// From the next [`Reply::show`] on, the last part carries these message components
    /// (a JSON list of action rows).
    pub fn set_buttons(&mut self, components: Value) {
        self.buttons = Some(components);
    }

    /// The ids of the messages posted so far, in order (an interaction's original
    /// response included once Discord has named it).
    pub fn message_ids(&self) -> Vec<u64> {
        let original = self.original_id.load(Ordering::Relaxed);
        self.posted
            .iter()
            .filter_map(|(posted, _, _)| match posted {
                Posted::Message(id) => Some(id.get()),
                Posted::Original => (original != 0).then_some(original),
            })
            .collect()
    }

    /// Whether anything has been posted yet.
    pub fn is_empty(&self) -> bool {
        self.posted.is_empty()
    }

    /// Withdraws a deferred interaction response that never got content (its "thinking…"
    /// would otherwise stay forever). Does nothing for channel replies.
    pub async fn withdraw(&mut self) -> Result<(), RestError> {
        if matches!(self.target, Target::Interaction { .. }) && self.posted.is_empty() {
            self.delete(Posted::Original).await?;
        }
        Ok(())
    }

    async fn create(
        &self,
        index: usize,
        content: &str,
        nonce: &str,
        components: Option<Value>,
    ) -> Result<Posted, RestError> {
        match &self.target {
            Target::Channel {
                channel_id,
                reply_to,
            } => {
                let mut builder = CreateMessage::new()
                    .content(content)
                    .allowed_mentions(no_mentions());
                if let (0, Some(reply_to)) = (index, reply_to) {
                    builder = builder.reference_message((*channel_id, *reply_to));
                }
                let mut body = to_value("post a message", &builder)?;
                if let Some(reference) = body.get_mut("message_reference") {
                    // A deleted question must not make the answer fail.
                    reference["fail_if_not_exists"] = Value::Bool(false);
                }
                // One nonce for all attempts of this create: a retry after a lost answer
                // gets the message already posted instead of a duplicate.
                body["nonce"] = Value::String(nonce.to_string());
                body["enforce_nonce"] = Value::Bool(true);
                if let Some(components) = components {
                    body["components"] = components;
                }
                let answer = self
                    .rest
                    .send(
                        "post a message",
                        Route::ChannelMessages {
                            channel_id: *channel_id,
                        },
                        LightMethod::Post,
                        Some(body),
                        Body::Message,
                    )
                    .await?;
                posted_id("post a message", &answer)
            }
            Target::Interaction {
                application_id,
                token,
                ephemeral,
            } => {
                if index == 0 {
                    self.edit(Posted::Original, content, components).await?;
                    return Ok(Posted::Original);
                }
                let builder = CreateInteractionResponseFollowup::new()
                    .content(content)
                    .ephemeral(*ephemeral)
                    .allowed_mentions(no_mentions());
                let mut body = to_value("post a follow-up", &builder)?;
                if let Some(components) = components {
                    body["components"] = components;
                }
                let answer = self
                    .rest
                    .send(
                        "post a follow-up",
                        Route::WebhookFollowupMessages {
                            application_id: *application_id,
                            token,
                        },
                        LightMethod::Post,
                        Some(body),
                        Body::Message,
                    )
                    .await?;
                posted_id("post a follow-up", &answer)
            }
        }
    }

    async fn edit(
        &self,
        posted: Posted,
        content: &str,
        components: Option<Value>,
    ) -> Result<(), RestError> {
        let with_components = |mut body: Value| {
            if let Some(components) = &components {
                body["components"] = components.clone();
            }
            body
        };
        match (&self.target, posted) {
            (Target::Channel { channel_id, .. }, Posted::Message(message_id)) => {
                let builder = EditMessage::new()
                    .content(content)
                    .allowed_mentions(no_mentions());
                self.rest
                    .send(
                        "edit a message",
                        Route::ChannelMessage {
                            channel_id: *channel_id,
                            message_id,
                        },
                        LightMethod::Patch,
                        Some(with_components(to_value("edit a message", &builder)?)),
                        Body::Message,
                    )
                    .await?;
            }
            (
                Target::Interaction {
                    application_id,
                    token,
                    ..
                },
                posted,
            ) => {
                let builder = EditInteractionResponse::new()
                    .content(content)
                    .allowed_mentions(no_mentions());
                let body = Some(with_components(to_value("edit a response", &builder)?));
                let route = match posted {
                    Posted::Original => Route::WebhookOriginalInteractionResponse {
                        application_id: *application_id,
                        token,
                    },
                    Posted::Message(message_id) => Route::WebhookFollowupMessage {
                        application_id: *application_id,
                        token,
                        message_id,
                    },
                };
                let answer = self
                    .rest
                    .send(
                        "edit a response",
                        route,
                        LightMethod::Patch,
                        body,
                        Body::Message,
                    )
                    .await?;
                if let (Posted::Original, Some(id)) = (posted, message_id(&answer)) {
                    self.original_id.store(id, Ordering::Relaxed);
                }
            }
            (Target::Channel { .. }, Posted::Original) => {}
        }
        Ok(())
    }

    async fn delete(&self, posted: Posted) -> Result<(), RestError> {
        let route = match (&self.target, posted) {
            (Target::Channel { channel_id, .. }, Posted::Message(message_id)) => {
                Route::ChannelMessage {
                    channel_id: *channel_id,
                    message_id,
                }
            }
            (
                Target::Interaction {
                    application_id,
                    token,
                    ..
                },
                Posted::Original,
            ) => Route::WebhookOriginalInteractionResponse {
                application_id: *application_id,
                token,
            },
            (
                Target::Interaction {
                    application_id,
                    token,
                    ..
                },
                Posted::Message(message_id),
            ) => Route::WebhookFollowupMessage {
                application_id: *application_id,
                token,
                message_id,
            },
            (Target::Channel { .. }, Posted::Original) => return Ok(()),
        };
        self.rest
            .send(
                "delete a message",
                route,
                LightMethod::Delete,
                None,
                Body::Other,
            )
            .await
            .map(|_| ())
    }
}

fn to_value(what: &'static str, builder: &impl serde::Serialize) -> Result<Value, RestError> {
    serde_json::to_value(builder).map_err(|e| RestError::Payload {
        what,
        detail: e.to_string(),
    })
}

fn posted_id(what: &'static str, answer: &Option<Value>) -> Result<Posted, RestError> {
    message_id(answer)
        .and_then(std::num::NonZeroU64::new)
        .map(|id| Posted::Message(MessageId::from(id)))
        .ok_or(RestError::Payload {
            what,
            detail: "the answer has no message id".into(),
        })
}

/// Answers an interaction right away (within Discord's 3 s): with a message, or a deferral.
pub async fn respond(
    rest: &Rest,
    interaction_id: InteractionId,
    token: &str,
    response: CreateInteractionResponse,
) -> Result<(), RestError> {
    let body = to_value("answer an interaction", &response)?;
    rest.send(
        "answer an interaction",
        Route::InteractionResponse {
            interaction_id,
            token,
        },
        LightMethod::Post,
        Some(body),
        Body::Callback,
    )
    .await
    .map(|_| ())
}

/// An immediate ephemeral message (refusals, quick answers), its mentions broken.
pub fn ephemeral_message(content: &str) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(mentions::neutralise(content))
            .ephemeral(true)
            .allowed_mentions(no_mentions()),
    )
}

/// A deferral ("thinking…"), ephemeral or not; the answer comes by editing the original.
pub fn defer(ephemeral: bool) -> CreateInteractionResponse {
    CreateInteractionResponse::Defer(
        CreateInteractionResponseMessage::new()
            .ephemeral(ephemeral)
            .allowed_mentions(no_mentions()),
    )
}

/// How a streamed reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The final text was posted.
    Finished,
    /// The final text could not be posted (after the retries); logged and counted.
    NotPosted,
    /// Shutdown cancelled it; what was shown is marked as interrupted.
    Cancelled,
}

/// Streams an answer into `reply`: shows the text so far at most once per
/// [`EDIT_INTERVAL`], then the final text (waiting out the interval, so edits never come
/// faster). Stops early, marking the reply as interrupted, when `cancel` turns true.
/// Discord errors are logged (after the retries in [`Rest`]) and the stream goes on.
pub async fn stream_answer(
    reply: &mut Reply,
    mut events: mpsc::Receiver<AnswerEvent>,
    mut cancel: watch::Receiver<bool>,
) -> StreamEnd {
    let mut latest = String::new();
    let mut dirty = false;
    let mut last_round: Option<Instant> = None;
    let next_round = |last: Option<Instant>| last.map_or_else(Instant::now, |t| t + EDIT_INTERVAL);
    let (final_text, end) = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(AnswerEvent::Partial(text)) => {
                    dirty = text != latest;
                    latest = text;
                }
                Some(AnswerEvent::Final(answer)) => break (answer.text, StreamEnd::Finished),
                None => break (latest.clone(), StreamEnd::Finished),
            },
            _ = tokio::time::sleep_until(next_round(last_round)), if dirty && !latest.trim().is_empty() => {
                if let Err(error) = reply.show(&latest).await {
                    tracing::warn!(%error, "could not show a partial answer");
                }
                last_round = Some(Instant::now());
                dirty = false;
            }
            changed = cancel.changed() => {
                if changed.is_err() || *cancel.borrow() {
                    break (format!("{}\n\n{INTERRUPTED}", latest.trim_end()), StreamEnd::Cancelled);
                }
            }
        }
    };
    let final_text = if final_text.trim().is_empty() {
        EMPTY_ANSWER.to_string()
    } else {
        final_text
    };
    if end == StreamEnd::Finished {
        tokio::time::sleep_until(next_round(last_round)).await;
    }
    if let Err(error) = reply.show(&final_text).await {
        tracing::error!(%error, "could not post the answer");
        return StreamEnd::NotPosted;
    }
    end
}
