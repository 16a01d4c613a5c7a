//! The answer prompt within the model's context: the newest history turns that fit, counted
//! in the backend's own tokens, and the generation request built from it.

use super::content::{HistoryTurn, PromptError, PromptSet, Speaker};
use super::knowledge::Route;
use super::service::Assistant;
use crate::backend::{BoxFuture, GenerateRequest, SamplingParams};
use crate::store::StoredTurn;

impl Assistant {
    /// The answer prompt (persona, the routed facts, history, question) with as many of the
    /// newest history turns as fit the model's context minus the reply room
    /// (`max_new_tokens`), counted in the backend's tokens; see [`prompt_within_budget`].
    pub(super) async fn build_prompt(
        &self,
        set: &PromptSet,
        question: &str,
        route: &Route,
        history: &[StoredTurn],
    ) -> Result<Budgeted, PromptError> {
        let model = self.backend.model();
        let room = model
            .context_length
            .saturating_sub(self.config.model.max_new_tokens);
        let format = model.prompt_format;
        let count_tokens = |text: String| -> BoxFuture<'static, usize> {
            let backend = self.backend.clone();
            Box::pin(async move { backend.count_tokens(&text).await })
        };
        prompt_within_budget(history, room, &count_tokens, &|turns| {
            set.render_answer(format, question, route, &history_turns(turns))
        })
        .await
    }

    /// A generation request; `prefix_cache_key` (the user id for conversations) lets the
    /// backend reuse the previous turn's prompt prefix.
    pub(super) fn request(
        &self,
        prompt: String,
        stop: Vec<String>,
        prefix_cache_key: Option<String>,
    ) -> GenerateRequest {
        let settings = &self.config.model;
        GenerateRequest {
            prompt,
            max_new_tokens: settings.max_new_tokens,
            sampling: SamplingParams {
                temperature: settings.temperature,
                top_k: settings.top_k,
                top_p: settings.top_p,
                repetition_penalty: settings.repetition_penalty,
                seed: rand_seed(),
            },
            stop,
            prefix_cache_key,
        }
    }
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A prompt that fits the model's context with room for the reply, or why none does.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Budgeted {
    /// The prompt and its token count.
    Prompt { text: String, tokens: usize },
    /// Even without any history the prompt has `tokens` tokens, more than the `room`.
    TooLong { tokens: usize, room: usize },
}

/// The prompt rendered with the newest history turns that fit in `room` tokens, counted by
/// `count_tokens`: older turns go first, and the system turn and the question always stay.
/// When the prompt without any history is already over `room`, [`Budgeted::TooLong`].
/// The count of the whole prompt decides (counts of parts need not add up to it); more
/// turns never count fewer tokens, so the largest number that fits is found by bisection,
/// in a few counts (a server's tokenizer is a request each).
async fn prompt_within_budget<E>(
    history: &[StoredTurn],
    room: usize,
    count_tokens: &(dyn Fn(String) -> BoxFuture<'static, usize> + Sync),
    render: &(dyn Fn(&[StoredTurn]) -> Result<String, E> + Sync),
) -> Result<Budgeted, E> {
    let newest = |kept: usize| &history[history.len() - kept..];
    let bare = render(&[])?;
    let tokens = count_tokens(bare.clone()).await;
    if tokens > room {
        return Ok(Budgeted::TooLong { tokens, room });
    }
    if history.is_empty() {
        return Ok(Budgeted::Prompt { text: bare, tokens });
    }
    let everything = render(history)?;
    let all_tokens = count_tokens(everything.clone()).await;
    if all_tokens <= room {
        return Ok(Budgeted::Prompt {
            text: everything,
            tokens: all_tokens,
        });
    }
    // `fits` turns fit and `over` turns do not.
    let (mut fits, mut over, mut best) = (0, history.len(), (bare, tokens));
    while over - fits > 1 {
        let middle = (fits + over) / 2;
        let prompt = render(newest(middle))?;
        let tokens = count_tokens(prompt.clone()).await;
        if tokens <= room {
            (fits, best) = (middle, (prompt, tokens));
        } else {
            over = middle;
        }
    }
    let (text, tokens) = best;
    Ok(Budgeted::Prompt { text, tokens })
}

/// Stored turns as the templates see them, oldest first.
fn history_turns(turns: &[StoredTurn]) -> Vec<HistoryTurn> {
    turns
        .iter()
        .flat_map(|turn| {
            [
                HistoryTurn {
                    speaker: Speaker::Customer,
                    text: turn.question.clone(),
                },
                HistoryTurn {
                    speaker: Speaker::Assistant,
                    text: turn.answer.clone(),
                },
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(question: &str, answer: &str) -> StoredTurn {
        StoredTurn {
            at: 0,
            question: question.into(),
            answer: answer.into(),
        }
    }

    /// A stand-in template: a header, each turn on its own lines, the question.
    fn render(turns: &[StoredTurn]) -> Result<String, std::convert::Infallible> {
        let mut prompt = String::from("Persona and facts.\n");
        for turn in turns {
            prompt.push_str(&format!(
                "Customer: {}\nAssistant: {}\n",
                turn.question, turn.answer
            ));
        }
        prompt.push_str("Customer: now?\nAssistant:");
        Ok(prompt)
    }

    /// Bytes as tokens.
    fn bytes(text: String) -> BoxFuture<'static, usize> {
        Box::pin(std::future::ready(text.len()))
    }

    fn prompt(budgeted: Budgeted) -> String {
        match budgeted {
            Budgeted::Prompt { text, .. } => text,
            other => panic!("no prompt: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_prompt_keeps_the_newest_turns_within_the_room() {
        let history: Vec<StoredTurn> = (0..10)
            .map(|i| turn(&format!("question {i}"), &format!("answer {i}")))
            .collect();
        for kept in 0..=10 {
            let room = render(&history[10 - kept..]).unwrap().len();
            let budgeted = prompt_within_budget(&history, room, &bytes, &render).await;
            assert_eq!(
                prompt(budgeted.unwrap()),
                render(&history[10 - kept..]).unwrap()
            );
            // One token less and the oldest of those turns goes too.
            if kept > 0 {
                let budgeted = prompt_within_budget(&history, room - 1, &bytes, &render).await;
                assert_eq!(
                    prompt(budgeted.unwrap()),
                    render(&history[11 - kept..]).unwrap()
                );
            }
        }
        let everything = prompt_within_budget(&history, 100_000, &bytes, &render).await;
        assert_eq!(prompt(everything.unwrap()), render(&history).unwrap());
    }

    #[tokio::test]
    async fn a_question_that_does_not_fit_alone_is_too_long() {
        let history = vec![turn("q", "a")];
        let bare = render(&[]).unwrap().len();
        let budgeted = prompt_within_budget(&history, bare - 1, &bytes, &render).await;
        assert_eq!(
            budgeted.unwrap(),
            Budgeted::TooLong {
                tokens: bare,
                room: bare - 1
            }
        );
        // Exactly the system turn and the question: kept, without the history.
        let budgeted = prompt_within_budget(&history, bare, &bytes, &render).await;
        assert_eq!(prompt(budgeted.unwrap()), render(&[]).unwrap());
    }

    #[tokio::test]
    async fn the_budget_holds_even_when_parts_undercount_the_whole() {
        // A counter where the whole costs more than the sum of its parts.
        let history: Vec<StoredTurn> = (0..5).map(|i| turn(&format!("q{i}"), "a")).collect();
        fn count(text: String) -> BoxFuture<'static, usize> {
            Box::pin(std::future::ready(
                text.len() + text.matches("\nCustomer:").count() * 10,
            ))
        }
        let room = count(render(&history[2..]).unwrap()).await;
        let budgeted = prompt_within_budget(&history, room, &count, &render).await;
        let Budgeted::Prompt { text: kept, tokens } = budgeted.unwrap() else {
            panic!("no prompt")
        };
        assert_eq!(
            tokens,
            count(kept.clone()).await,
            "the count is the prompt's"
        );
        assert!(tokens <= room);
        assert_eq!(kept, render(&history[2..]).unwrap());
    }

    #[test]
    fn history_turns_alternate_customer_and_assistant_oldest_first() {
        let turns = history_turns(&[turn("hi", "hello!"), turn("price?", "10 EUR")]);
        let speakers: Vec<Speaker> = turns.iter().map(|t| t.speaker).collect();
        assert_eq!(
            speakers,
            [
                Speaker::Customer,
                Speaker::Assistant,
                Speaker::Customer,
                Speaker::Assistant
            ]
        );
        assert_eq!(turns[2].text, "price?");
    }
}
