//! The subcommands of `shopkeep`: their clap arguments, and the dispatch from a parsed
//! command line to the file that runs each group.
//!
//! The contracts that tests and scripts rely on (subcommands, flags, `generate --json`,
//! the last lines of `eval` and `perplexity`) are listed in DESIGN.md §3.

mod bench;
mod bench_llama;
mod bench_memory;
mod bench_report;
mod bench_server;
mod chat;
mod eval;
mod generate;
mod insights;
mod knowledge;
mod prompts;
mod run;
mod user;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use shopkeep::config::{BackendChoice, Config};
use std::sync::Arc;

use shopkeep::backend::{OnnxBackend, OpenAiBackend, SharedBackend};
use shopkeep::engine::{EngineHandle, SessionOptions};

#[derive(Parser)]
#[command(
    name = "shopkeep",
    version,
    about = "A Discord assistant for an online shop, on a local language model"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Discord bot (needs DISCORD_TOKEN; without it, falls back to the terminal chat).
    Run,
    /// Chat with the assistant in the terminal (the same pipeline as on Discord).
    Chat(chat::ChatArgs),
    /// Run the raw engine on a prompt exactly as given (no template).
    Generate(generate::GenerateArgs),
    /// Perplexity of the model on a text file; the last line is `perplexity: X`.
    Perplexity(generate::PerplexityArgs),
    /// Decode speed against a plain onnxruntime Python loop on the same model, and the default
    /// model on llama.cpp's server next to the embedded engine, in one run.
    Bench(bench::BenchArgs),
    /// What is stored about a user, for admins and privacy requests.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Validate a prompts folder (templates, knowledge, guard rules) without starting the bot;
    /// exits non-zero on any problem.
    CheckPrompts(prompts::CheckPromptsArgs),
    /// Measure the assistant (see `eval intents`).
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// What customers need, from the question log (SHOPKEEP_DB): top topics, questions not
    /// answered confidently, feedback and refusals; the same as /insights on Discord.
    Insights(insights::InsightsArgs),
    /// Answers the team gave in tickets, as candidate FAQ entries: list them, accept one
    /// into the prompts folder.
    #[command(subcommand)]
    Knowledge(knowledge::KnowledgeCommand),
}

/// Which model to load; shared by the commands that run one.
#[derive(Args, Default)]
struct ModelArgs {
    /// Model directory (model.onnx + tokenizer.json [+ manifest.json]); default: SHOPKEEP_MODEL_DIR or the default model.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// ONNX Runtime intra-op threads (default: SHOPKEEP_THREADS, or automatic).
    #[arg(long)]
    threads: Option<usize>,
}

/// Parses the command line and runs the command (`run` when none is given).
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    // Prompt tools need no bot configuration, so they run before it is read.
    let command = match cli.command.unwrap_or(Command::Run) {
        Command::CheckPrompts(args) => return prompts::check_prompts(args),
        Command::Eval(command) => return eval::eval(command),
        other => other,
    };
    let config = Config::from_env()?;
    match command {
        Command::Run => run::run(config),
        Command::Chat(args) => chat::chat(config, args),
        Command::Generate(args) => generate::generate(config, args),
        Command::Perplexity(args) => generate::perplexity(config, args),
        Command::User(command) => user::user(config, command),
        Command::Insights(args) => insights::insights(config, args),
        Command::Knowledge(command) => knowledge::knowledge(config, command),
        Command::Bench(args) => bench::bench(args),
        Command::CheckPrompts(_) | Command::Eval(_) => unreachable!("handled above"),
    }
}

/// The error and its causes on one line, each cause once: a message that already quotes
/// its source's text does not repeat it.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The prompts folder: the one given on the command line, else the configured one.
fn prompts_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(shopkeep::config::prompts_dir)
}

/// The configured backend (`SHOPKEEP_BACKEND`): the embedded engine on the model named by
/// `args` (else the configured one), or the OpenAI-compatible server, connected on
/// `runtime` (its health check runs there, so the command must use the same runtime).
fn load_backend(
    config: &Config,
    args: &ModelArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<SharedBackend> {
    load_generate_backend(config, args, runtime, false)
}

/// [`load_backend`] for `generate`; `no_cache` turns the embedded engine's KV cache off.
fn load_generate_backend(
    config: &Config,
    args: &ModelArgs,
    runtime: &tokio::runtime::Runtime,
    no_cache: bool,
) -> Result<SharedBackend> {
    match &config.backend {
        BackendChoice::Onnx => {
            let onnx = OnnxBackend::new(load_engine(config, args)?);
            Ok(Arc::new(if no_cache {
                onnx.without_kv_cache()
            } else {
                onnx
            }))
        }
        BackendChoice::OpenAi(settings) => {
            if args.model_dir.is_some() || args.threads.is_some() || no_cache {
                bail!("--model-dir, --threads and --no-cache are for the embedded engine; SHOPKEEP_BACKEND=openai uses the server at SHOPKEEP_OPENAI_BASE_URL");
            }
            let backend = runtime
                .block_on(OpenAiBackend::connect(settings.clone()))
                .with_context(|| {
                    format!("could not use the model server at {}", settings.base_url)
                })?;
            Ok(Arc::new(backend))
        }
    }
}

/// Loads the model named by `args`, else the configured one.
fn load_engine(config: &Config, args: &ModelArgs) -> Result<EngineHandle> {
    let dir = args
        .model_dir
        .clone()
        .unwrap_or_else(|| config.model.model_dir.clone());
    let options = SessionOptions::with_threads(args.threads.unwrap_or(config.model.threads));
    EngineHandle::load(&dir, &options)
        .with_context(|| format!("could not load the model in {}", dir.display()))
}

/// The Tokio runtime the async commands run on.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the model failed: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[test]
    fn describe_shows_each_cause_once() {
        let quoting = Quoting(std::io::Error::other("disk on fire"));
        let error = anyhow::Error::new(quoting).context("could not answer");
        assert_eq!(
            describe(&error),
            "could not answer: the model failed: disk on fire"
        );
        let plain = anyhow::anyhow!("no such file").context("could not read x.csv");
        assert_eq!(describe(&plain), "could not read x.csv: no such file");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
