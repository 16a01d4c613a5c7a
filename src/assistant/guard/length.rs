//! Length and citations: grounded answers cite their sources, and the whole reply stays
//! within the length cap.

use super::{Finding, Rule};
use crate::assistant::knowledge::{Route, RouteKind, SourceKind};
use crate::assistant::question::Lang;

/// The smallest `max_chars` guard.toml may set.
pub const MIN_MAX_CHARS: usize = 100;

/// Cuts text longer than `max_chars` characters at the last space before the limit and
/// ends it with "…".
pub fn cap_length(text: &str, max_chars: usize, findings: &mut Vec<Finding>) -> String {
    let length = text.chars().count();
    if length <= max_chars {
        return text.to_string();
    }
    findings.push(Finding {
        rule: Rule::Length,
        detail: format!("{length} characters cut to {max_chars}"),
    });
    let keep: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    let cut = match keep.rfind(char::is_whitespace) {
        Some(at) if at > keep.len() / 2 => &keep[..at],
        _ => &keep,
    };
    format!("{}…", cut.trim_end())
}

/// The longest run of whole leading lines of `text` within `max_chars` characters; empty
/// when not even the first non-empty line fits.
pub(super) fn fit_lines(text: &str, max_chars: usize) -> String {
    let mut kept = String::new();
    let mut has_content = false;
    for line in text.split_inclusive('\n') {
        if kept.chars().count() + line.trim_end_matches('\n').chars().count() > max_chars {
            break;
        }
        kept.push_str(line);
        has_content |= !line.trim().is_empty();
    }
    if has_content {
        kept.trim_end_matches('\n').to_string()
    } else {
        String::new()
    }
}

/// "\n\nSource: title (link)" lines for a grounded route's entries, the label (and the
/// catalogue's title) in the route's language; empty for other routes.
pub fn citations(route: &Route) -> String {
    if route.kind != RouteKind::Grounded || route.sources.is_empty() {
        return String::new();
    }
    let (label, catalogue) = citation_words(route.lang);
    let mut out = String::from("\n");
    for source in &route.sources {
        let title = if source.kind == SourceKind::Product && source.id == "catalogue" {
            catalogue
        } else {
            source.title.as_str()
        };
        match &source.link {
            Some(link) => out.push_str(&format!("\n{label} {title} ({link})")),
            None => out.push_str(&format!("\n{label} {title}")),
        }
    }
    out
}

/// The citation label and the catalogue's name in a language.
fn citation_words(lang: Lang) -> (&'static str, &'static str) {
    match lang {
        Lang::De => ("Quelle:", "Katalog"),
        Lang::Fr => ("Source :", "Catalogue"),
        Lang::Es => ("Fuente:", "Catálogo"),
        Lang::Zh => ("来源：", "商品目录"),
        Lang::Ja => ("出典：", "商品カタログ"),
        Lang::En | Lang::Other => ("Source:", "Catalogue"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::demo;
    use crate::assistant::guard::*;

    #[test]
    fn length_is_capped_with_citations_inside_the_limit() {
        let set = demo();
        let route = set.knowledge.route("where is my parcel??");
        let long = "word ".repeat(1000);
        let guarded = set.guard_reply(&route, &long, true);
        assert!(guarded.text.chars().count() <= set.guard.max_chars);
        assert!(guarded.text.contains("Source:"));
        assert!(guarded.findings.iter().any(|f| f.rule == Rule::Length));
    }

    #[test]
    fn citations_longer_than_half_the_cap_keep_only_whole_lines_that_fit() {
        let mut set = demo();
        let mut route = set.knowledge.route("where is my parcel??");
        let source = route.sources[0].clone();
        route.sources.extend([source.clone(), source]);
        let all = citations(&route);
        assert!(all.matches("Source:").count() >= 2, "{all}");
        let first_line = all.trim_start().lines().next().unwrap().chars().count();
        for max_chars in [
            MIN_MAX_CHARS,
            2 * (first_line + 2),
            2 * (first_line + 2) + 1,
        ] {
            set.guard.max_chars = max_chars;
            let guarded = set.guard_reply(&route, &"word ".repeat(100), true);
            assert!(
                guarded.text.chars().count() <= max_chars,
                "{max_chars}: {}",
                guarded.text
            );
            let sources = guarded.text.matches("Source:").count();
            let expected = usize::from(max_chars / 2 >= first_line + 2);
            assert!(sources >= expected && sources < all.matches("Source:").count());
            assert!(
                guarded.text.starts_with("word"),
                "the answer keeps its room"
            );
        }
        assert_eq!(fit_lines("\n\nSource: a\nSource: b", 5), "");
        assert_eq!(fit_lines("\n\nSource: a\nSource: b", 11), "\n\nSource: a");
        assert_eq!(
            fit_lines("\n\nSource: a\nSource: b", 21),
            "\n\nSource: a\nSource: b"
        );
    }

    #[test]
    fn citations_speak_the_answers_language() {
        let set = demo();
        let german = set.knowledge.route("Was kostet der Kyusu?");
        assert_eq!(citations(&german).trim(), "Quelle: Katalog");
        let english = set.knowledge.route("how much is the kyusu?");
        assert_eq!(citations(&english).trim(), "Source: Catalogue");
    }
}
