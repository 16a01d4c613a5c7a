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
use std::sync::Arc;

pub mod catalogue;
mod distance;
mod entries;
mod follow_up;
mod intents;
pub mod passages;
mod route;
mod routing;
mod spelling;
mod text;

pub use catalogue::CatalogueAnswer;
use catalogue::CatalogueIndex;
pub use entries::{DatasetPhrasing, FaqEntry, Policy, Price, Product};
pub use follow_up::PreviousTurn;
use intents::Index;
pub use passages::{EmbedError, Passages, ReusingEmbedder, ShopFact, Source, SourceKind};
pub use routing::{Composed, GroundedAnswers, Hit, Method, Route, RouteKind, RoutingSettings};
pub use text::normalise;
use text::{normalise_mapped, stem};

use crate::engine::TextEmbedder;

/// The shop's knowledge with its retrieval index; immutable once built.
#[derive(Debug, Clone)]
pub struct Knowledge {
    /// The FAQ entries, in file order.
    pub faq: Vec<FaqEntry>,
    /// The policies, in file order.
    pub policies: Vec<Policy>,
    /// The catalogue; a product index anywhere in the knowledge points into it.
    pub catalogue: Vec<Product>,
    /// The routing thresholds and word lists.
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
    /// The FAQ entries.
    pub faq: Vec<FaqEntry>,
    /// The policies.
    pub policies: Vec<Policy>,
    /// The catalogue.
    pub catalogue: Vec<Product>,
    /// Category id -> the words customers use for it, in any language.
    pub categories: HashMap<String, Vec<String>>,
    /// The shop's own details (website, contact) as retrievable facts.
    pub shop_facts: Vec<ShopFact>,
    /// The routing thresholds and word lists.
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

    /// The shop's own words of a composed answer: a FAQ entry's answer (trimmed), or the
    /// quoted sentences joined. `None` for a catalogue answer (data, written out by the
    /// content layer) and for an entry that does not exist.
    pub fn quoted_text(&self, answer: &Composed) -> Option<String> {
        match answer {
            Composed::Faq { entry_id } => self.entry(entry_id).map(|e| e.answer.trim().to_string()),
            Composed::Passages { sentences } => Some(sentences.join(" ")),
            Composed::Catalogue(_) => None,
        }
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
    fn the_kind_asked_for_is_the_one_before_its_purpose() {
        let knowledge = demo();
        let route =
            knowledge.route("do you carry one of those small japanese teapots for green tea?");
        let ids: Vec<&str> = route.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["kyusu-clay"], "teapots, not teas: {route:?}");
        let route = knowledge.route("which teas are good for a cold evening?");
        assert!(
            route
                .products
                .iter()
                .all(|p| p.categories.iter().any(|c| c == "tea")),
            "{route:?}"
        );
    }

    #[test]
    fn a_follow_up_is_about_the_products_the_previous_answer_named() {
        let knowledge = demo();
        let previous = PreviousTurn {
            question: "do you carry one of those small japanese teapots?",
            answer: "These match: - Clay Kyusu: €54.00, in stock (6 left). Side-handle Japanese \
                     clay teapot, 300 ml, for green teas. Source: Catalogue",
        };
        let route = knowledge.route_in(
            "how much does it hold, and whats the price?",
            Some(previous),
        );
        assert!(route.follow_up);
        let ids: Vec<&str> = route.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            ["kyusu-clay"],
            "named in full, not by the alias \"teapot\""
        );
        let route = knowledge.route_in(
            "how much does it hold, and whats the price?",
            Some(PreviousTurn {
                question: "is the chai in stock?",
                ..previous
            }),
        );
        let ids: Vec<&str> = route.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["chai-blend"], "the customer's own words come first");
        let route = knowledge.route_in(
            "and from Taiwan?",
            Some(PreviousTurn {
                question: "what would you recommend?",
                ..previous
            }),
        );
        assert!(
            route.products.iter().all(|p| p.id != "kyusu-clay"),
            "no back-reference, so not about the answer's products: {route:?}"
        );
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
