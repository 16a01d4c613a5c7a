//! The demo shop's small-talk, not-sure and product templates, in English and in every
//! locale folder: they render with the same minijinja settings as the bot (strict undefined
//! variables, trimmed blocks), say something for every small-talk kind, and are written in
//! the language their folder names.

use std::path::{Path, PathBuf};

use minijinja::{context, Environment, UndefinedBehavior, Value};
use shopkeep::assistant::question::{detect, Lang};

const LOCALES: [Lang; 5] = [Lang::De, Lang::Fr, Lang::Es, Lang::Zh, Lang::Ja];
const KINDS: [&str; 5] = [
    "greeting",
    "thanks",
    "goodbye",
    "how_are_you",
    "who_are_you",
];

fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/templates")
}

fn render(path: &Path, variables: Value) -> String {
    let source =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template_owned("template", source)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    env.get_template("template")
        .and_then(|template| template.render(variables))
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .trim()
        .to_string()
}

fn shop() -> Value {
    context! {
        name => "Kettle & Kiln",
        website => "https://kettleandkiln.example",
        currency => "EUR",
        currency_symbol => "€",
        human_contact => "our support team (support@kettleandkiln.example)",
    }
}

fn locale_dir(lang: Lang) -> PathBuf {
    templates_dir().join("locale").join(lang.code())
}

#[test]
fn small_talk_replies_exist_for_every_kind_and_language() {
    let english = templates_dir().join("small_talk.j2");
    let mut files = vec![(Lang::En, english)];
    files.extend(LOCALES.map(|lang| (lang, locale_dir(lang).join("small_talk.j2"))));
    for (lang, path) in files {
        let mut replies = Vec::new();
        for kind in KINDS {
            let reply = render(&path, context! { shop => shop(), kind => kind });
            assert!(!reply.is_empty(), "{} {kind}", path.display());
            assert_eq!(detect(&reply), lang, "{} {kind}: {reply}", path.display());
            assert!(
                reply.chars().count() < 400,
                "{} {kind} is not short",
                path.display()
            );
            replies.push(reply);
        }
        let mut distinct = replies.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            KINDS.len(),
            "{}: a reply per kind",
            path.display()
        );
        assert!(
            replies.iter().any(|reply| reply.contains("Kettle & Kiln")),
            "{} names the shop",
            path.display()
        );
    }
}

#[test]
fn not_sure_says_so_in_the_language_and_hands_off() {
    for lang in LOCALES {
        let path = locale_dir(lang).join("not_sure.j2");
        let closest = vec![
            context! { id => "returns", title => "Returns and refunds", link => "https://kettleandkiln.example/returns" },
        ];
        let with_topics = render(
            &path,
            context! { shop => shop(), question => "?", closest => closest },
        );
        let without_topics = render(&path, context! { shop => shop(), question => "?" });
        assert_eq!(
            detect(&without_topics),
            lang,
            "{}: {without_topics}",
            path.display()
        );
        assert!(
            without_topics.contains("support@kettleandkiln.example"),
            "{}",
            path.display()
        );
        assert!(
            with_topics.contains("Returns and refunds"),
            "{}",
            path.display()
        );
        assert!(
            !without_topics.contains("Returns and refunds"),
            "{}",
            path.display()
        );
    }
}

#[test]
fn product_facts_show_price_stock_and_the_english_description() {
    for lang in LOCALES {
        let path = locale_dir(lang).join("product.j2");
        let product = |stock: u32| {
            context! {
                name => "Morning Sencha",
                price => "€8.90",
                stock => stock,
                in_stock => stock > 0,
                description => "Bright, grassy Japanese green tea, 100 g loose leaf.",
            }
        };
        let available = render(&path, product(140));
        let sold_out = render(&path, product(0));
        for text in [&available, &sold_out] {
            assert!(
                text.contains("Morning Sencha") && text.contains("€8.90"),
                "{text}"
            );
            assert!(text.contains("Bright, grassy"), "{text}");
        }
        assert!(available.contains("140"), "{}: {available}", path.display());
        assert_ne!(
            available.replace("140", "0"),
            sold_out,
            "{}: in_stock decides",
            path.display()
        );
        assert_eq!(
            detect(&sold_out.replace("Bright, grassy Japanese green tea, 100 g loose leaf.", "")),
            lang,
            "{sold_out}"
        );
    }
}
