//! The catalogue as data: products found by name, alias, translated name, or a misspelt or
//! partial name, and the catalogue questions answered from it (price and stock, cheapest, most
//! expensive, under a price, in stock, recommendations by property, side-by-side comparison).
//!
//! Prices and stock in every answer built here come from [`Product`] fields, never from text.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::distance::edit_distance_within;
use super::text::{content_words, is_cjk, normalise, stem};
use super::Product;
use crate::assistant::question::cues::Cues;

/// Words too common in product names to identify one product ("tea" names several).
const GENERIC_NAME_WORDS: [&str; 8] = ["tea", "teas", "set", "of", "the", "with", "and", "for"];

/// Words that ask what a product is, holds or is made of, which its description answers
/// ("what's inside the gift box?"), never a property the description must state. (Fillers
/// such as "made", "tell" and "details" are not topic words at all.)
const DESCRIBING_WORDS: [&str; 8] = [
    "inside",
    "contain",
    "content",
    "include",
    "included",
    "consist",
    "description",
    "look",
];

/// Words that ask where a product comes from; a description that names a place (a capitalised
/// word after its first: "Creamy Taiwanese oolong", "from Fujian") answers them, whatever place
/// the customer guessed ("Where does the oolong come from? China?").
const ORIGIN_WORDS: [&str; 8] = [
    "come", "origin", "grown", "grow", "produced", "country", "region", "source",
];

/// How far a misspelt word may be from a product word: one edit for words of 4-6 letters, two
/// from 7 letters (Damerau-Levenshtein; shorter words must match exactly).
fn typo_budget(word: &str) -> usize {
    match word.chars().count() {
        0..=3 => 0,
        4..=6 => 1,
        _ => 2,
    }
}

/// Product lookup tables, built once per knowledge set.
#[derive(Debug, Clone, Default)]
pub struct CatalogueIndex {
    /// Per product: every normalised name, alias and translated name.
    names: Vec<Vec<String>>,
    /// Per product: names in scripts without spaces (Chinese, Japanese), matched as substrings.
    cjk_names: Vec<Vec<String>>,
    /// Distinctive word -> the one product whose names use it.
    distinctive: HashMap<String, usize>,
    /// Per product: the words of its category names (any language), stemmed.
    category_words: Vec<HashSet<String>>,
    /// Per product: the stemmed words of its names (kind words such as "teapot", "mug").
    name_words: Vec<HashSet<String>>,
    /// Per product: the stemmed words of its description, synonyms made canonical.
    description_words: Vec<HashSet<String>>,
    /// Per product: whether its description names a place (see [`ORIGIN_WORDS`]).
    states_origin: Vec<bool>,
    /// Every word of every description (the properties the catalogue talks about).
    described_anywhere: HashSet<String>,
    /// Variant -> canonical word (shop.toml `[routing.synonyms]`), normalised.
    synonyms: HashMap<String, String>,
}

impl CatalogueIndex {
    /// Builds the tables; `category_names` maps a category id to the words customers use for
    /// it in any language (`[categories]` in catalogue.toml).
    /// A word of one product's names names it on its own ("gooseneck") unless it is a common
    /// word of the language (`common_word`: "morning" in "Morning Sencha") or a category word
    /// ("teapots" asks about teapots, not the Kiln Teapot).
    pub fn build(
        catalogue: &[Product],
        category_names: &HashMap<String, Vec<String>>,
        synonyms: HashMap<String, String>,
        common_word: &dyn Fn(&str) -> bool,
    ) -> Self {
        let mut index = CatalogueIndex {
            synonyms,
            ..CatalogueIndex::default()
        };
        let mut word_owners: HashMap<String, BTreeSet<usize>> = HashMap::new();
        for (at, product) in catalogue.iter().enumerate() {
            let mut names = Vec::new();
            let mut cjk = Vec::new();
            let mut name_words = HashSet::new();
            for name in product.all_names() {
                let normalised = normalise(name);
                if normalised.is_empty() {
                    continue;
                }
                if normalised.chars().any(is_cjk) {
                    cjk.push(normalised.replace(' ', ""));
                } else {
                    for word in normalised.split(' ') {
                        name_words.insert(stem(word));
                        word_owners.entry(word.to_string()).or_default().insert(at);
                    }
                    names.push(normalised);
                }
            }
            let mut category_words = HashSet::new();
            for category in &product.categories {
                category_words.insert(stem(&normalise(category)));
                for word in category_names.get(category).into_iter().flatten() {
                    let normalised = normalise(word);
                    if normalised.chars().any(is_cjk) {
                        cjk.push(normalised.replace(' ', ""));
                        category_words.insert(normalised.replace(' ', ""));
                    } else {
                        category_words.extend(normalised.split(' ').map(stem));
                    }
                }
            }
            let description_words: HashSet<String> = normalise(&product.description)
                .split(' ')
                .map(|word| index.canonical(&stem(word)))
                .collect();
            index.names.push(names);
            index.cjk_names.push(cjk);
            index.name_words.push(name_words);
            index.category_words.push(category_words);
            index
                .described_anywhere
                .extend(description_words.iter().cloned());
            index.description_words.push(description_words);
            index
                .states_origin
                .push(names_a_place(&product.description));
        }
        let category_word = |word: &str| {
            index
                .category_words
                .iter()
                .any(|words| words.contains(word) || words.contains(&stem(word)))
        };
        for (word, owners) in word_owners {
            if owners.len() == 1
                && word.len() >= 3
                && !GENERIC_NAME_WORDS.contains(&word.as_str())
                && !common_word(&word)
                && !category_word(&word)
            {
                index
                    .distinctive
                    .insert(word, *owners.iter().next().expect("one owner"));
            }
        }
        index
    }

    /// Products the text names, in order of first mention: a whole name or alias (any
    /// language), a distinctive word of one ("gooseneck"), or either misspelt by a letter or
    /// two ("kettel", "rooibus"). Category words ("Tee", "茶") only name products through
    /// [`CatalogueIndex::of_kind`].
    pub fn find(&self, text: &str) -> Vec<usize> {
        let normalised = normalise(text);
        let padded = format!(" {normalised} ");
        let words: Vec<&str> = normalised.split(' ').filter(|w| !w.is_empty()).collect();
        let compact = normalised.replace(' ', "");
        let mut found: Vec<(usize, usize)> = Vec::new();
        let mut note = |position: usize, product: usize| {
            if let Some(existing) = found.iter_mut().find(|(_, p)| *p == product) {
                existing.0 = existing.0.min(position);
            } else {
                found.push((position, product));
            }
        };
        for (product, names) in self.names.iter().enumerate() {
            for name in names {
                if let Some(at) = padded.find(&format!(" {name} ")) {
                    note(at, product);
                }
            }
            for name in &self.cjk_names[product] {
                if !self.category_words[product].contains(name) {
                    if let Some(at) = compact.find(name.as_str()) {
                        note(at, product);
                    }
                }
            }
        }
        let mut offset = 0;
        for word in &words {
            let position = padded[offset..]
                .find(&format!(" {word} "))
                .map(|at| at + offset)
                .unwrap_or(offset);
            offset = position;
            if let Some(&product) = self.distinctive.get(*word) {
                note(position, product);
                continue;
            }
            let plural = stem(word);
            if let Some(&product) = self.distinctive.get(&plural) {
                note(position, product);
                continue;
            }
            let budget = typo_budget(word);
            if budget == 0 {
                continue;
            }
            let mut best: Option<(usize, usize)> = None;
            for (candidate, &product) in &self.distinctive {
                let Some(distance) =
                    edit_distance_within(word, candidate, budget.min(typo_budget(candidate)))
                else {
                    continue;
                };
                if best.is_none_or(|(d, _)| distance < d) {
                    best = Some((distance, product));
                }
            }
            if let Some((_, product)) = best {
                note(position, product);
            }
        }
        found.sort();
        found.into_iter().map(|(_, product)| product).collect()
    }

    /// Products of the kind the question names: the products with the most category words
    /// ("teas", "Tee", "茶", "accessories") and specific words of their names ("teapot") in
    /// the question ("a present for a tea lover": the gift box, a gift and a tea). A kind named
    /// before a purpose ("for", "für", "pour", "para") is the one asked for: "teapots for green
    /// tea" are teapots, not teas. Words without spaces (Chinese, Japanese) match longest
    /// first, so "茶壶" (teapot) does not also count as "茶" (tea). `None` when the question
    /// names no kind.
    pub fn of_kind(&self, question: &str) -> Option<Vec<usize>> {
        let normalised = normalise(question);
        let padded = format!(" {normalised} ");
        let before_purpose = [" for ", " für ", " pour ", " para "]
            .iter()
            .filter_map(|purpose| padded.find(purpose))
            .min()
            .map(|at| &padded[..at]);
        if let Some(sought) = before_purpose {
            if let Some(found) = self.of_kind_in(sought) {
                return Some(found);
            }
        }
        self.of_kind_in(&normalised)
    }

    /// [`CatalogueIndex::of_kind`] on already normalised text, without the purpose rule.
    fn of_kind_in(&self, normalised: &str) -> Option<Vec<usize>> {
        let words: HashSet<String> = normalised.split(' ').map(stem).collect();
        let mut compact = normalised.replace(' ', "");
        let mut cjk_words: Vec<&String> = self
            .category_words
            .iter()
            .flatten()
            .filter(|word| word.chars().any(is_cjk))
            .collect();
        cjk_words.sort_by_key(|word| (std::cmp::Reverse(word.chars().count()), *word));
        cjk_words.dedup();
        let mut cjk_found = HashSet::new();
        for word in cjk_words {
            if compact.contains(word.as_str()) {
                compact = compact.replace(word.as_str(), " ");
                cjk_found.insert(word.clone());
            }
        }
        let hits = |p: usize| {
            let by_category = self.category_words[p]
                .iter()
                .filter(|w| words.contains(*w) || cjk_found.contains(*w))
                .count();
            let by_name = self.name_words[p]
                .iter()
                .filter(|w| words.contains(*w) && !GENERIC_NAME_WORDS.contains(&w.as_str()))
                .filter(|w| !self.category_words[p].contains(*w))
                .count();
            by_category + by_name
        };
        let best = (0..self.name_words.len()).map(hits).max().unwrap_or(0);
        (best > 0).then(|| {
            (0..self.name_words.len())
                .filter(|&p| hits(p) == best)
                .collect()
        })
    }

    /// A word's canonical synonym ("smoky" -> "smoked"), or the word.
    fn canonical(&self, word: &str) -> String {
        self.synonyms
            .get(word)
            .cloned()
            .unwrap_or_else(|| word.to_string())
    }

    /// The question's topic words ([`content_words`]) with synonyms made canonical.
    pub fn topic_words(&self, question: &str) -> Vec<String> {
        content_words(question)
            .into_iter()
            .map(|word| self.canonical(&word))
            .collect()
    }

    /// The question's topic words that say something about a product beyond naming it:
    /// words not in the product's names or category, nor words any description answers
    /// ([`DESCRIBING_WORDS`]). A question about where the product comes from ([`asks_origin`])
    /// is answered when its description names a place (and with it the origin words and any
    /// word no description uses: the customer's guess at the place); otherwise "origin" is
    /// one more property the description does not state.
    pub fn property_words(&self, question: &str, product: usize) -> Vec<String> {
        let words: Vec<String> = self
            .topic_words(question)
            .into_iter()
            .filter(|w| {
                !self.name_words[product].contains(w)
                    && !self.category_words[product].contains(w)
                    && !self.distinctive.contains_key(w.as_str())
                    && !DESCRIBING_WORDS.contains(&w.as_str())
            })
            .collect();
        if !asks_origin(question, &words) {
            return words;
        }
        if !self.states_origin[product] {
            return [words, vec!["origin".to_string()]].concat();
        }
        words
            .into_iter()
            .filter(|w| !ORIGIN_WORDS.contains(&w.as_str()) && self.described_anywhere.contains(w))
            .collect()
    }

    /// How many property words the question has for the named products
    /// ([`CatalogueIndex::property_words`]), and how many of them a named product's
    /// description states. A stated word qualified in the question by a word the description
    /// does not state is a different property and does not count ("microwave safe" is not
    /// "dishwasher safe").
    pub fn stated_properties(&self, question: &str, named: &[usize]) -> (usize, usize) {
        let tokens: Vec<String> = normalise(question)
            .split(' ')
            .map(|token| self.canonical(&stem(token)))
            .collect();
        let wanted: Vec<String> = named
            .iter()
            .flat_map(|&p| self.property_words(question, p))
            .collect();
        let states = |p: usize, word: &str| self.described_count(p, &[word.to_string()]) > 0;
        let stated = wanted
            .iter()
            .filter(|word| {
                let qualifier = tokens
                    .iter()
                    .position(|token| token == *word)
                    .and_then(|at| at.checked_sub(1))
                    .map(|at| &tokens[at])
                    .filter(|qualifier| wanted.contains(qualifier));
                named.iter().any(|&p| {
                    states(p, word) && qualifier.is_none_or(|qualifier| states(p, qualifier))
                })
            })
            .count();
        (wanted.len(), stated)
    }

    /// Whether the word names the product's kind: a word of its names or its category.
    pub fn is_kind_word(&self, product: usize, word: &str) -> bool {
        self.name_words[product].contains(word) || self.category_words[product].contains(word)
    }

    /// How many of `words` the product's description or names contain (exactly, or as the
    /// start of a description word: "caffeine" in "caffeine-free").
    pub fn described_count(&self, product: usize, words: &[String]) -> usize {
        words
            .iter()
            .filter(|word| {
                self.description_words[product]
                    .iter()
                    .chain(&self.name_words[product])
                    .any(|d| d == *word || (word.len() >= 5 && d.starts_with(word.as_str())))
            })
            .count()
    }
}

/// Whether the question asks where something comes from: an origin word among its topic
/// `words`, or "where" with "made" or "from" ("where is the kettle made?"), or "made in".
fn asks_origin(question: &str, words: &[String]) -> bool {
    if words.iter().any(|w| ORIGIN_WORDS.contains(&w.as_str())) {
        return true;
    }
    let normalised = format!(" {} ", normalise(question));
    let has = |word: &str| normalised.contains(&format!(" {word} "));
    normalised.contains(" made in ") || (has("where") && (has("made") || has("from")))
}

/// Whether a description names a place: a capitalised word other than a sentence's first
/// ("Bright, grassy Japanese green tea", "black tea from Fujian").
fn names_a_place(description: &str) -> bool {
    description.split(['.', '!', '?']).any(|sentence| {
        sentence
            .split_whitespace()
            .skip(1)
            .any(|word| word.chars().next().is_some_and(char::is_uppercase))
    })
}

/// What a catalogue answer says, before it is written out in a language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogueAnswer {
    /// The facts of these products (price, stock, description), in this order.
    Facts(Vec<usize>),
    /// Two or more products side by side.
    Compare(Vec<usize>),
    /// The cheapest (`true`) or most expensive (`false`) of the listed products, first.
    Extreme {
        /// `true` for the cheapest, `false` for the most expensive.
        cheapest: bool,
        /// Indexes into the catalogue, the extreme product first.
        products: Vec<usize>,
    },
    /// Products matching a filter (under a price, in stock, a property), cheapest first.
    List(Vec<usize>),
}

/// At most this many products of a list are written out; the rest are only counted.
const MAX_LISTED: usize = 4;

/// The cheapest (or most expensive) product is written out with this many in all.
const EXTREMES_SHOWN: usize = 3;

impl CatalogueAnswer {
    /// The name templates see in `kind`: "facts", "compare", "cheapest", "most_expensive"
    /// or "list".
    pub fn kind(&self) -> &'static str {
        match self {
            CatalogueAnswer::Facts(_) => "facts",
            CatalogueAnswer::Compare(_) => "compare",
            CatalogueAnswer::Extreme { cheapest: true, .. } => "cheapest",
            CatalogueAnswer::Extreme { .. } => "most_expensive",
            CatalogueAnswer::List(_) => "list",
        }
    }

    /// The products the answer writes out, in order (their facts are the answer's facts).
    pub fn shown(&self) -> &[usize] {
        match self {
            CatalogueAnswer::Facts(products) | CatalogueAnswer::Compare(products) => products,
            CatalogueAnswer::Extreme { products, .. } => {
                &products[..products.len().min(EXTREMES_SHOWN)]
            }
            CatalogueAnswer::List(products) => &products[..products.len().min(MAX_LISTED)],
        }
    }

    /// Matching products left out of a long list.
    pub fn not_shown(&self) -> usize {
        match self {
            CatalogueAnswer::List(products) => products.len() - self.shown().len(),
            _ => 0,
        }
    }
}

/// Answers a catalogue question from the cues, the products named and the products of the
/// kind asked about (`kind`, all products when `None`). `None` when it is not a catalogue
/// question this can answer.
pub fn answer(
    catalogue: &[Product],
    cues: &Cues,
    named: &[usize],
    kind: Option<&[usize]>,
) -> Option<CatalogueAnswer> {
    let pool: Vec<usize> = kind
        .map(<[usize]>::to_vec)
        .unwrap_or_else(|| (0..catalogue.len()).collect());
    let by_price = |mut products: Vec<usize>| {
        products.sort_by_key(|&p| (catalogue[p].price, p));
        products
    };
    if named.len() >= 2 && (cues.compare || !cues.asks_price && !cues.asks_stock) {
        return Some(CatalogueAnswer::Compare(named.to_vec()));
    }
    if named.is_empty() && (cues.cheapest || cues.most_expensive) {
        let mut pool = pool.clone();
        if cues.asks_stock {
            pool.retain(|&p| catalogue[p].stock > 0);
        }
        let mut sorted = by_price(pool);
        if cues.most_expensive {
            sorted.reverse();
        }
        return (!sorted.is_empty()).then_some(CatalogueAnswer::Extreme {
            cheapest: cues.cheapest,
            products: sorted,
        });
    }
    if named.is_empty() && (cues.max_price.is_some() || cues.min_price.is_some()) {
        let listed: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&p| {
                let cents = catalogue[p].price.cents;
                cues.max_price.is_none_or(|max| cents <= max)
                    && cues.min_price.is_none_or(|min| cents >= min)
                    && (!cues.asks_stock || catalogue[p].stock > 0)
            })
            .collect();
        return Some(CatalogueAnswer::List(by_price(listed)));
    }
    if named.is_empty() && (cues.asks_stock || cues.asks_price) {
        let listed = pool
            .iter()
            .copied()
            .filter(|&p| !cues.asks_stock || catalogue[p].stock > 0)
            .collect();
        return Some(CatalogueAnswer::List(by_price(listed)));
    }
    if !named.is_empty() {
        return Some(CatalogueAnswer::Facts(named.to_vec()));
    }
    None
}
