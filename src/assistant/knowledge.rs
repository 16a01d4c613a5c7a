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
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            grounded_confidence: 0.33,
            closest_topics: 3,
            shop_words: Vec::new(),
            synonyms: Vec::new(),
            grounded_answers: GroundedAnswers::Generate,
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
    /// Answer from the matched entries and products, and cite them.
    Grounded,
    /// A shop question the knowledge does not cover well: say so, offer the closest topics,
    /// hand off to a human. Never let the model improvise an answer.
    NotSure,
    /// Not about the shop: a brief model answer, never presented as shop information.
    SmallTalk,
}

impl RouteKind {
    /// The name templates see in `route`: "grounded", "not_sure" or "small_talk".
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Grounded => "grounded",
            RouteKind::NotSure => "not_sure",
            RouteKind::SmallTalk => "small_talk",
        }
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

/// The routing decision for one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    pub kind: RouteKind,
    /// Grounded: the entries to answer from (best first). NotSure: the closest topics.
    /// SmallTalk: empty.
    pub hits: Vec<Hit>,
    /// Catalogue products named in the question; their facts go into the prompt.
    pub products: Vec<Product>,
    /// The best entry's score (0 when there are no entries).
    pub confidence: f32,
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
}

/// How many neighbours per entry [`Method::Nearest`] uses, and their weights (best first):
/// one near-identical phrasing counts most, agreeing neighbours add confidence.
const NEIGHBOURS_PER_ENTRY: usize = 3;
const NEIGHBOUR_WEIGHTS: [f32; NEIGHBOURS_PER_ENTRY] = [0.5, 0.3, 0.2];

impl Knowledge {
    /// Builds the index. `phrasings` are attached to every entry with the same intent;
    /// pass an empty slice for the zero-shot setting (the entries' own text only).
    pub fn build(
        faq: Vec<FaqEntry>,
        policies: Vec<Policy>,
        catalogue: Vec<Product>,
        routing: RoutingSettings,
        phrasings: &[DatasetPhrasing],
    ) -> Knowledge {
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
        let index = Index::build(faq.len(), &documents, synonyms);
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
        Knowledge {
            faq,
            policies,
            catalogue,
            routing,
            dataset_phrasings_used,
            index,
            product_names,
            shop_words,
        }
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

    /// Decides how to answer a question. Pure and fast (well under a millisecond on the
    /// demo shop): grounded when the best entry's score reaches
    /// `routing.grounded_confidence` or a product is named; otherwise not sure when it is a
    /// shop question (see [`Knowledge::is_shop_question`]); otherwise small talk.
    pub fn route(&self, question: &str) -> Route {
        let ranked = self.rank(question, Method::default());
        let confidence = ranked.first().map(|&(_, score)| score).unwrap_or(0.0);
        let products: Vec<Product> = self
            .products_mentioned(question)
            .into_iter()
            .cloned()
            .collect();
        let threshold = self.routing.grounded_confidence;
        let hit = |&(index, score): &(usize, f32)| {
            let entry: &FaqEntry = &self.faq[index];
            Hit {
                entry_id: entry.id.clone(),
                title: entry.question.clone(),
                link: entry.link.clone(),
                intent: entry.intent.clone(),
                score,
            }
        };
        if confidence >= threshold {
            // The runner-up joins when it is nearly as good: questions often ask two things.
            let hits = ranked
                .iter()
                .take(2)
                .filter(|&&(_, score)| score >= threshold && score >= confidence * 0.95)
                .map(hit)
                .collect();
            return Route {
                kind: RouteKind::Grounded,
                hits,
                products,
                confidence,
            };
        }
        if !products.is_empty() {
            return Route {
                kind: RouteKind::Grounded,
                hits: Vec::new(),
                products,
                confidence,
            };
        }
        if self.is_shop_question(question) {
            return Route {
                kind: RouteKind::NotSure,
                hits: ranked
                    .iter()
                    .take(self.routing.closest_topics)
                    .map(hit)
                    .collect(),
                products,
                confidence,
            };
        }
        Route {
            kind: RouteKind::SmallTalk,
            hits: Vec::new(),
            products,
            confidence,
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

/// Lowercases, drops apostrophes, turns other punctuation into spaces, drops long digit
/// runs (order numbers carry no meaning for matching) and collapses whitespace.
pub fn normalise(text: &str) -> String {
    normalise_mapped(text).0
}

/// [`normalise`], plus for every byte of the result the byte range in `text` of the
/// character it came from (a separating space gets the range of the character after it).
fn normalise_mapped(text: &str) -> (String, Vec<(usize, usize)>) {
    // Words of the result, each with the source range of every byte.
    let mut words: Vec<(String, Vec<(usize, usize)>)> = Vec::new();
    let mut word = String::new();
    let mut spans = Vec::new();
    for (at, c) in text.char_indices() {
        if c == '\'' || c == '’' {
            continue;
        }
        if c.is_alphanumeric() {
            let span = (at, at + c.len_utf8());
            for lower in c.to_lowercase() {
                word.push(lower);
                spans.extend(std::iter::repeat_n(span, lower.len_utf8()));
            }
        } else if !word.is_empty() {
            words.push((std::mem::take(&mut word), std::mem::take(&mut spans)));
        }
    }
    if !word.is_empty() {
        words.push((word, spans));
    }
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len());
    let long_number = |w: &str| w.len() >= 3 && w.bytes().all(|b| b.is_ascii_digit());
    for (word, spans) in words.into_iter().filter(|(w, _)| !long_number(w)) {
        if !out.is_empty() {
            out.push(' ');
            map.push(spans[0]);
        }
        out.push_str(&word);
        map.extend(spans);
    }
    (out, map)
}

/// A light English stem: strips a plural "s" ("orders" -> "order").
fn stem(word: &str) -> String {
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        word[..word.len() - 1].to_string()
    } else {
        word.to_string()
    }
}

/// A sparse vector: (feature, weight) sorted by feature, L2-normalised.
type Sparse = Vec<(u32, f32)>;

/// TF-IDF index over documents, each belonging to one entry.
#[derive(Debug, Clone, Default)]
struct Index {
    vocabulary: HashMap<u64, u32>,
    idf: Vec<f32>,
    /// variant -> canonical word (normalised)
    synonyms: HashMap<String, String>,
    /// The IDF of a feature no document has (weighs unknown query features).
    max_idf: f32,
    /// feature -> (document, weight)
    postings: Vec<Vec<(u32, f32)>>,
    document_entry: Vec<u32>,
    /// feature -> (entry, weight) of the entry centroids
    centroid_postings: Vec<Vec<(u32, f32)>>,
    entries: usize,
}

impl Index {
    fn build(
        entries: usize,
        documents: &[(usize, String)],
        synonyms: HashMap<String, String>,
    ) -> Index {
        let mut vocabulary: HashMap<u64, u32> = HashMap::new();
        let mut document_frequency: Vec<u32> = Vec::new();
        let mut raw: Vec<HashMap<u32, f32>> = Vec::with_capacity(documents.len());
        for (_, text) in documents {
            let mut counts: HashMap<u32, f32> = HashMap::new();
            for_each_feature(text, &synonyms, |_, key| {
                let next = vocabulary.len() as u32;
                let id = *vocabulary.entry(key).or_insert(next);
                if id as usize == document_frequency.len() {
                    document_frequency.push(0);
                }
                *counts.entry(id).or_insert(0.0) += 1.0;
            });
            for &id in counts.keys() {
                document_frequency[id as usize] += 1;
            }
            raw.push(counts);
        }
        let total = documents.len() as f32;
        let idf: Vec<f32> = document_frequency
            .iter()
            .map(|&df| ((1.0 + total) / (1.0 + df as f32)).ln() + 1.0)
            .collect();
        let mut postings = vec![Vec::new(); vocabulary.len()];
        let mut centroids: Vec<HashMap<u32, f32>> = vec![HashMap::new(); entries];
        let mut document_entry = Vec::with_capacity(documents.len());
        for (document, counts) in raw.into_iter().enumerate() {
            let vector = weigh(counts.into_iter(), &idf);
            let entry = documents[document].0;
            for &(feature, weight) in &vector {
                postings[feature as usize].push((document as u32, weight));
                *centroids[entry].entry(feature).or_insert(0.0) += weight;
            }
            document_entry.push(entry as u32);
        }
        let mut centroid_postings = vec![Vec::new(); vocabulary.len()];
        for (entry, centroid) in centroids.into_iter().enumerate() {
            let norm = centroid.values().map(|w| w * w).sum::<f32>().sqrt();
            if norm > 0.0 {
                for (feature, weight) in centroid {
                    centroid_postings[feature as usize].push((entry as u32, weight / norm));
                }
            }
        }
        Index {
            vocabulary,
            synonyms,
            max_idf: (1.0 + total).ln() + 1.0,
            idf,
            postings,
            document_entry,
            centroid_postings,
            entries,
        }
    }

    /// The query vector. Letter groups the index has never seen count in the norm with the
    /// highest IDF, so a question about something the knowledge never mentions ("gift
    /// wrapping") scores lower than the same question without the unknown words.
    fn vectorise(&self, text: &str) -> Sparse {
        let mut counts: HashMap<u32, f32> = HashMap::new();
        let mut unknown: HashMap<u64, f32> = HashMap::new();
        for_each_feature(text, &self.synonyms, |kind, key| {
            match self.vocabulary.get(&key) {
                Some(&id) => *counts.entry(id).or_insert(0.0) += 1.0,
                // A misspelt word is an unknown word but mostly known letter groups, so only
                // unknown letter groups count as unknown content.
                None if kind == FeatureKind::Chars => *unknown.entry(key).or_insert(0.0) += 1.0,
                None => {}
            }
        });
        let mut vector: Sparse = counts
            .into_iter()
            .map(|(id, count)| (id, (1.0 + count.ln()) * self.idf[id as usize]))
            .collect();
        let unknown_mass: f32 = unknown
            .values()
            .map(|&count| ((1.0 + count.ln()) * self.max_idf).powi(2))
            .sum();
        let norm = (vector.iter().map(|(_, w)| w * w).sum::<f32>() + unknown_mass).sqrt();
        if norm > 0.0 {
            for (_, weight) in &mut vector {
                *weight /= norm;
            }
        }
        vector
    }

    /// (entry, score) for every entry; scores are cosine similarities in [0, 1].
    fn score(&self, text: &str, method: Method) -> Vec<(usize, f32)> {
        let query = self.vectorise(text);
        let centroid = || {
            let mut scores = vec![0.0f32; self.entries];
            for &(feature, weight) in &query {
                for &(entry, centroid_weight) in &self.centroid_postings[feature as usize] {
                    scores[entry as usize] += weight * centroid_weight;
                }
            }
            scores
        };
        let nearest = || {
            let mut similarity = vec![0.0f32; self.document_entry.len()];
            for &(feature, weight) in &query {
                for &(document, document_weight) in &self.postings[feature as usize] {
                    similarity[document as usize] += weight * document_weight;
                }
            }
            let mut best: Vec<[f32; NEIGHBOURS_PER_ENTRY]> =
                vec![[0.0; NEIGHBOURS_PER_ENTRY]; self.entries];
            for (document, &score) in similarity.iter().enumerate() {
                let top = &mut best[self.document_entry[document] as usize];
                if score > top[NEIGHBOURS_PER_ENTRY - 1] {
                    top[NEIGHBOURS_PER_ENTRY - 1] = score;
                    top.sort_by(|a, b| b.total_cmp(a));
                }
            }
            best.iter()
                .map(|top| {
                    top.iter()
                        .zip(NEIGHBOUR_WEIGHTS)
                        .map(|(score, weight)| score * weight)
                        .sum::<f32>()
                })
                .collect::<Vec<f32>>()
        };
        let scores = match method {
            Method::Centroid => centroid(),
            Method::Nearest => nearest(),
            Method::Combined => centroid()
                .into_iter()
                .zip(nearest())
                .map(|(c, n)| 0.5 * (c + n))
                .collect(),
        };
        scores
            .into_iter()
            .enumerate()
            .map(|(entry, score)| (entry, score.clamp(0.0, 1.0)))
            .collect()
    }
}

/// Sublinear TF times IDF, L2-normalised, sorted by feature.
fn weigh(counts: impl Iterator<Item = (u32, f32)>, idf: &[f32]) -> Sparse {
    let mut vector: Sparse = counts
        .map(|(id, count)| (id, (1.0 + count.ln()) * idf[id as usize]))
        .collect();
    let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, weight) in &mut vector {
            *weight /= norm;
        }
    }
    vector.sort_by_key(|&(id, _)| id);
    vector
}

/// Words and word pairs, or character n-grams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeatureKind {
    Word,
    Chars,
}

/// Calls `emit` with the kind and hashed key of every feature of the text (each word
/// replaced by its canonical synonym first): word unigrams, word bigrams and character 3-5-grams of each word padded with spaces.
fn for_each_feature(
    text: &str,
    synonyms: &HashMap<String, String>,
    mut emit: impl FnMut(FeatureKind, u64),
) {
    let normalised = normalise(text);
    let words: Vec<&str> = normalised
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| synonyms.get(w).map(String::as_str).unwrap_or(w))
        .collect();
    for (position, word) in words.iter().enumerate() {
        emit(FeatureKind::Word, hash_feature(b'w', &[word.as_bytes()]));
        if let Some(next) = words.get(position + 1) {
            let pair = [word.as_bytes(), b" ", next.as_bytes()];
            emit(FeatureKind::Word, hash_feature(b'b', &pair));
        }
        let padded: Vec<char> = std::iter::once(' ')
            .chain(word.chars())
            .chain(std::iter::once(' '))
            .collect();
        for n in 3..=5 {
            if padded.len() < n {
                break;
            }
            for window in padded.windows(n) {
                let gram: String = window.iter().collect();
                emit(FeatureKind::Chars, hash_feature(b'c', &[gram.as_bytes()]));
            }
        }
    }
}

/// FNV-1a over a kind byte and the parts.
fn hash_feature(kind: u8, parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |byte: u8| {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(kind);
    for part in parts {
        for &byte in *part {
            feed(byte);
        }
    }
    hash
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
    fn general_knowledge_is_small_talk() {
        let knowledge = demo();
        for question in [
            "what is the capital of France?",
            "tell me a joke",
            "who won the world cup in 2018?",
        ] {
            let route = knowledge.route(question);
            assert_eq!(route.kind, RouteKind::SmallTalk, "{question}: {route:?}");
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
    fn products_are_found_by_name_or_alias() {
        let knowledge = demo();
        let route = knowledge.route("How much is the clay KYUSU and is the chai in stock?");
        assert_eq!(route.kind, RouteKind::Grounded);
        let ids: Vec<&str> = route.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["chai-blend", "kyusu-clay"]);
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
