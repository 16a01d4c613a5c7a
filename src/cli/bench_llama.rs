//! `shopkeep bench` rows (h) and (i): the default model on the embedded engine next to
//! llama.cpp on the GGUF it was built from, through llama-cpp-python's low-level API
//! (tools/llama_cpp_reference.py, run by the Python of `scripts/setup.sh llama-server`), on
//! the same token ids, greedy, with the same threads; the runs of the two are interleaved.
//!
//! (h) batch 1: decode tokens/s. (i) `concurrent` copies of the prompt at once: the engine's
//! conversations (one batched prefill, then batched decode) against llama.cpp's batched
//! decoding of as many sequences in one `llama_batch` per step; aggregate decode tokens/s
//! (the sum of the sequences' decode rates) and time to first token / prefill.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use shopkeep::engine::{EngineHandle, GenerateRequest, ModelDir, SamplingParams, SessionOptions};

use super::bench::first_token_and_end;
use super::bench_report::{median, BenchRow};
use super::bench_server::{prepared, ServerBench};

/// One llama.cpp measurement: (decode tokens/s over all sequences, prefill ms, output ids of
/// sequence 0).
type LlamaRun = (f64, f64, Vec<u32>);

/// Rows (h) and (i) with their ratios, or why they were skipped.
pub(super) async fn rows(
    bench: &ServerBench,
) -> Result<Result<(Vec<BenchRow>, Map<String, Value>), String>> {
    let (python, gguf, model) = match prepared() {
        Ok(found) => found,
        Err(why) => return Ok(Err(why)),
    };
    let engine = EngineHandle::load(&model, &SessionOptions::with_threads(bench.threads))?;
    let prompt_ids = engine.tokenizer().encode(&bench.prompt)?;
    let llama = LlamaCpp {
        python,
        gguf,
        script: super::bench::default_tools_dir().join("llama_cpp_reference.py"),
        threads: bench.threads,
        new_tokens: bench.new_tokens,
        prompt_ids,
    };
    let request = GenerateRequest {
        prompt: bench.prompt.clone(),
        max_new_tokens: bench.new_tokens,
        sampling: SamplingParams::greedy(),
        stop: Vec::new(),
        use_kv_cache: true,
        prefix_cache_key: None,
    };
    let label = model_label(&model);

    engine.generate(request.clone()).finish().await?;
    let (mut ours, mut ours_prefill, mut theirs, mut theirs_prefill) =
        (vec![], vec![], vec![], vec![]);
    let mut same_ids = true;
    for _ in 0..bench.runs {
        let (rate, prefill, ids) = llama.run(1)?;
        theirs.push(rate);
        theirs_prefill.push(prefill);
        let generated = engine.generate(request.clone()).finish().await?;
        ours.push(generated.tokens_per_s);
        ours_prefill.push(generated.prefill_ms);
        same_ids &= ids.starts_with(&generated.output_ids) && !generated.output_ids.is_empty();
    }
    let (mut ours_many, mut ours_first, mut theirs_many, mut theirs_many_prefill) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..bench.runs {
        let (rate, prefill, _) = llama.run(bench.concurrent)?;
        theirs_many.push(rate);
        theirs_many_prefill.push(prefill);
        let (rate, first) = concurrent(&engine, &request, bench.concurrent).await?;
        ours_many.push(rate);
        ours_first.push(first);
    }
    let row = |name: String, samples: Vec<f64>, prefills: &[f64]| BenchRow {
        name,
        tokens_per_s: median(&samples),
        prefill_ms: median(prefills),
        samples,
        overhead_pct: None,
    };
    let n = bench.concurrent;
    let rows = vec![
        row(
            format!("(h) shopkeep engine, {label}, batch 1"),
            ours,
            &ours_prefill,
        ),
        row(
            "(h) llama.cpp (llama-cpp-python), the same GGUF, batch 1".into(),
            theirs,
            &theirs_prefill,
        ),
        row(
            format!("(i) shopkeep engine, {label}, {n} at once (aggregate decode; TTFT median)"),
            ours_many,
            &ours_first,
        ),
        row(
            format!("(i) llama.cpp batched API, {n} sequences (aggregate decode; prefill)"),
            theirs_many,
            &theirs_many_prefill,
        ),
    ];
    let rate = |i: usize| rows[i].tokens_per_s;
    let mut ratios = Map::new();
    ratios.insert("h_engine_over_llama_cpp".into(), json!(rate(0) / rate(1)));
    ratios.insert("i_engine_over_llama_cpp".into(), json!(rate(2) / rate(3)));
    ratios.insert("i_engine_over_h_engine".into(), json!(rate(2) / rate(0)));
    ratios.insert(
        "i_llama_cpp_over_h_llama_cpp".into(),
        json!(rate(3) / rate(1)),
    );
    ratios.insert("h_same_greedy_ids".into(), json!(same_ids));
    Ok(Ok((rows, ratios)))
}

/// "SmolLM2-135M-Instruct (q4)": the manifest's name and weights.
fn model_label(model: &Path) -> String {
    match ModelDir::open(model) {
        Ok(dir) => format!(
            "{} ({})",
            dir.name(),
            dir.manifest.weights.as_deref().unwrap_or("fp32")
        ),
        Err(_) => model.display().to_string(),
    }
}

/// `concurrent` copies of `request` submitted together; returns (sum of the sequences'
/// decode rates, median time to first token in ms).
async fn concurrent(
    engine: &EngineHandle,
    request: &GenerateRequest,
    concurrent: usize,
) -> Result<(f64, f64)> {
    let started = std::time::Instant::now();
    let tasks: Vec<_> = engine
        .generate_many(vec![request.clone(); concurrent])
        .into_iter()
        .map(|stream| tokio::spawn(first_token_and_end(stream, started)))
        .collect();
    let (mut rate, mut firsts) = (0.0, Vec::new());
    for task in tasks {
        let (generated, first) = task.await??;
        rate += generated.tokens_per_s;
        firsts.push(first);
    }
    Ok((rate, median(&firsts)))
}

/// How to run tools/llama_cpp_reference.py.
struct LlamaCpp {
    python: PathBuf,
    gguf: PathBuf,
    script: PathBuf,
    threads: usize,
    new_tokens: usize,
    prompt_ids: Vec<u32>,
}

impl LlamaCpp {
    /// One generation of `parallel` sequences in a fresh process (the script warms up first).
    fn run(&self, parallel: usize) -> Result<LlamaRun> {
        let ids: Vec<String> = self.prompt_ids.iter().map(u32::to_string).collect();
        let output = Command::new(&self.python)
            .arg(&self.script)
            .arg("--gguf")
            .arg(&self.gguf)
            .args(["--prompt-ids", &ids.join(",")])
            .args(["--max-new-tokens", &self.new_tokens.to_string()])
            .args(["--threads", &self.threads.to_string()])
            .args(["--parallel", &parallel.to_string(), "--json"])
            .output()
            .with_context(|| format!("could not run {}", self.python.display()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            bail!("the llama.cpp reference failed: {}", tail.join(" | "));
        }
        let line: Value = serde_json::from_slice(&output.stdout)
            .context("the llama.cpp reference did not print one JSON line")?;
        let rate = line["tokens_per_s"].as_f64().context("no tokens_per_s")?;
        let prefill = line["prefill_ms"].as_f64().context("no prefill_ms")?;
        let ids = line["output_ids"]
            .as_array()
            .context("no output_ids")?
            .iter()
            .filter_map(|id| id.as_u64().map(|id| id as u32))
            .collect();
        Ok((rate, prefill, ids))
    }
}
