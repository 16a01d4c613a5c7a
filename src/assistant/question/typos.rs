//! English cue words misspelt by one letter ("cheapst", "pirce"), put back to the word
//! they stand for, so the cue lists need not spell out every typo.

/// English cue words a customer may misspell; each also stands for its misspellings at
/// one edit (a letter added, dropped, changed or two swapped).
const TYPO_TARGETS: &[&str] = &[
    "price",
    "prices",
    "pricing",
    "cheapest",
    "cheaper",
    "expensive",
    "priciest",
    "affordable",
    "available",
    "availability",
    "stock",
    "restock",
    "shipping",
    "delivery",
    "deliver",
    "recommend",
    "recommendation",
    "suggest",
    "difference",
    "compare",
    "comparison",
    "versus",
];

/// Real words one edit away from a target, which must keep their own meaning.
const NOT_TYPOS: &[&str] = &[
    "prime",
    "pride",
    "prince",
    "prize",
    "stuck",
    "stick",
    "stack",
    "stork",
    "shock",
    "smock",
    "stocky",
    "shopping",
    "slipping",
    "skipping",
    "whipping",
    "chipping",
    "cheater",
    "deliverer",
    "compere",
    "stocks",
];

/// Shorter words are too often another real word one edit away.
const MIN_TYPO_LENGTH: usize = 5;

/// Replaces each token that is one edit from a cue word in [`TYPO_TARGETS`] (and is not a
/// real word listed in [`NOT_TYPOS`]) by that cue word; other tokens are left as they are.
pub(super) fn correct_english_typos(tokens: &mut [String]) {
    for token in tokens.iter_mut() {
        if token.chars().count() < MIN_TYPO_LENGTH
            || TYPO_TARGETS.contains(&token.as_str())
            || NOT_TYPOS.contains(&token.as_str())
        {
            continue;
        }
        if let Some(target) = TYPO_TARGETS
            .iter()
            .find(|target| within_one_edit(token, target))
        {
            *token = (*target).to_string();
        }
    }
}

/// Whether `a` becomes `b` by at most one insertion, deletion, substitution or swap of
/// two neighbouring letters (optimal string alignment distance ≤ 1).
fn within_one_edit(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return one_edit(a.as_bytes(), b.as_bytes());
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    one_edit(&a, &b)
}

fn one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (rest_a, rest_b) = (&a[prefix..], &b[prefix..]);
    if rest_a.is_empty() && rest_b.is_empty() {
        return true;
    }
    rest_a.get(1..) == rest_b.get(1..)
        || rest_a == rest_b.get(1..).unwrap_or_default()
        || rest_a.get(1..).unwrap_or_default() == rest_b
        || (rest_a.len() >= 2
            && rest_a.len() == rest_b.len()
            && rest_a[0] == rest_b[1]
            && rest_a[1] == rest_b[0]
            && rest_a[2..] == rest_b[2..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit_distance() {
        assert!(within_one_edit("pirce", "price"));
        assert!(within_one_edit("cheapst", "cheapest"));
        assert!(within_one_edit("expnsive", "expensive"));
        assert!(within_one_edit("prise", "price"));
        assert!(within_one_edit("price", "price"));
        assert!(!within_one_edit("spice", "price"));
        assert!(within_one_edit("prcie", "price"));
        assert!(!within_one_edit("pricing", "price"));
    }
}
