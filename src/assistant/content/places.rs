//! Places: channels (or their categories) with their own persona template and a part of
//! the knowledge, configured in `places.toml` (optional):
//!
//! ```toml
//! [[place]]
//! id = "wholesale"
//! keys = ["category:123456789012345678"]   # the adapter's place keys (opaque here)
//! persona = "persona_wholesale.j2"         # in templates/; default persona.j2
//! knowledge = ["policies.toml"]            # knowledge files answered from here; default all
//! only_here = ["wholesale.toml"]           # files answered from here and nowhere else
//! ```
//!
//! The core never learns what a key means: an adapter names where a question was asked with
//! keys, most specific first (on Discord `channel:<id>`, then the parent channel of a thread,
//! then `category:<id>`), and [`PromptSet::for_place`] picks the first place with one of
//! them. Each place is a [`PromptSet`] of its own (same shop, templates and guard; its own
//! persona and knowledge), so an answer is routed, quoted, rendered and guarded within the
//! place. Everything is validated at load (like the rest of the folder) and swapped on reload.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::context;
use serde::Deserialize;

use super::knowledge_files::KnowledgeParts;
use super::load::{line_of, parse_toml, FolderReader};
use super::problems::{Problem, ProblemKind, PromptError};
use super::PromptSet;
use crate::assistant::guard;
use crate::assistant::knowledge::KnowledgeSources;

/// The persona template of every place that names none.
pub const DEFAULT_PERSONA: &str = "persona.j2";

/// A place with its own persona and knowledge.
#[derive(Debug)]
pub struct Place {
    /// The place's id in places.toml.
    pub id: String,
    /// The adapter's place keys it covers.
    pub keys: Vec<String>,
    /// The knowledge files it answers from, by name.
    pub files: Vec<String>,
    /// Its prompt set: its own persona template and knowledge.
    pub set: Arc<PromptSet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaces {
    #[serde(default)]
    place: Vec<RawPlace>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlace {
    id: toml::Spanned<String>,
    keys: toml::Spanned<Vec<String>>,
    persona: Option<toml::Spanned<String>>,
    knowledge: Option<toml::Spanned<Vec<String>>>,
    #[serde(default)]
    only_here: Option<toml::Spanned<Vec<String>>>,
}

/// A place as read from places.toml, its files resolved.
#[derive(Debug, Clone)]
pub(super) struct PlaceSpec {
    id: String,
    keys: Vec<String>,
    persona: String,
    /// Where `persona` is named, for problems.
    persona_line: Option<usize>,
    files: Vec<String>,
}

/// What places.toml says: the places, and the knowledge files answered everywhere else.
#[derive(Debug, Clone, Default)]
pub(super) struct PlacesConfig {
    pub places: Vec<PlaceSpec>,
    /// Files answered outside every place: all but the places' `only_here` files.
    pub general_files: BTreeSet<String>,
    path: PathBuf,
}

/// Reads `places.toml` when it exists: every key, file and persona template is checked
/// against the folder (`files`: the knowledge files read, `templates`: the template names).
pub(super) fn read_places(
    folder: &mut FolderReader<'_>,
    files: &[String],
    templates: &dyn Fn(&str) -> bool,
) -> PlacesConfig {
    let path = folder.dir.join("places.toml");
    let all: BTreeSet<String> = files.iter().cloned().collect();
    let mut config = PlacesConfig {
        places: Vec::new(),
        general_files: all.clone(),
        path: path.clone(),
    };
    if !path.exists() {
        return config;
    }
    let Some(text) = folder.read(&path) else {
        return config;
    };
    let problems = &mut folder.problems;
    let Some(raw) = parse_toml::<RawPlaces>(&path, &text, problems) else {
        return config;
    };
    let mut problem = |line: usize, message: String| {
        problems.push(Problem {
            file: path.clone(),
            line: Some(line),
            kind: ProblemKind::Invalid(message),
        })
    };
    let mut ids = HashMap::new();
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut owners: HashMap<String, String> = HashMap::new();
    for place in &raw.place {
        let id = place.id.get_ref().trim().to_string();
        let line = line_of(&text, place.id.span().start);
        if id.is_empty() {
            problem(line, "place id is empty".into());
        } else if ids.insert(id.clone(), line).is_some() {
            problem(line, format!("duplicate place id `{id}`"));
        }
        let keys_line = line_of(&text, place.keys.span().start);
        if place.keys.get_ref().is_empty() {
            problem(keys_line, format!("place `{id}` has no keys"));
        }
        for key in place.keys.get_ref() {
            if key.trim().is_empty() {
                problem(keys_line, format!("place `{id}` has an empty key"));
            } else if let Some(other) = keys.insert(key.clone(), id.clone()) {
                problem(
                    keys_line,
                    format!("key `{key}` is in places `{other}` and `{id}`"),
                );
            }
        }
        let named = [&place.knowledge, &place.only_here];
        for list in named.into_iter().flatten() {
            let list_line = line_of(&text, list.span().start);
            for file in list.get_ref() {
                if !all.contains(file) {
                    problem(
                        list_line,
                        format!("no knowledge file `{file}` (in knowledge/)"),
                    );
                }
            }
        }
        for file in place.only_here.iter().flat_map(|list| list.get_ref()) {
            if let Some(other) = owners.insert(file.clone(), id.clone()) {
                if other != id {
                    let line = line_of(&text, place.id.span().start);
                    problem(
                        line,
                        format!("`{file}` is only_here in places `{other}` and `{id}`"),
                    );
                }
            }
        }
        if let Some(persona) = &place.persona {
            if !templates(persona.get_ref()) {
                let line = line_of(&text, persona.span().start);
                problem(
                    line,
                    format!("no template `{}` in templates/", persona.get_ref()),
                );
            }
        }
    }
    config.general_files = all
        .iter()
        .filter(|file| !owners.contains_key(*file))
        .cloned()
        .collect();
    for place in raw.place {
        let own: Vec<String> = place
            .only_here
            .map(|list| list.into_inner())
            .unwrap_or_default();
        let mut files: BTreeSet<String> = match place.knowledge {
            Some(list) => list.into_inner().into_iter().collect(),
            None => config.general_files.clone(),
        };
        files.extend(own);
        let persona_line = place
            .persona
            .as_ref()
            .map(|persona| line_of(&text, persona.span().start));
        config.places.push(PlaceSpec {
            id: place.id.into_inner().trim().to_string(),
            keys: place.keys.into_inner(),
            persona: place
                .persona
                .map(|persona| persona.into_inner())
                .unwrap_or_else(|| DEFAULT_PERSONA.to_string()),
            persona_line,
            files: files.into_iter().collect(),
        });
    }
    config
}

impl PromptSet {
    /// The prompt set for a question asked at `keys` (most specific first): the set of the
    /// first place one of them belongs to, else this one.
    pub fn for_place(self: &Arc<Self>, keys: &[String]) -> Arc<PromptSet> {
        keys.iter()
            .find_map(|key| self.places.iter().find(|place| place.keys.contains(key)))
            .map(|place| place.set.clone())
            .unwrap_or_else(|| self.clone())
    }

    /// The places of this folder (empty without places.toml).
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// Builds each place's set from this (the general) one: its persona and its files'
    /// knowledge (`base`: how the general knowledge was built, its entries replaced per
    /// place); checks each persona template like persona.j2. Problems are collected.
    pub(super) fn build_places(
        &mut self,
        config: &PlacesConfig,
        parts: &KnowledgeParts,
        base: &dyn Fn() -> KnowledgeSources,
        problems: &mut Vec<Problem>,
    ) -> Result<(), PromptError> {
        for spec in &config.places {
            self.check_persona(spec, &config.path, problems);
            let knowledge =
                parts.knowledge_of(&|file| spec.files.iter().any(|f| f == file), base())?;
            let link_domains = guard::allowed_domains(&self.guard, &knowledge, &self.shop);
            let set = PromptSet {
                link_domains,
                dir: self.dir.clone(),
                shop: self.shop.clone(),
                knowledge,
                guard: self.guard.clone(),
                version: self.version.clone(),
                templates: self.templates.clone(),
                template_sources: self.template_sources.clone(),
                persona: spec.persona.clone(),
                rendered_persona: Default::default(),
                places: Vec::new(),
            };
            self.places.push(Place {
                id: spec.id.clone(),
                keys: spec.keys.clone(),
                files: spec.files.clone(),
                set: Arc::new(set),
            });
        }
        Ok(())
    }

    /// A place's persona template uses only `shop` and renders.
    fn check_persona(&self, spec: &PlaceSpec, places: &Path, problems: &mut Vec<Problem>) {
        let name = &spec.persona;
        let Ok(template) = self.templates.get_template(name) else {
            return; // reported when places.toml was read
        };
        let unknown: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|variable| variable != "shop")
            .collect();
        let file = self.dir.join("templates").join(name);
        if let Some(variable) = unknown.into_iter().min() {
            problems.push(Problem {
                file,
                line: None,
                kind: ProblemKind::UnknownVariable {
                    variable,
                    allowed: "shop".into(),
                },
            });
            return;
        }
        if let Err(error) = template.render(context! { shop => &self.shop }) {
            problems.push(Problem {
                file: places.to_path_buf(),
                line: spec.persona_line,
                kind: ProblemKind::Template(format!("{name}: {error}")),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::{append, broken_copy};
    use crate::assistant::knowledge::RouteKind;
    use crate::engine::PromptFormat;

    const WHOLESALE_FAQ: &str = "\n[[faq]]\nid = \"wholesale-minimum\"\nquestion = \"What is the minimum wholesale order?\"\nanswer = \"Wholesale orders start at 24 units per product.\"\nexamples = [\"minimum order for resellers\", \"how many units must a shop buy\"]\n";

    fn wholesale_folder(places: &str) -> (tempfile::TempDir, PathBuf) {
        let places = places.to_string();
        broken_copy(move |dir| {
            std::fs::write(dir.join("knowledge/wholesale.toml"), WHOLESALE_FAQ).unwrap();
            std::fs::write(
                dir.join("templates/persona_wholesale.j2"),
                "You are the trade desk of {{ shop.name }}; answer resellers briefly.",
            )
            .unwrap();
            std::fs::write(dir.join("places.toml"), places).unwrap();
        })
    }

    const PLACES: &str = "[[place]]\nid = \"wholesale\"\nkeys = [\"channel:7\", \"category:9\"]\npersona = \"persona_wholesale.j2\"\nknowledge = [\"policies.toml\"]\nonly_here = [\"wholesale.toml\"]\n";

    const QUESTION: &str = "what is the minimum order for a reseller?";

    #[test]
    fn a_place_has_its_own_persona_and_knowledge_and_others_do_not_see_it() {
        let (_temp, dir) = wholesale_folder(PLACES);
        let set = Arc::new(PromptSet::load(&dir).unwrap_or_else(|e| panic!("{e}")));
        let wholesale = set.for_place(&["channel:1".into(), "category:9".into()]);
        assert_eq!(set.places().len(), 1);
        let route = wholesale.knowledge.route(QUESTION);
        assert_eq!(route.kind, RouteKind::Grounded, "{route:?}");
        assert_eq!(route.hits[0].entry_id, "wholesale-minimum");
        assert!(
            wholesale.knowledge.catalogue.is_empty(),
            "the catalogue is not in scope"
        );
        assert!(wholesale.knowledge.entry("order-track").is_none());
        let prompt = wholesale
            .render_answer(PromptFormat::Chatml, QUESTION, &route, &[])
            .unwrap();
        assert!(prompt.contains("trade desk of Kettle & Kiln"), "{prompt}");
        // Everywhere else: the whole shop, without the wholesale file, and the persona.
        let general = set.for_place(&["channel:1".into()]);
        assert!(Arc::ptr_eq(&general, &set));
        assert!(general.knowledge.entry("wholesale-minimum").is_none());
        assert!(!general.knowledge.catalogue.is_empty());
        let route = general.knowledge.route(QUESTION);
        let prompt = general
            .render_answer(PromptFormat::Chatml, QUESTION, &route, &[])
            .unwrap();
        assert!(!prompt.contains("trade desk"), "{prompt}");
        // The most specific key wins.
        let (_temp2, dir2) = wholesale_folder(&format!(
            "{PLACES}\n[[place]]\nid = \"retail\"\nkeys = [\"channel:8\"]\n"
        ));
        let set = Arc::new(PromptSet::load(&dir2).unwrap());
        let picked = set.for_place(&["channel:8".into(), "category:9".into()]);
        assert!(picked.knowledge.entry("order-track").is_some());
        assert!(picked.knowledge.entry("wholesale-minimum").is_none());
    }

    #[test]
    fn places_are_validated_with_file_and_line() {
        let (_temp, dir) = wholesale_folder(
            "[[place]]\nid = \"a\"\nkeys = [\"channel:7\"]\npersona = \"nope.j2\"\nknowledge = [\"missing.toml\"]\n\n[[place]]\nid = \"a\"\nkeys = [\"channel:7\"]\n",
        );
        let error = PromptSet::load(&dir).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("places.toml:4: no template `nope.j2`"),
            "{text}"
        );
        assert!(
            text.contains("places.toml:5: no knowledge file `missing.toml`"),
            "{text}"
        );
        assert!(
            text.contains("places.toml:8: duplicate place id `a`"),
            "{text}"
        );
        assert!(
            text.contains("key `channel:7` is in places `a` and `a`"),
            "{text}"
        );
        let (_temp, dir) = wholesale_folder(PLACES);
        std::fs::write(
            dir.join("templates/persona_wholesale.j2"),
            "You work for {{ shop.name }} on {{ weekday }}.",
        )
        .unwrap();
        let text = PromptSet::load(&dir).unwrap_err().to_string();
        assert!(text.contains("unknown variable `weekday`"), "{text}");
    }

    #[test]
    fn places_are_reloaded_live() {
        let (_temp, dir) = wholesale_folder("");
        let prompts = crate::assistant::content::Prompts::load(&dir).unwrap();
        let keys = ["channel:7".to_string()];
        assert!(prompts
            .current()
            .for_place(&keys)
            .knowledge
            .entry("wholesale-minimum")
            .is_some());
        std::fs::write(dir.join("places.toml"), PLACES).unwrap();
        let report = prompts.reload().unwrap();
        assert!(
            report.added.contains(&"place:wholesale".to_string()),
            "{report}"
        );
        let current = prompts.current();
        assert!(current
            .for_place(&keys)
            .knowledge
            .entry("order-track")
            .is_none());
        assert!(current.knowledge.entry("wholesale-minimum").is_none());
        append(&dir.join("places.toml"), "broken = ");
        assert!(prompts.reload().is_err());
        assert_eq!(prompts.current().places().len(), 1, "the old set stays");
    }
}
