//! The moderator log: hand-offs and output-guard events from the assistant, posted to
//! `SHOPKEEP_MOD_LOG_CHANNEL` (nothing is posted when it is not set).

use std::fmt::Write;

use std::time::Duration;

use serenity::model::id::ChannelId;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::mentions;
use super::reply::{OwnMessages, Reply, Target};
use super::rest::Rest;
use crate::assistant::shorten::one_line;
use crate::assistant::{Assistant, ModeratorEvent};

/// How long shutdown waits for the moderator log to post what is queued.
pub const DRAIN_WAIT: Duration = Duration::from_secs(15);

/// The running moderator-log task; [`ModLog::drain`] finishes it.
pub struct ModLog {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ModLog {
    /// Posts the events already queued (with their retries), then ends the task; gives up
    /// after `wait`. Shutdown calls it once the answers in flight are done, so a hand-off
    /// raised by the last answer still reaches the moderators.
    pub async fn drain(self, wait: Duration) {
        self.stop.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(wait, &mut task).await.is_err() {
            tracing::warn!("the moderator log did not finish posting in time; events were lost");
            task.abort();
        }
    }
}

/// Posts every moderator event to `channel` until the assistant is dropped or
/// [`ModLog::drain`] is called. `None` when no channel is set.
pub fn spawn(assistant: &Assistant, rest: Rest, channel: Option<u64>) -> Option<ModLog> {
    let channel = channel?;
    let mut events = assistant.subscribe_moderator_events();
    let (stop, mut stopping) = watch::channel(false);
    let post = move |event: ModeratorEvent| {
        let rest = rest.clone();
        async move {
            let target = Target::Channel {
                channel_id: ChannelId::new(channel),
                reply_to: None,
            };
            let mut post = Reply::new(rest, target, OwnMessages::default());
            if let Err(error) = post.show_with_own_mentions(&describe(&event)).await {
                tracing::error!(%error, channel, "could not post to the moderator log");
            }
        }
    };
    let task = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                event = events.recv() => Some(event),
                _ = stopping.wait_for(|stop| *stop) => None,
            };
            let Some(event) = next else {
                while let Ok(event) = events.try_recv() {
                    post(event).await;
                }
                return;
            };
            let event = match event {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "moderator log fell behind; events were skipped");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            post(event).await;
        }
    });
    Some(ModLog { stop, task })
}

/// The moderator-log text for an event. Customer text, model output and every finding's
/// detail (a removed link, say) are quoted as code, so they cannot format, ping or be
/// clicked (mentions are also disallowed on every message), with personal data (e-mail
/// addresses, card and phone numbers) redacted as the guard redacts it in replies.
pub fn describe(event: &ModeratorEvent) -> String {
    let place = |user: &str, channel: &Option<String>| match channel {
        Some(channel) => format!("<@{user}> in <#{channel}>"),
        None => format!("<@{user}> (direct message)"),
    };
    let mut text = String::new();
    match event {
        ModeratorEvent::Handoff {
            user_id,
            channel_id,
            question,
            closest,
            needs_person,
            conversation,
        } => {
            let why = if *needs_person {
                "needs a person"
            } else {
                "asked something the knowledge does not cover"
            };
            let _ = writeln!(
                text,
                "**Hand-off**: {} {why}; please follow up.",
                place(user_id, channel_id)
            );
            let _ = writeln!(text, "Question: {}", quoted(question));
            if !closest.is_empty() {
                let _ = writeln!(
                    text,
                    "Closest topics: {}",
                    mentions::neutralise(&closest.join("; "))
                );
            }
            if !conversation.is_empty() {
                let _ = writeln!(text, "Conversation so far:");
                for (asked, answered) in conversation {
                    let _ = writeln!(text, "> customer: {}", quoted(asked));
                    let _ = writeln!(text, "> bot: {}", quoted(answered));
                }
            }
        }
        ModeratorEvent::GuardFired {
            user_id,
            channel_id,
            question,
            raw_output,
            findings,
        } => {
            let _ = writeln!(
                text,
                "**Output guard** changed a reply to {}.",
                place(user_id, channel_id)
            );
            let _ = writeln!(text, "Question: {}", quoted(question));
            for finding in findings {
                let _ = writeln!(
                    text,
                    "Rule `{:?}`: {}",
                    finding.rule,
                    quoted(&finding.detail)
                );
            }
            let _ = writeln!(text, "Raw output: {}", quoted(raw_output));
        }
    }
    text
}

/// `text` as one inline code span: personal data redacted, then shortened to one line of
/// at most 700 characters ([`one_line`]: backticks turned into quotes), mentions broken
/// ([`mentions::neutralise`]), and `://` broken (`[:]//`) so that a link stays
/// unclickable even if a split of a long log message ever cut the span.
pub(super) fn quoted(text: &str) -> String {
    let redacted =
        crate::assistant::guard::redact_personal_data(text, &[], "[redacted]", &mut Vec::new());
    let cleaned = mentions::neutralise(&one_line(&redacted, 700)).replace("://", "[:]//");
    format!("`{cleaned}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoff_names_user_channel_question_and_topics() {
        let text = describe(&ModeratorEvent::Handoff {
            user_id: "42".into(),
            channel_id: Some("7".into()),
            question: "do you sell `tractors`?".into(),
            closest: vec!["Delivery options".into()],
            needs_person: false,
            conversation: Vec::new(),
        });
        assert!(text.contains("<@42> in <#7>"));
        assert!(text.contains("`do you sell 'tractors'?`"));
        assert!(text.contains("Delivery options"));
    }

    #[test]
    fn guard_event_names_each_rule_the_question_and_the_raw_output() {
        use crate::assistant::guard::{Finding, Rule};
        let text = describe(&ModeratorEvent::GuardFired {
            user_id: "42".into(),
            channel_id: None,
            question: "is the chai in stock?".into(),
            raw_output: "Yes, the Fireside Chai is in stock.".into(),
            findings: vec![Finding {
                rule: Rule::Stock,
                detail: "stock claim \"in stock\" about Fireside Chai contradicts the catalogue (0 in stock)".into(),
            }],
        });
        assert!(text.contains("<@42> (direct message)"), "{text}");
        assert!(text.contains("Question: `is the chai in stock?`"), "{text}");
        assert!(text.contains("Rule `Stock`: `stock claim"), "{text}");
        assert!(
            text.contains("Raw output: `Yes, the Fireside Chai is in stock.`"),
            "{text}"
        );
    }

    #[test]
    fn removed_links_are_not_clickable_and_redacted_data_stays_redacted() {
        use crate::assistant::guard::{Finding, Rule};
        let text = describe(&ModeratorEvent::GuardFired {
            user_id: "42".into(),
            channel_id: Some("7".into()),
            question: "my card is 4111 1111 1111 1111, where is my order?".into(),
            raw_output: "Write to ann.smith@gmail.com or see https://evil.example/x".into(),
            findings: vec![
                Finding {
                    rule: Rule::Link,
                    detail: "https://evil.example/x".into(),
                },
                Finding {
                    rule: Rule::PersonalData,
                    detail: "redacted an e-mail address".into(),
                },
            ],
        });
        assert!(!text.contains("https://"), "{text}");
        assert!(
            text.contains("Rule `Link`: `https[:]//evil.example/x`"),
            "{text}"
        );
        for secret in ["ann.smith@gmail.com", "4111 1111 1111 1111"] {
            assert!(!text.contains(secret), "{secret} in: {text}");
        }
        assert!(text.contains("[redacted]"), "{text}");
    }
}
