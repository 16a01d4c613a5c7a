//! Splitting a long answer into Discord messages (at most 2,000 characters each).
//!
//! Contract of [`split_message`]:
//! - every part has at most `limit` characters (Unicode scalar values, as Discord counts);
//! - a cut never falls inside a multi-byte character, and never inside a word unless one
//!   word alone is longer than a part can hold;
//! - cuts prefer, in this order: a paragraph break, a line break, the end of a sentence, a
//!   space;
//! - a code block (```` ``` ````) that spans a cut is closed at the end of the part and
//!   reopened (with its language tag) at the start of the next, so every part renders;
//! - the parts, in order, with those added fences removed, concatenate to the input.

/// Discord's limit on a message's content, in characters.
pub const DISCORD_LIMIT: usize = 2000;

const FENCE: &str = "```";
/// Room kept at the end of a part for a closing fence: `"\n```"`.
const CLOSE_RESERVE: usize = 4;
/// Longest language tag carried over to a reopened fence.
const MAX_LANG: usize = 24;

/// One part of a split: a slice of the input, plus the fences added around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The opening fence line (e.g. "```rust") added before `body`, when the part starts
    /// inside a code block.
    pub reopen: Option<String>,
    /// The slice of the input this part carries.
    pub body: &'a str,
    /// Whether a closing fence is added after `body` (the part ends inside a code block).
    pub close: bool,
}

impl Segment<'_> {
    /// The message text for this part.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 40);
        if let Some(open) = &self.reopen {
            out.push_str(open);
            out.push('\n');
        }
        out.push_str(self.body);
        if self.close {
            if !self.body.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(FENCE);
        }
        out
    }
}

/// Splits `text` into message texts of at most `limit` characters (see the module docs).
/// `limit` must leave room for fences; values below 64 are raised to 64.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    segments(text, limit).iter().map(Segment::render).collect()
}

/// The segments behind [`split_message`]. An empty input gives no segments.
pub fn segments(text: &str, limit: usize) -> Vec<Segment<'_>> {
    let limit = limit.max(64);
    let mut out = Vec::new();
    let mut rest = text;
    // The opening fence line of a code block that continues into the next part.
    let mut open: Option<String> = None;
    while !rest.is_empty() {
        let prefix_chars = open.as_ref().map_or(0, |o| o.chars().count() + 1);
        if prefix_chars + rest.chars().count() <= limit {
            out.push(Segment {
                reopen: open.take(),
                body: rest,
                close: false,
            });
            break;
        }
        let budget = limit - prefix_chars - CLOSE_RESERVE;
        let window_end = byte_index_of_char(rest, budget);
        let cut = best_cut(rest, window_end);
        let (body, tail) = rest.split_at(cut);
        let after = fence_state(open.clone(), body);
        out.push(Segment {
            reopen: open.take(),
            body,
            close: after.is_some(),
        });
        open = after;
        rest = tail;
    }
    out
}

/// Byte index just after the first `n` chars of `s` (or `s.len()`).
fn byte_index_of_char(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

/// Where to cut `text`, at most at byte `window_end` (a char boundary), at least 1 char in.
fn best_cut(text: &str, window_end: usize) -> usize {
    let window = &text[..window_end];
    let half = window_end / 2;
    let candidates: [fn(&str) -> Option<usize>; 4] = [
        |w| w.rfind("\n\n").map(|i| i + 2),
        |w| w.rfind('\n').map(|i| i + 1),
        last_sentence_end,
        |w| {
            w.char_indices()
                .rev()
                .find(|(_, c)| c.is_whitespace())
                .map(|(i, c)| i + c.len_utf8())
        },
    ];
    // The best kind of boundary in the second half of the window, so parts stay long…
    for find in candidates {
        if let Some(cut) = find(window).filter(|&c| c >= half && c > 0) {
            return cut;
        }
    }
    // …else any whitespace at all (a short part beats a broken word)…
    if let Some(cut) = candidates[3](window).filter(|&c| c > 0) {
        return cut;
    }
    // …else one word is longer than a part: cut it, but not inside a run of backticks.
    let mut cut = window_end;
    while cut > 1 && text[..cut].ends_with('`') && text[cut..].starts_with('`') {
        cut = text[..cut].char_indices().last().map_or(0, |(i, _)| i);
    }
    if cut == 0 {
        cut = window_end.max(text.chars().next().map_or(1, char::len_utf8));
    }
    cut
}

/// Byte index just after the space that follows the last `.`, `!` or `?` in `w`.
fn last_sentence_end(w: &str) -> Option<usize> {
    let bytes = w.as_bytes();
    (1..bytes.len())
        .rev()
        .find(|&i| bytes[i] == b' ' && matches!(bytes[i - 1], b'.' | b'!' | b'?'))
        .map(|i| i + 1)
}

/// The fence state after `body`, given the state before it: `Some(opening line)` when
/// `body` ends inside a code block.
fn fence_state(mut open: Option<String>, body: &str) -> Option<String> {
    let mut from = 0;
    while let Some(found) = body[from..].find(FENCE) {
        let at = from + found;
        // A longer run of backticks counts as one fence marker.
        let run_end = at + body[at..].bytes().take_while(|&b| b == b'`').count();
        if open.is_some() {
            open = None;
        } else {
            let line_end = body[run_end..]
                .find('\n')
                .map_or(body.len(), |i| run_end + i);
            let lang = body[run_end..line_end].trim();
            let is_tag = !lang.is_empty()
                && lang.len() <= MAX_LANG
                && lang
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_#.".contains(c));
            open = Some(if is_tag {
                format!("{FENCE}{lang}")
            } else {
                FENCE.to_string()
            });
        }
        from = run_end;
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rejoin(segments: &[Segment<'_>]) -> String {
        segments.iter().map(|s| s.body).collect()
    }

    fn fences_balanced(part: &str) -> bool {
        fence_state(None, part).is_none()
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_message("hello", DISCORD_LIMIT), vec!["hello"]);
        assert!(split_message("", DISCORD_LIMIT).is_empty());
    }

    #[test]
    fn prefers_paragraphs_then_lines_then_sentences_then_words() {
        let para = format!("{}\n\n{}", "a ".repeat(60), "b ".repeat(60));
        let parts = split_message(&para, 150);
        assert_eq!(parts[0], format!("{}\n\n", "a ".repeat(60)));

        let lines = format!("{}\n{}", "a ".repeat(60), "b ".repeat(60));
        assert_eq!(
            split_message(&lines, 150)[0],
            format!("{}\n", "a ".repeat(60))
        );

        let sentences = format!("{}end. {}", "a ".repeat(60), "b ".repeat(60));
        assert!(split_message(&sentences, 150)[0].ends_with("end. "));

        let words = "word ".repeat(100);
        for part in split_message(&words, 150) {
            assert!(part.starts_with("word"), "{part:?}");
        }
    }

    #[test]
    fn code_block_is_closed_and_reopened() {
        let code: String = (0..80).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Here:\n```rust\n{code}```\nDone.");
        let parts = split_message(&text, 300);
        assert!(parts.len() > 2);
        for (i, part) in parts.iter().enumerate() {
            assert!(part.chars().count() <= 300);
            assert!(fences_balanced(part), "part {i} unbalanced: {part:?}");
            if i > 0 && i < parts.len() - 1 {
                assert!(part.starts_with("```rust\n"), "{part:?}");
            }
        }
    }

    #[test]
    fn multibyte_text_is_never_broken() {
        let text = "héllo wörld ✓ 日本語のテキスト 🎉 ".repeat(200);
        let segs = segments(&text, 100);
        assert_eq!(rejoin(&segs), text);
        for s in &segs {
            assert!(s.render().chars().count() <= 100);
        }
    }

    #[test]
    fn one_huge_word_is_cut_anyway() {
        let text = "x".repeat(5000);
        let parts = split_message(&text, DISCORD_LIMIT);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), text);
    }

    proptest! {
        #[test]
        fn parts_fit_rejoin_and_render(
            pieces in proptest::collection::vec(
                prop_oneof![
                    "[a-zA-Z]{1,12}",
                    Just(" ".to_string()),
                    Just("\n".to_string()),
                    Just("\n\n".to_string()),
                    Just(". ".to_string()),
                    Just("\n```py\n".to_string()),
                    Just("\n```\n".to_string()),
                    Just("`".to_string()),
                    "[é✓日🎉]{1,5}",
                ],
                0..400,
            ),
            limit in 64usize..400,
        ) {
            let text: String = pieces.concat();
            let segs = segments(&text, limit);
            prop_assert_eq!(rejoin(&segs), text.clone());
            for s in &segs {
                let rendered = s.render();
                prop_assert!(rendered.chars().count() <= limit, "{} > {}", rendered.chars().count(), limit);
                prop_assert!(!s.body.is_empty());
            }
            // Every part renders on its own: a part that starts outside a code block
            // ends outside one, and a code block cut by a split is closed and reopened.
            let mut state: Option<String> = None;
            for (i, s) in segs.iter().enumerate() {
                prop_assert_eq!(s.reopen.is_some(), state.is_some());
                state = fence_state(state, s.body);
                if i + 1 < segs.len() {
                    prop_assert_eq!(s.close, state.is_some());
                    prop_assert!(fences_balanced(&s.render()));
                }
            }
        }

        #[test]
        fn words_are_not_broken(words in proptest::collection::vec("[a-z]{1,20}", 1..300)) {
            let text = words.join(" ");
            for part in split_message(&text, 100) {
                let trimmed = part.trim();
                for word in trimmed.split(' ') {
                    prop_assert!(words.iter().any(|w| w == word), "broken word {:?}", word);
                }
            }
        }
    }
}
