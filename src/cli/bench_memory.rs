//! `shopkeep bench` rows (j): peak resident memory and wall time of fresh `shopkeep`
//! processes on the default model, each a child of this process, its peak read from
//! `wait4`'s `ru_maxrss`. Linux counts the parent's resident set at the fork in a child's peak,
//! so [`rows`] must run before this process loads anything large:
//!
//! - `generate`: the default model loaded (decoder and tokenizer), one token generated;
//! - `chat --once`: the whole assistant as the bot runs it (the default model, the
//!   sentence-embedding model, the shop's prompts and knowledge) answering one question.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::bench_report::median;
use shopkeep::config::default_model_dir;

/// One row: medians over the runs.
#[derive(Debug, Clone, Serialize)]
pub(super) struct MemoryRow {
    pub(super) name: String,
    /// Peak resident set of the process, MB (10⁶ bytes).
    pub(super) max_rss_mb: f64,
    /// Wall time of the whole process, seconds.
    pub(super) wall_s: f64,
    pub(super) samples_mb: Vec<f64>,
}

/// The question `chat --once` answers.
const QUESTION: &str = "what teas do you have for a cold evening?";

/// Rows (j), or why they were skipped (the default model not prepared, or `chat --once`
/// failing, e.g. when run outside the repository without `SHOPKEEP_PROMPTS_DIR`). Call it
/// before loading a model into this process (see the module doc).
pub(super) fn rows(runs: usize, threads: usize) -> Result<Result<Vec<MemoryRow>, String>> {
    let model = default_model_dir();
    if !model.join("model.onnx").is_file() {
        return Ok(Err(
            "the default model is not prepared (./scripts/setup.sh default-model)".into(),
        ));
    }
    let exe = std::env::current_exe().context("finding the shopkeep executable")?;
    let db = std::env::temp_dir().join(format!("shopkeep-bench-{}.sqlite", std::process::id()));
    let threads = threads.to_string();
    let generate = Child {
        exe: &exe,
        model: &model,
        db: &db,
        args: vec![
            "generate",
            "--prompt",
            "Hello",
            "--max-new-tokens",
            "1",
            "--greedy",
            "--threads",
            &threads,
        ],
    };
    let chat = Child {
        args: vec!["chat", "--once", QUESTION],
        ..generate.clone()
    };
    let measured = [
        (
            "(j) shopkeep generate: the default model loaded, 1 token",
            generate,
        ),
        (
            "(j) shopkeep chat --once: the whole assistant, 1 answer",
            chat,
        ),
    ]
    .into_iter()
    .map(|(name, child)| child.row(name, runs))
    .collect::<Result<Vec<_>>>();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(measured.map_err(|error| format!("{error:#}")))
}

/// One `shopkeep` command line, run against the default model and a throwaway database.
#[derive(Clone)]
struct Child<'a> {
    exe: &'a Path,
    model: &'a PathBuf,
    db: &'a PathBuf,
    args: Vec<&'a str>,
}

impl Child<'_> {
    fn row(&self, name: &str, runs: usize) -> Result<MemoryRow> {
        let (mut peaks, mut walls) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (peak_kb, wall_s) = self.run()?;
            peaks.push(peak_kb as f64 * 1024.0 / 1e6);
            walls.push(wall_s);
        }
        Ok(MemoryRow {
            name: name.into(),
            max_rss_mb: median(&peaks),
            wall_s: median(&walls),
            samples_mb: peaks,
        })
    }

    /// Runs the command once; returns (peak resident set in KiB, wall seconds).
    fn run(&self) -> Result<(i64, f64)> {
        let started = Instant::now();
        let child = Command::new(self.exe)
            .args(&self.args)
            .env("SHOPKEEP_MODEL_DIR", self.model)
            .env("SHOPKEEP_BACKEND", "onnx")
            .env("SHOPKEEP_DB", self.db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        let pid = child.id();
        let mut stderr = child.stderr.expect("stderr is piped");
        let reading = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let (status, peak_kb) = wait_with_peak(pid)?;
        let wall = started.elapsed().as_secs_f64();
        let stderr = reading.join().unwrap_or_default();
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            bail!(
                "shopkeep {} failed: {}",
                self.args.join(" "),
                stderr.trim().lines().last().unwrap_or("no message")
            );
        }
        Ok((peak_kb, wall))
    }
}

/// Waits for the child `pid`; returns its wait status and its peak resident set in KiB.
fn wait_with_peak(pid: u32) -> Result<(i32, i64)> {
    let mut status = 0;
    // SAFETY: `rusage` is plain data, so all-zero is a valid value; `wait4` writes `status`
    // and `usage`, both live for the call. `pid` is our own unwaited child (its `Child` was
    // consumed without waiting), so no other waiter can reap it first.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if reaped != pid as libc::pid_t {
        bail!(
            "waiting for process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok((status, usage.ru_maxrss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::zombie_processes, reason = "wait_with_peak reaps it")]
    fn a_childs_exit_status_and_peak_are_its_own() {
        let child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let (status, peak_kb) = wait_with_peak(child.id()).unwrap();
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 3);
        assert!(peak_kb > 0, "{peak_kb}");
    }

    #[test]
    fn waiting_for_a_process_that_is_not_our_child_is_an_error() {
        assert!(wait_with_peak(1).is_err());
    }
}
