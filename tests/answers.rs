//! Answers customers can use, end to end through `Assistant::handle` on the demo shop
//! (prompts/) with the sentence-embedding model, as on Discord: one test per kind of
//! question. The model is the scripted backend: none of these answers may use it, and the
//! tests check that none reached it.

mod support;

use std::sync::Arc;

use shopkeep::assistant::content::{LoadOptions, Prompts};
use shopkeep::assistant::{Assistant, Inbound, InboundKind, ModeratorEvent, Role};
use shopkeep::backend::ScriptedBackend;
use shopkeep::config::Config;
use shopkeep::engine::{SentenceEmbedder, TextEmbedder};
use shopkeep::store::Store;

/// The demo shop's assistant on a scripted model; `embedded` loads the sentence-embedding
/// model as the bot does.
fn assistant(embedded: bool) -> Assistant {
    let mut config = Config::from_env().unwrap();
    config.model.max_new_tokens = 8;
    let embedder = embedded.then(|| {
        let dir = SentenceEmbedder::default_dir();
        Arc::new(SentenceEmbedder::load(&dir, 1).expect("./scripts/test.sh prepares it"))
            as Arc<dyn TextEmbedder>
    });
    let options = LoadOptions {
        embedder,
        ..LoadOptions::default()
    };
    let prompts = Prompts::load_with(&config.prompts_dir, options).expect("prompts/ loads");
    Assistant::new(
        Arc::new(ScriptedBackend::new()),
        Arc::new(config),
        Arc::new(Store::open_in_memory().unwrap()),
        Arc::new(prompts),
    )
}

/// What a customer gets for one question: the reply text and whether it was handed off.
struct Answered {
    text: String,
    handed_off: bool,
}

async fn ask(assistant: &Assistant, user: &str, question: &str) -> Answered {
    let mut events = assistant.subscribe_moderator_events();
    let outcome = assistant
        .handle(Inbound {
            user_id: user.into(),
            user_name: user.into(),
            channel_id: Some("support".into()),
            guild_id: Some("shop".into()),
            text: question.into(),
            kind: InboundKind::Mention,
            role: Role::Customer,
        })
        .await;
    let text = outcome.shown_text().await;
    let mut handed_off = false;
    while let Ok(event) = events.try_recv() {
        handed_off |= matches!(event, ModeratorEvent::Handoff { user_id, .. } if user_id == user);
    }
    Answered { text, handed_off }
}

#[tokio::test]
async fn a_damaged_item_gets_the_broken_items_rule() {
    let assistant = assistant(true);
    let answer = ask(
        &assistant,
        "dana",
        "Can I return a mug that arrived chipped?",
    )
    .await;
    assert!(!answer.handed_off, "{}", answer.text);
    assert!(
        answer
            .text
            .contains("Broken or wrong items are replaced or refunded at our cost"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains("photo"), "{}", answer.text);
    assert!(answer.text.contains("Source:"), "{}", answer.text);
}

#[tokio::test]
async fn a_product_that_stopped_working_gets_the_guarantee_not_the_product_or_the_shop() {
    let assistant = assistant(true);
    for (user, question) in [
        ("fay", "my kettle stopped working after two weeks"),
        ("gus", "the gooseneck kettle won't turn on any more"),
        ("hal", "Mein Wasserkocher funktioniert nicht mehr"),
    ] {
        let answer = ask(&assistant, user, question).await;
        assert!(!answer.handed_off, "{question:?}: {}", answer.text);
        assert!(
            answer.text.contains("2-year"),
            "{question:?}: {}",
            answer.text
        );
        assert!(
            !answer.text.contains("€69"),
            "{question:?}: {}",
            answer.text
        );
    }
    // Something that is not a product does not work: no rule about faulty items.
    for (user, question) in [
        ("ivy", "my discount code doesn't work"),
        ("jan", "checkout is not working on my phone"),
    ] {
        let answer = ask(&assistant, user, question).await;
        assert!(
            !answer.text.contains("2-year"),
            "{question:?}: {}",
            answer.text
        );
        assert!(
            !answer.text.contains("Broken"),
            "{question:?}: {}",
            answer.text
        );
    }
}

#[tokio::test]
async fn shipping_asked_in_another_language_is_answered_from_the_english_texts() {
    let assistant = assistant(true);
    for (user, question, lead_in) in [
        (
            "kai",
            "Wie hoch sind die Versandkosten nach Deutschland?",
            "Englisch",
        ),
        ("lea", "Combien coûtent les frais de port ?", "anglais"),
        ("max", "¿Envían a México?", "inglés"),
    ] {
        let answer = ask(&assistant, user, question).await;
        assert!(!answer.handed_off, "{question:?}: {}", answer.text);
        let first_line = answer.text.lines().next().unwrap_or_default();
        assert!(
            first_line.contains(lead_in),
            "{question:?}: {}",
            answer.text
        );
        assert!(
            answer.text.contains("Switzerland") || answer.text.contains("EUR"),
            "{question:?}: {}",
            answer.text
        );
        // No product list: the question is about shipping.
        assert!(!answer.text.contains('€'), "{question:?}: {}", answer.text);
    }
}

#[tokio::test]
async fn damage_and_returns_asked_in_another_language_get_the_rules_not_the_product() {
    let assistant = assistant(true);
    for (user, question, fact) in [
        (
            "ana",
            "hola!! me llegó la tetera rota, la caja venía aplastada. ¿qué hago?",
            "photo",
        ),
        (
            "chloe",
            "j'ai reçu la tasse mais elle ne me plaît pas, j'ai combien de temps pour la renvoyer ?",
            "30 days",
        ),
        (
            "jonas",
            "Die Tasse kam zerbrochen an, was nun?",
            "photo",
        ),
    ] {
        let answer = ask(&assistant, user, question).await;
        assert!(!answer.handed_off, "{question:?}: {}", answer.text);
        assert!(answer.text.contains(fact), "{question:?}: {}", answer.text);
        assert!(!answer.text.contains('€'), "no product: {question:?}: {}", answer.text);
    }
}

#[tokio::test]
async fn brewing_advice_for_a_kind_of_tea_is_not_a_product_list() {
    let assistant = assistant(true);
    for (user, question) in [
        ("bea", "how long should I steep black tea?"),
        ("bo", "what's the ideal water temperature for green tea?"),
    ] {
        let answer = ask(&assistant, user, question).await;
        assert!(answer.handed_off, "{question:?}: {}", answer.text);
        assert!(!answer.text.contains('€'), "{question:?}: {}", answer.text);
    }
    let answer = ask(
        &assistant,
        "bram",
        "what teapot do you recommend for brewing oolong?",
    )
    .await;
    assert!(
        !answer.handed_off,
        "choosing a product still gets products: {}",
        answer.text
    );
    assert!(answer.text.contains('€'), "{}", answer.text);
}

#[tokio::test]
async fn torn_between_two_teapots_is_a_choice_not_damage() {
    let assistant = assistant(true);
    let answer = ask(
        &assistant,
        "tom",
        "torn between the stoneware teapot and the clay kyusu, which one holds more?",
    )
    .await;
    assert!(!answer.handed_off, "{}", answer.text);
    assert!(
        answer.text.contains("800 ml") && answer.text.contains("300 ml"),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn a_detail_inside_a_policy_is_quoted_with_the_policy_cited() {
    let assistant = assistant(true);
    let answer = ask(&assistant, "ed", "What does express delivery cost?").await;
    assert!(!answer.handed_off, "{}", answer.text);
    assert!(answer.text.contains("9.90"), "{}", answer.text);
}

#[tokio::test]
async fn cheapest_tea_names_the_cheapest_tea() {
    let assistant = assistant(true);
    let answer = ask(&assistant, "cai", "What's your cheapest tea?").await;
    assert!(!answer.handed_off, "{}", answer.text);
    let first = answer.text.lines().next().unwrap_or_default();
    assert!(
        first.contains("Vanilla Rooibos") && first.contains("€6.90"),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn products_are_found_by_property_and_compared_from_the_catalogue() {
    let assistant = assistant(true);
    let decaf = ask(
        &assistant,
        "pat",
        "which tea would you recommend for someone who doesn't like caffeine?",
    )
    .await;
    assert!(decaf.text.contains("Vanilla Rooibos"), "{}", decaf.text);
    let compared = ask(
        &assistant,
        "quinn",
        "what's the difference between sencha and oolong?",
    )
    .await;
    for fact in ["Morning Sencha", "€8.90", "Milky Oolong", "€11.50"] {
        assert!(compared.text.contains(fact), "{fact}: {}", compared.text);
    }
}

#[tokio::test]
async fn typos_still_find_the_answer() {
    let assistant = assistant(true);
    let answer = ask(&assistant, "tim", "kettel price").await;
    assert!(answer.text.contains("€69.00"), "{}", answer.text);
    let answer = ask(&assistant, "tia", "retrun polcy?").await;
    assert!(answer.text.contains("30 days"), "{}", answer.text);
}

#[tokio::test]
async fn a_follow_up_is_read_with_the_previous_question() {
    let assistant = assistant(true);
    let first = ask(&assistant, "arjun", "how much is the clay kyusu").await;
    assert!(first.text.contains("€54.00"), "{}", first.text);
    let follow_up = ask(&assistant, "arjun", "is it in stock?").await;
    assert!(
        follow_up.text.contains("Clay Kyusu") && follow_up.text.contains("6 left"),
        "{}",
        follow_up.text
    );
    // The same words from someone with no previous question name no product.
    let alone = ask(&assistant, "newcomer", "is it in stock?").await;
    assert!(!alone.text.contains("Clay Kyusu"), "{}", alone.text);
}

#[tokio::test]
async fn a_price_question_in_another_language_finds_the_product() {
    let assistant = assistant(true);
    let german = ask(&assistant, "jonas", "Wie viel kostet euer Wasserkocher?").await;
    assert!(!german.handed_off, "{}", german.text);
    assert!(german.text.contains("69"), "{}", german.text);
    let chinese = ask(&assistant, "li", "Milky Oolong 还有货吗？").await;
    assert!(chinese.text.contains("32"), "{}", chinese.text);
}

#[tokio::test]
async fn an_uncovered_question_in_another_language_is_handed_off_in_that_language() {
    let assistant = assistant(true);
    let answer = ask(
        &assistant,
        "marie",
        "Est-ce que vous faites une réduction pour les étudiants ?",
    )
    .await;
    assert!(answer.handed_off, "{}", answer.text);
    assert!(!answer.text.contains("I'm not sure"), "{}", answer.text);
}

#[tokio::test]
async fn a_greeting_gets_a_template_reply_and_no_hand_off() {
    let assistant = assistant(true);
    let answer = ask(&assistant, "gus", "hey whats up").await;
    assert!(!answer.handed_off, "{}", answer.text);
    assert!(answer.text.contains("Kettle & Kiln"), "{}", answer.text);
    let thanks = ask(&assistant, "gus", "thanks, that was really helpful").await;
    assert!(!thanks.handed_off, "{}", thanks.text);
}

#[tokio::test]
async fn a_general_question_is_never_handed_to_the_team() {
    let assistant = assistant(true);
    for question in [
        "What's the capital of France?",
        "Write me a short poem about tea",
    ] {
        let answer = ask(&assistant, "poet", question).await;
        assert!(!answer.handed_off, "{question}: {}", answer.text);
        assert!(
            !answer.text.contains("Source:"),
            "{question}: {}",
            answer.text
        );
    }
}

#[tokio::test]
async fn an_unsupported_shop_question_hands_off_without_an_invented_answer() {
    let assistant = assistant(true);
    for question in [
        "Do you offer gift wrapping?",
        "Can the Kiln Teapot go in the dishwasher?",
    ] {
        let answer = ask(&assistant, "ivy", question).await;
        assert!(answer.handed_off, "{question}: {}", answer.text);
        assert!(
            answer.text.contains("not sure"),
            "{question}: {}",
            answer.text
        );
    }
}

#[tokio::test]
async fn a_case_for_a_person_is_handed_off_with_the_conversation() {
    let assistant = assistant(true);
    let mut events = assistant.subscribe_moderator_events();
    ask(&assistant, "zoe", "Where is my order?").await;
    let answer = ask(
        &assistant,
        "zoe",
        "Tracking says my parcel was delivered on Tuesday but I never got anything",
    )
    .await;
    assert!(answer.handed_off, "{}", answer.text);
    let mut conversation = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let ModeratorEvent::Handoff {
            needs_person: true,
            conversation: turns,
            ..
        } = event
        {
            conversation = turns;
        }
    }
    assert_eq!(
        conversation.len(),
        1,
        "the earlier turn goes with the hand-off"
    );
    assert_eq!(conversation[0].0, "Where is my order?");
}

#[tokio::test]
async fn without_the_embedding_model_retrieval_still_answers_lexically() {
    let assistant = assistant(false);
    let answer = ask(&assistant, "lex", "where is my parcel??").await;
    assert!(!answer.handed_off, "{}", answer.text);
    assert!(answer.text.contains("tracking"), "{}", answer.text);
}
