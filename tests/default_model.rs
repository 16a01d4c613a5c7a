//! Checks on the real default model (SmolLM2-135M-Instruct). Opt-in, because the model is
//! prepared by `./scripts/run.sh` (or `./scripts/setup.sh default-model`), not by the test
//! script, and runs slowly in debug builds:
//!
//! ```sh
//! ./scripts/setup.sh default-model && SHOPKEEP_WEIGHTS=fp32 ./scripts/setup.sh default-model
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

/// `shopkeep perplexity` on the paragraph with the model in `dir`.
fn perplexity_of(dir: &std::path::Path) -> f64 {
    let paragraph = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/data/english_paragraph.txt"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_shopkeep"))
        .args(["perplexity", "--text-file", paragraph, "--model-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap();
    last.strip_prefix("perplexity: ").unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs the 4-bit and fp32 default models: ./scripts/setup.sh default-model && SHOPKEEP_WEIGHTS=fp32 ./scripts/setup.sh default-model"]
fn four_bit_default_is_within_one_percent_of_fp32_perplexity() {
    let models = shopkeep::config::cache_dir().join("models");
    // The default (`SHOPKEEP_WEIGHTS` unset or q4) is the 4-bit model in the fused layout.
    let (q4, fp32) = (
        shopkeep::config::default_model_dir_for("q4"),
        models.join("smollm2-135m-instruct"),
    );
    for dir in [&q4, &fp32] {
        assert!(
            dir.join("model.onnx").is_file(),
            "{} is missing",
            dir.display()
        );
    }
    let (quantized, reference) = (perplexity_of(&q4), perplexity_of(&fp32));
    assert!(
        (quantized - reference).abs() / reference <= 0.01,
        "q4 {quantized}, fp32 {reference}"
    );
}
