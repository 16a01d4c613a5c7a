//! `shopkeep insights` on a store filled by a scripted session of `shopkeep chat` runs
//! (the tiny random GPT-2; routing and hand-offs do not depend on what it generates).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::test_model;

fn shopkeep(db: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_shopkeep"))
        .args(args)
        .env("SHOPKEEP_DB", db)
        .env("SHOPKEEP_MAX_NEW_TOKENS", "4")
        .env(
            "SHOPKEEP_PROMPTS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
        )
        .output()
        .expect("shopkeep runs");
    assert!(
        output.status.success(),
        "shopkeep {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn insights_show_the_topics_and_the_unanswered_questions_of_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    let model = test_model("tiny-gpt2");
    let session = [
        ("ann", "where is my parcel"),
        ("bo", "where is my parcel"),
        ("cy", "can I change my delivery address"),
        ("di", "do you sell tractors"),
        ("ed", "Do you sell tractors"),
        ("fi", "Do you offer gift wrapping for corporate orders?"),
    ];
    for (user, question) in session {
        shopkeep(
            &db,
            &[
                "chat",
                "--user",
                user,
                "--once",
                question,
                "--model-dir",
                model.to_str().unwrap(),
            ],
        );
    }
    let output = shopkeep(&db, &["insights", "--days", "1", "--format", "json"]);
    let insights: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(insights["questions"], 6, "{insights:#}");
    assert_eq!(insights["outcomes"]["handoff"], 3, "{insights:#}");
    assert_eq!(
        insights["topics"][0]["intent"], "track_order",
        "{insights:#}"
    );
    assert_eq!(insights["topics"][0]["questions"], 2, "{insights:#}");
    assert!(
        insights["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["intent"] == "change_shipping_address"),
        "{insights:#}"
    );
    let unanswered: Vec<(&str, u64)> = insights["unanswered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["question"].as_str().unwrap(),
                u["times"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        unanswered,
        [
            ("do you sell tractors", 2),
            ("Do you offer gift wrapping for corporate orders?", 1)
        ],
        "{insights:#}"
    );
    let csv = shopkeep(&db, &["insights", "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.contains("topic,track_order,2\n"), "{csv}");
    let text = shopkeep(&db, &["insights"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("\"do you sell tractors\" ×2 (handed off)"),
        "{text}"
    );
}
