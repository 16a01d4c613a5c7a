//! Reading a prompts folder: shop.toml, the knowledge files, the data-set phrasings,
//! guard.toml, the templates and places.toml, every problem located by file and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::knowledge_files::load_knowledge;
use super::places::{read_places, DEFAULT_PERSONA};
use super::problems::{Problem, ProblemKind, PromptError};
use super::templates::{build_environment, first_line_with_word, LOCALES, REQUIRED_TEMPLATES};
use super::PromptSet;
use crate::assistant::guard::{self, GuardRules};
use crate::assistant::knowledge::{
    DatasetPhrasing, GroundedAnswers, KnowledgeSources, RoutingSettings, ShopFact,
};
use crate::assistant::shop::Shop;
use crate::engine::TextEmbedder;

/// Options for loading a folder.
#[derive(Clone)]
pub struct LoadOptions {
    /// Attach data/*.csv phrasings to entries. Off = zero-shot: the entries' own text only.
    pub dataset_phrasings: bool,
    /// The sentence-embedding model for hybrid retrieval; every passage is embedded at load
    /// and reload. `None`: lexical retrieval only.
    pub embedder: Option<Arc<dyn TextEmbedder>>,
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("dataset_phrasings", &self.dataset_phrasings)
            .field("embedder", &self.embedder.is_some())
            .finish()
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dataset_phrasings: true,
            embedder: None,
        }
    }
}

impl PromptSet {
    /// Loads and validates a folder with the default options.
    pub fn load(dir: &Path) -> Result<PromptSet, PromptError> {
        Self::load_with(dir, LoadOptions::default())
    }

    /// Loads and validates a folder; every problem found is returned, each with its file
    /// and line. Templates are compiled and rendered once against sample contexts for both
    /// prompt formats (strict undefined), and their variables are checked statically.
    pub fn load_with(dir: &Path, options: LoadOptions) -> Result<PromptSet, PromptError> {
        let mut folder = FolderReader::new(dir);
        let shop_path = dir.join("shop.toml");
        let shop = folder
            .read(&shop_path)
            .and_then(|text| parse_shop(&shop_path, &text, &mut folder.problems));
        let parts = load_knowledge(&mut folder);
        let phrasings = load_phrasings(&mut folder, &options);
        let guard = load_guard(&mut folder);
        let template_dir = dir.join("templates");
        let template_sources = load_template_sources(&mut folder, &template_dir);
        let templates = build_environment(&template_dir, &template_sources, &mut folder.problems);
        let places = read_places(&mut folder, &parts.files, &|name| {
            template_sources.contains_key(name)
        });
        let FolderReader {
            hasher,
            mut problems,
            ..
        } = folder;

        let Some((shop, routing)) = shop else {
            return Err(PromptError::Invalid(problems));
        };
        if !problems.is_empty() {
            return Err(PromptError::Invalid(problems));
        }
        // Every place's knowledge is built like the general one, from its own files.
        let facts = shop_facts(&shop);
        let base = || KnowledgeSources {
            categories: parts.categories.clone(),
            shop_facts: facts.clone(),
            routing: routing.clone(),
            phrasings: phrasings.clone(),
            embedder: options.embedder.clone(),
            ..KnowledgeSources::default()
        };
        let knowledge = parts.knowledge_of(&|file| places.general_files.contains(file), base())?;
        let mut set = PromptSet {
            dir: dir.to_path_buf(),
            knowledge,
            shop,
            guard,
            version: hex(&hasher.finalize()),
            templates,
            template_sources,
            persona: DEFAULT_PERSONA.to_string(),
            rendered_persona: Default::default(),
            places: Vec::new(),
            link_domains: Vec::new(),
        };
        set.link_domains = guard::allowed_domains(&set.guard, &set.knowledge, &set.shop);
        if problems.is_empty() {
            set.check_templates(&template_dir, &mut problems);
        }
        if problems.is_empty() {
            set.build_places(&places, &parts, &base, &mut problems)?;
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(PromptError::Invalid(problems))
        }
    }
}

/// Reads the files of one folder: hashes each file read (path and content) into the
/// folder's version and collects every problem met.
pub(super) struct FolderReader<'a> {
    pub(super) dir: &'a Path,
    hasher: Sha256,
    pub(super) problems: Vec<Problem>,
}

impl<'a> FolderReader<'a> {
    fn new(dir: &'a Path) -> Self {
        Self {
            dir,
            hasher: Sha256::new(),
            problems: Vec::new(),
        }
    }

    /// The file's text (hashed into the version); `None` and a problem when unreadable.
    pub(super) fn read(&mut self, path: &Path) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let relative = relative(self.dir, path);
                self.hasher.update(relative.as_bytes());
                self.hasher.update([0]);
                self.hasher.update(text.as_bytes());
                self.hasher.update([0]);
                Some(text)
            }
            Err(error) => {
                self.problems.push(Problem {
                    file: path.to_path_buf(),
                    line: None,
                    kind: ProblemKind::Unreadable(error.to_string()),
                });
                None
            }
        }
    }

    /// Files in the subfolder `sub` ending in `.ext`, sorted by name; a missing folder is
    /// reported, except data/ (the CSV phrasings are optional).
    pub(super) fn files(&mut self, sub: &str, ext: &str) -> Vec<PathBuf> {
        let dir = self.dir.join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) => {
                if ext != "csv" {
                    self.problems.push(Problem {
                        file: dir,
                        line: None,
                        kind: ProblemKind::Unreadable(error.to_string()),
                    });
                }
                return Vec::new();
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == ext))
            .collect();
        files.sort();
        files
    }
}

/// The shop's own details as retrievable facts (who to contact, the website), written
/// without the shop's name: a name with a product word in it ("Kettle & Kiln") must not make
/// them the answer to questions about that product.
fn shop_facts(shop: &Shop) -> Vec<ShopFact> {
    let mut facts = vec![ShopFact {
        text: format!(
            "You can reach {} for anything the assistant cannot answer.",
            shop.human_contact
        ),
        link: shop.website.clone(),
    }];
    if let Some(website) = &shop.website {
        facts.push(ShopFact {
            text: format!("Our website is {website}."),
            link: Some(website.clone()),
        });
    }
    facts
}

/// The data/*.csv phrasings (read and hashed either way; attached only when the options
/// ask for them).
fn load_phrasings(folder: &mut FolderReader<'_>, options: &LoadOptions) -> Vec<DatasetPhrasing> {
    let mut phrasings = Vec::new();
    for path in folder.files("data", "csv") {
        let Some(text) = folder.read(&path) else {
            continue;
        };
        if options.dataset_phrasings {
            phrasings.extend(parse_phrasings(&path, &text, &mut folder.problems));
        }
    }
    phrasings
}

/// The rules of guard.toml; the defaults when the file does not exist.
fn load_guard(folder: &mut FolderReader<'_>) -> GuardRules {
    let path = folder.dir.join("guard.toml");
    if !path.exists() {
        return GuardRules::default();
    }
    let Some(text) = folder.read(&path) else {
        return GuardRules::default();
    };
    let problems = &mut folder.problems;
    let Some(rules) = parse_toml::<GuardRules>(&path, &text, problems) else {
        return GuardRules::default();
    };
    if rules.max_chars < guard::MIN_MAX_CHARS {
        problems.push(Problem {
            file: path.clone(),
            line: text
                .lines()
                .position(|l| l.trim_start().starts_with("max_chars"))
                .map(|index| index + 1),
            kind: ProblemKind::Invalid(format!(
                "max_chars = {} leaves no room for an answer; use at least {} (Discord allows 2,000 per message)",
                rules.max_chars,
                guard::MIN_MAX_CHARS
            )),
        });
    }
    rules
}

/// templates/*.j2 by file name; each of [`REQUIRED_TEMPLATES`] missing is a problem.
fn load_template_sources(
    folder: &mut FolderReader<'_>,
    template_dir: &Path,
) -> BTreeMap<String, String> {
    let mut sources = BTreeMap::new();
    for path in folder.files("templates", "j2") {
        if let Some(text) = folder.read(&path) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            sources.insert(name.to_string(), text);
        }
    }
    for lang in LOCALES {
        let sub = format!("templates/locale/{lang}");
        if !folder.dir.join(&sub).is_dir() {
            continue;
        }
        for path in folder.files(&sub, "j2") {
            if let Some(text) = folder.read(&path) {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                sources.insert(format!("locale/{lang}/{name}"), text);
            }
        }
    }
    for required in REQUIRED_TEMPLATES {
        if !sources.contains_key(required) {
            folder.problems.push(Problem {
                file: template_dir.join(required),
                line: None,
                kind: ProblemKind::MissingTemplate(required.to_string()),
            });
        }
    }
    sources
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

pub(super) fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match toml::from_str::<T>(text) {
        Ok(value) => Some(value),
        Err(error) => {
            problems.push(Problem {
                file: path.to_path_buf(),
                line: error.span().map(|span| line_of(text, span.start)),
                kind: ProblemKind::Toml(error.message().trim().to_string()),
            });
            None
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShop {
    name: String,
    website: Option<String>,
    currency: String,
    currency_symbol: Option<String>,
    human_contact: String,
    #[serde(default)]
    routing: RawRouting,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    grounded_confidence: Option<f32>,
    closest_topics: Option<usize>,
    #[serde(default)]
    shop_words: Vec<String>,
    /// canonical word -> variants
    #[serde(default)]
    synonyms: BTreeMap<String, Vec<String>>,
    grounded_answers: Option<GroundedAnswers>,
    passage_confidence: Option<f32>,
    #[serde(default)]
    escalate_words: Vec<String>,
}

fn parse_shop(
    path: &Path,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Option<(Shop, RoutingSettings)> {
    let raw: RawShop = parse_toml(path, text, problems)?;
    let defaults = RoutingSettings::default();
    let routing = RoutingSettings {
        grounded_confidence: raw
            .routing
            .grounded_confidence
            .unwrap_or(defaults.grounded_confidence),
        closest_topics: raw
            .routing
            .closest_topics
            .unwrap_or(defaults.closest_topics),
        shop_words: raw.routing.shop_words,
        synonyms: raw.routing.synonyms.into_iter().collect(),
        grounded_answers: raw
            .routing
            .grounded_answers
            .unwrap_or(defaults.grounded_answers),
        passage_confidence: raw
            .routing
            .passage_confidence
            .unwrap_or(defaults.passage_confidence),
        escalate_words: raw.routing.escalate_words,
    };
    for (name, value) in [
        ("grounded_confidence", routing.grounded_confidence),
        ("passage_confidence", routing.passage_confidence),
    ] {
        if !(0.0..=1.0).contains(&value) {
            problems.push(Problem {
                file: path.to_path_buf(),
                line: first_line_with_word(text, name),
                kind: ProblemKind::Invalid(format!("{name} must be between 0 and 1")),
            });
        }
    }
    let currency_symbol = raw.currency_symbol.unwrap_or_else(|| raw.currency.clone());
    Some((
        Shop {
            name: raw.name,
            website: raw.website,
            currency: raw.currency,
            currency_symbol,
            human_contact: raw.human_contact,
        },
        routing,
    ))
}

/// Reads `utterance,intent` rows (other columns ignored).
fn parse_phrasings(path: &Path, text: &str, problems: &mut Vec<Problem>) -> Vec<DatasetPhrasing> {
    match read_utterance_csv(text) {
        Ok(rows) => rows,
        Err((line, message)) => {
            problems.push(Problem {
                file: path.to_path_buf(),
                line,
                kind: ProblemKind::Csv(message),
            });
            Vec::new()
        }
    }
}

/// Parses a CSV with a header that has `utterance` and `intent` columns. On error returns
/// the 1-based line (when known) and a message.
pub fn read_utterance_csv(text: &str) -> Result<Vec<DatasetPhrasing>, (Option<usize>, String)> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| (Some(1), e.to_string()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| (Some(1), format!("the header has no `{name}` column")))
    };
    let utterance = column("utterance")?;
    let intent = column("intent")?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize);
            (line, e.to_string())
        })?;
        let line = record.position().map(|p| p.line() as usize);
        match (record.get(utterance), record.get(intent)) {
            (Some(u), Some(i)) if !i.trim().is_empty() => rows.push(DatasetPhrasing {
                utterance: u.to_string(),
                intent: i.trim().to_string(),
            }),
            _ => return Err((line, "row without an utterance and an intent".into())),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use crate::assistant::content::test_support::{append, broken_copy, demo};
    use crate::assistant::content::PromptSet;

    #[test]
    fn demo_folder_loads() {
        let set = demo();
        assert_eq!(set.knowledge.faq.len(), 32);
        assert_eq!(set.knowledge.catalogue.len(), 12);
        assert!(set.knowledge.dataset_phrasings_used > 1000);
        assert_eq!(set.version.len(), 64);
    }

    #[test]
    fn a_length_cap_too_small_for_an_answer_is_refused_at_its_line() {
        let (_temp, dir) = broken_copy(|dir| {
            let path = dir.join("guard.toml");
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace("max_chars = 1900", "max_chars = 20");
            assert!(text.contains("max_chars = 20"));
            std::fs::write(&path, text).unwrap();
        });
        let error = PromptSet::load(&dir).unwrap_err();
        let problem = &error.problems()[0];
        assert!(problem.file.ends_with("guard.toml"), "{error}");
        let guard = std::fs::read_to_string(dir.join("guard.toml")).unwrap();
        let line = guard
            .lines()
            .position(|l| l.starts_with("max_chars"))
            .unwrap();
        assert_eq!(problem.line, Some(line + 1), "{error}");
        assert!(error.to_string().contains("at least 100"), "{error}");
    }

    #[test]
    fn duplicate_ids_bad_prices_missing_templates_and_policies_are_reported() {
        let (_temp, dir) = broken_copy(|dir| {
            append(
                &dir.join("knowledge/catalogue.toml"),
                "\n[[product]]\nid = \"mug-speckled\"\nname = \"Again\"\nprice = \"1.00\"\nstock = 1\ndescription = \"x\"\n\n[[product]]\nid = \"new-one\"\nname = \"New\"\nprice = \"12,99 EUR\"\nstock = 1\ndescription = \"x\"\n",
            );
            append(
                &dir.join("knowledge/faq.toml"),
                "\n[[faq]]\nid = \"extra\"\nquestion = \"q\"\nanswer = \"a\"\npolicies = [\"no-such-policy\"]\n",
            );
            std::fs::remove_file(dir.join("templates/summary_reduce.j2")).unwrap();
        });
        let error = PromptSet::load(&dir).unwrap_err();
        let text = error.to_string();
        let catalogue_lines =
            std::fs::read_to_string(dir.join("knowledge/catalogue.toml")).unwrap();
        let duplicate_line = catalogue_lines
            .lines()
            .position(|l| l.contains("\"Again\""))
            .unwrap(); // 0-based line of name = id line + 1
        assert!(
            text.contains(&format!(
                "catalogue.toml:{duplicate_line}: duplicate id `mug-speckled`"
            )),
            "{text}"
        );
        assert!(text.contains("malformed price \"12,99 EUR\""), "{text}");
        assert!(text.contains("unknown policy `no-such-policy`"), "{text}");
        assert!(
            text.contains("required template summary_reduce.j2 is missing"),
            "{text}"
        );
    }
}
