//! The FAQ intent classifier: nearest neighbours and centroids over TF-IDF vectors of
//! word unigrams, bigrams and character 3-5-grams (robust to typos).

use std::collections::HashMap;

use super::text::{for_each_feature, FeatureKind};
use super::Method;

/// How many neighbours per entry [`Method::Nearest`] uses, and their weights (best first):
/// one near-identical phrasing counts most, agreeing neighbours add confidence.
const NEIGHBOURS_PER_ENTRY: usize = 3;
const NEIGHBOUR_WEIGHTS: [f32; NEIGHBOURS_PER_ENTRY] = [0.5, 0.3, 0.2];

/// A sparse vector: (feature, weight) sorted by feature, L2-normalised.
type Sparse = Vec<(u32, f32)>;

/// TF-IDF index over documents, each belonging to one entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
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
    pub(crate) fn build(
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
    pub(crate) fn score(&self, text: &str, method: Method) -> Vec<(usize, f32)> {
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
