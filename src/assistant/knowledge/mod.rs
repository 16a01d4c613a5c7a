//! Shop knowledge (FAQ, policies, catalogue) and question routing.
//!
//! [`Knowledge::route`] is a pure function from a question to a [`Route`]: answer from the
//! matched entries ([`RouteKind::Grounded`]), admit that the shop question is not covered
//! ([`RouteKind::NotSure`]), or treat it as small talk ([`RouteKind::SmallTalk`]).
//!
//! Matching is a nearest-neighbour classifier over TF-IDF vectors of word unigrams and
//! character 3-5-grams (robust to typos), combined with per-entry centroids; the method was
//! picked by measurement with `shopkeep eval intents` (see prompts/README.md).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;

pub mod catalogue;
mod distance;
mod follow_up;
mod intents;
pub mod passages;
mod route;
mod spelling;
mod text;

use std::sync::Arc;

pub use catalogue::CatalogueAnswer;
use catalogue::CatalogueIndex;
use intents::Index;
pub use passages::{EmbedError, Passages, ReusingEmbedder, ShopFact, Source, SourceKind};
pub use text::normalise;
use text::{normalise_mapped, stem};

use crate::assistant::question::language::Lang;
use crate::assistant::question::small_talk::SmallTalk;
use crate::engine::TextEmbedder;

/// An amount of money in the shop currency, in cents; parsed from "12.90" or 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Price {
    pub cents: u64,
}

impl Price {
    /// Parses a plain decimal with a dot and at most two decimals ("12", "12.9", "12.90").
    /// Anything else ("12,90", "12.90 EUR", "-3", "") is `None`.
    pub fn parse_decimal(text: &str) -> Option<Price> {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > 2 {
            return None;
        }
        let whole: u64 = whole.parse().ok()?;
        let cents: u64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<u64>().ok()? * 10,
            _ => fraction.parse().ok()?,
        };
        whole
            .checked_mul(100)?
            .checked_add(cents)
            .map(|cents| Price { cents })
    }
}

impl fmt::Display for Price {
    /// Always two decimals with a dot: "12.90".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.cents / 100, self.cents % 100)
    }
}

/// One FAQ entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaqEntry {
    pub id: String,
    /// The customer-service intent this entry answers (a Bitext intent name in the demo).
    pub intent: Option<String>,
    /// The canonical question; also the entry's title in citations.
    pub question: String,
    pub answer: String,
    /// Phrasings written by the shop.
    pub examples: Vec<String>,
    pub tags: Vec<String>,
    pub link: Option<String>,
    /// Ids of policies whose text goes into the prompt with this entry.
    pub policies: Vec<String>,
    /// The entry's topic needs a person (a double charge, a missing parcel): the answer is
    /// given and the question is handed to the team with the conversation so far.
    pub handoff: bool,
}

/// One shop policy (shipping, returns, payment, privacy, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub id: String,
    pub title: String,
    pub text: String,
    pub link: Option<String>,
}

/// One catalogue product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub price: Price,
    pub stock: u32,
    pub description: String,
    /// Other names customers use; matched like the name.
    pub aliases: Vec<String>,
    /// Category ids (`[category_names]` in catalogue.toml lists their words per language).
    pub categories: Vec<String>,
    /// Names in other languages: (language code, names); the first is shown to customers
    /// who write in that language, all are matched like aliases.
    pub translations: Vec<(String, Vec<String>)>,
}

impl Product {
    /// The name, aliases and translated names, in that order.
    pub fn all_names(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .chain(self.translations.iter().flat_map(|(_, names)| names))
    }

    /// The name to show a customer writing in `lang` (a language code such as "de").
    pub fn name_in(&self, lang: &str) -> &str {
        self.translations
            .iter()
            .find(|(code, _)| code == lang)
            .and_then(|(_, names)| names.first())
            .unwrap_or(&self.name)
    }
}

/// An example phrasing taken from a data set (not the shop's own text), keyed by intent.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetPhrasing {
    pub utterance: String,
    pub intent: String,
}

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
    pub entry_id: String,
    /// The entry's canonical question.
    pub title: String,
    pub link: Option<String>,
    pub intent: Option<String>,
    /// Match score in [0, 1]; comparable across questions.
    pub score: f32,
}

/// What a grounded answer says, as data; the content layer writes it out in the customer's
/// language. No model writes these facts.
#[derive(Debug, Clone, PartialEq)]
pub enum Composed {
    /// A whole FAQ answer.
    Faq { entry_id: String },
    /// Sentences quoted from one source (a policy, a FAQ answer, the shop's details), in the
    /// source's order.
    Passages { sentences: Vec<String> },
    /// An answer from the catalogue as data.
    Catalogue(CatalogueAnswer),
}

/// The routing decision for one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
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

/// The shop's knowledge with its retrieval index; immutable once built.
#[derive(Debug, Clone)]
pub struct Knowledge {
    pub faq: Vec<FaqEntry>,
    pub policies: Vec<Policy>,
    pub catalogue: Vec<Product>,
    pub routing: RoutingSettings,
    /// How many data-set phrasings were attached to entries.
    pub dataset_phrasings_used: usize,
    index: Index,
    product_names: Vec<(usize, String)>,
    shop_words: HashSet<String>,
    passages: Passages,
    catalogue_index: CatalogueIndex,
    /// Normalised escalation words and phrases.
    escalate_words: Vec<String>,
    /// Corrects English questions against the words of all of the above.
    speller: spelling::Speller,
}

/// Everything a [`Knowledge`] is built from.
#[derive(Default)]
pub struct KnowledgeSources {
    pub faq: Vec<FaqEntry>,
    pub policies: Vec<Policy>,
    pub catalogue: Vec<Product>,
    /// Category id -> the words customers use for it, in any language.
    pub categories: HashMap<String, Vec<String>>,
    /// The shop's own details (website, contact) as retrievable facts.
    pub shop_facts: Vec<ShopFact>,
    pub routing: RoutingSettings,
    /// Example phrasings from a data set, attached to entries by intent.
    pub phrasings: Vec<DatasetPhrasing>,
    /// The sentence-embedding model for hybrid retrieval; lexical only without one.
    pub embedder: Option<Arc<dyn TextEmbedder>>,
}

impl Knowledge {
    /// Builds the indexes: the FAQ intent classifier (`phrasings` are attached to every entry
    /// with the same intent; none for the zero-shot setting), the catalogue tables, and the
    /// passages, embedded now when `sources.embedder` is set.
    pub fn build(sources: KnowledgeSources) -> Result<Knowledge, EmbedError> {
        let KnowledgeSources {
            faq,
            policies,
            catalogue,
            categories,
            shop_facts,
            routing,
            phrasings,
            embedder,
        } = sources;
        let phrasings = &phrasings[..];
        let mut documents: Vec<(usize, String)> = Vec::new();
        for (entry_index, entry) in faq.iter().enumerate() {
            documents.push((entry_index, entry.question.clone()));
            for example in &entry.examples {
                documents.push((entry_index, example.clone()));
            }
            // The tags and the intent name ("track_order" -> "track order") describe the topic.
            let mut topic: Vec<String> = entry.tags.clone();
            if let Some(intent) = &entry.intent {
                topic.push(intent.replace('_', " "));
            }
            if !topic.is_empty() {
                documents.push((entry_index, topic.join(" ")));
            }
        }
        let mut dataset_phrasings_used = 0;
        for phrasing in phrasings {
            for (entry_index, entry) in faq.iter().enumerate() {
                if entry.intent.as_deref() == Some(phrasing.intent.as_str()) {
                    documents.push((entry_index, phrasing.utterance.clone()));
                    dataset_phrasings_used += 1;
                }
            }
        }
        let mut synonyms = HashMap::new();
        for (canonical, variants) in &routing.synonyms {
            for variant in variants {
                synonyms.insert(normalise(variant), normalise(canonical));
            }
        }
        let synonyms_for_catalogue = synonyms.clone();
        let index = Index::build(faq.len(), &documents, synonyms.clone());
        let passages = Passages::build(
            &faq,
            &policies,
            &catalogue,
            &shop_facts,
            synonyms,
            embedder.clone(),
        )?;
        let common_word = |word: &str| embedder.as_ref().is_some_and(|m| m.knows_word(word));
        let catalogue_index = CatalogueIndex::build(
            &catalogue,
            &categories,
            synonyms_for_catalogue,
            &common_word,
        );
        let escalate_words = routing
            .escalate_words
            .iter()
            .map(|w| normalise(w))
            .collect();
        let speller = {
            // The shop's own words weigh more than data-set phrasings when corrections tie.
            let mut texts: Vec<(&str, u32)> = Vec::new();
            for entry in &faq {
                texts.extend([(entry.question.as_str(), 5), (entry.answer.as_str(), 5)]);
                texts.extend(
                    entry
                        .examples
                        .iter()
                        .chain(&entry.tags)
                        .map(|t| (t.as_str(), 5)),
                );
            }
            texts.extend(policies.iter().map(|p| (p.text.as_str(), 5)));
            for product in &catalogue {
                texts.push((&product.description, 5));
                texts.extend(product.all_names().map(|n| (n.as_str(), 20)));
            }
            texts.extend(phrasings.iter().map(|p| (p.utterance.as_str(), 1)));
            texts.extend(routing.shop_words.iter().map(|w| (w.as_str(), 50)));
            for (canonical, variants) in &routing.synonyms {
                texts.push((canonical, 5));
                texts.extend(variants.iter().map(|v| (v.as_str(), 5)));
            }
            texts.extend(categories.values().flatten().map(|w| (w.as_str(), 20)));
            spelling::Speller::learn(texts, embedder.clone())
        };
        let mut product_names = Vec::new();
        for (product_index, product) in catalogue.iter().enumerate() {
            for name in std::iter::once(&product.name).chain(&product.aliases) {
                let normalised = normalise(name);
                if !normalised.is_empty() {
                    product_names.push((product_index, format!(" {normalised} ")));
                }
            }
        }
        let mut shop_words: HashSet<String> = routing
            .shop_words
            .iter()
            .map(|word| normalise(word))
            .collect();
        shop_words.remove("");
        Ok(Knowledge {
            faq,
            policies,
            catalogue,
            routing,
            dataset_phrasings_used,
            index,
            product_names,
            shop_words,
            passages,
            catalogue_index,
            escalate_words,
            speller,
        })
    }

    /// All FAQ entries scored against the question, best first (scores in [0, 1]).
    pub fn rank(&self, question: &str, method: Method) -> Vec<(usize, f32)> {
        let mut scored = self.index.score(question, method);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
    }

    /// The best FAQ entry for the question and its score, or `None` without entries.
    pub fn best_entry(&self, question: &str, method: Method) -> Option<(&FaqEntry, f32)> {
        self.rank(question, method)
            .first()
            .map(|&(index, score)| (&self.faq[index], score))
    }

    /// Catalogue products whose name or alias appears in the text (whole words, any case),
    /// in catalogue order.
    pub fn products_mentioned(&self, text: &str) -> Vec<&Product> {
        let mut seen: Vec<usize> = self
            .product_mentions(text)
            .iter()
            .map(|m| m.product)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.into_iter().map(|i| &self.catalogue[i]).collect()
    }

    /// Every place the text names a catalogue product, matched like
    /// [`Knowledge::products_mentioned`] (name or alias, whole words, any case, punctuation
    /// ignored), ordered by position. Each mention is the byte range of the original text
    /// from the first to the last character of the name as written ("Clay-KYUSU" in
    /// "the Clay-KYUSU!"). Names may overlap ("Smoky Lapsang" and its alias "lapsang").
    pub fn product_mentions(&self, text: &str) -> Vec<ProductMention> {
        let (normalised, spans) = normalise_mapped(text);
        let padded = format!(" {normalised} ");
        let mut mentions = Vec::new();
        for (product_index, name) in &self.product_names {
            let mut from = 0;
            while let Some(found) = padded[from..].find(name.as_str()) {
                // `name` is " words " and `padded` has one more leading space than
                // `normalised`: the words are bytes `at..=last` of `normalised`.
                let at = from + found;
                let last = at + name.len() - 3;
                mentions.push(ProductMention {
                    start: spans[at].0,
                    end: spans[last].1,
                    product: *product_index,
                });
                // Past the leading space only: "mug mug" names the mug twice.
                from = at + 1;
            }
        }
        mentions.sort_by_key(|m| (m.start, m.end, m.product));
        mentions.dedup();
        mentions
    }

    /// The catalogue product of a mention.
    pub fn product(&self, mention: &ProductMention) -> &Product {
        &self.catalogue[mention.product]
    }

    /// True when the question uses a shop word or names a product.
    pub fn is_shop_question(&self, question: &str) -> bool {
        normalise(question)
            .split(' ')
            .any(|word| self.shop_words.contains(word) || self.shop_words.contains(&stem(word)))
            || !self.products_mentioned(question).is_empty()
    }

    /// The `count` best passages for a question with their scores (what retrieval saw),
    /// for `shopkeep eval route`.
    pub fn explain(&self, question: &str, count: usize) -> Vec<serde_json::Value> {
        let query = self.passages.embed_query(question);
        self.passages
            .search(question, query.as_deref())
            .into_iter()
            .take(count)
            .map(|scored| {
                serde_json::json!({
                    "source": self.passages.source_of(scored.passage).title,
                    "text": self.passages.passages[scored.passage].text,
                    "score": scored.score,
                    "lexical": scored.lexical,
                    "semantic": scored.semantic,
                })
            })
            .collect()
    }

    /// The texts a cited source stands for: a FAQ answer with its policies, or a policy;
    /// none for products (their facts are fields) and the shop's details.
    pub fn source_texts(&self, source: &Source) -> Vec<&str> {
        match source.kind {
            SourceKind::Faq => self
                .entry(&source.id)
                .map(|entry| {
                    std::iter::once(entry.answer.as_str())
                        .chain(
                            entry
                                .policies
                                .iter()
                                .filter_map(|id| self.policy(id))
                                .map(|policy| policy.text.as_str()),
                        )
                        .collect()
                })
                .unwrap_or_default(),
            SourceKind::Policy => self
                .policy(&source.id)
                .map(|policy| vec![policy.text.as_str()])
                .unwrap_or_default(),
            SourceKind::Product | SourceKind::Shop => Vec::new(),
        }
    }

    /// The FAQ entry with this id.
    pub fn entry(&self, id: &str) -> Option<&FaqEntry> {
        self.faq.iter().find(|entry| entry.id == id)
    }

    /// The policy with this id.
    pub fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|policy| policy.id == id)
    }
}

/// Where a text names a catalogue product (see [`Knowledge::product_mentions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductMention {
    /// Byte offset of the name's first character in the text.
    pub start: usize,
    /// Byte offset just after the name's last character.
    pub end: usize,
    /// Index into [`Knowledge::catalogue`].
    pub product: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_only_plain_decimals() {
        assert_eq!(Price::parse_decimal("12.90"), Some(Price { cents: 1290 }));
        assert_eq!(Price::parse_decimal("12.9"), Some(Price { cents: 1290 }));
        assert_eq!(Price::parse_decimal("7"), Some(Price { cents: 700 }));
        for bad in ["12,99 EUR", "12,99", "12.999", "", ".5", "12.", "-3", "€12"] {
            assert_eq!(Price::parse_decimal(bad), None, "{bad}");
        }
        assert_eq!(Price { cents: 705 }.to_string(), "7.05");
    }

    #[test]
    fn normalise_drops_order_numbers_and_punctuation() {
        assert_eq!(
            normalise("Where's order #113542617735902?!"),
            "wheres order"
        );
    }

    fn demo() -> Knowledge {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts");
        crate::assistant::content::PromptSet::load(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .knowledge
    }

    #[test]
    fn parcel_question_routes_to_tracking_with_high_confidence() {
        let knowledge = demo();
        let route = knowledge.route("where is my parcel??");
        assert_eq!(route.kind, RouteKind::Grounded);
        assert_eq!(route.hits[0].entry_id, "order-track");
        assert_eq!(route.hits[0].intent.as_deref(), Some("track_order"));
        assert!(route.confidence >= knowledge.routing.grounded_confidence);
    }

    #[test]
    fn general_knowledge_is_general() {
        let knowledge = demo();
        for question in [
            "what is the capital of France?",
            "tell me a joke",
            "who won the world cup in 2018?",
        ] {
            let route = knowledge.route(question);
            assert_eq!(route.kind, RouteKind::General, "{question}: {route:?}");
            assert!(route.hits.is_empty());
        }
    }

    #[test]
    fn uncovered_shop_questions_are_not_sure_with_closest_topics() {
        let knowledge = demo();
        for question in [
            "do you sell refurbished tractors with a lifetime warranty?",
            "do you offer gift wrapping?",
            "do you have a student discount?",
        ] {
            let route = knowledge.route(question);
            assert_eq!(route.kind, RouteKind::NotSure, "{question}: {route:?}");
            assert_eq!(route.hits.len(), knowledge.routing.closest_topics);
        }
    }

    #[test]
    fn what_a_product_is_comes_from_its_description_and_unstated_properties_do_not() {
        let knowledge = demo();
        for (question, product) in [
            ("What's actually inside the Tea Discovery Box?", "gift-box"),
            ("Where does the oolong come from?", "oolong-milk"),
            ("do u hav rooibus", "rooibos-vanilla"),
        ] {
            let route = knowledge.route(question);
            assert_eq!(route.kind, RouteKind::Grounded, "{question}: {route:?}");
            let ids: Vec<&str> = route.products.iter().map(|p| p.id.as_str()).collect();
            assert_eq!(ids, [product], "{question}");
        }
        for question in [
            "Is the kyusu dishwasher safe?",
            "Is the mug microwave safe?",
            "Where is the kettle made?",
            "How much caffeine is in the Smoky Lapsang compared to a coffee?",
        ] {
            let route = knowledge.route(question);
            assert_eq!(route.kind, RouteKind::NotSure, "{question}: {route:?}");
        }
    }

    #[test]
    fn damage_in_the_customers_words_finds_the_broken_items_rule() {
        let knowledge = demo();
        for question in [
            "The mug I ordered came with a chip in the rim. What can you do about it?",
            "my infuser came all bent out of shape",
        ] {
            let route = knowledge.route(question);
            assert_eq!(route.kind, RouteKind::Grounded, "{question}: {route:?}");
            let cited: Vec<&str> = route.sources.iter().map(|s| s.id.as_str()).collect();
            assert!(
                cited == ["returns"] || cited == ["order-damaged-or-wrong"],
                "{question}: {cited:?}"
            );
        }
    }

    #[test]
    fn products_are_found_by_name_or_alias() {
        let knowledge = demo();
        let route = knowledge.route("How much is the clay KYUSU and is the chai in stock?");
        assert_eq!(route.kind, RouteKind::Grounded);
        let ids: Vec<&str> = route.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            ["kyusu-clay", "chai-blend"],
            "in order of first mention"
        );
        let route = knowledge.route("Is the chai in stock, and how much is the clay KYUSU?");
        let ids: Vec<&str> = route.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            ["chai-blend", "kyusu-clay"],
            "in order of first mention"
        );
        assert!(knowledge.products_mentioned("a nice cup of tea").is_empty());
    }

    #[test]
    fn mentions_locate_names_and_aliases_in_the_original_text() {
        let knowledge = demo();
        let text = "Is the CLAY-Kyusu (or a mug, mug?) back — and Smoky Lapsang, naïve café?";
        let found: Vec<(&str, &str)> = knowledge
            .product_mentions(text)
            .iter()
            .map(|m| (&text[m.start..m.end], knowledge.product(m).id.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("CLAY-Kyusu", "kyusu-clay"),
                ("Kyusu", "kyusu-clay"),
                ("mug", "mug-speckled"),
                ("mug", "mug-speckled"),
                ("Smoky Lapsang", "smoky-lapsang"),
                ("Lapsang", "smoky-lapsang"),
            ]
        );
        assert!(knowledge.product_mentions("mugs and kyusus").is_empty());
    }

    #[test]
    fn normalise_keeps_its_behaviour_with_the_offset_map() {
        // The implementation before the offset map, as the reference.
        fn reference(text: &str) -> String {
            let mut cleaned = String::new();
            for c in text.chars() {
                if c == '\'' || c == '’' {
                    continue;
                }
                if c.is_alphanumeric() {
                    cleaned.extend(c.to_lowercase());
                } else {
                    cleaned.push(' ');
                }
            }
            cleaned
                .split_whitespace()
                .filter(|word| !(word.len() >= 3 && word.bytes().all(|b| b.is_ascii_digit())))
                .collect::<Vec<_>>()
                .join(" ")
        }
        for text in [
            "",
            "  ",
            "Where's order #113542617735902?!",
            "İstanbul ǅemal ΣΑΣ straße 12 345 6789x",
            "a ' b’c  --  d\t\ne",
            "12 123 1234 ab12345",
        ] {
            let (normalised, spans) = normalise_mapped(text);
            assert_eq!(normalised, reference(text), "{text:?}");
            assert_eq!(spans.len(), normalised.len(), "{text:?}");
            for &(start, end) in &spans {
                assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
                assert!(start < end);
            }
        }
    }

    #[test]
    fn typos_still_match() {
        let knowledge = demo();
        let (entry, _) = knowledge
            .best_entry(
                "i forgott my pasword, how can i recovr it",
                Method::default(),
            )
            .unwrap();
        assert_eq!(entry.id, "account-password");
    }
}
