//! A ChatML transcript (`<|im_start|>role\n…<|im_end|>`, as the prompt templates render for
//! chat models) as the chat messages a server's `/v1/chat/completions` takes. The server then
//! lays the turns out with the model's own chat template.

use serde::{Deserialize, Serialize};

const START: &str = "<|im_start|>";
const END: &str = "<|im_end|>";

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The turn's text.
    pub content: String,
}

impl ChatMessage {
    /// A turn said by `role` (`system`, `user` or `assistant`).
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// The turns of `prompt`, in order. The open assistant turn that ends a rendered prompt (where
/// the reply begins) is left out; text outside any turn (a prompt that is not ChatML at all)
/// becomes a user turn, so every prompt gives at least one message when it has any text.
pub fn messages(prompt: &str) -> Vec<ChatMessage> {
    let mut pieces = prompt.split(START);
    let mut messages = Vec::new();
    let before = pieces.next().unwrap_or_default();
    if !before.trim().is_empty() {
        messages.push(ChatMessage::new("user", before.trim()));
    }
    for piece in pieces {
        let (role, rest) = piece.split_once('\n').unwrap_or((piece, ""));
        let (content, after) = match rest.split_once(END) {
            Some((content, after)) => (content, after),
            None if rest.trim().is_empty() => continue,
            None => (rest, ""),
        };
        messages.push(ChatMessage::new(role.trim(), content));
        if !after.trim().is_empty() {
            messages.push(ChatMessage::new("user", after.trim()));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_prompt_becomes_its_turns_without_the_reply_start() {
        let prompt = "<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nhi\nthere<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nprice?<|im_end|>\n<|im_start|>assistant\n";
        assert_eq!(
            messages(prompt),
            [
                ChatMessage::new("system", "You help."),
                ChatMessage::new("user", "hi\nthere"),
                ChatMessage::new("assistant", "hello"),
                ChatMessage::new("user", "price?"),
            ]
        );
    }

    #[test]
    fn plain_text_is_one_user_turn() {
        assert_eq!(
            messages("Customer: hi\nAssistant:"),
            [ChatMessage::new("user", "Customer: hi\nAssistant:")]
        );
        assert!(messages("  ").is_empty());
    }
}
