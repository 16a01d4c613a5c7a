//! The knowledge files of a prompts folder (knowledge/*.toml): `[[faq]]`, `[[policy]]` and
//! `[[product]]` blocks and `[category_names]`, parsed with every problem located by file
//! and line; ids are unique per kind across files. Each entry keeps the file it came from,
//! so a place (places.toml) can answer from some files only.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::load::{line_of, parse_toml, FolderReader};
use super::problems::{Problem, ProblemKind, PromptError};
use crate::assistant::knowledge::{FaqEntry, Knowledge, KnowledgeSources, Policy, Price, Product};

/// The FAQ entries, policies, catalogue and category names of knowledge/*.toml.
pub(super) fn load_knowledge(folder: &mut FolderReader<'_>) -> KnowledgeParts {
    let mut builder = KnowledgeBuilder::default();
    for path in folder.files("knowledge", "toml") {
        if let Some(text) = folder.read(&path) {
            builder.add_file(&path, &text, &mut folder.problems);
        }
    }
    builder.finish(&mut folder.problems)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKnowledgeFile {
    #[serde(default)]
    faq: Vec<RawFaq>,
    #[serde(default)]
    policy: Vec<RawPolicy>,
    #[serde(default)]
    product: Vec<RawProduct>,
    /// Category id -> the words customers use for it, in any language.
    #[serde(default)]
    category_names: BTreeMap<String, Vec<String>>,
}

/// The FAQ entries, policies, catalogue and category names of a folder, each entry with
/// the knowledge file it came from.
pub(super) struct KnowledgeParts {
    pub faq: Vec<FaqEntry>,
    pub policies: Vec<Policy>,
    pub catalogue: Vec<Product>,
    /// Category id -> the words customers use for it, in any language.
    pub categories: HashMap<String, Vec<String>>,
    /// Every knowledge file read, by name ("faq.toml").
    pub files: Vec<String>,
    /// The file name of each FAQ entry, policy and product, in the same order.
    faq_files: Vec<String>,
    policy_files: Vec<String>,
    product_files: Vec<String>,
}

impl KnowledgeParts {
    /// The knowledge of the files `keep` accepts (by name): their FAQ entries, policies
    /// and products on top of `base` (the shop's facts, routing, phrasings, embedder).
    pub(super) fn knowledge_of(
        &self,
        keep: &dyn Fn(&str) -> bool,
        base: KnowledgeSources,
    ) -> Result<Knowledge, PromptError> {
        fn kept<T: Clone>(items: &[T], files: &[String], keep: &dyn Fn(&str) -> bool) -> Vec<T> {
            items
                .iter()
                .zip(files)
                .filter(|(_, file)| keep(file))
                .map(|(item, _)| item.clone())
                .collect()
        }
        Knowledge::build(KnowledgeSources {
            faq: kept(&self.faq, &self.faq_files, keep),
            policies: kept(&self.policies, &self.policy_files, keep),
            catalogue: kept(&self.catalogue, &self.product_files, keep),
            ..base
        })
        .map_err(|error| PromptError::Embedding(Arc::new(error)))
    }
}

/// The name of a knowledge file, as places.toml names it.
pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaq {
    id: toml::Spanned<String>,
    intent: Option<String>,
    question: String,
    answer: String,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    link: Option<String>,
    #[serde(default)]
    policies: Vec<toml::Spanned<String>>,
    #[serde(default)]
    handoff: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    id: toml::Spanned<String>,
    title: String,
    text: String,
    link: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    id: toml::Spanned<String>,
    name: String,
    price: toml::Spanned<toml::Value>,
    stock: u32,
    description: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    /// language code -> names customers use in that language
    #[serde(default)]
    translations: BTreeMap<String, Vec<String>>,
}

/// Ids seen so far per kind, with where they were defined.
#[derive(Default)]
struct IdRegistry {
    seen: HashMap<(&'static str, String), String>,
}

impl IdRegistry {
    /// Records an id; reports a problem (and returns false) when it is a duplicate or empty.
    fn register(
        &mut self,
        kind: &'static str,
        id: &str,
        path: &Path,
        line: usize,
        problems: &mut Vec<Problem>,
    ) -> bool {
        let location = format!("{}:{line}", path.display());
        if id.trim().is_empty() {
            problems.push(Problem {
                file: path.to_path_buf(),
                line: Some(line),
                kind: ProblemKind::Invalid(format!("{kind} id is empty")),
            });
            return false;
        }
        if let Some(first) = self.seen.get(&(kind, id.to_string())) {
            problems.push(Problem {
                file: path.to_path_buf(),
                line: Some(line),
                kind: ProblemKind::DuplicateId {
                    id: id.to_string(),
                    first: first.clone(),
                },
            });
            return false;
        }
        self.seen.insert((kind, id.to_string()), location);
        true
    }
}

/// Collects the entries of the knowledge files, one file at a time: ids are unique per kind
/// across all files, and the policies FAQ entries name are checked once every file is in.
#[derive(Default)]
struct KnowledgeBuilder {
    ids: IdRegistry,
    faq: Vec<FaqEntry>,
    policies: Vec<Policy>,
    catalogue: Vec<Product>,
    categories: HashMap<String, Vec<String>>,
    files: Vec<String>,
    faq_files: Vec<String>,
    policy_files: Vec<String>,
    product_files: Vec<String>,
    /// Where each FAQ entry names a policy: (file, line, policy id).
    policy_references: Vec<(PathBuf, usize, String)>,
}

impl KnowledgeBuilder {
    /// Adds the `[[faq]]`, `[[policy]]` and `[[product]]` blocks of one file; a block with
    /// a duplicate or empty id, or a malformed price, is reported and left out.
    fn add_file(&mut self, path: &Path, text: &str, problems: &mut Vec<Problem>) {
        self.files.push(file_name(path));
        let Some(file) = parse_toml::<RawKnowledgeFile>(path, text, problems) else {
            return;
        };
        for raw in file.faq {
            self.add_faq(path, text, raw, problems);
        }
        for raw in file.policy {
            let line = line_of(text, raw.id.span().start);
            if self
                .ids
                .register("policy", raw.id.get_ref(), path, line, problems)
            {
                self.policy_files.push(file_name(path));
                self.policies.push(Policy {
                    id: raw.id.into_inner(),
                    title: raw.title,
                    text: raw.text,
                    link: raw.link,
                });
            }
        }
        for raw in file.product {
            self.add_product(path, text, raw, problems);
        }
        self.categories.extend(file.category_names);
    }

    fn add_faq(&mut self, path: &Path, text: &str, raw: RawFaq, problems: &mut Vec<Problem>) {
        let line = line_of(text, raw.id.span().start);
        if !self
            .ids
            .register("faq", raw.id.get_ref(), path, line, problems)
        {
            return;
        }
        for reference in &raw.policies {
            self.policy_references.push((
                path.to_path_buf(),
                line_of(text, reference.span().start),
                reference.get_ref().clone(),
            ));
        }
        self.faq_files.push(file_name(path));
        self.faq.push(FaqEntry {
            id: raw.id.into_inner(),
            intent: raw.intent,
            question: raw.question,
            answer: raw.answer,
            examples: raw.examples,
            tags: raw.tags,
            link: raw.link,
            policies: raw.policies.into_iter().map(|p| p.into_inner()).collect(),
            handoff: raw.handoff,
        });
    }

    fn add_product(
        &mut self,
        path: &Path,
        text: &str,
        raw: RawProduct,
        problems: &mut Vec<Problem>,
    ) {
        let line = line_of(text, raw.id.span().start);
        if !self
            .ids
            .register("product", raw.id.get_ref(), path, line, problems)
        {
            return;
        }
        let price = match raw.price.get_ref() {
            toml::Value::String(s) => Price::parse_decimal(s.trim()),
            toml::Value::Integer(i) => u64::try_from(*i)
                .ok()
                .and_then(|i| i.checked_mul(100))
                .map(|cents| Price { cents }),
            _ => None,
        };
        let Some(price) = price else {
            problems.push(Problem {
                file: path.to_path_buf(),
                line: Some(line_of(text, raw.price.span().start)),
                kind: ProblemKind::BadPrice {
                    value: raw.price.get_ref().to_string(),
                },
            });
            return;
        };
        self.product_files.push(file_name(path));
        self.catalogue.push(Product {
            id: raw.id.into_inner(),
            name: raw.name,
            price,
            stock: raw.stock,
            description: raw.description,
            aliases: raw.aliases,
            categories: raw.categories,
            translations: raw.translations.into_iter().collect(),
        });
    }

    /// Reports every FAQ reference to a policy no file defines, and hands out the FAQ
    /// entries, policies and catalogue.
    fn finish(self, problems: &mut Vec<Problem>) -> KnowledgeParts {
        for (path, line, policy) in self.policy_references {
            if !self.policies.iter().any(|p| p.id == policy) {
                problems.push(Problem {
                    file: path,
                    line: Some(line),
                    kind: ProblemKind::UnknownPolicy(policy),
                });
            }
        }
        KnowledgeParts {
            faq: self.faq,
            policies: self.policies,
            catalogue: self.catalogue,
            categories: self.categories,
            files: self.files,
            faq_files: self.faq_files,
            policy_files: self.policy_files,
            product_files: self.product_files,
        }
    }
}
