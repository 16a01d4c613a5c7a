//! `shopkeep bench`: decode speed of the engine against a plain onnxruntime Python greedy
//! loop (tools/reference_greedy.py) on the same model file, measured in the same run with
//! the two interleaved, so the ratio is fair on a noisy machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::bench_report::{median, table, BenchReport, BenchRow};
use shopkeep::engine::{
    EngineHandle, EngineTiming, GenerateRequest, Generated, GenerationStream, Optimization,
    SamplingParams, SchedulerOptions, SessionOptions, StreamEvent,
};

#[derive(Args)]
pub(super) struct BenchArgs {
    /// Model directory (default: the GPT-2-small-shaped random model from `scripts/setup.sh bench-models`).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    runs: usize,
    #[arg(long, default_value_t = 64)]
    new_tokens: usize,
    /// Concurrent conversations for the batching measurement.
    #[arg(long, default_value_t = 8)]
    concurrent: usize,
    /// History tokens for the prefix-reuse measurement.
    #[arg(long, default_value_t = 500)]
    history_tokens: usize,
    /// Quantized model for the int8 row (default: gpt2-small-int8 in the cache, if prepared).
    #[arg(long)]
    quantized_model_dir: Option<PathBuf>,
    /// Python with onnxruntime for the baseline (default: the tools venv in the cache).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Also measure batch-1 decode under each session setting (threads, graph optimisation
    /// level, spinning).
    #[arg(long)]
    tuning: bool,
    /// Skip rows (f) and (g), llama-cpp-python's server: it answers one request at a time,
    /// so its concurrent row takes `--concurrent` times as long as batch 1.
    #[arg(long)]
    no_server: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// A whole number of at least 1, for clap.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(error) => Err(error.to_string()),
    }
}

/// About 32 GPT-2 tokens of ordinary text.
const BENCH_PROMPT: &str = "Thank you for shopping with us. Your order has been packed and will leave our warehouse tomorrow morning, and you will receive a tracking link by email within a day";

/// Measures and prints the report (a table, or one JSON line with `--json`).
pub(super) fn bench(args: BenchArgs) -> Result<()> {
    let cache = shopkeep::config::cache_dir();
    let model_dir = args
        .model_dir
        .unwrap_or_else(|| cache.join("models/gpt2-small-random"));
    if !model_dir.join("model.onnx").is_file() {
        bail!(
            "{} has no model.onnx; run ./scripts/setup.sh bench-models first",
            model_dir.display()
        );
    }
    let options = BenchOptions {
        model_dir: model_dir.clone(),
        threads: args.threads,
        runs: args.runs,
        prompt: BENCH_PROMPT.to_string(),
        new_tokens: args.new_tokens,
        python: args.python.unwrap_or_else(|| cache.join("venv/bin/python")),
        tools_dir: default_tools_dir(),
        concurrent: args.concurrent,
        history_tokens: args.history_tokens,
        quantized_model_dir: args
            .quantized_model_dir
            .or_else(|| Some(cache.join("models/gpt2-small-int8")))
            .filter(|dir| dir.join("model.onnx").is_file()),
        tuning: args.tuning,
    };
    // First, while this process is small: a child's peak counts its parent's resident set
    // at the fork.
    let memory = super::bench_memory::rows(options.runs, options.threads)?;
    let engine = EngineHandle::load(&model_dir, &SessionOptions::with_threads(args.threads))?;
    let runtime = super::runtime()?;
    let mut report = runtime.block_on(run(&options, &engine))?;
    drop(engine);
    let server = super::bench_server::ServerBench {
        threads: options.threads,
        runs: options.runs,
        prompt: options.prompt.clone(),
        new_tokens: options.new_tokens,
        concurrent: options.concurrent,
    };
    if args.no_server {
        report.server_skipped = Some("--no-server".into());
    } else {
        match runtime.block_on(super::bench_server::rows(&server))? {
            Ok(rows) => report.server_rows = rows,
            Err(why) => report.server_skipped = Some(why),
        }
    }
    match runtime.block_on(super::bench_llama::rows(&server))? {
        Ok((rows, ratios)) => {
            report.llama_cpp_rows = rows;
            report.ratios.extend(ratios);
        }
        Err(why) => report.llama_cpp_skipped = Some(why),
    }
    (report.memory_rows, report.memory_skipped) = match memory {
        Ok(rows) => (rows, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// What to measure.
#[derive(Debug, Clone)]
struct BenchOptions {
    model_dir: PathBuf,
    threads: usize,
    runs: usize,
    prompt: String,
    new_tokens: usize,
    /// Python with onnxruntime, numpy and tokenizers (the tools venv).
    python: PathBuf,
    /// The repository's tools/ folder.
    tools_dir: PathBuf,
    /// Concurrent conversations for the batching row (c).
    concurrent: usize,
    /// History length for the prefix-reuse row (d), in tokens.
    history_tokens: usize,
    /// A quantized variant of the same model for row (e), if prepared.
    quantized_model_dir: Option<PathBuf>,
    /// Also measure batch-1 decode under each session setting (threads, graph
    /// optimisation level, spinning).
    tuning: bool,
}

/// Runs the baseline and the engine `runs` times each, interleaved, and reports medians.
async fn run(options: &BenchOptions, engine: &EngineHandle) -> Result<BenchReport> {
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
    let mut engine_time = EngineTiming::default();
    for _ in 0..options.runs {
        let (rate, prefill) = python_greedy(options)?;
        python.push(rate);
        python_prefill.push(prefill);
        let before = engine.timing();
        let generated = engine.generate(request.clone()).finish().await?;
        engine_time += engine.timing().since(before);
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
        overhead_pct: None,
    };
    let engine_row = BenchRow {
        name: "(b) shopkeep engine, batch 1".into(),
        tokens_per_s: median(&ours),
        prefill_ms: median(&ours_prefill),
        samples: ours,
        overhead_pct: Some(overhead_pct(engine_time)),
    };
    let mut ratios = serde_json::Map::new();
    let b = engine_row.tokens_per_s;
    ratios.insert(
        "b_over_a".into(),
        serde_json::json!(b / baseline.tokens_per_s),
    );
    let mut rows = vec![baseline, engine_row];

    let (concurrent, decode_sum, prefill_group) = concurrent_row(options, engine, &request).await?;
    ratios.insert(
        "c_over_b".into(),
        serde_json::json!(concurrent.tokens_per_s / b),
    );
    ratios.insert("c_decode_over_b".into(), serde_json::json!(decode_sum / b));
    ratios.insert(
        "c_mean_prefill_group".into(),
        serde_json::json!(prefill_group),
    );
    rows.push(concurrent);

    let (with_reuse, without_reuse) = prefix_rows(options, engine).await?;
    ratios.insert(
        "d_speedup".into(),
        serde_json::json!(without_reuse.prefill_ms / with_reuse.prefill_ms),
    );
    rows.push(with_reuse);
    rows.push(without_reuse);

    if let Some(dir) = &options.quantized_model_dir {
        let quantized = EngineHandle::load(dir, &SessionOptions::with_threads(options.threads))?;
        let name = format!(
            "(e) shopkeep, {}, batch 1",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let row = batch_one_rows(&[(name, &quantized)], &request, options.runs)
            .await?
            .pop()
            .expect("one row per engine");
        ratios.insert("e_over_b".into(), serde_json::json!(row.tokens_per_s / b));
        rows.push(row);
    }
    let tuning = if options.tuning {
        tuning_rows(options, &request).await?
    } else {
        Vec::new()
    };
    Ok(BenchReport {
        model_dir: options.model_dir.clone(),
        threads: options.threads,
        runs: options.runs,
        prompt_tokens,
        new_tokens: options.new_tokens,
        rows,
        ratios,
        tuning,
        server_rows: Vec::new(),
        server_skipped: None,
        llama_cpp_rows: Vec::new(),
        llama_cpp_skipped: None,
        memory_rows: Vec::new(),
        memory_skipped: None,
    })
}

/// The engine's share of `timing` outside `Session::run`, in percent.
fn overhead_pct(timing: EngineTiming) -> f64 {
    let turns = timing.turns.as_secs_f64();
    if turns == 0.0 {
        return 0.0;
    }
    100.0 * (turns - timing.session_run.as_secs_f64()).max(0.0) / turns
}

/// Batch-1 decode of the same model under each session setting, one engine per setting,
/// with the runs of all settings interleaved.
async fn tuning_rows(options: &BenchOptions, request: &GenerateRequest) -> Result<Vec<BenchRow>> {
    let most_threads = options.threads.max(2);
    let mut settings: Vec<(String, SessionOptions)> = Vec::new();
    for threads in [1, most_threads] {
        for optimization in Optimization::ALL_LEVELS {
            settings.push((
                format!("threads {threads}, optimisation {optimization:?}, spinning"),
                SessionOptions {
                    threads,
                    optimization,
                    spinning: true,
                    memory_arena: false,
                },
            ));
        }
    }
    settings.push((
        format!("threads {most_threads}, optimisation All, no spinning"),
        SessionOptions {
            threads: most_threads,
            optimization: Optimization::All,
            spinning: false,
            memory_arena: false,
        },
    ));
    settings.push((
        format!("threads {most_threads}, optimisation All, spinning, memory arena"),
        SessionOptions {
            memory_arena: true,
            ..SessionOptions::with_threads(most_threads)
        },
    ));
    let engines = settings
        .into_iter()
        .map(|(name, session)| Ok((name, EngineHandle::load(&options.model_dir, &session)?)))
        .collect::<Result<Vec<_>>>()?;
    let engines: Vec<(String, &EngineHandle)> = engines
        .iter()
        .map(|(name, engine)| (name.clone(), engine))
        .collect();
    batch_one_rows(&engines, request, options.runs).await
}

/// Batch-1 decode rate of each engine, median of `runs`, after one warm-up each. The runs
/// of the engines are interleaved, so that a change in the machine's speed during the
/// measurement hits every engine alike.
async fn batch_one_rows(
    engines: &[(String, &EngineHandle)],
    request: &GenerateRequest,
    runs: usize,
) -> Result<Vec<BenchRow>> {
    let mut measured: Vec<(Vec<f64>, Vec<f64>, EngineTiming)> = Vec::new();
    for (_, engine) in engines {
        engine.generate(request.clone()).finish().await?;
        measured.push((vec![], vec![], Default::default()));
    }
    for _ in 0..runs {
        for ((_, engine), (rates, prefills, time)) in engines.iter().zip(&mut measured) {
            let before = engine.timing();
            let generated = engine.generate(request.clone()).finish().await?;
            *time += engine.timing().since(before);
            rates.push(generated.tokens_per_s);
            prefills.push(generated.prefill_ms);
        }
    }
    Ok(engines
        .iter()
        .zip(measured)
        .map(|((name, _), (rates, prefills, time))| BenchRow {
            name: name.clone(),
            tokens_per_s: median(&rates),
            prefill_ms: median(&prefills),
            samples: rates,
            overhead_pct: Some(overhead_pct(time)),
        })
        .collect())
}

/// Row (c): `concurrent` conversations submitted at once; aggregate output tokens per second
/// of wall time (prefills included) and the median time to first token. Also returns the
/// median sum of the conversations' decode rates (each measured as in row b), the like-for-
/// like comparison with row (b), and how many prompts were prefilled together on average
/// (they are queued one by one, as the bot queues them).
async fn concurrent_row(
    options: &BenchOptions,
    engine: &EngineHandle,
    request: &GenerateRequest,
) -> Result<(BenchRow, f64, f64)> {
    let (mut aggregate, mut first_token_ms, mut decode_sums) = (vec![], vec![], vec![]);
    let mut prefill_groups = Vec::new();
    let before = engine.timing();
    for _ in 0..options.runs {
        let started = Instant::now();
        let streams: Vec<_> = (0..options.concurrent)
            .map(|i| {
                let mut request = request.clone();
                request.prompt = format!("{} (conversation {i})", request.prompt);
                engine.generate(request)
            })
            .collect();
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|stream| tokio::spawn(first_token_and_end(stream, started)))
            .collect();
        let (mut tokens, mut decode_sum) = (0, 0.0);
        for task in tasks {
            let (generated, first) = task.await??;
            prefill_groups.push(generated.prefill_batch as f64);
            tokens += generated.output_ids.len();
            decode_sum += generated.tokens_per_s;
            first_token_ms.push(first);
        }
        aggregate.push(tokens as f64 / started.elapsed().as_secs_f64());
        decode_sums.push(decode_sum);
    }
    let row = BenchRow {
        name: format!(
            "(c) shopkeep, {} concurrent conversations (aggregate; TTFT median)",
            options.concurrent
        ),
        tokens_per_s: median(&aggregate),
        prefill_ms: median(&first_token_ms),
        samples: aggregate,
        overhead_pct: Some(overhead_pct(engine.timing().since(before))),
    };
    let mean_group = prefill_groups.iter().sum::<f64>() / prefill_groups.len().max(1) as f64;
    Ok((row, median(&decode_sums), mean_group))
}

/// Row (d): time to first token for a returning user whose prompt starts with
/// `history_tokens` tokens already seen, with the prefix cache and without it.
async fn prefix_rows(
    options: &BenchOptions,
    engine: &EngineHandle,
) -> Result<(BenchRow, BenchRow)> {
    let without_cache = EngineHandle::load_with(
        &options.model_dir,
        &SessionOptions::with_threads(options.threads),
        SchedulerOptions {
            prefix_cache_bytes: 0,
            ..SchedulerOptions::default()
        },
    )?;
    let tokenizer = engine.tokenizer();
    let sentence = "Customer: I ordered a blue teapot last week and it has not arrived yet.\nAssistant: I am sorry to hear that; let me look into your order.\n";
    let mut history = String::new();
    while tokenizer.count(&history) < options.history_tokens {
        history.push_str(sentence);
    }
    let first_turn = GenerateRequest {
        prompt: format!("{history}Customer: where is it now?\nAssistant:"),
        max_new_tokens: 8,
        sampling: SamplingParams::greedy(),
        stop: Vec::new(),
        use_kv_cache: true,
        prefix_cache_key: Some("returning-user".into()),
    };
    let (mut reused_ms, mut full_ms) = (vec![], vec![]);
    for run in 0..options.runs {
        let first = engine.generate(first_turn.clone()).finish().await?;
        let next_turn = GenerateRequest {
            prompt: format!(
                "{}{}\nCustomer: thanks! (turn {run})\nAssistant:",
                first_turn.prompt, first.text
            ),
            max_new_tokens: 1,
            ..first_turn.clone()
        };
        let started = Instant::now();
        let reused = engine.generate(next_turn.clone()).finish().await?;
        reused_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if reused.reused_prefix_tokens == 0 {
            bail!("the prefix cache was not used");
        }
        let started = Instant::now();
        without_cache.generate(next_turn).finish().await?;
        full_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let row = |name: String, samples: Vec<f64>| BenchRow {
        name,
        tokens_per_s: 0.0,
        prefill_ms: median(&samples),
        samples,
        overhead_pct: None,
    };
    Ok((
        row(
            format!(
                "(d) returning user, {} history tokens, TTFT with prefix reuse",
                options.history_tokens
            ),
            reused_ms,
        ),
        row("(d) the same without prefix reuse".into(), full_ms),
    ))
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

/// The tools folder next to the binary's source tree, or `./tools`.
pub(super) fn default_tools_dir() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools");
    if source.is_dir() {
        source
    } else {
        PathBuf::from("tools")
    }
}

/// Reads an engine stream to its end: the generation, and the milliseconds from `started`
/// to its first text (to the end, when it wrote none).
pub(super) async fn first_token_and_end(
    mut stream: GenerationStream,
    started: Instant,
) -> Result<(Generated, f64)> {
    let elapsed_ms = || started.elapsed().as_secs_f64() * 1000.0;
    let mut first = None;
    while let Some(event) = stream.next().await {
        match event {
            StreamEvent::Text(_) => {
                first.get_or_insert_with(elapsed_ms);
            }
            StreamEvent::Done(result) => {
                let generated = result?;
                return Ok((generated, first.unwrap_or_else(elapsed_ms)));
            }
        }
    }
    bail!("the engine stopped")
}
