//! The one way text is shortened to a single line for a list, a log or a quote.

/// `text` on one line: control characters (line breaks, tabs) become spaces, the ends are
/// trimmed, at most `max_chars` characters are kept (with `…` added when some were cut),
/// and backticks become `'` so the result cannot open or close a code span.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut short: String = line.trim().chars().take(max_chars).collect();
    if line.trim().chars().count() > max_chars {
        short.push('…');
    }
    short.replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_become_spaces_and_the_ends_are_trimmed() {
        assert_eq!(
            one_line("  where is\nmy\torder?  ", 50),
            "where is my order?"
        );
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_counting_characters() {
        assert_eq!(one_line("äöüäöü", 3), "äöü…");
        assert_eq!(one_line("abc", 3), "abc");
    }

    #[test]
    fn backticks_cannot_open_a_code_span() {
        assert_eq!(one_line("run `rm`", 20), "run 'rm'");
    }
}
