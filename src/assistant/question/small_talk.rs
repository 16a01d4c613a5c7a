//! Messages that are only small talk: a greeting, thanks, a goodbye, "how are you", or
//! "who are you / what can you do", in English, German, French, Spanish, Chinese and
//! Japanese. A message with a real question in it ("hi, where is my order?") is not.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::words;

/// The kind of a small-talk message, which selects the reply template (`kind` in
/// `small_talk.j2` is [`SmallTalk::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmallTalk {
    /// "hi", "hello", "good morning", "hallo", "bonjour", "你好".
    Greeting,
    /// "thanks", "thank you", "danke", "merci", "谢谢".
    Thanks,
    /// "bye", "see you", "tschüss", "au revoir".
    Goodbye,
    /// "how are you", "wie geht's", "ça va".
    HowAreYou,
    /// "who are you", "are you a bot", "what can you do", "help".
    WhoAreYou,
}

impl SmallTalk {
    /// The template's name for this kind: "greeting", "thanks", "goodbye", "how_are_you"
    /// or "who_are_you".
    pub fn kind(self) -> &'static str {
        match self {
            SmallTalk::Greeting => "greeting",
            SmallTalk::Thanks => "thanks",
            SmallTalk::Goodbye => "goodbye",
            SmallTalk::HowAreYou => "how_are_you",
            SmallTalk::WhoAreYou => "who_are_you",
        }
    }
}

/// The small talk `text` is, when the whole message is small talk: every word belongs to a
/// small-talk phrase or is a filler ("there", "so much", "ok", "lol"). When several kinds
/// appear, the one that most needs its own answer wins: who-are-you, then how-are-you, then
/// goodbye, thanks, greeting ("hi, thanks, bye" is a goodbye). A message of acknowledgement
/// only ("ok", "great") is [`SmallTalk::Thanks`].
pub fn small_talk(text: &str) -> Option<SmallTalk> {
    let tokens: Vec<String> = words(&strip_emoticons(text))
        .iter()
        .map(|token| squeeze_repeats(token))
        .collect();
    let mut found: Vec<SmallTalk> = Vec::new();
    let mut position = 0;
    while position < tokens.len() {
        if let Some((kind, length)) = longest_phrase_at(&tokens[position..]) {
            found.push(kind);
            position += length;
        } else if SQUEEZED.fillers.contains(&tokens[position]) {
            position += 1;
        } else if SQUEEZED.acknowledgements.contains(&tokens[position]) {
            found.push(SmallTalk::Thanks);
            position += 1;
        } else {
            return None;
        }
    }
    [
        SmallTalk::WhoAreYou,
        SmallTalk::HowAreYou,
        SmallTalk::Goodbye,
        SmallTalk::Thanks,
        SmallTalk::Greeting,
    ]
    .into_iter()
    .find(|kind| found.contains(kind))
}

/// The longest small-talk phrase that `tokens` starts with, and its length in words.
fn longest_phrase_at(tokens: &[String]) -> Option<(SmallTalk, usize)> {
    SQUEEZED
        .phrases
        .iter()
        .filter(|(_, parts)| {
            parts.len() <= tokens.len()
                && parts.iter().zip(tokens).all(|(part, token)| part == token)
        })
        .map(|(kind, parts)| (*kind, parts.len()))
        .max_by_key(|(_, length)| *length)
}

/// The word lists as messages are compared with them: split like [`words`] and with
/// repeated letters squeezed, prepared once.
struct Squeezed {
    phrases: Vec<(SmallTalk, Vec<String>)>,
    fillers: HashSet<String>,
    acknowledgements: HashSet<String>,
}

static SQUEEZED: LazyLock<Squeezed> = LazyLock::new(|| Squeezed {
    phrases: PHRASES
        .iter()
        .flat_map(|(kind, phrases)| phrases.iter().map(move |phrase| (*kind, phrase)))
        .map(|(kind, phrase)| {
            let parts = phrase_words(phrase)
                .into_iter()
                .map(squeeze_repeats)
                .collect();
            (kind, parts)
        })
        .collect(),
    fillers: FILLERS.iter().map(|entry| squeeze_repeats(entry)).collect(),
    acknowledgements: ACKNOWLEDGEMENTS
        .iter()
        .map(|entry| squeeze_repeats(entry))
        .collect(),
});

/// A phrase's words: space-separated, and each Chinese or Japanese character on its own,
/// as [`words`] splits a message.
fn phrase_words(phrase: &str) -> Vec<&str> {
    phrase
        .split(' ')
        .flat_map(|part| {
            if part.chars().any(super::is_cjk) {
                part.char_indices()
                    .map(|(start, c)| &part[start..start + c.len_utf8()])
                    .collect::<Vec<_>>()
            } else {
                vec![part]
            }
        })
        .collect()
}

/// ":)", ":-D", ";P", "xD", "<3", "^^" and the like, which would otherwise leave stray
/// letters ("d", "p").
fn strip_emoticons(text: &str) -> String {
    static EMOTICONS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?:[:;=][-o'^]?[)(\]\[dDpPoO3/\\|*]+(?:[^\w]|$)|\bx[dD]+\b|<3+|\^\^|\^_\^)",
        )
        .expect("emoticon pattern is valid")
    });
    EMOTICONS.replace_all(text, " ").into_owned()
}

/// A letter repeated counts once, in messages and phrases alike: "hiii" and "hi", "heyy"
/// and "hey", "good" and "god" compare equal.
fn squeeze_repeats(text: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let mut end = index + 1;
        while end < chars.len() && chars[end] == c {
            end += 1;
        }
        let run = end - index;
        let keep = if c.is_alphabetic() { 1 } else { run };
        result.extend(std::iter::repeat_n(c, keep));
        index = end;
    }
    result
}

/// Words that may stand around small talk without making it a question. Phrases are
/// folded like [`words`]: lower case, no accents, no apostrophes.
const FILLERS: &[&str] = &[
    "there",
    "all",
    "everyone",
    "everybody",
    "guys",
    "folks",
    "team",
    "friend",
    "mate",
    "bot",
    "again",
    "so",
    "very",
    "much",
    "lot",
    "a",
    "you",
    "u",
    "ya",
    "and",
    "oh",
    "ah",
    "well",
    "lol",
    "haha",
    "hehe",
    "for",
    "the",
    "your",
    "my",
    "help",
    "helping",
    "info",
    "information",
    "answer",
    "reply",
    "quick",
    "that",
    "this",
    "it",
    "everything",
    "really",
    "just",
    "anyway",
    "again",
    "too",
    "then",
    "now",
    "today",
    "kind",
    "of",
    "dear",
    "sir",
    "madam",
    "buddy",
    "zusammen",
    "leute",
    "euch",
    "dir",
    "ihnen",
    "nochmal",
    "sehr",
    "fur",
    "die",
    "hilfe",
    "tout",
    "le",
    "monde",
    "a",
    "tous",
    "pour",
    "votre",
    "aide",
    "encore",
    "tres",
    "todos",
    "por",
    "tu",
    "su",
    "ayuda",
    "de",
    "nuevo",
    "muy",
    "la",
    "啊",
    "呀",
    "哦",
    "啦",
    "了",
    "的",
    "ね",
    "よ",
];

/// A message of only these acknowledges an answer; it is answered like thanks.
const ACKNOWLEDGEMENTS: &[&str] = &[
    "ok",
    "okay",
    "okey",
    "k",
    "kk",
    "alright",
    "great",
    "cool",
    "nice",
    "awesome",
    "perfect",
    "got",
    "gotcha",
    "understood",
    "fine",
    "good",
    "super",
    "genial",
    "parfait",
    "vale",
    "perfecto",
    "好",
    "好的",
    "了解",
    "わかりました",
];

type Phrases = (SmallTalk, &'static [&'static str]);

const PHRASES: [Phrases; 5] = [
    (
        SmallTalk::Greeting,
        &[
            "hi",
            "hii",
            "hiya",
            "hey",
            "heya",
            "hello",
            "helo",
            "hallo",
            "howdy",
            "yo",
            "greetings",
            "good morning",
            "good afternoon",
            "good evening",
            "good day",
            "morning",
            "evening",
            "gm",
            "guten morgen",
            "guten tag",
            "guten abend",
            "moin",
            "servus",
            "gruss gott",
            "gruezi",
            "bonjour",
            "bonsoir",
            "salut",
            "coucou",
            "hola",
            "buenos dias",
            "buenas tardes",
            "buenas noches",
            "buenas",
            "你好",
            "您好",
            "嗨",
            "哈喽",
            "早上好",
            "晚上好",
            "下午好",
            "大家好",
            "こんにちは",
            "こんばんは",
            "おはよう",
            "おはようございます",
            "もしもし",
            "やあ",
        ],
    ),
    (
        SmallTalk::Thanks,
        &[
            "thanks",
            "thank you",
            "thank u",
            "thankyou",
            "thx",
            "thnx",
            "thanx",
            "tx",
            "ty",
            "tysm",
            "tyvm",
            "cheers",
            "many thanks",
            "much appreciated",
            "appreciate it",
            "appreciated",
            "for your help",
            "for the help",
            "for helping",
            "for your time",
            "danke",
            "danke schon",
            "dankeschon",
            "vielen dank",
            "besten dank",
            "merci",
            "merci beaucoup",
            "gracias",
            "muchas gracias",
            "mil gracias",
            "谢谢",
            "多谢",
            "感谢",
            "谢啦",
            "谢谢你",
            "ありがとう",
            "ありがとうございます",
            "ありがとうございました",
            "どうも",
        ],
    ),
    (
        SmallTalk::Goodbye,
        &[
            "bye",
            "bye bye",
            "byebye",
            "goodbye",
            "good bye",
            "see you",
            "see ya",
            "cya",
            "see you later",
            "later",
            "take care",
            "have a nice day",
            "have a good day",
            "have a great day",
            "good night",
            "gn",
            "tschuss",
            "tschus",
            "auf wiedersehen",
            "ciao",
            "bis bald",
            "schonen tag",
            "au revoir",
            "a bientot",
            "bonne journee",
            "bonne soiree",
            "adios",
            "hasta luego",
            "hasta pronto",
            "chao",
            "再见",
            "拜拜",
            "さようなら",
            "またね",
            "じゃあね",
            "お疲れ様",
        ],
    ),
    (
        SmallTalk::HowAreYou,
        &[
            "how are you",
            "how r u",
            "how are u",
            "how r you",
            "hows it going",
            "how is it going",
            "how you doing",
            "how are you doing",
            "how are things",
            "how do you do",
            "whats up",
            "wassup",
            "whatsup",
            "sup",
            "how is your day",
            "hows your day",
            "how is your day going",
            "hows your day going",
            "how was your day",
            "how has your day been",
            "hows your day been",
            "how is everything",
            "hows everything",
            "hope you are well",
            "hope youre well",
            "hope youre doing well",
            "hope you are doing well",
            "wie gehts",
            "wie geht es dir",
            "wie geht es ihnen",
            "wie geht es",
            "ca va",
            "comment ca va",
            "comment allez vous",
            "comment vas tu",
            "que tal",
            "como estas",
            "como esta",
            "como va",
            "你好吗",
            "最近怎么样",
            "怎么样",
            "お元気ですか",
            "元気ですか",
            "元気",
        ],
    ),
    (
        SmallTalk::WhoAreYou,
        &[
            "who are you",
            "what are you",
            "are you a bot",
            "are you a robot",
            "are you human",
            "are you a human",
            "are you real",
            "are you an ai",
            "are you ai",
            "is this a bot",
            "what can you do",
            "what do you do",
            "how can you help",
            "what can you help with",
            "what can you help me with",
            "how can you help me",
            "can you help me",
            "who am i talking to",
            "who is this",
            "help",
            "help me",
            "wer bist du",
            "wer sind sie",
            "bist du ein bot",
            "was kannst du",
            "was kannst du tun",
            "qui es tu",
            "qui etes vous",
            "tu es un bot",
            "es tu un robot",
            "que peux tu faire",
            "quien eres",
            "eres un bot",
            "eres un robot",
            "que puedes hacer",
            "你是谁",
            "你是机器人吗",
            "你能做什么",
            "你是谁呀",
            "あなたは誰",
            "あなたは誰ですか",
            "ボットですか",
            "何ができますか",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_kind(kind: SmallTalk, texts: &[&str]) {
        for text in texts {
            assert_eq!(small_talk(text), Some(kind), "{text:?}");
        }
    }

    #[test]
    fn greetings() {
        assert_kind(
            SmallTalk::Greeting,
            &[
                "hi there!",
                "Hello",
                "heyyy",
                "good morning :)",
                "hi everyone",
                "hallo",
                "Guten Morgen!",
                "bonjour",
                "hola",
                "Buenos días",
                "你好",
                "こんにちは",
            ],
        );
    }

    #[test]
    fn thanks_and_acknowledgements() {
        assert_kind(
            SmallTalk::Thanks,
            &[
                "thanks a lot :)",
                "ty",
                "thx!!",
                "Thank you so much for your help",
                "ok thanks",
                "great, thank you!",
                "ok",
                "danke",
                "Vielen Dank!",
                "merci beaucoup",
                "gracias",
                "谢谢",
                "ありがとう",
                "ありがとうございます！",
            ],
        );
    }

    #[test]
    fn goodbyes_win_over_thanks_and_greetings() {
        assert_kind(
            SmallTalk::Goodbye,
            &[
                "cheers, bye",
                "bye",
                "thanks, see you later!",
                "have a nice day",
                "tschüss",
                "au revoir",
                "adiós",
                "再见",
                "またね",
            ],
        );
    }

    #[test]
    fn how_are_you() {
        assert_kind(
            SmallTalk::HowAreYou,
            &[
                "hey whats up",
                "how are you?",
                "hi there, how's your day going?",
                "hope you're doing well!",
                "hi, how's it going?",
                "Wie geht's?",
                "ça va ?",
                "¿Qué tal?",
                "你好吗？",
                "お元気ですか",
            ],
        );
    }

    #[test]
    fn who_are_you() {
        assert_kind(
            SmallTalk::WhoAreYou,
            &[
                "who are you?",
                "are you a bot",
                "Are you a human?",
                "what can you do?",
                "hi, what can you help me with?",
                "help",
                "Wer bist du?",
                "Qui es-tu ?",
                "¿Quién eres?",
                "你是谁？",
                "あなたは誰ですか",
            ],
        );
    }

    #[test]
    fn a_real_question_is_not_small_talk() {
        for text in [
            "hi, where is my order?",
            "thanks, and how much is the teapot?",
            "hello I want a refund",
            "hey is the sencha in stock",
            "good morning, my mug arrived broken",
            "thanks for the tracking link but it doesn't work",
            "Hallo, wo ist meine Bestellung?",
            "bonjour, combien coûte le mug ?",
            "hola, ¿cuánto cuesta la tetera?",
            "你好，这个茶壶多少钱？",
            "こんにちは、在庫はありますか",
            "what is the capital of France?",
            "write me a poem about tea",
            "how are you shipping my order",
            "help me find my order",
            "hiking mug",
            "",
            "?!",
        ] {
            assert_eq!(small_talk(text), None, "{text:?}");
        }
    }

    #[test]
    fn kinds_name_the_template_cases() {
        assert_eq!(SmallTalk::HowAreYou.kind(), "how_are_you");
        assert_eq!(SmallTalk::WhoAreYou.kind(), "who_are_you");
        assert_eq!(SmallTalk::Greeting.kind(), "greeting");
    }

    #[test]
    fn repeated_letters_are_squeezed() {
        assert_eq!(squeeze_repeats("hiiii byeee"), "hi bye");
        assert_eq!(squeeze_repeats("good"), "god");
        assert_eq!(small_talk("heyy"), Some(SmallTalk::Greeting));
        assert_eq!(small_talk("thankss byee"), Some(SmallTalk::Goodbye));
    }
}
