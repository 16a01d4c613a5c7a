//! Checks on the real default model (SmolLM2-135M-Instruct). Opt-in, because the model is
//! prepared by `./scripts/run.sh` (or `./scripts/setup.sh default-model`), not by the test
//! script, and runs slowly in debug builds:
//!
//! ```sh
//! ./scripts/setup.sh default-model
//! cargo test --release --test default_model -- --ignored
//! ```

mod support;

use std::process::Command;

use support::default_model;

fn shopkeep(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_shopkeep"))
        .args(args)
        .env("SHOPKEEP_MODEL_DIR", default_model())
        .env("SHOPKEEP_DB", ":memory:")
        .env(
            "SHOPKEEP_PROMPTS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
#[ignore = "needs the default model: ./scripts/setup.sh default-model"]
fn perplexity_on_english_prose_is_in_the_tens() {
    let paragraph = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/data/english_paragraph.txt"
    );
    let stdout = shopkeep(&["perplexity", "--text-file", paragraph]);
    let last = stdout.lines().last().unwrap();
    let value: f64 = last.strip_prefix("perplexity: ").unwrap().parse().unwrap();
    // A correct conversion scores about 24; a wrong Q/K convention about 200.
    assert!((10.0..60.0).contains(&value), "{last}");
}

#[test]
#[ignore = "needs the default model: ./scripts/setup.sh default-model"]
fn capital_of_france_is_paris() {
    let answer = shopkeep(&["chat", "--once", "What is the capital of France?"]);
    assert!(answer.contains("Paris"), "{answer}");
}
