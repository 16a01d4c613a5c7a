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

use support::cli::{last_perplexity, stdout_of};
use support::default_model;

/// `shopkeep ARGS` on the default model and the demo shop, with a store in memory.
fn shopkeep(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopkeep"));
    command
        .args(args)
        .env("SHOPKEEP_MODEL_DIR", default_model())
        .env("SHOPKEEP_DB", ":memory:")
        .env(
            "SHOPKEEP_PROMPTS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
        );
    command
}

const PARAGRAPH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tools/data/english_paragraph.txt"
);

#[test]
#[ignore = "needs the default model: ./scripts/setup.sh default-model"]
fn perplexity_on_english_prose_is_in_the_tens() {
    let value = last_perplexity(&mut shopkeep(&["perplexity", "--text-file", PARAGRAPH]));
    // A correct conversion scores about 24; a wrong Q/K convention about 200.
    assert!((10.0..60.0).contains(&value), "{value}");
}

#[test]
#[ignore = "needs the default model: ./scripts/setup.sh default-model"]
fn capital_of_france_is_paris() {
    let answer = stdout_of(&mut shopkeep(&[
        "chat",
        "--once",
        "What is the capital of France?",
    ]));
    assert!(answer.contains("Paris"), "{answer}");
}

/// `shopkeep perplexity` on the paragraph with the model in `dir`.
fn perplexity_of(dir: &std::path::Path) -> f64 {
    last_perplexity(shopkeep(&["perplexity", "--text-file", PARAGRAPH, "--model-dir"]).arg(dir))
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
