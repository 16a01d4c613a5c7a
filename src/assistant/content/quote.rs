//! Quoted answers: the reply taken word for word from the knowledge when shop.toml says
//! `grounded_answers = "quote"`, with no model involved.

use super::PromptSet;
use crate::assistant::knowledge::{GroundedAnswers, Route, RouteKind};

/// What [`PromptSet::quoted_answer`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotedAnswer {
    /// Post this (after the guard adds the citations).
    Text(String),
    /// The question names a product but asks something the knowledge does not cover.
    HandOff,
}

/// Words that show a question is about a product itself (its price, stock or nature).
const PRODUCT_QUESTION_WORDS: [&str; 16] = [
    "price",
    "cost",
    "how much",
    "stock",
    "available",
    "availab",
    "sell",
    "buy",
    "size",
    "capacity",
    "made of",
    "material",
    "describe",
    "tell me about",
    "what is",
    "details",
];

fn asks_about_a_product(question: &str) -> bool {
    let question = question.to_lowercase();
    PRODUCT_QUESTION_WORDS
        .iter()
        .any(|word| question.contains(word))
}

impl PromptSet {
    /// The reply for a grounded route when shop.toml says `grounded_answers = "quote"`: the
    /// catalogue facts of each product named in the question, then the best entry's answer.
    /// A question grounded only by a product name is quoted only when it asks about the
    /// product itself (price, stock, what it is); otherwise ("a refund for my broken
    /// teapot") it is handed off rather than answered with product facts. `None` for other
    /// routes or when the shop lets the model write answers. Pass a quote through
    /// [`PromptSet::guard_reply`] to add the citations.
    pub fn quoted_answer(&self, question: &str, route: &Route) -> Option<QuotedAnswer> {
        if route.kind != RouteKind::Grounded
            || self.knowledge.routing.grounded_answers != GroundedAnswers::Quote
        {
            return None;
        }
        let best_entry = route
            .hits
            .first()
            .and_then(|hit| self.knowledge.entry(&hit.entry_id));
        if best_entry.is_none() && !asks_about_a_product(question) {
            return Some(QuotedAnswer::HandOff);
        }
        let mut parts: Vec<String> = route
            .products
            .iter()
            .map(|product| {
                let stock = match product.stock {
                    0 => "out of stock right now".to_string(),
                    n => format!("in stock ({n} left)"),
                };
                format!(
                    "{}: {}{}, {stock}. {}",
                    product.name, self.shop.currency_symbol, product.price, product.description
                )
            })
            .collect();
        parts.extend(best_entry.map(|entry| entry.answer.trim().to_string()));
        Some(QuotedAnswer::Text(parts.join("\n\n")))
    }
}
