//! The prompt set in service: swapped atomically on reload, with a report of what changed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::load::LoadOptions;
use super::problems::PromptError;
use super::PromptSet;

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Items as "faq:id", "policy:id", "product:id", "template:name", "shop", "guard", "data".
    pub added: Vec<String>,
    /// Items no longer in the set, named as in `added`.
    pub removed: Vec<String>,
    /// Items in both sets whose content differs, named as in `added`.
    pub changed: Vec<String>,
    /// Full hex SHA-256 of the set replaced.
    pub previous_version: String,
    /// Full hex SHA-256 of the new set.
    pub version: String,
}

impl fmt::Display for ReloadReport {
    /// One short paragraph for the admin: counts, the changed items and the version.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: &[String]| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(", ")
            }
        };
        writeln!(
            f,
            "Prompts reloaded: version {} (was {}).",
            &self.version[..12.min(self.version.len())],
            &self.previous_version[..12.min(self.previous_version.len())]
        )?;
        writeln!(f, "Added ({}): {}", self.added.len(), list(&self.added))?;
        writeln!(
            f,
            "Removed ({}): {}",
            self.removed.len(),
            list(&self.removed)
        )?;
        write!(
            f,
            "Changed ({}): {}",
            self.changed.len(),
            list(&self.changed)
        )
    }
}

/// The prompt set in service, swapped atomically on reload. Readers take an
/// `Arc<PromptSet>` with [`Prompts::current`] and keep it for the whole request, so a
/// reload never changes prompts under a running request.
#[derive(Debug)]
pub struct Prompts {
    dir: PathBuf,
    options: LoadOptions,
    current: ArcSwap<PromptSet>,
    reload_lock: std::sync::Mutex<()>,
}

impl Prompts {
    /// Loads and validates the folder; fails when it has any problem.
    pub fn load(dir: &Path) -> Result<Prompts, PromptError> {
        Self::load_with(dir, LoadOptions::default())
    }

    /// [`Prompts::load`] with options (kept for reloads).
    pub fn load_with(dir: &Path, options: LoadOptions) -> Result<Prompts, PromptError> {
        let set = PromptSet::load_with(dir, options.clone())?;
        Ok(Prompts {
            dir: dir.to_path_buf(),
            options,
            current: ArcSwap::from_pointee(set),
            reload_lock: std::sync::Mutex::new(()),
        })
    }

    /// The set in service; hold the `Arc` for the duration of one request.
    pub fn current(&self) -> Arc<PromptSet> {
        self.current.load_full()
    }

    /// The folder this holder loads from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the folder again. On success the new set replaces the old one in one step and
    /// the report lists what changed; on any problem nothing changes and the error lists
    /// the problems. Concurrent reloads are serialised.
    pub fn reload(&self) -> Result<ReloadReport, PromptError> {
        let _guard = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let new = PromptSet::load_with(&self.dir, self.options.clone())?;
        let old = self.current();
        let before = old.inventory();
        let after = new.inventory();
        let report = ReloadReport {
            added: after
                .keys()
                .filter(|k| !before.contains_key(*k))
                .cloned()
                .collect(),
            removed: before
                .keys()
                .filter(|k| !after.contains_key(*k))
                .cloned()
                .collect(),
            changed: after
                .iter()
                .filter(|(k, v)| before.get(*k).is_some_and(|old| old != *v))
                .map(|(k, _)| k.clone())
                .collect(),
            previous_version: old.version.clone(),
            version: new.version.clone(),
        };
        self.current.store(Arc::new(new));
        Ok(report)
    }
}

impl PromptSet {
    /// Every knowledge item as "kind:id" -> comparable content, for reload reports.
    pub(super) fn inventory(&self) -> BTreeMap<String, String> {
        let mut items = BTreeMap::new();
        for entry in &self.knowledge.faq {
            items.insert(format!("faq:{}", entry.id), format!("{entry:?}"));
        }
        for policy in &self.knowledge.policies {
            items.insert(format!("policy:{}", policy.id), format!("{policy:?}"));
        }
        for product in &self.knowledge.catalogue {
            items.insert(format!("product:{}", product.id), format!("{product:?}"));
        }
        for (name, source) in &self.template_sources {
            items.insert(format!("template:{name}"), source.clone());
        }
        items.insert(
            "shop".into(),
            format!("{:?}", (&self.shop, &self.knowledge.routing)),
        );
        items.insert("guard".into(), format!("{:?}", self.guard));
        items.insert(
            "data".into(),
            self.knowledge.dataset_phrasings_used.to_string(),
        );
        for place in &self.places {
            let set = &place.set;
            items.insert(
                format!("place:{}", place.id),
                format!("{:?}", (&place.keys, &place.files, &set.persona)),
            );
            // Entries answered only in a place are part of the folder too.
            for (key, value) in set.inventory() {
                if key.starts_with("faq:")
                    || key.starts_with("policy:")
                    || key.starts_with("product:")
                {
                    items.entry(key).or_insert(value);
                }
            }
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::{append, broken_copy};

    #[test]
    fn prompts_can_be_shared_across_tasks() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Prompts>();
        assert_send_sync::<Arc<PromptSet>>();
    }

    #[test]
    fn reload_swaps_valid_sets_and_keeps_the_old_one_on_error() {
        let (_temp, dir) = broken_copy(|_| {});
        let prompts = Prompts::load(&dir).unwrap();
        let running = prompts.current();
        append(
            &dir.join("knowledge/faq.toml"),
            "\n[[faq]]\nid = \"gift-wrap\"\nquestion = \"Do you gift wrap?\"\nanswer = \"Yes, for 2 EUR.\"\n",
        );
        let catalogue = dir.join("knowledge/catalogue.toml");
        let text = std::fs::read_to_string(&catalogue).unwrap();
        std::fs::write(
            &catalogue,
            text.replace("price = \"8.90\"", "price = \"9.20\""),
        )
        .unwrap();
        let report = prompts.reload().unwrap();
        assert_eq!(report.added, vec!["faq:gift-wrap".to_string()]);
        assert_eq!(report.changed, vec!["product:sencha-morning".to_string()]);
        assert!(report.removed.is_empty());
        assert_ne!(report.version, report.previous_version);
        assert!(report.to_string().contains("Added (1): faq:gift-wrap"));
        // The request that started before the reload still sees the old set.
        assert!(running.knowledge.entry("gift-wrap").is_none());
        assert!(prompts.current().knowledge.entry("gift-wrap").is_some());

        let version = prompts.current().version.clone();
        std::fs::write(dir.join("templates/answer.j2"), "{% for %}").unwrap();
        let error = prompts.reload().unwrap_err();
        assert!(error.to_string().contains("answer.j2:1"), "{error}");
        assert_eq!(prompts.current().version, version);
    }
}
