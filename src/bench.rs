//! `shopkeep bench`: decode speed of the engine against a plain onnxruntime Python greedy
//! loop (tools/reference_greedy.py) on the same model file, measured in the same run with
//! the two interleaved, so the ratio is fair on a noisy machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::engine::{EngineHandle, GenerateRequest, SamplingParams};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub model_dir: PathBuf,
    pub threads: usize,
    pub runs: usize,
    pub prompt: String,
    pub new_tokens: usize,
    /// Python with onnxruntime, numpy and tokenizers (the tools venv).
    pub python: PathBuf,
    /// The repository's tools/ folder.
    pub tools_dir: PathBuf,
}

/// One row of the result table.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub name: String,
    pub tokens_per_s: f64,
    pub prefill_ms: f64,
    pub samples: Vec<f64>,
}

/// The whole report; `ratios` are the machine-readable comparisons.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub model_dir: PathBuf,
    pub threads: usize,
    pub runs: usize,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    pub rows: Vec<BenchRow>,
    pub ratios: serde_json::Map<String, serde_json::Value>,
}

/// Median of non-empty samples.
pub fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Runs the baseline and the engine `runs` times each, interleaved, and reports medians.
pub async fn run(options: &BenchOptions, engine: &EngineHandle) -> Result<BenchReport> {
    let prompt_tokens = engine.tokenizer().count(&options.prompt);
    let request = GenerateRequest {
        prompt: options.prompt.clone(),
        max_new_tokens: options.new_tokens,
        sampling: SamplingParams::greedy(),
        stop: Vec::new(),
        use_kv_cache: true,
        prefix_cache_key: None,
    };
    // Warm-up: the first run pays for allocations in both.
    engine.generate(request.clone()).finish().await?;
    python_greedy(options)?;

    let (mut ours, mut ours_prefill, mut python, mut python_prefill) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..options.runs {
        let (rate, prefill) = python_greedy(options)?;
        python.push(rate);
        python_prefill.push(prefill);
        let generated = engine.generate(request.clone()).finish().await?;
        if generated.output_ids.len() != options.new_tokens {
            bail!(
                "the engine stopped after {} of {} tokens (an end token?); use a model or prompt that runs to the limit",
                generated.output_ids.len(),
                options.new_tokens
            );
        }
        ours.push(generated.tokens_per_s);
        ours_prefill.push(generated.prefill_ms);
    }
    let baseline = BenchRow {
        name: "(a) onnxruntime Python greedy loop, KV cache, batch 1".into(),
        tokens_per_s: median(&python),
        prefill_ms: median(&python_prefill),
        samples: python,
    };
    let engine_row = BenchRow {
        name: "(b) shopkeep engine, batch 1".into(),
        tokens_per_s: median(&ours),
        prefill_ms: median(&ours_prefill),
        samples: ours,
    };
    let mut ratios = serde_json::Map::new();
    ratios.insert(
        "b_over_a".into(),
        serde_json::json!(engine_row.tokens_per_s / baseline.tokens_per_s),
    );
    Ok(BenchReport {
        model_dir: options.model_dir.clone(),
        threads: options.threads,
        runs: options.runs,
        prompt_tokens,
        new_tokens: options.new_tokens,
        rows: vec![baseline, engine_row],
        ratios,
    })
}

/// One run of tools/reference_greedy.py; returns (decode tokens/s, prefill ms).
fn python_greedy(options: &BenchOptions) -> Result<(f64, f64)> {
    let script = options.tools_dir.join("reference_greedy.py");
    let output = Command::new(&options.python)
        .arg(&script)
        .arg("--model-dir")
        .arg(&options.model_dir)
        .args(["--prompt", &options.prompt])
        .args(["--max-new-tokens", &options.new_tokens.to_string()])
        .args(["--threads", &options.threads.to_string()])
        .args(["--eos", "-1", "--json"])
        .output()
        .with_context(|| {
            format!(
                "could not run {} {}",
                options.python.display(),
                script.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "the Python baseline failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line: serde_json::Value = serde_json::from_slice(&output.stdout)
        .context("the Python baseline did not print one JSON line")?;
    let rate = line["tokens_per_s"].as_f64().context("no tokens_per_s")?;
    let prefill = line["prefill_ms"].as_f64().unwrap_or(0.0);
    Ok((rate, prefill))
}

/// The report as a plain-text table.
pub fn table(report: &BenchReport) -> String {
    let mut out = format!(
        "model: {}\nthreads: {}, runs: {} (medians), prompt: {} tokens, new tokens: {}\n\n{:<58} {:>10} {:>12}\n",
        report.model_dir.display(),
        report.threads,
        report.runs,
        report.prompt_tokens,
        report.new_tokens,
        "configuration",
        "tokens/s",
        "prefill ms"
    );
    for row in &report.rows {
        out.push_str(&format!(
            "{:<58} {:>10.1} {:>12.1}\n",
            row.name, row.tokens_per_s, row.prefill_ms
        ));
    }
    out.push('\n');
    for (name, value) in &report.ratios {
        out.push_str(&format!(
            "{name}: {:.3}\n",
            value.as_f64().unwrap_or(f64::NAN)
        ));
    }
    out
}

/// The tools folder next to the binary's source tree, or `./tools`.
pub fn default_tools_dir() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools");
    if source.is_dir() {
        source
    } else {
        PathBuf::from("tools")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
