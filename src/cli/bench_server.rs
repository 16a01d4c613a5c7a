//! `shopkeep bench` rows (f) and (g): the default model's GGUF on llama.cpp's server
//! (llama-cpp-python, as `scripts/setup.sh llama-server` prepares it) next to the embedded
//! engine on the same model converted to ONNX, on the same prompt, with the same threads,
//! through the same [`Backend`] trait: batch-1 decode rate and the aggregate rate of
//! several conversations at once.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use shopkeep::backend::{
    Backend, GenerateRequest, OnnxBackend, OpenAiBackend, SamplingParams, StreamEvent,
};
use shopkeep::config::{cache_dir, default_model_dir, OpenAiSettings};
use shopkeep::engine::{EngineHandle, SessionOptions};

use super::bench_report::{median, BenchRow};

const ALIAS: &str = "smollm2";

/// What rows (f) and (g) need.
pub(super) struct ServerBench {
    pub(super) threads: usize,
    pub(super) runs: usize,
    pub(super) prompt: String,
    pub(super) new_tokens: usize,
    pub(super) concurrent: usize,
}

/// The prepared server's Python and GGUF, and the converted default model, or why not.
pub(super) fn prepared() -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let python = cache_dir().join("llama-server/bin/python");
    let gguf = cache_dir().join("wheels/SmolLM2-135M-Instruct.Q4_1.gguf");
    let model = default_model_dir();
    if !python.is_file() || !gguf.is_file() {
        return Err("llama.cpp's server is not prepared (./scripts/setup.sh llama-server)".into());
    }
    if !model.join("model.onnx").is_file() {
        return Err("the default model is not prepared (./scripts/setup.sh default-model)".into());
    }
    Ok((python, gguf, model))
}

/// The server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Rows (f) and (g), or why they were skipped.
pub(super) async fn rows(bench: &ServerBench) -> Result<Result<Vec<BenchRow>, String>> {
    let (python, gguf, model) = match prepared() {
        Ok(found) => found,
        Err(why) => return Ok(Err(why)),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _server = Server(
        Command::new(&python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&gguf)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--n_threads", &bench.threads.to_string(), "--n_ctx", "2048"])
            .args(["--model_alias", ALIAS])
            // By default a new request interrupts the one streaming; queue them instead.
            .args(["--interrupt_requests", "False"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {}", python.display()))?,
    );
    let mut settings = OpenAiSettings::new(&format!("http://127.0.0.1:{port}/v1"));
    settings.model = Some(ALIAS.into());
    settings.context_length = Some(2048);
    settings.start_timeout = Duration::from_secs(120);
    settings.max_concurrency = bench.concurrent;
    let server: Arc<dyn Backend> = Arc::new(OpenAiBackend::connect(settings).await?);
    if !server.status().healthy {
        bail!("llama.cpp's server did not start within 120 s");
    }
    let engine = EngineHandle::load(&model, &SessionOptions::with_threads(bench.threads))?;
    let embedded: Arc<dyn Backend> = Arc::new(OnnxBackend::new(engine));
    // The same ChatML conversation: rendered for the engine, sent as messages to the server.
    let prompt = format!(
        "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
        bench.prompt
    );
    let request = GenerateRequest {
        sampling: SamplingParams::greedy(),
        ..GenerateRequest::new(prompt, bench.new_tokens)
    };
    let weights = shopkeep::engine::ModelDir::open(&model)
        .ok()
        .and_then(|dir| dir.manifest.weights)
        .unwrap_or_else(|| "fp32".into());
    let engine_label = format!("(f) shopkeep engine, SmolLM2-135M ONNX ({weights})");
    let mut rows = Vec::new();
    for (label, backend) in [
        (engine_label.as_str(), &embedded),
        (
            "(g) llama.cpp server (llama-cpp-python), SmolLM2-135M Q4_1 GGUF",
            &server,
        ),
    ] {
        backend.generate(request.clone()).finish().await?;
        let (mut rates, mut prefills) = (Vec::new(), Vec::new());
        for _ in 0..bench.runs {
            let generated = backend.generate(request.clone()).finish().await?;
            rates.push(generated.tokens_per_s);
            prefills.push(generated.prefill_ms);
        }
        rows.push(BenchRow {
            name: format!("{label}, batch 1"),
            tokens_per_s: median(&rates),
            prefill_ms: median(&prefills),
            samples: rates,
            overhead_pct: None,
        });
        rows.push(concurrent(bench, label, backend.as_ref(), &request).await?);
    }
    Ok(Ok(rows))
}

/// `concurrent` conversations at once: output tokens per second of wall time, and the
/// median time to first token.
async fn concurrent(
    bench: &ServerBench,
    label: &str,
    backend: &dyn Backend,
    request: &GenerateRequest,
) -> Result<BenchRow> {
    let (mut aggregate, mut first_token_ms) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs {
        let started = Instant::now();
        let streams = backend.generate_many(vec![request.clone(); bench.concurrent]);
        let mut tasks = Vec::new();
        for mut stream in streams {
            tasks.push(tokio::spawn(async move {
                let mut first = None;
                while let Some(event) = stream.next().await {
                    match event {
                        StreamEvent::Text(_) => {
                            first.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
                        }
                        StreamEvent::Done(result) => {
                            let tokens = result?.output_tokens;
                            return Ok::<_, anyhow::Error>((tokens, first.unwrap_or(0.0)));
                        }
                    }
                }
                bail!("the backend stopped")
            }));
        }
        let mut tokens = 0;
        for task in tasks {
            let (count, first) = task.await??;
            tokens += count;
            first_token_ms.push(first);
        }
        aggregate.push(tokens as f64 / started.elapsed().as_secs_f64());
    }
    Ok(BenchRow {
        name: format!(
            "{label}, {} concurrent (aggregate; TTFT median)",
            bench.concurrent
        ),
        tokens_per_s: median(&aggregate),
        prefill_ms: median(&first_token_ms),
        samples: aggregate,
        overhead_pct: None,
    })
}
