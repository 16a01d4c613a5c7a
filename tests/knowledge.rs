//! `shopkeep knowledge candidates` and `knowledge accept` through the binary: a resolved
//! ticket's answer is listed, refused when it would break the prompts folder (nothing
//! changes), then accepted into it, and `chat` answers the same question in new words
//! from it.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use shopkeep::store::{NewTicket, Store};
use support::{copied_prompts, test_model};

const CUSTOMER: &str = "400000000000000001";
const ASKED: &str = "do u do gift wrapping??";
const ANSWER: &str = "Yes: we gift-wrap any order in recycled paper at no charge. Write \"gift wrap\" in the order note at checkout.";
const NEW_WORDS: &str = "can you wrap my order as a present?";

fn shopkeep(db: &Path, prompts: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopkeep"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SHOPKEEP_") && key != "SHOPKEEP_CACHE_DIR" {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("SHOPKEEP_ENV_FILE", "off")
        .env("SHOPKEEP_DB", db)
        .env("SHOPKEEP_PROMPTS_DIR", prompts)
        .env("SHOPKEEP_MAX_NEW_TOKENS", "16")
        .output()
        .expect("shopkeep runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeds(output: Output) -> String {
    assert!(output.status.success(), "failed: {}", text(&output));
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn chat_once(db: &Path, prompts: &Path, question: &str) -> String {
    let model = test_model("tiny-gpt2");
    succeeds(shopkeep(
        db,
        prompts,
        &[
            "chat",
            "--user",
            "someone-else",
            "--once",
            question,
            "--model-dir",
            model.to_str().unwrap(),
        ],
    ))
}

#[test]
fn a_candidate_is_listed_refused_when_invalid_then_accepted_and_answers_new_words() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shopkeep.sqlite");
    let prompts = copied_prompts();
    let prompts = prompts.path();
    let learned = prompts.join("knowledge/from-the-team.toml");
    {
        let store = Store::open(db.to_str().unwrap()).unwrap();
        let (ticket, _) = store
            .open_ticket(&NewTicket {
                user: CUSTOMER,
                channel_id: Some("1"),
                question_message_id: Some("2"),
                question: ASKED,
                at: 1,
                routing: Default::default(),
            })
            .unwrap();
        store.resolve_ticket(ticket.id, "5", ANSWER, 2).unwrap();
    }
    let before = chat_once(&db, prompts, NEW_WORDS);
    assert!(!before.contains("recycled paper"), "known before: {before}");

    let listed = succeeds(shopkeep(&db, prompts, &["knowledge", "candidates"]));
    assert!(
        listed.contains(ASKED) && listed.contains("recycled paper"),
        "{listed}"
    );
    assert!(listed.contains("would be `team-1`"), "{listed}");

    // An id the demo FAQ already has: refused, nothing written, still a candidate.
    let refused = shopkeep(
        &db,
        prompts,
        &["knowledge", "accept", "1", "--entry-id", "order-cancel"],
    );
    assert!(!refused.status.success());
    let refusal = text(&refused);
    assert!(refusal.contains("duplicate id `order-cancel`"), "{refusal}");
    assert!(
        refusal.contains(&learned.display().to_string()),
        "{refusal}"
    );
    assert!(!learned.exists(), "written although refused");
    assert!(succeeds(shopkeep(&db, prompts, &["knowledge", "candidates"])).contains(ASKED));

    let accepted = succeeds(shopkeep(
        &db,
        prompts,
        &[
            "knowledge",
            "accept",
            "1",
            "--question",
            "Do you offer gift wrapping?",
        ],
    ));
    assert!(accepted.contains("team-1"), "{accepted}");
    let written = std::fs::read_to_string(&learned).unwrap();
    assert!(
        written.contains("question = \"Do you offer gift wrapping?\""),
        "{written}"
    );
    let dir_arg = prompts.to_str().unwrap();
    succeeds(shopkeep(&db, prompts, &["check-prompts", dir_arg]));

    let after = chat_once(&db, prompts, NEW_WORDS);
    assert!(after.contains("recycled paper"), "{after}");
    assert!(
        after.contains("Do you offer gift wrapping?"),
        "not cited: {after}"
    );

    let pending = succeeds(shopkeep(&db, prompts, &["knowledge", "candidates"]));
    assert!(pending.contains("No candidate FAQ entries"), "{pending}");
    let all = succeeds(shopkeep(
        &db,
        prompts,
        &["knowledge", "candidates", "--all", "--json"],
    ));
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all[0]["entry_id"], "team-1");
    let again = shopkeep(&db, prompts, &["knowledge", "accept", "1"]);
    assert!(
        text(&again).contains("accepted already"),
        "{}",
        text(&again)
    );

    // The candidate holds the customer's words: it goes with them.
    let export = succeeds(shopkeep(&db, prompts, &["user", "export", CUSTOMER]));
    assert!(export.contains(ASKED), "{export}");
    let forgot = shopkeep(&db, prompts, &["user", "forget", CUSTOMER]);
    assert!(
        text(&forgot).contains("1 candidate FAQ entr"),
        "{}",
        text(&forgot)
    );
    let export = succeeds(shopkeep(&db, prompts, &["user", "export", CUSTOMER]));
    assert!(!export.contains(ASKED), "{export}");
}
