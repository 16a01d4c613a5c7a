//! Drives the `shopkeep` binary's prompt tools: `check-prompts` and `eval intents`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::stdout_of;
use support::{copied_prompts, test_model};

fn shopkeep() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopkeep"));
    command.env_remove("SHOPKEEP_PROMPTS_DIR");
    command
}

fn demo_prompts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts")
}

#[test]
fn check_prompts_accepts_the_demo_folder() {
    let output = shopkeep()
        .arg("check-prompts")
        .arg(demo_prompts())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("OK: 32 FAQ entries"), "{stdout}");
}

#[test]
fn check_prompts_rejects_a_broken_template_naming_file_and_line() {
    let temp = copied_prompts();
    let dir = temp.path().to_path_buf();
    let template = dir.join("templates").join("summary_map.j2");
    let mut text = std::fs::read_to_string(&template).unwrap();
    let broken_line = text.lines().count() + 1;
    text.push_str("{% for message in %}\n");
    std::fs::write(&template, text).unwrap();

    let output = shopkeep().arg("check-prompts").arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        stderr.contains(&format!("summary_map.j2:{broken_line}:")),
        "expected summary_map.j2:{broken_line} in:\n{stderr}"
    );
}

#[test]
fn eval_intents_reports_per_intent_accuracy_and_ends_with_accuracy() {
    let temp = tempfile::tempdir().unwrap();
    let csv = temp.path().join("small.csv");
    std::fs::write(
        &csv,
        "utterance,intent,category\n\
         where is my parcel??,track_order,ORDER\n\
         I want to cancel my order,cancel_order,ORDER\n\
         \"how do I reset my password, please\",recover_password,ACCOUNT\n\
         which payment methods do you accept,check_payment_methods,PAYMENT\n",
    )
    .unwrap();
    for zero_shot in [false, true] {
        let mut command = shopkeep();
        command
            .args(["eval", "intents", "--csv"])
            .arg(&csv)
            .arg("--prompts")
            .arg(demo_prompts());
        if zero_shot {
            command.arg("--zero-shot");
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{output:?}");
        assert!(stdout.contains("track_order"), "{stdout}");
        assert!(stdout.contains("top confusions"), "{stdout}");
        let last = stdout.trim_end().lines().last().unwrap();
        assert_eq!(last, "accuracy: 1.000", "{stdout}");
    }
}

#[test]
fn eval_intents_fails_on_a_csv_without_labels() {
    let temp = tempfile::tempdir().unwrap();
    let csv = temp.path().join("bad.csv");
    std::fs::write(&csv, "text\nhello\n").unwrap();
    let output = shopkeep()
        .args(["eval", "intents", "--csv"])
        .arg(&csv)
        .arg("--prompts")
        .arg(demo_prompts())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("utterance"));
}

/// `chat --once` through the whole pipeline on the tiny random model: what the model says
/// is noise, but the routing, the guard and the citation are real.
fn chat_once(question: &str) -> String {
    let model = test_model("tiny-gpt2");
    stdout_of(
        shopkeep()
            .args(["chat", "--once", question, "--model-dir"])
            .arg(&model)
            .env("SHOPKEEP_DB", ":memory:")
            .env("SHOPKEEP_PROMPTS_DIR", demo_prompts())
            .env("SHOPKEEP_MAX_NEW_TOKENS", "24"),
    )
}

#[test]
fn a_parcel_question_is_answered_with_the_tracking_entry_cited() {
    let answer = chat_once("where is my parcel??");
    assert!(
        answer.trim_end().ends_with(
            "Source: Where is my order? (https://kettleandkiln.example/help/track-order)"
        ),
        "{answer}"
    );
}

#[test]
fn an_uncovered_shop_question_gets_an_honest_not_sure_without_the_model() {
    let answer = chat_once("do you sell refurbished tractors with a lifetime warranty?");
    assert!(answer.contains("I'm not sure about that one"), "{answer}");
    assert!(answer.contains("follow up"), "{answer}");
}
