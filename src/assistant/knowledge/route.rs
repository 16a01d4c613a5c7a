//! Routing: what the bot does with one question, decided from the shop's knowledge alone.
//!
//! In order: small talk -> a case for a person -> the catalogue as data (named products,
//! superlatives, price filters, properties) -> the best FAQ entry or passage (hybrid
//! retrieval) -> a general question for the model, or an honest "not sure" for a shop question.
//! Questions in other languages are answered from the catalogue or handed off: the FAQ and
//! policies are English, and the default model must not improvise in another language.

use super::catalogue::{self, CatalogueAnswer};
use super::follow_up::{is_elliptical, refers_back, PreviousTurn};
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::passages::{Scored, Source, SourceKind};
use super::text::{normalise, without_idioms};
use super::{Composed, Hit, Knowledge, Method, Route, RouteKind};
use crate::assistant::question::cues::{cues, cues_in, Cues};
use crate::assistant::question::language::{detect, Lang};
use crate::assistant::question::small_talk::small_talk;

/// A passage's neighbours join the answer when they score at least this share of its score.
const NEIGHBOUR_SHARE: f32 = 0.5;

/// An entry the intent classifier (the entry's phrasings) scores this high gets
/// [`CLASSIFIER_BONUS`] over passages that merely share words with the question ("where is
/// my parcel" is about tracking, not "we cannot redirect a parcel").
const CONFIDENT_CLASSIFIER: f32 = 0.4;
const CLASSIFIER_BONUS: f32 = 0.1;

/// Words that report a problem with an order ("you sent me the wrong tea"): such a question
/// is for the policies even when it names products.
const ORDER_PROBLEMS: [&str; 15] = [
    "sent",
    "send",
    "received",
    "receive",
    "arrived",
    "arrive",
    "delivered",
    "ordered",
    "wrong",
    "broken",
    "return",
    "returned",
    "refund",
    "exchange",
    "replace",
];

/// Words that make a message a request for the model's general abilities (a poem, a joke)
/// even when it mentions the shop's products.
const GENERAL_REQUESTS: [&str; 14] = [
    "poem",
    "haiku",
    "joke",
    "riddle",
    "story",
    "song",
    "limerick",
    "rhyme",
    "translate",
    "capital of",
    "fun fact",
    "recipe",
    "history of",
    "meaning of",
];

impl Knowledge {
    /// Decides how to answer a question on its own (see [`Knowledge::route_in`]).
    pub fn route(&self, question: &str) -> Route {
        self.route_in(question, None)
    }

    /// Decides how to answer a question; `previous` is the customer's previous turn in this
    /// conversation, used when this one is elliptical ("is it in stock?"): the products it
    /// is about are those the previous question named, else, when it refers back ("it",
    /// "those"), those its answer named ("do you have a small Japanese teapot?" answered with
    /// the Clay Kyusu, then "how much does it hold?"). "And from Taiwan?" after a list of
    /// Chinese teas asks anew. Pure apart from embedding the question; a few milliseconds on
    /// the demo shop.
    pub fn route_in(&self, question: &str, previous: Option<PreviousTurn>) -> Route {
        let lang = detect(question);
        if let Some(kind) = small_talk(question) {
            let mut route = Route::empty(RouteKind::SmallTalk, lang);
            route.small_talk = Some(kind);
            return route;
        }
        let corrected;
        let mut asked = cues_in(question, lang);
        let question = if lang == Lang::En {
            corrected = without_idioms(&self.speller.correct(question));
            asked = merge_cues(asked, cues_in(&corrected, Lang::En));
            corrected.as_str()
        } else {
            question
        };
        let previous = previous.filter(|_| is_elliptical(question));
        let mut named = self.catalogue_index.find(question);
        let mut text = question.to_string();
        if let Some(previous) = previous {
            if named.is_empty() {
                named = self.catalogue_index.find(previous.question);
            }
            if named.is_empty() && refers_back(question) {
                named = self.products_named_in_full(previous.answer);
            }
            if !asks_about_products(&asked) {
                let before = cues(previous.question);
                asked.asks_price |= before.asks_price;
                asked.asks_stock |= before.asks_stock;
            }
            text = format!("{} {question}", previous.question);
        }
        let mut route = self.route_asked(question, &text, lang, &asked, &named);
        route.follow_up = previous.is_some();
        route
    }

    /// Products whose whole name `text` contains, in order of first mention: how an answer of
    /// the bot names them ("Clay Kyusu: €54.00 … Japanese clay teapot" names the kyusu, not
    /// every product with the alias "teapot").
    fn products_named_in_full(&self, text: &str) -> Vec<usize> {
        let padded = format!(" {} ", normalise(text));
        let mut found: Vec<(usize, usize)> = self
            .catalogue
            .iter()
            .enumerate()
            .filter_map(|(index, product)| {
                padded
                    .find(&format!(" {} ", normalise(&product.name)))
                    .map(|at| (at, index))
            })
            .collect();
        found.sort_unstable();
        found.into_iter().map(|(_, index)| index).collect()
    }

    fn route_asked(
        &self,
        question: &str,
        text: &str,
        lang: Lang,
        asked: &Cues,
        named: &[usize],
    ) -> Route {
        let ranked = self.rank(text, Method::default());
        let confidence = ranked.first().map(|&(_, score)| score).unwrap_or(0.0);
        let threshold = self.routing.grounded_confidence;
        let best_entry = ranked
            .first()
            .filter(|&&(_, score)| score >= threshold)
            .map(|&(index, _)| &self.faq[index]);
        if self.wants_a_person(question) || best_entry.is_some_and(|entry| entry.handoff) {
            let mut route = Route::empty(RouteKind::Escalate, lang);
            route.confidence = confidence;
            if let Some(entry) = best_entry.filter(|entry| entry.handoff) {
                route.hits = vec![self.hit(ranked[0])];
                route.sources = vec![self.faq_source(entry)];
                route.answer = Some(Composed::Faq {
                    entry_id: entry.id.clone(),
                });
            }
            return route;
        }
        let kind = self.catalogue_index.of_kind(text);
        let names_an_item = !named.is_empty() || kind.is_some();
        if lang != Lang::En {
            let about_products = !named.is_empty()
                || (kind.is_some() && asks_about_products(asked) && !asked.asks_shipping)
                || asked.ranks_by_price();
            let answer = catalogue::answer(&self.catalogue, asked, named, kind.as_deref());
            let retail = !asked.reports_a_problem() && !asked.asks_trade_terms;
            return match answer.filter(|_| about_products && retail) {
                Some(answer) => Route {
                    confidence,
                    ..self.catalogue_route(answer, lang)
                },
                None => self
                    .route_by_cues(asked, lang, names_an_item)
                    .unwrap_or_else(|| self.not_sure(&ranked, lang, confidence)),
            };
        }
        // Brewing advice for a kind of tea ("how long should I steep black tea?") is not a
        // request for the teas: the shop's texts answer it, or a person does. Choosing one
        // ("which kettle is best for brewing green tea?") still is.
        let chooses = normalise(question)
            .split(' ')
            .any(|word| ["which", "best", "recommend", "suggest"].contains(&word));
        let advice_only = asked.asks_preparation
            && kind.is_some()
            && named.is_empty()
            && !chooses
            && !asks_about_products(asked)
            && !asked.recommend
            && !asked.asks_if_sold;
        if !advice_only {
            if let Some(route) = self.route_catalogue(question, asked, named, kind.as_deref()) {
                return Route {
                    confidence,
                    ..route
                };
            }
        }
        let wants_general = {
            let lowered = normalise(question);
            GENERAL_REQUESTS.iter().any(|word| lowered.contains(word))
        };
        if wants_general && named.is_empty() && !asks_about_products(asked) {
            return Route {
                confidence,
                ..Route::empty(RouteKind::General, lang)
            };
        }
        let shop_texts_only = !named.is_empty() || advice_only;
        let expanded;
        let text = match self.reported_problem(question, asked, named, names_an_item) {
            Some(problem) => {
                expanded = format!("{text} {problem}");
                expanded.as_str()
            }
            None => text,
        };
        if let Some(mut route) =
            self.route_retrieved(text, &ranked, shop_texts_only, asked.asks_price)
        {
            // "Do you sell X?" is the catalogue's to answer: a product it does not have is
            // not answered by an entry that shares a word with the question ("… with a
            // lifetime warranty").
            if asked.asks_if_sold && route.products.is_empty() {
                return self.not_sure(&ranked, lang, confidence);
            }
            route.confidence = route.confidence.max(confidence);
            return route;
        }
        if !named.is_empty() || asked.asks_if_sold || self.is_shop_question(question) {
            let mut route = self.not_sure(&ranked, lang, confidence);
            route.products = named.iter().map(|&p| self.catalogue[p].clone()).collect();
            return route;
        }
        Route {
            confidence,
            ..Route::empty(RouteKind::General, lang)
        }
    }

    /// A question in another language that the cues recognise in every language (damage on
    /// arrival, a product that stopped working: `names_an_item`, sending something back,
    /// shipping and its cost), answered from the shop's
    /// English texts for the same question in English: the answer is quoted in English, under
    /// a lead-in in the customer's language (templates/locale/<code>/in_english.j2). `None`
    /// when the cues name no such topic or the shop's texts do not answer it confidently.
    fn route_by_cues(&self, asked: &Cues, lang: Lang, names_an_item: bool) -> Option<Route> {
        let query = if asked.reports_damage {
            "my order arrived damaged, what do I do"
        } else if asked.reports_fault && names_an_item {
            "my item stopped working, what can I do"
        } else if asked.asks_return {
            "how long do I have to return an item"
        } else if asked.asks_shipping && asked.asks_price {
            "how much does shipping cost"
        } else if asked.asks_shipping {
            "which countries do you ship to and how long does delivery take"
        } else {
            return None;
        };
        let ranked = self.rank(query, Method::default());
        let mut route = self.route_retrieved(query, &ranked, true, asked.asks_price)?;
        let quoted = self.quoted_text(route.answer.as_ref()?)?;
        // The quote must itself be about shipping: a weak match (no sentence embeddings)
        // can rank a fee for cancelling above the shipping costs.
        if asked.asks_shipping
            && !asked.reports_a_problem()
            && !cues_in(&quoted, Lang::En).asks_shipping
        {
            return None;
        }
        route.lang = lang;
        Some(route)
    }

    /// What kind of order problem the question reports, in the knowledge's words, so that
    /// retrieval finds the rule for it: "wrong item" when products are named with a delivery
    /// verb ("you sent me the lapsang but I ordered the sencha", "two infusers instead of the
    /// kyusu"), "broken item" for damage words ("chipped", "smashed": synonyms of broken) and
    /// for a product (`names_an_item`: named, or a kind of product) that stopped working
    /// ([`Cues::reports_fault`]; "the discount code doesn't work" is not about an item).
    fn reported_problem(
        &self,
        question: &str,
        asked: &Cues,
        named: &[usize],
        names_an_item: bool,
    ) -> Option<&'static str> {
        let words = self.catalogue_index.topic_words(question);
        let has = |word: &str| words.iter().any(|w| w == word);
        let normalised = format!(" {} ", normalise(question));
        let delivered = [" sent ", " got ", " received ", " ordered ", " arrived "]
            .iter()
            .any(|verb| normalised.contains(verb));
        if has("broken") || (asked.reports_fault && names_an_item) {
            Some("broken item")
        } else if has("wrong") || (delivered && named.len() >= 2) {
            Some("wrong item")
        } else {
            None
        }
    }

    /// The catalogue's answer when the question is about products as such: named products
    /// whose asked properties the catalogue states, superlatives and price filters, or
    /// products of a kind with a property ("a caffeine-free tea").
    fn route_catalogue(
        &self,
        question: &str,
        asked: &Cues,
        named: &[usize],
        kind: Option<&[usize]>,
    ) -> Option<Route> {
        let index = &self.catalogue_index;
        let reports_a_problem = index
            .topic_words(question)
            .iter()
            .any(|word| ORDER_PROBLEMS.contains(&word.as_str()));
        if (reports_a_problem || asked.reports_fault) && !asks_about_products(asked) {
            return None;
        }
        if asked.asks_trade_terms {
            return None;
        }
        if !named.is_empty() {
            let (wanted, stated) = index.stated_properties(question, named);
            // A comparison needs two products of the catalogue ("compared to a coffee" is not one).
            let about_products = asks_about_products(asked) || named.len() >= 2;
            if !about_products && stated * 2 < wanted {
                return None;
            }
            let answer = catalogue::answer(&self.catalogue, asked, named, kind)?;
            return Some(self.catalogue_route(answer, Lang::En));
        }
        if asked.asks_shipping {
            return None;
        }
        let filtering = asks_about_products(asked);
        if kind.is_none() && !asked.ranks_by_price() {
            return None;
        }
        let all: Vec<usize> = (0..self.catalogue.len()).collect();
        let pool = kind.unwrap_or(&all);
        let wanted: Vec<String> = index
            .topic_words(question)
            .into_iter()
            .filter(|word| !pool.iter().any(|&p| index.is_kind_word(p, word)))
            .collect();
        // Ranking by price, words no product has ("the priciest tea you've got") cannot
        // narrow the list; otherwise they mean the catalogue does not answer the question.
        let wanted: Vec<String> = if asked.ranks_by_price() {
            wanted
                .into_iter()
                .filter(|word| {
                    pool.iter()
                        .any(|&p| index.described_count(p, std::slice::from_ref(word)) > 0)
                })
                .collect()
        } else {
            wanted
        };
        let mut narrowed: Vec<usize> = pool.to_vec();
        if !wanted.is_empty() {
            let count = |p: usize| index.described_count(p, &wanted);
            let best = pool.iter().map(|&p| count(p)).max().unwrap_or(0);
            if best == 0 || best * 2 < wanted.len().min(2) {
                return None;
            }
            narrowed.retain(|&p| count(p) == best);
        }
        let answer = if filtering {
            catalogue::answer(&self.catalogue, asked, named, Some(&narrowed))?
        } else {
            let mut listed = narrowed;
            listed.sort_by_key(|&p| (self.catalogue[p].price, p));
            CatalogueAnswer::List(listed)
        };
        Some(self.catalogue_route(answer, Lang::En))
    }

    /// The best source for the text, when it scores at least `passage_confidence`: each
    /// FAQ entry scores the better of the intent classifier and its best answer sentence
    /// (and is quoted whole); a policy or the shop's details score their best sentence (quoted
    /// with its neighbours); a product its record (its facts). With `shop_texts_only`,
    /// product records are not answers (the question names a product and asks something
    /// its description does not say: only a policy or FAQ may answer it). With
    /// `asks_price`, a policy is quoted from its best sentence that states an amount (see
    /// [`Knowledge::priced_passage`]).
    fn route_retrieved(
        &self,
        text: &str,
        ranked: &[(usize, f32)],
        shop_texts_only: bool,
        asks_price: bool,
    ) -> Option<Route> {
        let query = self.passages.embed_query(text);
        let scored = self.passages.search(text, query.as_deref());
        let mut best_of_source: HashMap<usize, Scored> = HashMap::new();
        for candidate in &scored {
            let source = self.passages.passages[candidate.passage].source;
            if shop_texts_only && self.passages.sources[source].kind == SourceKind::Product {
                continue;
            }
            best_of_source.entry(source).or_insert(*candidate);
        }
        // FAQ id -> (entry index, intent-classifier score).
        let classifier: HashMap<&str, (usize, f32)> = ranked
            .iter()
            .map(|&(index, score)| (self.faq[index].id.as_str(), (index, score)))
            .collect();
        let faq_of = |source: usize| {
            let info = &self.passages.sources[source];
            (info.kind == SourceKind::Faq)
                .then(|| classifier.get(info.id.as_str()).copied())
                .flatten()
        };
        // An entry that hands off to a person counts only by its phrasings: its answer
        // ("tell us what happened…") reads like any problem.
        let source_score = |source: usize, passage: &Scored| match faq_of(source) {
            Some((index, classified)) if self.faq[index].handoff => classified,
            Some((_, classified)) => {
                let agreed = if classified >= CONFIDENT_CLASSIFIER {
                    CLASSIFIER_BONUS
                } else {
                    0.0
                };
                passage.score.max(classified) + agreed
            }
            None => passage.score,
        };
        let (source, passage, score) = best_of_source
            .iter()
            .map(|(&source, passage)| (source, *passage, source_score(source, passage)))
            .max_by(|a, b| a.2.total_cmp(&b.2).then(b.0.cmp(&a.0)))?;
        let faq = faq_of(source);
        let classified = faq.is_some_and(|(_, score)| score >= self.routing.grounded_confidence);
        if score < self.routing.passage_confidence && !classified {
            return None;
        }
        if let Some((index, _)) = faq {
            let entry = &self.faq[index];
            let kind = if entry.handoff {
                RouteKind::Escalate
            } else {
                RouteKind::Grounded
            };
            let mut route = Route::empty(kind, Lang::En);
            route.hits = vec![self.hit((index, score))];
            route.sources = vec![self.faq_source(entry)];
            route.answer = Some(Composed::Faq {
                entry_id: entry.id.clone(),
            });
            route.confidence = score;
            return Some(route);
        }
        let quoted = if asks_price {
            self.priced_passage(passage, &scored)
        } else {
            passage
        };
        let mut route = self.passage_route(quoted, &scored);
        route.confidence = route.confidence.max(passage.score);
        Some(route)
    }

    /// For a question about what something costs: `top` when it states an amount, else the
    /// best sentence of the same source that does and scores at least [`NEIGHBOUR_SHARE`] of
    /// `top` ("how much is shipping on a 25 euro order" is answered by "Standard delivery
    /// … costs 4.50 EUR", not by the customs sentence that scored a little higher).
    fn priced_passage(&self, top: Scored, scored: &[Scored]) -> Scored {
        let passages = &self.passages.passages;
        if states_an_amount(&passages[top.passage].text) {
            return top;
        }
        let source = passages[top.passage].source;
        scored
            .iter()
            .filter(|s| passages[s.passage].source == source)
            .filter(|s| s.score >= top.score * NEIGHBOUR_SHARE)
            .find(|s| states_an_amount(&passages[s.passage].text))
            .copied()
            .unwrap_or(top)
    }

    /// Quotes a passage with its best neighbours, or a product's facts for a product record.
    fn passage_route(&self, top: Scored, scored: &[Scored]) -> Route {
        let source = self.passages.source_of(top.passage).clone();
        if source.kind == SourceKind::Product {
            if let Some(product) = self.catalogue.iter().position(|p| p.id == source.id) {
                let mut route =
                    self.catalogue_route(CatalogueAnswer::Facts(vec![product]), Lang::En);
                route.confidence = top.score;
                return route;
            }
        }
        let score_of = |passage: usize| {
            scored
                .iter()
                .find(|s| s.passage == passage)
                .map(|s| s.score)
                .unwrap_or(0.0)
        };
        let mut chosen: Vec<usize> = self
            .passages
            .neighbours(top.passage)
            .filter(|&p| score_of(p) >= top.score * NEIGHBOUR_SHARE)
            .collect();
        chosen.push(top.passage);
        chosen.sort_unstable();
        let sentences = chosen
            .iter()
            .map(|&p| self.passages.passages[p].text.clone())
            .collect();
        let mut route = Route::empty(RouteKind::Grounded, Lang::En);
        route.answer = Some(Composed::Passages { sentences });
        route.sources = vec![source];
        route.confidence = top.score;
        route
    }

    /// A grounded route answered from the catalogue, citing it; its products are the
    /// ones the answer writes out.
    fn catalogue_route(&self, answer: CatalogueAnswer, lang: Lang) -> Route {
        let mut route = Route::empty(RouteKind::Grounded, lang);
        route.products = answer
            .shown()
            .iter()
            .map(|&p| self.catalogue[p].clone())
            .collect();
        route.sources = vec![Source {
            kind: SourceKind::Product,
            id: "catalogue".into(),
            title: "Catalogue".into(),
            link: None,
        }];
        route.answer = Some(Composed::Catalogue(answer));
        route
    }

    fn not_sure(&self, ranked: &[(usize, f32)], lang: Lang, confidence: f32) -> Route {
        let mut route = Route::empty(RouteKind::NotSure, lang);
        route.hits = ranked
            .iter()
            .take(self.routing.closest_topics)
            .map(|&r| self.hit(r))
            .collect();
        route.confidence = confidence;
        route
    }

    /// Whether the question uses one of the shop's escalation words or phrases.
    fn wants_a_person(&self, question: &str) -> bool {
        let padded = format!(" {} ", normalise(question));
        self.escalate_words
            .iter()
            .any(|phrase| !phrase.is_empty() && padded.contains(&format!(" {phrase} ")))
    }

    fn hit(&self, (index, score): (usize, f32)) -> Hit {
        let entry = &self.faq[index];
        Hit {
            entry_id: entry.id.clone(),
            title: entry.question.clone(),
            link: entry.link.clone(),
            intent: entry.intent.clone(),
            score,
        }
    }

    fn faq_source(&self, entry: &super::FaqEntry) -> Source {
        Source {
            kind: SourceKind::Faq,
            id: entry.id.clone(),
            title: entry.question.clone(),
            link: entry.link.clone(),
        }
    }
}

/// The cues of either reading of a question (as written, and spelling-corrected).
/// Whether `text` states an amount of money: a number with a currency sign or code next to
/// it ("4.50 EUR", "€9.90", "$5").
fn states_an_amount(text: &str) -> bool {
    static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)[€$£]\s?\d|\d(?:[.,]\d+)?\s?(?:[€$£]|(?:eur|euros?|usd|gbp|chf)\b)")
            .expect("amount pattern is valid")
    });
    AMOUNT.is_match(text)
}

fn merge_cues(written: Cues, corrected: Cues) -> Cues {
    Cues {
        asks_price: written.asks_price || corrected.asks_price,
        asks_stock: written.asks_stock || corrected.asks_stock,
        cheapest: written.cheapest || corrected.cheapest,
        most_expensive: written.most_expensive || corrected.most_expensive,
        max_price: written.max_price.or(corrected.max_price),
        min_price: written.min_price.or(corrected.min_price),
        compare: written.compare || corrected.compare,
        recommend: written.recommend || corrected.recommend,
        asks_shipping: written.asks_shipping || corrected.asks_shipping,
        reports_fault: written.reports_fault || corrected.reports_fault,
        asks_if_sold: written.asks_if_sold || corrected.asks_if_sold,
        asks_trade_terms: written.asks_trade_terms || corrected.asks_trade_terms,
        reports_damage: written.reports_damage || corrected.reports_damage,
        asks_return: written.asks_return || corrected.asks_return,
        asks_preparation: written.asks_preparation || corrected.asks_preparation,
    }
}

/// Whether the cues ask about products as such (price, stock, cheapest, a price range).
fn asks_about_products(asked: &Cues) -> bool {
    asked.asks_price
        || asked.asks_stock
        || asked.cheapest
        || asked.most_expensive
        || asked.max_price.is_some()
        || asked.min_price.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::demo;

    #[test]
    fn amounts_are_numbers_with_a_currency() {
        for priced in [
            "costs 4.50 EUR",
            "only €9.90",
            "for 5 euros",
            "$5 off",
            "12,50 €",
        ] {
            assert!(states_an_amount(priced), "{priced}");
        }
        for plain in [
            "3-5 working days",
            "before 14:00 CET",
            "within 30 days",
            "euro zone",
        ] {
            assert!(!states_an_amount(plain), "{plain}");
        }
    }

    #[test]
    fn a_price_question_quotes_the_sentence_with_the_amount() {
        let knowledge = demo().knowledge;
        let passages = &knowledge.passages.passages;
        let find = |start: &str| {
            passages
                .iter()
                .position(|p| p.text.starts_with(start))
                .unwrap_or_else(|| panic!("no passage starts with {start:?}"))
        };
        let customs = find("Customs charges");
        let standard = find("Standard delivery takes");
        let scored = |pairs: &[(usize, f32)]| -> Vec<Scored> {
            pairs
                .iter()
                .map(|&(passage, score)| Scored {
                    passage,
                    score,
                    lexical: score,
                    semantic: score,
                })
                .collect()
        };
        let top = scored(&[(customs, 0.45)])[0];
        let close = scored(&[(customs, 0.45), (standard, 0.44)]);
        assert_eq!(knowledge.priced_passage(top, &close).passage, standard);
        let far = scored(&[(customs, 0.45), (standard, 0.2)]);
        assert_eq!(knowledge.priced_passage(top, &far).passage, customs);
        let priced_top = close[1];
        assert_eq!(
            knowledge.priced_passage(priced_top, &close).passage,
            standard
        );
    }
}
