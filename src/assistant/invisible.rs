//! Invisible formatting characters: bidirectional overrides and isolates, and zero-width
//! characters. They can disguise text (a reversed "gpj.exe", a split "@every​one" that a
//! filter misses, a link that reads as another) and carry nothing a shop answer needs, so
//! they are stripped from what customers send before it reaches a prompt, and from what
//! the model writes before the output guard runs. (The guard itself then adds zero-width
//! spaces on purpose, to break mentions.)

/// Whether `c` is a bidirectional control or a zero-width character.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'   // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{061C}'              // Arabic letter mark
        | '\u{180E}'              // Mongolian vowel separator
        | '\u{FEFF}'              // zero-width no-break space (BOM)
    )
}

/// `text` without [`is_invisible`] characters.
pub fn strip_invisible(text: &str) -> String {
    text.chars().filter(|c| !is_invisible(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_zero_width_characters_are_removed() {
        assert_eq!(strip_invisible("in\u{202E}voice.exe"), "invoice.exe");
        assert_eq!(
            strip_invisible("@every\u{200B}one \u{2066}x\u{2069}"),
            "@everyone x"
        );
        assert_eq!(strip_invisible("\u{FEFF}\u{200D}\u{200C}\u{2060}"), "");
        assert_eq!(strip_invisible("Grüße, 你好 👍"), "Grüße, 你好 👍");
    }
}
