//! `shopkeep eval`: measure routing against labelled questions, or show how questions route.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use shopkeep::assistant::content::{read_utterance_csv, LoadOptions, PromptSet};
use shopkeep::assistant::eval::answers::{self, read_cases};
use shopkeep::assistant::eval::evaluate_intents;
use shopkeep::assistant::{load_embedder, Assistant};
use shopkeep::config::Config;

use super::ModelArgs;
use shopkeep::assistant::knowledge::{Method, RouteKind};
use shopkeep::engine::PromptFormat;

#[derive(Subcommand)]
pub(super) enum EvalCommand {
    /// Route each utterance of a labelled CSV (utterance,intent columns) to the best knowledge
    /// entry and compare the entry's intent; the last line is `accuracy: X`.
    Intents(EvalIntentsArgs),
    /// Print how each question would be routed (kind, confidence, hits, products) as JSON lines.
    Route(EvalRouteArgs),
    /// Ask each question of a cases file (TOML, see tests/data/answers/) through the same
    /// pipeline as Discord and check the replies; the last line is `answers: X (passed/total)`.
    Answers(EvalAnswersArgs),
}

#[derive(Args)]
pub(super) struct EvalAnswersArgs {
    /// The cases file.
    #[arg(long)]
    file: PathBuf,
    /// Print every reply, not only the failures.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
pub(super) struct EvalRouteArgs {
    /// Questions to route.
    #[arg(required = true)]
    questions: Vec<String>,
    /// Use the entries' own text only (ignore data-set phrasings under prompts/data/).
    #[arg(long)]
    zero_shot: bool,
    /// Prompts folder (default: SHOPKEEP_PROMPTS_DIR or ./prompts).
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Print the prompt the model would get ("chatml" or "completion"), or the not-sure
    /// reply, instead of the JSON line.
    #[arg(long)]
    show_prompt: Option<String>,
}

#[derive(Args)]
pub(super) struct EvalIntentsArgs {
    /// CSV with `utterance` and `intent` columns.
    #[arg(long)]
    csv: PathBuf,
    /// Use the entries' own text only (ignore data-set phrasings under prompts/data/).
    #[arg(long)]
    zero_shot: bool,
    /// Prompts folder (default: SHOPKEEP_PROMPTS_DIR or ./prompts).
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Retrieval method to measure: combined (the one in service), centroid or nearest.
    #[arg(long, default_value = "combined")]
    method: String,
}

/// Runs one `eval` subcommand.
pub(super) fn eval(command: EvalCommand) -> Result<()> {
    match command {
        EvalCommand::Intents(args) => eval_intents(args),
        EvalCommand::Route(args) => eval_route(args),
        EvalCommand::Answers(args) => eval_answers(args),
    }
}

/// Runs the cases through a fresh assistant (an in-memory store, no rate limit between one
/// user's questions) on the configured model and embedding model.
fn eval_answers(args: EvalAnswersArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("could not read {}", args.file.display()))?;
    let cases = read_cases(&text).with_context(|| args.file.display().to_string())?;
    let mut config = Config::from_env()?;
    config.db_path = ":memory:".into();
    config.limits.user_burst = u32::MAX / 2;
    config.limits.user_per_minute = u32::MAX / 2;
    let runtime = super::runtime()?;
    let backend = super::load_backend(&config, &args.model, &runtime)?;
    let assistant = Assistant::open(backend, Arc::new(config))?;
    let report = runtime.block_on(answers::run(&assistant, &cases));
    if args.verbose {
        for result in &report.results {
            println!(
                "{} {} [{}] {:?}\n     -> {}",
                if result.passed() { "ok  " } else { "FAIL" },
                result.case.id,
                if result.handed_off {
                    "hand-off"
                } else {
                    "answer"
                },
                result.case.question,
                result
                    .reply
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    println!("{report}");
    Ok(())
}

/// The prompts folder; with `embedded`, with the configured sentence-embedding model (as
/// the bot loads it), else lexical retrieval only.
fn load_prompts(dir: Option<PathBuf>, zero_shot: bool, embedded: bool) -> Result<PromptSet> {
    let embedder = if embedded {
        load_embedder(&Config::from_env()?)?
    } else {
        None
    };
    let options = LoadOptions {
        dataset_phrasings: !zero_shot,
        embedder,
    };
    PromptSet::load_with(&super::prompts_dir(dir), options)
        .map_err(|error| anyhow::anyhow!("{error}"))
}

fn eval_route(args: EvalRouteArgs) -> Result<()> {
    let set = load_prompts(args.prompts, args.zero_shot, true)?;
    let format = match args.show_prompt.as_deref() {
        None => None,
        Some("chatml") => Some(PromptFormat::Chatml),
        Some("completion") => Some(PromptFormat::Completion),
        Some(other) => bail!("unknown prompt format {other:?}: use chatml or completion"),
    };
    for question in &args.questions {
        let route = set.knowledge.route(question);
        match format {
            None => println!(
                "{}",
                serde_json::json!({
                    "question": question,
                    "route": route,
                    "passages": set.knowledge.explain(question, 3),
                })
            ),
            Some(_) if route.kind == RouteKind::NotSure => {
                println!("{}", set.not_sure_reply(question, &route)?)
            }
            Some(format) => print!("{}", set.render_answer(format, question, &route, &[])?),
        }
    }
    Ok(())
}

fn eval_intents(args: EvalIntentsArgs) -> Result<()> {
    let method = Method::parse(&args.method).with_context(|| {
        format!(
            "unknown method {:?}: use combined, centroid or nearest",
            args.method
        )
    })?;
    let set = load_prompts(args.prompts, args.zero_shot, false)?;
    let text = std::fs::read_to_string(&args.csv)
        .with_context(|| format!("could not read {}", args.csv.display()))?;
    let examples = read_utterance_csv(&text).map_err(|(line, message)| {
        anyhow::anyhow!("{}:{}: {message}", args.csv.display(), line.unwrap_or(0))
    })?;
    let report = evaluate_intents(&set.knowledge, &examples, method);
    println!(
        "knowledge: {} entries, {} data-set phrasings{}",
        set.knowledge.faq.len(),
        set.knowledge.dataset_phrasings_used,
        if args.zero_shot { " (zero-shot)" } else { "" }
    );
    println!("{report}");
    Ok(())
}
