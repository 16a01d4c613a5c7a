//! Drafted content for moderators to edit and post themselves: a product description from
//! the catalogue entry (draft_product.j2) or a community post on a topic (draft_post.j2).
//! Drafts pass through the output guard with the products they are about, so a price the
//! catalogue does not have is removed; mentions are broken. Nothing is stored.

use crate::assistant::knowledge::{Product, Route, RouteKind};
use crate::assistant::question::Lang;

/// Close product names listed at most in an "unknown product" error.
const MAX_SUGGESTIONS: usize = 3;

/// What to draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftRequest {
    /// A description of the catalogue product with this name, id or alias.
    Product {
        /// The product as the moderator named it.
        name: String,
        /// The moderator's notes for the draft (may be empty).
        notes: String,
    },
    /// A community post on this topic.
    Post {
        /// The topic, as the moderator wrote it.
        topic: String,
        /// The moderator's notes for the draft (may be empty).
        notes: String,
    },
}

/// What a draft is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftSubject {
    /// A description of the catalogue product with this name.
    Product(String),
    /// A community post on this topic (as the moderator wrote it).
    Post(String),
}

/// A guarded draft for a moderator to check, edit and post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// What it is about.
    pub subject: DraftSubject,
    /// The guarded model text; empty when the model wrote nothing usable.
    pub text: String,
}

/// Why a draft could not be made; the message is shown to the moderator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// No catalogue product has that name, id or alias.
    #[error("There is no product called \"{asked}\" in the catalogue.{}", suggestion(.close))]
    UnknownProduct {
        /// The name asked for.
        asked: String,
        /// Up to three product names to suggest, the closest first.
        close: Vec<String>,
    },
}

fn suggestion(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        format!(" Did you mean: {}?", close.join(", "))
    }
}

fn normalise(text: &str) -> String {
    text.trim().to_lowercase().replace(['-', '_'], " ")
}

/// Edit distance between two strings, by characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(current)
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// How far `asked` is from a product's name, id or aliases (0: one contains the other).
fn distance(product: &Product, asked: &str) -> usize {
    std::iter::once(&product.name)
        .chain(std::iter::once(&product.id))
        .chain(product.aliases.iter())
        .map(|name| {
            let name = normalise(name);
            if name.contains(asked) || asked.contains(&name) {
                0
            } else {
                levenshtein(&name, asked)
            }
        })
        .min()
        .unwrap_or(usize::MAX)
}

/// The catalogue product whose name, id or alias is `asked` (case, dashes and spaces
/// ignored); otherwise [`DraftError::UnknownProduct`] with up to three close names (by
/// edit distance, or containing each other), or the first product names when none is
/// close.
pub fn find_product<'a>(catalogue: &'a [Product], asked: &str) -> Result<&'a Product, DraftError> {
    let wanted = normalise(asked);
    let exact = catalogue.iter().find(|p| {
        normalise(&p.name) == wanted
            || normalise(&p.id) == wanted
            || p.aliases.iter().any(|a| normalise(a) == wanted)
    });
    if let Some(product) = exact {
        return Ok(product);
    }
    let mut ranked: Vec<(usize, &Product)> = catalogue
        .iter()
        .map(|p| (distance(p, &wanted), p))
        .filter(|(d, _)| *d <= (wanted.chars().count() / 2).max(2))
        .collect();
    ranked.sort_by_key(|(d, p)| (*d, p.name.clone()));
    let mut close: Vec<String> = ranked
        .into_iter()
        .map(|(_, p)| p.name.clone())
        .take(MAX_SUGGESTIONS)
        .collect();
    if close.is_empty() {
        close = catalogue
            .iter()
            .map(|p| p.name.clone())
            .take(MAX_SUGGESTIONS)
            .collect();
    }
    Err(DraftError::UnknownProduct {
        asked: asked.trim().to_string(),
        close,
    })
}

/// A route that allows exactly these products' facts (for the guard's price check).
pub(crate) fn route_with(products: Vec<Product>) -> Route {
    Route {
        products,
        confidence: 1.0,
        ..Route::empty(RouteKind::Grounded, Lang::En)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::PromptSet;

    fn catalogue() -> Vec<Product> {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let set = PromptSet::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        set.knowledge.catalogue.clone()
    }

    #[test]
    fn products_are_found_by_name_id_or_alias_in_any_case() {
        let catalogue = catalogue();
        assert_eq!(
            find_product(&catalogue, "speckled mug").unwrap().id,
            "mug-speckled"
        );
        assert_eq!(
            find_product(&catalogue, "mug-speckled").unwrap().name,
            "Speckled Mug"
        );
        assert_eq!(
            find_product(&catalogue, " Teapot ").unwrap().id,
            "teapot-kiln"
        );
    }

    #[test]
    fn an_unknown_product_lists_close_names() {
        let catalogue = catalogue();
        let error = find_product(&catalogue, "Speckled Mugg").unwrap_err();
        let DraftError::UnknownProduct { close, .. } = &error;
        assert_eq!(
            close.first().map(String::as_str),
            Some("Speckled Mug"),
            "{close:?}"
        );
        assert!(error
            .to_string()
            .contains("no product called \"Speckled Mugg\""));
        assert!(error.to_string().contains("Did you mean: Speckled Mug"));
        // Nothing close: still names some products, so the moderator sees the spelling.
        let DraftError::UnknownProduct { close, .. } =
            find_product(&catalogue, "tractor engine").unwrap_err();
        assert_eq!(close.len(), MAX_SUGGESTIONS);
    }

    #[test]
    fn the_guard_keeps_only_the_drafted_products_price() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let set = PromptSet::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mug = find_product(&set.knowledge.catalogue, "Speckled Mug")
            .unwrap()
            .clone();
        let price = format!("€{}", mug.price);
        let text = format!("Yours for {price}. Today only €5.00! Tell @everyone.");
        let guarded = set.guard_reply(&route_with(vec![mug]), &text, true);
        assert!(guarded.text.contains(&price), "{}", guarded.text);
        assert!(!guarded.text.contains("€5.00"), "{}", guarded.text);
        assert!(!guarded.text.contains("@everyone"), "{}", guarded.text);
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("mug", "mug"), 0);
    }
}
