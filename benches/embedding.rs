//! Sentence-embedding cost on the real model (`./scripts/setup.sh embedding-model`).
//!
//! `cargo bench --bench embedding [-- THREADS]` (default 2 intra-op threads). Reports:
//! - resident memory added by loading the model, and after the first runs (ONNX Runtime
//!   allocates its buffers on first use);
//! - the latency of embedding one short question (median and 90th percentile of 50);
//! - the time to embed 150 FAQ-sized passages in one call (batches of 32 inside; median of 5).

use std::hint::black_box;
use std::time::{Duration, Instant};

use shopkeep::engine::{SentenceEmbedder, TextEmbedder, EMBEDDING_BATCH};

const QUESTION_RUNS: usize = 50;
const PASSAGES: usize = 150;
const PASSAGE_RUNS: usize = 5;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Deterministic FAQ-like passages of 15 to 45 words.
fn passages() -> Vec<String> {
    const SUBJECTS: [&str; 6] = [
        "Orders placed before noon",
        "Hand-glazed stoneware mugs",
        "Gift cards bought in our shop",
        "Returns of unused items",
        "Parcels sent outside the EU",
        "Teapots with a cracked lid",
    ];
    const CLAUSES: [&str; 7] = [
        "leave our workshop within two working days",
        "can be refunded to the original payment method",
        "are tracked from the moment the courier collects them",
        "may take up to ten days to arrive because of customs checks",
        "are safe for the dishwasher but not for the oven",
        "can be exchanged for store credit at any time",
        "are replaced free of charge if you send us a photo within 14 days",
    ];
    (0..PASSAGES)
        .map(|i| {
            let clauses = 1 + i % 4;
            let mut text = SUBJECTS[i % SUBJECTS.len()].to_string();
            for c in 0..clauses {
                text.push_str(if c == 0 { " " } else { ", and they " });
                text.push_str(CLAUSES[(i * 3 + c * 5) % CLAUSES.len()]);
            }
            text.push_str(&format!(" (see section {}).", i + 1));
            text
        })
        .collect()
}

fn main() {
    let threads: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("THREADS must be a number"))
        .unwrap_or(2);
    let dir = SentenceEmbedder::default_dir();
    let passages = passages();
    let passage_refs: Vec<&str> = passages.iter().map(String::as_str).collect();

    // Load the ONNX Runtime library first so the model's own cost is what the next reading adds.
    shopkeep::engine::runtime::environment().expect("ONNX Runtime loads");
    let before = rss_bytes() as i64;
    let started = Instant::now();
    let embedder = SentenceEmbedder::load(&dir, threads).unwrap_or_else(|e| panic!("{e}"));
    let load_time = started.elapsed();
    let loaded = rss_bytes() as i64;
    black_box(embedder.embed(&["warm-up question"]).unwrap());
    black_box(embedder.embed(&passage_refs).unwrap());
    let warmed = rss_bytes() as i64;

    let question = "Where is my parcel?";
    let mut single: Vec<Duration> = (0..QUESTION_RUNS)
        .map(|_| {
            let t = Instant::now();
            black_box(embedder.embed(&[question]).unwrap());
            t.elapsed()
        })
        .collect();
    single.sort();

    let mut bulk: Vec<Duration> = (0..PASSAGE_RUNS)
        .map(|_| {
            let t = Instant::now();
            black_box(embedder.embed(&passage_refs).unwrap());
            t.elapsed()
        })
        .collect();
    bulk.sort();
    let bulk_median = percentile(&bulk, 0.5);
    let tokens: usize = passage_refs
        .iter()
        .map(|p| embedder.token_ids(p).unwrap().len())
        .sum();

    let row = |what: &str, value: String| println!("| {what:<58} | {value:>16} |");
    println!();
    println!(
        "Sentence embeddings: {} ({} dims), {threads} intra-op threads",
        embedder.name(),
        embedder.dimension()
    );
    println!("| {:<58} | {:>16} |", "measure", "value");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(18));
    row("load time", ms(load_time));
    row("resident memory added by loading", mib(loaded - before));
    row(
        "resident memory added, after the first runs",
        mib(warmed - before),
    );
    row(
        &format!("one short question, median of {QUESTION_RUNS}"),
        ms(percentile(&single, 0.5)),
    );
    row(
        &format!("one short question, p90 of {QUESTION_RUNS}"),
        ms(percentile(&single, 0.9)),
    );
    row(
        &format!(
            "{PASSAGES} passages ({} tokens, batches of {EMBEDDING_BATCH}), median of {PASSAGE_RUNS}",
            tokens
        ),
        ms(bulk_median),
    );
    row("per passage", ms(bulk_median / PASSAGES as u32));
}
