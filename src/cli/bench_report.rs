//! `shopkeep bench`'s report: its rows, the whole report, and the plain-text table.

use std::path::PathBuf;

use serde::Serialize;

use super::bench_memory::MemoryRow;

/// One row of the result table.
#[derive(Debug, Clone, Serialize)]
pub(super) struct BenchRow {
    pub(super) name: String,
    /// Decode tokens/s (rows a, b, e, f, g), aggregate tokens/s (c, f, g), or 0 where not
    /// measured.
    pub(super) tokens_per_s: f64,
    /// Prefill (a, b, e) or time to first token (c, d, f, g), milliseconds.
    pub(super) prefill_ms: f64,
    pub(super) samples: Vec<f64>,
    /// The engine's own share of its time (everything outside `Session::run`: tensors,
    /// copies, sampling, streaming), in percent; engine rows only.
    pub(super) overhead_pct: Option<f64>,
}

/// The whole report; `ratios` are the machine-readable comparisons.
#[derive(Debug, Clone, Serialize)]
pub(super) struct BenchReport {
    pub(super) model_dir: PathBuf,
    pub(super) threads: usize,
    pub(super) runs: usize,
    pub(super) prompt_tokens: usize,
    pub(super) new_tokens: usize,
    pub(super) rows: Vec<BenchRow>,
    pub(super) ratios: serde_json::Map<String, serde_json::Value>,
    /// Batch-1 decode under each session setting (with `--tuning`).
    pub(super) tuning: Vec<BenchRow>,
    /// Rows (f) and (g): the default model on the embedded engine and on llama.cpp's
    /// server, side by side; empty when skipped.
    pub(super) server_rows: Vec<BenchRow>,
    /// Why rows (f) and (g) were skipped.
    pub(super) server_skipped: Option<String>,
    /// Rows (h) and (i): the default model on the embedded engine next to llama.cpp on the
    /// same GGUF (llama-cpp-python), interleaved; empty when skipped.
    pub(super) llama_cpp_rows: Vec<BenchRow>,
    /// Why rows (h) and (i) were skipped.
    pub(super) llama_cpp_skipped: Option<String>,
    /// Rows (j): peak memory and wall time of fresh processes on the default model; empty
    /// when skipped.
    pub(super) memory_rows: Vec<MemoryRow>,
    /// Why rows (j) were skipped.
    pub(super) memory_skipped: Option<String>,
}

/// Median of non-empty samples.
pub(super) fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The report as a plain-text table.
pub(super) fn table(report: &BenchReport) -> String {
    let mut out = format!(
        "model: {}\nthreads: {}, runs: {} (medians), prompt: {} tokens, new tokens: {}\n\n",
        report.model_dir.display(),
        report.threads,
        report.runs,
        report.prompt_tokens,
        report.new_tokens,
    );
    out.push_str(&rows_table(&report.rows));
    out.push('\n');
    for (name, value) in &report.ratios {
        match value.as_f64() {
            Some(ratio) => out.push_str(&format!("{name}: {ratio:.3}\n")),
            None => out.push_str(&format!("{name}: {value}\n")),
        }
    }
    out.push_str("\nthe default model's GGUF on llama.cpp's server next to the embedded engine (same prompt as ChatML, same threads):\n");
    match &report.server_skipped {
        Some(why) => out.push_str(&format!("skipped: {why}\n")),
        None => out.push_str(&rows_table(&report.server_rows)),
    }
    out.push_str("\nthe default model on the embedded engine next to llama.cpp on the same GGUF (llama-cpp-python, same token ids, interleaved):\n");
    match &report.llama_cpp_skipped {
        Some(why) => out.push_str(&format!("skipped: {why}\n")),
        None => out.push_str(&rows_table(&report.llama_cpp_rows)),
    }
    out.push_str("\nthe default model in a fresh process (peak resident memory, wall time of the whole process):\n");
    match &report.memory_skipped {
        Some(why) => out.push_str(&format!("skipped: {why}\n")),
        None => out.push_str(&memory_table(&report.memory_rows)),
    }
    if !report.tuning.is_empty() {
        out.push_str("\nsession tuning (batch 1):\n");
        out.push_str(&rows_table(&report.tuning));
    }
    out
}

pub(super) fn rows_table(rows: &[BenchRow]) -> String {
    let mut out = format!(
        "{:<70} {:>10} {:>16} {:>10}\n",
        "configuration", "tokens/s", "prefill/TTFT ms", "overhead"
    );
    for row in rows {
        let overhead = row
            .overhead_pct
            .map(|pct| format!("{pct:.1} %"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<70} {:>10.1} {:>16.1} {:>10}\n",
            row.name, row.tokens_per_s, row.prefill_ms, overhead
        ));
    }
    out
}

fn memory_table(rows: &[MemoryRow]) -> String {
    let mut out = format!("{:<70} {:>10} {:>10}\n", "process", "max RSS MB", "wall s");
    for row in rows {
        out.push_str(&format!(
            "{:<70} {:>10.1} {:>10.2}\n",
            row.name, row.max_rss_mb, row.wall_s
        ));
    }
    out
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
