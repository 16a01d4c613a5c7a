//! Passages: every sentence the shop wrote (FAQ answers, policies), every product, and the
//! shop's own settings, each with the source it is cited by; and their hybrid retrieval, a
//! lexical TF-IDF score (typo-tolerant character n-grams) plus sentence-embedding similarity.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use super::intents::Index;
use super::text::content_words;
use super::{FaqEntry, Method, Policy, Product};
use crate::engine::TextEmbedder;

/// Weight of the embedding similarity in a passage's score; the lexical score has the rest.
const EMBEDDING_WEIGHT: f32 = 0.7;

/// What a passage is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A FAQ entry.
    Faq,
    /// A shop policy.
    Policy,
    /// A catalogue product.
    Product,
    /// The shop's own settings (shop.toml).
    Shop,
}

/// Where an answer's facts come from; shown as its citation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// What the source is.
    pub kind: SourceKind,
    /// The FAQ entry, policy or product id ("shop" for the shop's settings).
    pub id: String,
    /// The title shown in the citation.
    pub title: String,
    /// The link shown in the citation, if the source has one.
    pub link: Option<String>,
}

/// A fact from the shop's settings (shop.toml), e.g. its website or contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopFact {
    /// The fact as a sentence.
    pub text: String,
    /// The link cited with it, if any.
    pub link: Option<String>,
}

/// One retrievable unit: a sentence of a FAQ answer or policy, a product, or a shop fact.
/// Passages of one source are stored together, in the source's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Index into [`Passages::sources`].
    pub source: usize,
    /// The sentence, product or fact as retrieved and quoted.
    pub text: String,
}

/// A passage with its score for a question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Index into [`Passages::passages`].
    pub passage: usize,
    /// Hybrid score in [0, 1].
    pub score: f32,
    /// The lexical (TF-IDF) similarity in [0, 1].
    pub lexical: f32,
    /// The embedding similarity in [0, 1]; 0 without an embedding model.
    pub semantic: f32,
}

/// The passages of one knowledge set and their indexes; immutable once built.
#[derive(Clone)]
pub struct Passages {
    /// Every source, in the order the knowledge lists them.
    pub sources: Vec<Source>,
    /// Every passage, grouped by source in the source's order.
    pub passages: Vec<Passage>,
    lexical: Index,
    /// Per passage: its topic words (stemmed, synonyms made canonical).
    words: Vec<HashSet<String>>,
    /// Variant -> canonical word.
    synonyms: HashMap<String, String>,
    /// One unit vector per passage, when an embedding model is loaded.
    vectors: Option<Vec<Vec<f32>>>,
    embedder: Option<Arc<dyn TextEmbedder>>,
}

impl std::fmt::Debug for Passages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passages")
            .field("passages", &self.passages.len())
            .field("embedded", &self.vectors.is_some())
            .finish()
    }
}

/// An embedding model failed while the passages were embedded.
#[derive(Debug, thiserror::Error)]
#[error("the knowledge could not be embedded")]
pub struct EmbedError(#[source] pub crate::engine::EngineError);

impl Passages {
    /// Splits every source into passages and indexes them; with an `embedder`, every passage
    /// is embedded now (once per load or reload).
    pub fn build(
        faq: &[FaqEntry],
        policies: &[Policy],
        catalogue: &[Product],
        shop_facts: &[ShopFact],
        synonyms: HashMap<String, String>,
        embedder: Option<Arc<dyn TextEmbedder>>,
    ) -> Result<Passages, EmbedError> {
        let mut sources = Vec::new();
        let mut passages = Vec::new();
        let mut add = |kind, id: &str, title: &str, link: &Option<String>, texts: Vec<String>| {
            let source = sources.len();
            sources.push(Source {
                kind,
                id: id.to_string(),
                title: title.to_string(),
                link: link.clone(),
            });
            passages.extend(texts.into_iter().map(|text| Passage { source, text }));
        };
        for policy in policies {
            let texts = sentences(&policy.text);
            add(
                SourceKind::Policy,
                &policy.id,
                &policy.title,
                &policy.link,
                texts,
            );
        }
        for entry in faq {
            let texts = sentences(&entry.answer);
            add(
                SourceKind::Faq,
                &entry.id,
                &entry.question,
                &entry.link,
                texts,
            );
        }
        for product in catalogue {
            let mut names = vec![product.name.as_str()];
            names.extend(product.aliases.iter().map(String::as_str));
            let text = format!("{}: {}", names.join(", "), product.description);
            add(
                SourceKind::Product,
                &product.id,
                &product.name,
                &None,
                vec![text],
            );
        }
        for fact in shop_facts {
            let texts = vec![fact.text.clone()];
            add(SourceKind::Shop, "shop", "Shop details", &fact.link, texts);
        }
        // What retrieval reads: a FAQ or policy sentence under its source's title ("Shipping
        // policy Standard delivery…"), so that a sentence is found by what it is about.
        let indexed: Vec<String> = passages
            .iter()
            .map(|p| {
                let source: &Source = &sources[p.source];
                match source.kind {
                    SourceKind::Policy | SourceKind::Faq => format!("{} {}", source.title, p.text),
                    SourceKind::Product | SourceKind::Shop => p.text.clone(),
                }
            })
            .collect();
        let documents: Vec<(usize, String)> = indexed.iter().cloned().enumerate().collect();
        let canonical = |word: String| synonyms.get(&word).cloned().unwrap_or(word);
        let words = indexed
            .iter()
            .map(|text| content_words(text).into_iter().map(canonical).collect())
            .collect();
        let lexical = Index::build(passages.len(), &documents, synonyms.clone());
        let vectors = match &embedder {
            Some(embedder) => {
                let texts: Vec<&str> = indexed.iter().map(String::as_str).collect();
                Some(embedder.embed(&texts).map_err(EmbedError)?)
            }
            None => None,
        };
        Ok(Passages {
            sources,
            passages,
            words,
            synonyms,
            lexical,
            vectors,
            embedder,
        })
    }

    /// Whether passages are scored with sentence embeddings as well as lexically.
    pub fn embedded(&self) -> bool {
        self.vectors.is_some()
    }

    /// The question's embedding, when a model is loaded; a failure is logged and retrieval
    /// falls back to the lexical score.
    pub fn embed_query(&self, question: &str) -> Option<Vec<f32>> {
        let embedder = self.embedder.as_ref()?;
        match embedder.embed(&[question]) {
            Ok(mut vectors) => vectors.pop(),
            Err(error) => {
                tracing::warn!(%error, "could not embed a question; lexical retrieval only");
                None
            }
        }
    }

    /// Every passage scored against the question, best first. `query` is the question's
    /// embedding from [`Passages::embed_query`].
    /// The lexical part of a score is the mean of the TF-IDF cosine (typo-tolerant
    /// character n-grams) and the share of the question's topic words the passage has,
    /// trusted less for questions of one or two topic words.
    pub fn search(&self, question: &str, query: Option<&[f32]>) -> Vec<Scored> {
        let asked: Vec<String> = content_words(question)
            .into_iter()
            .map(|word| self.synonyms.get(&word).cloned().unwrap_or(word))
            .collect();
        let coverage = |passage: usize| {
            if asked.is_empty() {
                return 0.0;
            }
            let found = asked
                .iter()
                .filter(|word| self.words[passage].contains(*word))
                .count();
            let trust = (asked.len() as f32 / 3.0).min(1.0);
            trust * found as f32 / asked.len() as f32
        };
        let lexical = self.lexical.score(question, Method::Centroid);
        let mut scored: Vec<Scored> = lexical
            .into_iter()
            .map(|(passage, tfidf)| {
                let lexical = 0.5 * tfidf + 0.5 * coverage(passage);
                let semantic = match (query, &self.vectors) {
                    (Some(query), Some(vectors)) => dot(query, &vectors[passage]).max(0.0),
                    _ => 0.0,
                };
                let score = match (query, &self.vectors) {
                    (Some(_), Some(_)) => {
                        (1.0 - EMBEDDING_WEIGHT) * lexical + EMBEDDING_WEIGHT * semantic
                    }
                    _ => lexical,
                };
                Scored {
                    passage,
                    score,
                    lexical,
                    semantic,
                }
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.passage.cmp(&b.passage)));
        scored
    }

    /// The source of a passage.
    pub fn source_of(&self, passage: usize) -> &Source {
        &self.sources[self.passages[passage].source]
    }

    /// The passages of the same source right before and after this one, in order.
    pub fn neighbours(&self, passage: usize) -> impl Iterator<Item = usize> + '_ {
        let source = self.passages[passage].source;
        [passage.checked_sub(1), Some(passage + 1)]
            .into_iter()
            .flatten()
            .filter(move |&p| p < self.passages.len() && self.passages[p].source == source)
    }
}

/// An embedding model that keeps the vectors of its last batch (the knowledge's passages),
/// so a reload embeds only the passages that changed. Single texts (questions) are never
/// kept; the cache holds one knowledge set's vectors at most.
pub struct ReusingEmbedder {
    model: Arc<dyn TextEmbedder>,
    last_batch: std::sync::Mutex<HashMap<String, Vec<f32>>>,
}

impl ReusingEmbedder {
    /// Wraps `model` with an empty cache.
    pub fn new(model: Arc<dyn TextEmbedder>) -> Self {
        Self {
            model,
            last_batch: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl TextEmbedder for ReusingEmbedder {
    fn dimension(&self) -> usize {
        self.model.dimension()
    }

    fn knows_word(&self, word: &str) -> bool {
        self.model.knows_word(word)
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, crate::engine::EngineError> {
        if texts.len() < 2 {
            return self.model.embed(texts);
        }
        let mut cache = self.last_batch.lock().unwrap_or_else(|p| p.into_inner());
        let missing: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|text| !cache.contains_key(*text))
            .collect();
        let fresh = self.model.embed(&missing)?;
        let mut known: HashMap<String, Vec<f32>> = std::mem::take(&mut *cache);
        known.extend(missing.iter().map(|t| t.to_string()).zip(fresh));
        let vectors: Vec<Vec<f32>> = texts.iter().map(|t| known[*t].clone()).collect();
        *cache = texts
            .iter()
            .map(|t| (t.to_string(), known[*t].clone()))
            .collect();
        Ok(vectors)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Splits prose into sentences: after ".", "!" or "?" followed by a space and a capital
/// letter or digit; decimals ("4.50"), times ("9:00") and abbreviations inside a sentence
/// stay whole.
pub fn sentences(text: &str) -> Vec<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for window in 0..chars.len() {
        let (at, c) = chars[window];
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let next_is_space = chars.get(window + 1).is_some_and(|&(_, n)| n == ' ');
        let after = chars.get(window + 2).map(|&(_, n)| n);
        if next_is_space && after.is_some_and(|n| n.is_uppercase() || n.is_ascii_digit()) {
            let sentence = text[start..at + 1].trim();
            if !sentence.is_empty() {
                out.push(sentence.to_string());
            }
            start = at + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embeds each text as [its length], counting the texts it was asked for.
    struct CountingEmbedder(std::sync::atomic::AtomicUsize);

    impl TextEmbedder for CountingEmbedder {
        fn dimension(&self) -> usize {
            1
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, crate::engine::EngineError> {
            self.0
                .fetch_add(texts.len(), std::sync::atomic::Ordering::Relaxed);
            Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
        }
    }

    #[test]
    fn a_reload_embeds_only_the_passages_that_changed() {
        let counting = Arc::new(CountingEmbedder(Default::default()));
        let reusing = ReusingEmbedder::new(counting.clone());
        let count = || counting.0.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(reusing.embed(&["a", "bb", "ccc"]).unwrap().len(), 3);
        assert_eq!(count(), 3);
        let again = reusing.embed(&["a", "bb", "dddd"]).unwrap();
        assert_eq!(again, [vec![1.0], vec![2.0], vec![4.0]]);
        assert_eq!(count(), 4, "only the new passage is embedded");
        reusing.embed(&["q"]).unwrap();
        reusing.embed(&["q"]).unwrap();
        assert_eq!(count(), 6, "single questions are never cached");
        reusing.embed(&["ccc", "a"]).unwrap();
        assert_eq!(count(), 7, "the cache holds the last batch only");
    }

    #[test]
    fn sentences_split_at_sentence_ends_only() {
        let text = "Standard delivery costs 4.50 EUR, free from 40 EUR. Express takes 1-2 \
                    days! Orders before 14:00 ship. We answer Mon-Fri 9:00-17:00.";
        assert_eq!(
            sentences(text),
            [
                "Standard delivery costs 4.50 EUR, free from 40 EUR.",
                "Express takes 1-2 days!",
                "Orders before 14:00 ship.",
                "We answer Mon-Fri 9:00-17:00."
            ]
        );
    }
}
