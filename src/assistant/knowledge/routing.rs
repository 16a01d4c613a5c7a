//! Routing as data: the thresholds from shop.toml's `[routing]`, the decision for one
//! question ([`Route`], [`RouteKind`], [`Hit`], [`Composed`]) and the retrieval
//! [`Method`]. The decision itself is made in `route.rs`.

use serde::Serialize;

use super::{CatalogueAnswer, Product, Source};
use crate::assistant::question::language::Lang;
use crate::assistant::question::small_talk::SmallTalk;

/// Routing thresholds, from `[routing]` in shop.toml.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutingSettings {
    /// Minimum confidence for a grounded answer.
    pub grounded_confidence: f32,
    /// How many closest topics a "not sure" reply offers.
    pub closest_topics: usize,
    /// Words that make a question a shop question (lowercase).
    pub shop_words: Vec<String>,
    /// Words matched as the same word: (canonical, variants), e.g. ("order", ["purchase"]).
    pub synonyms: Vec<(String, Vec<String>)>,
    /// How grounded answers are written.
    pub grounded_answers: GroundedAnswers,
    /// Minimum hybrid score for answering with a passage (a policy or FAQ sentence, a shop
    /// detail) rather than a whole FAQ entry.
    pub passage_confidence: f32,
    /// Words that show a customer needs a person now (anger, legal threats, fraud): the
    /// question is handed off with the conversation so far.
    pub escalate_words: Vec<String>,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            grounded_confidence: 0.33,
            closest_topics: 3,
            shop_words: Vec::new(),
            synonyms: Vec::new(),
            grounded_answers: GroundedAnswers::Generate,
            passage_confidence: 0.45,
            escalate_words: Vec::new(),
        }
    }
}

/// How a grounded answer is written (`grounded_answers` in shop.toml's `[routing]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroundedAnswers {
    /// The language model answers from the matched facts (streamed, cited).
    Generate,
    /// The best entry's answer and the named products' catalogue facts, word for word and
    /// cited; no model. For small models that paraphrase facts unreliably.
    Quote,
}

/// What the bot does with a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// Answer from the shop's knowledge ([`Route::answer`]) and cite it.
    Grounded,
    /// A shop question the knowledge does not cover well: say so, offer the closest topics,
    /// hand off to a human. Never let the model improvise an answer.
    NotSure,
    /// A case for a person (a double charge, a missing parcel, an angry customer): the
    /// matched entry's answer if any, and a hand-off with the conversation so far.
    Escalate,
    /// A greeting, thanks or goodbye: a short reply from the shop's templates.
    SmallTalk,
    /// Not about the shop: a brief model answer, never presented as shop information.
    General,
}

impl RouteKind {
    /// The name templates see in `route`: "grounded", "not_sure", "escalate", "small_talk"
    /// or "general".
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Grounded => "grounded",
            RouteKind::NotSure => "not_sure",
            RouteKind::Escalate => "escalate",
            RouteKind::SmallTalk => "small_talk",
            RouteKind::General => "general",
        }
    }

    /// Whether a person is asked to follow up.
    pub fn hands_off(self) -> bool {
        matches!(self, RouteKind::NotSure | RouteKind::Escalate)
    }
}

/// A knowledge entry matched by a question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The FAQ entry's id.
    pub entry_id: String,
    /// The entry's canonical question.
    pub title: String,
    /// The entry's link, if it has one.
    pub link: Option<String>,
    /// The entry's intent, if it has one.
    pub intent: Option<String>,
    /// Match score in [0, 1]; comparable across questions.
    pub score: f32,
}

/// What a grounded answer says, as data; the content layer writes it out in the customer's
/// language. No model writes these facts.
#[derive(Debug, Clone, PartialEq)]
pub enum Composed {
    /// A whole FAQ answer.
    Faq {
        /// The entry's id.
        entry_id: String,
    },
    /// Sentences quoted from one source (a policy, a FAQ answer, the shop's details), in the
    /// source's order.
    Passages {
        /// The sentences, word for word.
        sentences: Vec<String>,
    },
    /// An answer from the catalogue as data.
    Catalogue(CatalogueAnswer),
}

/// The routing decision for one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// What the bot does with the question.
    pub kind: RouteKind,
    /// Grounded: the FAQ entries answered from (best first). NotSure: the closest topics.
    pub hits: Vec<Hit>,
    /// Catalogue products the answer states facts about (the guard allows their prices).
    pub products: Vec<Product>,
    /// The best FAQ entry's score (0 when there are no entries).
    pub confidence: f32,
    /// Grounded and Escalate: what to answer.
    #[serde(skip)]
    pub answer: Option<Composed>,
    /// Where the answer's facts come from, cited under it.
    pub sources: Vec<Source>,
    /// The language the customer wrote in.
    #[serde(skip)]
    pub lang: Lang,
    /// SmallTalk: which kind.
    #[serde(skip)]
    pub small_talk: Option<SmallTalk>,
    /// Whether the question was read together with the customer's previous one.
    pub follow_up: bool,
}

impl Route {
    /// A route of this kind with nothing matched.
    pub fn empty(kind: RouteKind, lang: Lang) -> Route {
        Route {
            kind,
            hits: Vec::new(),
            products: Vec::new(),
            confidence: 0.0,
            answer: None,
            sources: Vec::new(),
            lang,
            small_talk: None,
            follow_up: false,
        }
    }
}

/// Which retrieval method scores entries; [`Method::Combined`] is the default, the others
/// exist so `shopkeep eval intents --method` can compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Similarity to each entry's centroid (mean phrasing vector).
    Centroid,
    /// Mean of the k most similar phrasings of each entry.
    Nearest,
    /// Average of the two.
    #[default]
    Combined,
}

impl Method {
    /// Parses "centroid", "nearest" or "combined".
    pub fn parse(name: &str) -> Option<Method> {
        match name {
            "centroid" => Some(Method::Centroid),
            "nearest" => Some(Method::Nearest),
            "combined" => Some(Method::Combined),
            _ => None,
        }
    }
}
