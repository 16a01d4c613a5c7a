//! `shopkeep generate` and `shopkeep perplexity`: the raw model, without the assistant.
//! `generate` runs on the configured backend; `perplexity` needs the embedded engine.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use shopkeep::backend::{GenerateRequest, SamplingParams, StreamEvent};
use shopkeep::config::Config;

use super::ModelArgs;

#[derive(Args)]
pub(super) struct GenerateArgs {
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Always take the most likely token.
    #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p", "seed"])]
    greedy: bool,
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop before this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Recompute the whole sequence every step instead of using the KV cache (for checks).
    #[arg(long)]
    no_cache: bool,
    /// Print one JSON line: prompt_ids, output_ids (null on a server backend, which streams
    /// text), prompt_tokens, output_tokens, text, tokens_per_s, prefill_ms, finish.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
pub(super) struct PerplexityArgs {
    #[arg(long)]
    text_file: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
}

/// Streams the continuation of `--prompt` to stdout, or prints one JSON line with `--json`.
pub(super) fn generate(config: Config, args: GenerateArgs) -> Result<()> {
    let runtime = super::runtime()?;
    let backend = super::load_generate_backend(&config, &args.model, &runtime, args.no_cache)?;
    let sampling = if args.greedy {
        SamplingParams {
            repetition_penalty: args.repetition_penalty,
            ..SamplingParams::greedy()
        }
    } else {
        SamplingParams {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
        }
    };
    let request = GenerateRequest {
        prompt: args.prompt,
        max_new_tokens: args.max_new_tokens,
        sampling,
        stop: args.stop,
        prefix_cache_key: None,
    };
    // A server backend's request runs as a task on the runtime.
    let mut stream = {
        let _entered = runtime.enter();
        backend.generate(request)
    };
    let mut stdout = std::io::stdout().lock();
    while let Some(event) = runtime.block_on(stream.next()) {
        match event {
            StreamEvent::Text(delta) => {
                if !args.json {
                    write!(stdout, "{delta}")?;
                    stdout.flush()?;
                }
            }
            StreamEvent::Done(result) => {
                let generated = result?;
                if args.json {
                    let (prompt_ids, output_ids) = match &generated.ids {
                        Some(ids) => (Some(&ids.prompt), Some(&ids.output)),
                        None => (None, None),
                    };
                    let line = serde_json::json!({
                        "prompt_ids": prompt_ids,
                        "output_ids": output_ids,
                        "prompt_tokens": generated.prompt_tokens,
                        "output_tokens": generated.output_tokens,
                        "text": generated.text,
                        "tokens_per_s": generated.tokens_per_s,
                        "prefill_ms": generated.prefill_ms,
                        "finish": generated.finish,
                        "dropped_prompt_tokens": generated.dropped_prompt_tokens,
                    });
                    writeln!(stdout, "{line}")?;
                } else {
                    writeln!(stdout)?;
                    eprintln!(
                        "[{} tokens, prefill {:.0} ms, {:.1} tokens/s, {:?}]",
                        generated.output_tokens,
                        generated.prefill_ms,
                        generated.tokens_per_s,
                        generated.finish
                    );
                }
                return Ok(());
            }
        }
    }
    bail!("the model stopped before finishing")
}

/// Prints `tokens`, `mean_nll` and, last, `perplexity: X` for the text of `--text-file`.
pub(super) fn perplexity(config: Config, args: PerplexityArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.text_file)
        .with_context(|| format!("could not read {}", args.text_file.display()))?;
    let engine = super::load_engine(&config, &args.model)?;
    let score = super::runtime()?.block_on(engine.perplexity(text.trim().to_string()))?;
    println!("tokens: {}", score.tokens);
    println!("mean_nll: {:.4}", score.mean_nll);
    println!("perplexity: {:.3}", score.perplexity);
    Ok(())
}
