//! Knowledge-answer latency and the memory hybrid retrieval adds, on the demo shop.
//!
//! `cargo bench --bench answers` (needs `./scripts/test.sh` or `./scripts/setup.sh
//! runtime test-models embedding-model`). Every question of tests/data/answers/*.toml that
//! the knowledge answers without the language model (a quoted answer, small talk or a
//! hand-off) goes through `Assistant::handle`, as on Discord: routing, the question's
//! embedding, rendering, the guard, and recording the turn in an in-memory store. Runs
//! interleave the hybrid assistant (sentence embeddings) with the lexical-only baseline.
//! Reports p50/p95/max per question, the resident memory added by loading the embedding
//! model and embedding the knowledge, and the time a reload of the demo shop takes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shopkeep::assistant::content::{LoadOptions, Prompts};
use shopkeep::assistant::eval::answers::read_cases;
use shopkeep::assistant::{
    load_embedder, AnswerEvent, Assistant, Inbound, InboundKind, Outcome, Role,
};
use shopkeep::backend::OnnxBackend;
use shopkeep::config::{cache_dir, Config};
use shopkeep::engine::{EngineHandle, SessionOptions, TextEmbedder};
use shopkeep::store::Store;

const ROUNDS: usize = 5;

fn rss_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kb: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn assistant(config: &Config, embedder: Option<Arc<dyn TextEmbedder>>) -> Assistant {
    let engine = EngineHandle::load(
        &cache_dir().join("models").join("tiny-gpt2"),
        &SessionOptions::with_threads(1),
    )
    .expect("the tiny test model (./scripts/test.sh builds it)");
    let options = LoadOptions {
        embedder,
        ..LoadOptions::default()
    };
    let prompts = Prompts::load_with(&config.prompts_dir, options).expect("prompts/ loads");
    Assistant::new(
        Arc::new(OnnxBackend::new(engine)),
        Arc::new(config.clone()),
        Arc::new(Store::open_in_memory().unwrap()),
        Arc::new(prompts),
    )
}

/// The time to the whole reply, and whether the model wrote it.
async fn answer(assistant: &Assistant, user: &str, question: &str) -> (Duration, bool) {
    let started = Instant::now();
    let outcome = assistant
        .handle(Inbound {
            user_id: user.into(),
            user_name: user.into(),
            channel_id: None,
            guild_id: None,
            text: question.into(),
            kind: InboundKind::Terminal,
            role: Role::Customer,
        })
        .await;
    let generated = match outcome {
        Outcome::Answer(mut stream) => {
            while let Some(event) = stream.recv().await {
                if let AnswerEvent::Final(_) = event {
                    break;
                }
            }
            true
        }
        _ => false,
    };
    (started.elapsed(), generated)
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut questions = Vec::new();
    for file in ["tuning.toml", "heldout.toml"] {
        let text = std::fs::read_to_string(format!("{root}/tests/data/answers/{file}")).unwrap();
        questions.extend(read_cases(&text).unwrap().into_iter().map(|c| c.question));
    }
    let mut config = Config::from_env().unwrap();
    config.prompts_dir = format!("{root}/prompts").into();
    config.limits.user_burst = u32::MAX / 2;
    config.limits.user_per_minute = u32::MAX / 2;
    config.model.max_new_tokens = 4;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let lexical = assistant(&config, None);
    let before = rss_bytes();
    // As `Assistant::open` does: a reload then embeds only the passages that changed.
    let embedder = load_embedder(&config).expect("./scripts/setup.sh embedding-model");
    assert!(embedder.is_some(), "SHOPKEEP_EMBEDDING_MODEL_DIR is off");
    let loaded = Instant::now();
    let hybrid = assistant(&config, embedder);
    let load_time = loaded.elapsed();
    let added = rss_bytes() - before;
    let reload = Instant::now();
    hybrid.reload_prompts().expect("the demo shop reloads");
    let reload_time = reload.elapsed();

    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    runtime.block_on(async {
        for round in 0..ROUNDS {
            for (index, question) in questions.iter().enumerate() {
                // Each question from a new user: no follow-ups, every answer stands alone.
                let user = format!("bench-{round}-{index}");
                for (which, assistant) in [&hybrid, &lexical].into_iter().enumerate() {
                    let (elapsed, generated) = answer(assistant, &user, question).await;
                    if !generated {
                        times[which].push(elapsed);
                    }
                }
            }
        }
    });
    println!(
        "knowledge answers through Assistant::handle ({} runs of {} questions, model-written ones left out)",
        ROUNDS,
        questions.len()
    );
    for (name, mut samples) in ["hybrid (embeddings)", "lexical baseline"]
        .into_iter()
        .zip(times)
    {
        samples.sort();
        println!(
            "  {name:<20} n={:<4} p50 {}  p95 {}  max {}",
            samples.len(),
            ms(percentile(&samples, 0.5)),
            ms(percentile(&samples, 0.95)),
            ms(*samples.last().unwrap())
        );
    }
    println!(
        "embedding model + knowledge vectors: +{:.1} MiB resident; load and embed {}",
        added as f64 / (1024.0 * 1024.0),
        ms(load_time)
    );
    println!(
        "reload of the demo shop (embeddings included): {}",
        ms(reload_time)
    );
}
