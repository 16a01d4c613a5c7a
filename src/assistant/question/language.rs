//! The language a customer wrote in, tuned for short chat messages: a two-word question in
//! misspelt English must stay English, and "Was kostet die Teekanne?" must be German.
//!
//! The writing system decides first (kana is Japanese, Chinese characters without kana are
//! Chinese, other non-Latin scripts are [`Lang::Other`]). Latin-script text is English
//! unless there is evidence for German, French or Spanish: their function words and
//! accented letters, and for longer texts a confident [`whatlang`] guess.

use std::sync::LazyLock;

use super::{is_han, is_kana};

/// A language the assistant can tell apart. Everything the shop has no templates for, and
/// every other script, is [`Lang::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English; also short, ambiguous or misspelt Latin-script text, and text without
    /// letters ([`detect`]).
    En,
    /// German.
    De,
    /// French.
    Fr,
    /// Spanish.
    Es,
    /// Chinese.
    Zh,
    /// Japanese.
    Ja,
    /// Any other language or script.
    Other,
}

impl Lang {
    /// Every language, [`Lang::Other`] last.
    pub const ALL: [Lang; 7] = [
        Lang::En,
        Lang::De,
        Lang::Fr,
        Lang::Es,
        Lang::Zh,
        Lang::Ja,
        Lang::Other,
    ];

    /// The ISO 639-1 code ("en", "de", "fr", "es", "zh", "ja"), which also names the locale
    /// template folder; "und" (undetermined, as in BCP 47) for [`Lang::Other`].
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
            Lang::Es => "es",
            Lang::Zh => "zh",
            Lang::Ja => "ja",
            Lang::Other => "und",
        }
    }

    /// The language with this [`code`](Lang::code), case-insensitive.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|lang| lang.code().eq_ignore_ascii_case(code.trim()))
    }
}

/// Latin-script texts with fewer letters than this never trust the statistical detector:
/// on short texts it mistakes misspelt English for other languages.
const MIN_LETTERS_FOR_STATISTICS: usize = 25;

/// The evidence a non-English language needs, and it must also beat English's evidence.
/// One distinctive word ("combien", "hallo") or two shared ones ("la ... es") reach it.
const MIN_FOREIGN_EVIDENCE: f32 = 2.0;

/// What a confident statistical guess adds to its language's evidence.
const STATISTICAL_EVIDENCE: f32 = 2.0;

/// What one accented letter typical of a language adds (at most [`MAX_ACCENT_EVIDENCE`]).
const ACCENT_EVIDENCE: f32 = 1.0;
const MAX_ACCENT_EVIDENCE: f32 = 2.0;

/// The language `text` is written in. Short, ambiguous or misspelt Latin-script text is
/// English; so is text without letters.
pub fn detect(text: &str) -> Lang {
    let mut kana = 0usize;
    let mut han = 0usize;
    let mut latin = 0usize;
    let mut other_script = 0usize;
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        if is_kana(c) {
            kana += 1;
        } else if is_han(c) {
            han += 1;
        } else if is_latin(c) {
            latin += 1;
        } else {
            other_script += 1;
        }
    }
    if kana > 0 {
        return Lang::Ja;
    }
    if han > 0 {
        return Lang::Zh;
    }
    if other_script > latin {
        return Lang::Other;
    }
    detect_latin(text, latin)
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}')
}

/// Evidence for each candidate, indexed like [`CANDIDATES`].
const CANDIDATES: [Lang; 5] = [Lang::En, Lang::De, Lang::Fr, Lang::Es, Lang::Other];

fn detect_latin(text: &str, letters: usize) -> Lang {
    let mut evidence = [0f32; CANDIDATES.len()];
    let index = |lang: Lang| CANDIDATES.iter().position(|&c| c == lang).unwrap_or(4);

    for word in latin_words(text) {
        let voters: Vec<(Lang, f32)> = STOP_WORDS
            .iter()
            .filter_map(|(lang, strong, weak)| {
                if strong.contains(&word.as_str()) {
                    Some((*lang, 2.0))
                } else if weak.contains(&word.as_str()) {
                    Some((*lang, 1.0))
                } else {
                    None
                }
            })
            .collect();
        let share = voters.len() as f32;
        for (lang, weight) in voters {
            evidence[index(lang)] += weight / share;
        }
    }

    for (lang, accents) in ACCENTS {
        let count = text.chars().filter(|c| accents.contains(*c)).count() as f32;
        evidence[index(lang)] += (count * ACCENT_EVIDENCE).min(MAX_ACCENT_EVIDENCE);
    }

    if letters >= MIN_LETTERS_FOR_STATISTICS {
        if let Some(info) = DETECTOR.detect(text) {
            if info.is_reliable() {
                evidence[index(from_whatlang(info.lang()))] += STATISTICAL_EVIDENCE;
            }
        }
    }

    let english = evidence[0];
    let (best, best_evidence) =
        CANDIDATES
            .iter()
            .zip(evidence)
            .skip(1)
            .fold((Lang::En, 0f32), |best, (&lang, value)| {
                if value > best.1 {
                    (lang, value)
                } else {
                    best
                }
            });
    if best_evidence >= MIN_FOREIGN_EVIDENCE && best_evidence > english {
        best
    } else {
        Lang::En
    }
}

/// Lower-case Latin words with their accents kept (accents are evidence here).
fn latin_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .flat_map(|word| word.split('\''))
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Accented letters that point to one language. Letters shared by several (é in French and
/// Spanish) are left out, and so is every letter of the words in [`STOP_WORDS`] that
/// already count.
const ACCENTS: [(Lang, &str); 3] = [
    (Lang::De, "äöüßÄÖÜ"),
    (Lang::Fr, "èêàçœûùîôëïÈÊÀÇ"),
    (Lang::Es, "ñ¿¡áíóúÑÁÍÓÚ"),
];

/// Per language: distinctive words (weight 2) and common function words (weight 1); the
/// [`Lang::Other`] entry holds a few of other common Latin-script languages. A
/// word listed for several languages splits its weight between them, so "la" (French and
/// Spanish) or "was" (English and German) is weak evidence for each.
type StopWords = (Lang, &'static [&'static str], &'static [&'static str]);

const STOP_WORDS: [StopWords; 5] = [
    (
        Lang::En,
        &[],
        &[
            "the", "a", "an", "is", "are", "was", "were", "what", "whats", "where", "when", "how",
            "much", "many", "do", "does", "did", "you", "your", "my", "i", "me", "it", "its",
            "can", "could", "would", "will", "have", "has", "of", "to", "in", "on", "for", "with",
            "and", "or", "not", "this", "that", "there", "any", "which", "who", "why", "please",
            "pls", "hi", "hello", "hey", "thanks", "thank", "thx", "be", "from", "at", "if", "get",
            "got", "need", "want", "still", "yet", "just", "about", "some", "s", "m", "t", "dont",
            "im", "than", "under", "no", "so", "am", "order", "price", "cost",
        ],
    ),
    (
        Lang::De,
        &[
            "ich",
            "nicht",
            "und",
            "ist",
            "wie",
            "viel",
            "kostet",
            "kosten",
            "bitte",
            "danke",
            "hallo",
            "gibt",
            "haben",
            "habe",
            "hast",
            "meine",
            "mein",
            "meinen",
            "meiner",
            "wann",
            "warum",
            "welche",
            "welcher",
            "welches",
            "können",
            "kann",
            "wo",
            "wieviel",
            "sind",
            "noch",
            "auch",
            "eine",
            "einen",
            "einer",
            "ein",
            "der",
            "das",
            "dem",
            "den",
            "des",
            "mit",
            "für",
            "auf",
            "bei",
            "nach",
            "oder",
            "aber",
            "wir",
            "sie",
            "euch",
            "ihr",
            "ihre",
            "schon",
            "guten",
            "tag",
            "tschüss",
            "bestellung",
            "preis",
            "lieferung",
            "versand",
            "zurückgeben",
            "rückgabe",
            "teuer",
            "günstig",
            "gerne",
            "vielen",
            "dank",
            "morgen",
            "abend",
            "wer",
            "bist",
            "geht",
            "gibts",
            "zu",
            "es",
        ],
        &["was", "die", "in", "du", "so", "am", "um"],
    ),
    (
        Lang::Fr,
        &[
            "je",
            "est",
            "combien",
            "coûte",
            "coûtent",
            "coute",
            "vous",
            "nous",
            "pourquoi",
            "quand",
            "où",
            "avez",
            "avec",
            "pour",
            "dans",
            "mon",
            "ma",
            "mes",
            "votre",
            "vos",
            "une",
            "les",
            "des",
            "du",
            "au",
            "aux",
            "et",
            "bonjour",
            "bonsoir",
            "merci",
            "salut",
            "beaucoup",
            "quel",
            "quelle",
            "quels",
            "quelles",
            "commande",
            "livraison",
            "prix",
            "cher",
            "chère",
            "retour",
            "rembourser",
            "remboursement",
            "puis",
            "peux",
            "peut",
            "ce",
            "cette",
            "il",
            "elle",
            "sont",
            "pas",
            "ne",
            "qui",
            "quoi",
            "comment",
            "aussi",
            "encore",
            "être",
            "avoir",
            "suis",
            "ça",
            "thé",
            "théière",
            "tasse",
        ],
        &[
            "le", "la", "de", "en", "un", "que", "me", "tu", "se", "à", "ai",
        ],
    ),
    (
        Lang::Es,
        &[
            "el",
            "es",
            "cuánto",
            "cuanto",
            "cuánta",
            "cuesta",
            "cuestan",
            "tengo",
            "tienen",
            "tiene",
            "dónde",
            "donde",
            "pedido",
            "qué",
            "por",
            "para",
            "está",
            "están",
            "hay",
            "hola",
            "gracias",
            "muchas",
            "una",
            "los",
            "las",
            "del",
            "al",
            "y",
            "mi",
            "mis",
            "su",
            "sus",
            "con",
            "cómo",
            "como",
            "cuál",
            "cuáles",
            "cuando",
            "cuándo",
            "precio",
            "envío",
            "envio",
            "devolver",
            "devolución",
            "reembolso",
            "puedo",
            "puede",
            "quiero",
            "necesito",
            "también",
            "todavía",
            "más",
            "mas",
            "barato",
            "caro",
            "tetera",
            "taza",
            "té",
            "buenos",
            "buenas",
            "días",
            "tardes",
            "noches",
            "usted",
            "ustedes",
            "eres",
        ],
        &[
            "la", "de", "en", "un", "que", "me", "tu", "se", "no", "o", "a",
        ],
    ),
    (
        Lang::Other,
        // Italian, Portuguese and Dutch, so that a question in them is not taken for English.
        &[
            "il",
            "di",
            "che",
            "sono",
            "vorrei",
            "quanto",
            "quando",
            "perché",
            "della",
            "delle",
            "questo",
            "questa",
            "grazie",
            "buongiorno",
            "anche",
            "molto",
            "ho",
            "è",
            "não",
            "você",
            "obrigado",
            "obrigada",
            "olá",
            "custa",
            "meu",
            "minha",
            "onde",
            "het",
            "een",
            "ik",
            "niet",
            "hoeveel",
            "kost",
            "mijn",
            "waar",
            "bedankt",
            "jullie",
        ],
        &["non", "wat"],
    ),
];

/// The statistical detector, restricted to common Latin-script languages so that misspelt
/// English is not taken for a rare one.
static DETECTOR: LazyLock<whatlang::Detector> = LazyLock::new(|| {
    use whatlang::Lang as W;
    whatlang::Detector::with_allowlist(vec![
        W::Eng,
        W::Deu,
        W::Fra,
        W::Spa,
        W::Ita,
        W::Por,
        W::Nld,
        W::Pol,
        W::Swe,
        W::Tur,
    ])
});

fn from_whatlang(lang: whatlang::Lang) -> Lang {
    match lang {
        whatlang::Lang::Eng => Lang::En,
        whatlang::Lang::Deu => Lang::De,
        whatlang::Lang::Fra => Lang::Fr,
        whatlang::Lang::Spa => Lang::Es,
        _ => Lang::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_all(lang: Lang, texts: &[&str]) {
        for text in texts {
            assert_eq!(detect(text), lang, "{text:?}");
        }
    }

    #[test]
    fn short_and_misspelt_english_stays_english() {
        assert_all(
            Lang::En,
            &[
                "wher is my pakage",
                "refnd pls",
                "hey whats up",
                "kettel price?",
                "thx",
                "ok",
                "Morning Sencha",
                "Hojicha",
                "sencha vs oolong",
                "la la land mug?",
                "is the tetsubin teapot in stock",
                "can i return a mug that arrived chipped?",
                "What is the capital of France?",
                "write me a short poem about tea",
                "do u ship to canada",
                "",
                "???",
                "€8.90",
                "my order #12345 hasn't arrived yet, it was supposed to come on monday",
            ],
        );
    }

    #[test]
    fn short_european_questions_are_recognised() {
        assert_all(
            Lang::De,
            &[
                "Was kostet die Teekanne?",
                "Wo ist meine Bestellung?",
                "Hallo",
                "danke",
                "Ist der Sencha noch auf Lager?",
                "Kann ich eine Tasse zurückgeben, die kaputt angekommen ist?",
            ],
        );
        assert_all(
            Lang::Fr,
            &[
                "Combien coûte le mug ?",
                "bonjour",
                "merci",
                "Où est ma commande ?",
                "Est-ce que la théière est en stock ?",
                "Je voudrais retourner une tasse",
            ],
        );
        assert_all(
            Lang::Es,
            &[
                "¿Cuánto cuesta la tetera?",
                "hola",
                "gracias",
                "¿Dónde está mi pedido?",
                "cuanto cuesta el sencha",
                "¿Tienen té sin cafeína?",
            ],
        );
    }

    #[test]
    fn script_decides_chinese_and_japanese() {
        assert_all(
            Lang::Zh,
            &["你好", "这个茶壶多少钱？", "Morning Sencha 多少钱"],
        );
        assert_all(
            Lang::Ja,
            &[
                "こんにちは",
                "このティーポットはいくらですか",
                "Morning Senchaの値段は？",
            ],
        );
    }

    #[test]
    fn other_scripts_and_long_other_languages_are_other() {
        assert_all(
            Lang::Other,
            &[
                "Сколько стоит чайник?",
                "찻주전자 가격이 얼마예요?",
                "Vorrei sapere quanto costa la teiera giapponese e quando arriva",
            ],
        );
    }

    #[test]
    fn codes_round_trip() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::En.code(), "en");
        assert_eq!(Lang::Other.code(), "und");
        assert_eq!(Lang::from_code("DE"), Some(Lang::De));
        assert_eq!(Lang::from_code("it"), None);
    }

    #[test]
    fn unaccented_european_questions_are_recognised() {
        assert_eq!(detect("cuanto cuesta la tetera"), Lang::Es);
        assert_eq!(detect("combien coute le mug"), Lang::Fr);
        assert_eq!(detect("wie viel kostet die teekanne"), Lang::De);
    }
}
