//! The `shopkeep` command line: the edge where errors become messages and exit codes.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use shopkeep::assistant::eval::evaluate_intents;
use shopkeep::assistant::eval_answers::{self, read_cases};
use shopkeep::assistant::knowledge::{Method, RouteKind};
use shopkeep::assistant::prompts::{
    read_utterance_csv, LoadOptions, PromptSet, REQUIRED_TEMPLATES,
};
use shopkeep::assistant::{AnswerEvent, Assistant, Inbound, InboundKind, Outcome, Role};
use shopkeep::config::Config;
use shopkeep::engine::{
    EngineHandle, GenerateRequest, PromptFormat, SamplingParams, SessionOptions, StreamEvent,
};
use shopkeep::store::Store;

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
    Chat(ChatArgs),
    /// Run the raw engine on a prompt exactly as given (no template).
    Generate(GenerateArgs),
    /// Perplexity of the model on a text file; the last line is `perplexity: X`.
    Perplexity(PerplexityArgs),
    /// Decode speed against a plain onnxruntime Python loop on the same model, in one run.
    Bench(BenchArgs),
    /// What is stored about a user, for admins and privacy requests.
    #[command(subcommand)]
    User(UserCommand),
    /// Validate a prompts folder (templates, knowledge, guard rules) without starting the bot;
    /// exits non-zero on any problem.
    CheckPrompts(CheckPromptsArgs),
    /// Measure the assistant (see `eval intents`).
    #[command(subcommand)]
    Eval(EvalCommand),
    /// What customers need, from the question log (SHOPKEEP_DB): top topics, questions not
    /// answered confidently, feedback and refusals; the same as /insights on Discord.
    Insights(InsightsArgs),
}

#[derive(Args)]
struct InsightsArgs {
    /// The window: the last N days.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InsightsFormat::Text)]
    format: InsightsFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InsightsFormat {
    Text,
    Json,
    Csv,
}

#[derive(Args)]
struct CheckPromptsArgs {
    /// The folder to check (default: SHOPKEEP_PROMPTS_DIR or ./prompts).
    dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum EvalCommand {
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
struct EvalAnswersArgs {
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
struct EvalRouteArgs {
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
struct EvalIntentsArgs {
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

#[derive(Subcommand)]
enum UserCommand {
    /// Print everything stored about USER as JSON (conversations with their turns,
    /// logged questions, feedback votes).
    Export {
        /// The Discord user id (in `shopkeep chat`, the `--user` name).
        user: String,
    },
    /// Delete everything stored about USER.
    Forget {
        /// The Discord user id (in `shopkeep chat`, the `--user` name).
        user: String,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Model directory (default: the GPT-2-small-shaped random model from `scripts/setup.sh bench-models`).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = 5)]
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
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// About 32 GPT-2 tokens of ordinary text.
const BENCH_PROMPT: &str = "Thank you for shopping with us. Your order has been packed and will leave our warehouse tomorrow morning, and you will receive a tracking link by email within a day";

#[derive(Args)]
struct ModelArgs {
    /// Model directory (model.onnx + tokenizer.json [+ manifest.json]); default: SHOPKEEP_MODEL_DIR or the default model.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// ONNX Runtime intra-op threads (default: SHOPKEEP_THREADS, or automatic).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct ChatArgs {
    /// Answer this one question and exit.
    #[arg(long)]
    once: Option<String>,
    /// Whose conversation this is.
    #[arg(long, default_value = "terminal")]
    user: String,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
struct GenerateArgs {
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
    /// Print one JSON line: prompt_ids, output_ids, text, tokens_per_s, prefill_ms.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
struct PerplexityArgs {
    #[arg(long)]
    text_file: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
}

fn main() {
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "shopkeep=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(error) = real_main() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    // Prompt tools need no bot configuration, so they run before it is read.
    let command = match cli.command.unwrap_or(Command::Run) {
        Command::CheckPrompts(args) => return check_prompts(args),
        Command::Eval(EvalCommand::Intents(args)) => return eval_intents(args),
        Command::Eval(EvalCommand::Route(args)) => return eval_route(args),
        Command::Eval(EvalCommand::Answers(args)) => return eval_answers(args),
        other => other,
    };
    let config = Config::from_env()?;
    match command {
        Command::Run => {
            if config.discord.token.is_none() {
                eprintln!("DISCORD_TOKEN is not set, so starting the terminal chat instead of the Discord bot.");
                eprintln!("(See README.md to connect the bot to a Discord server.)");
                return chat(
                    config,
                    ChatArgs {
                        once: None,
                        user: "terminal".into(),
                        model: ModelArgs {
                            model_dir: None,
                            threads: None,
                        },
                    },
                );
            }
            let engine = load_engine(
                &config,
                &ModelArgs {
                    model_dir: None,
                    threads: None,
                },
            )?;
            let settings = config.discord.clone();
            let assistant = Assistant::open(engine, Arc::new(config))?;
            runtime()?.block_on(async {
                reload_prompts_on_sighup(assistant.clone())?;
                shopkeep::discord::run(assistant, settings).await?;
                anyhow::Ok(())
            })?;
            Ok(())
        }
        Command::Chat(args) => chat(config, args),
        Command::Generate(args) => generate(config, args),
        Command::Perplexity(args) => perplexity(config, args),
        Command::Bench(args) => bench(args),
        Command::User(command) => user(config, command),
        Command::Insights(args) => insights(config, args),
        Command::CheckPrompts(_) | Command::Eval(_) => unreachable!("handled above"),
    }
}

fn prompts_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| std::env::var_os("SHOPKEEP_PROMPTS_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("prompts"))
}

fn check_prompts(args: CheckPromptsArgs) -> Result<()> {
    let dir = prompts_dir(args.dir);
    match PromptSet::load(&dir) {
        Ok(set) => {
            let knowledge = &set.knowledge;
            println!(
                "{}: OK: {} FAQ entries, {} policies, {} products, {} data-set phrasings, {} templates; version {}",
                dir.display(),
                knowledge.faq.len(),
                knowledge.policies.len(),
                knowledge.catalogue.len(),
                knowledge.dataset_phrasings_used,
                REQUIRED_TEMPLATES.len(),
                set.short_version()
            );
            Ok(())
        }
        Err(error) => {
            for problem in error.problems() {
                eprintln!("{problem}");
            }
            bail!(
                "{} is not valid: {} problem(s)",
                dir.display(),
                error.problems().len().max(1)
            )
        }
    }
}

fn eval_route(args: EvalRouteArgs) -> Result<()> {
    let options = LoadOptions {
        dataset_phrasings: !args.zero_shot,
        ..LoadOptions::default()
    };
    let set = PromptSet::load_with(&prompts_dir(args.prompts), options)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
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
                serde_json::json!({"question": question, "route": route})
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
    let dir = prompts_dir(args.prompts);
    let method = Method::parse(&args.method).with_context(|| {
        format!(
            "unknown method {:?}: use combined, centroid or nearest",
            args.method
        )
    })?;
    let options = LoadOptions {
        dataset_phrasings: !args.zero_shot,
        ..LoadOptions::default()
    };
    let set = PromptSet::load_with(&dir, options).map_err(|error| anyhow::anyhow!("{error}"))?;
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

fn eval_answers(args: EvalAnswersArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("could not read {}", args.file.display()))?;
    let cases = read_cases(&text).with_context(|| args.file.display().to_string())?;
    let mut config = Config::from_env()?;
    // A fresh conversation store, and no rate limit between the questions of one user.
    config.db_path = ":memory:".into();
    config.limits.user_burst = u32::MAX / 2;
    config.limits.user_per_minute = u32::MAX / 2;
    let engine = load_engine(&config, &args.model)?;
    let assistant = Assistant::open(engine, Arc::new(config))?;
    let report = runtime()?.block_on(eval_answers::run(&assistant, &cases));
    if args.verbose {
        for result in &report.results {
            println!(
                "{} {} [{}] {:?}\n     -> {}",
                if result.passed() { "ok  " } else { "FAIL" },
                result.case.id,
                if result.handed_off { "hand-off" } else { "answer" },
                result.case.question,
                result.reply.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
    }
    println!("{report}");
    Ok(())
}

fn load_engine(config: &Config, args: &ModelArgs) -> Result<EngineHandle> {
    let dir = args
        .model_dir
        .clone()
        .unwrap_or_else(|| config.model.model_dir.clone());
    let options = SessionOptions::with_threads(args.threads.unwrap_or(config.model.threads));
    EngineHandle::load(&dir, &options)
        .with_context(|| format!("could not load the model in {}", dir.display()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn generate(config: Config, args: GenerateArgs) -> Result<()> {
    let engine = load_engine(&config, &args.model)?;
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
        use_kv_cache: !args.no_cache,
        prefix_cache_key: None,
    };
    let mut stream = engine.generate(request);
    let mut stdout = std::io::stdout().lock();
    while let Some(event) = stream.blocking_next() {
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
                    let line = serde_json::json!({
                        "prompt_ids": generated.prompt_ids,
                        "output_ids": generated.output_ids,
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
                        generated.output_ids.len(),
                        generated.prefill_ms,
                        generated.tokens_per_s,
                        generated.finish
                    );
                }
                return Ok(());
            }
        }
    }
    bail!("the engine stopped before finishing")
}

fn perplexity(config: Config, args: PerplexityArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.text_file)
        .with_context(|| format!("could not read {}", args.text_file.display()))?;
    let engine = load_engine(&config, &args.model)?;
    let score = runtime()?.block_on(engine.perplexity(text.trim().to_string()))?;
    println!("tokens: {}", score.tokens);
    println!("mean_nll: {:.4}", score.mean_nll);
    println!("perplexity: {:.3}", score.perplexity);
    Ok(())
}

fn user(config: Config, command: UserCommand) -> Result<()> {
    let store = Store::open(&config.db_path)
        .with_context(|| format!("could not open the database {}", config.db_path))?;
    match command {
        UserCommand::Export { user } => {
            let export = store.export_user(&user)?;
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
        UserCommand::Forget { user } => {
            let deleted = store.forget_user(&user)?;
            eprintln!(
                "Deleted {} conversation(s) with {} turn(s), {} logged question(s) and {} feedback vote(s) of {user}.",
                deleted.conversations, deleted.turns, deleted.questions, deleted.feedback
            );
        }
    }
    Ok(())
}

fn insights(config: Config, args: InsightsArgs) -> Result<()> {
    let store = Store::open(&config.db_path)
        .with_context(|| format!("could not open the database {}", config.db_path))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let insights = shopkeep::assistant::insights::from_store(&store, now, args.days)?;
    match args.format {
        InsightsFormat::Text => print!("{}", insights.to_text()),
        InsightsFormat::Json => println!("{}", serde_json::to_string_pretty(&insights)?),
        InsightsFormat::Csv => print!("{}", insights.to_csv()),
    }
    Ok(())
}

fn chat(config: Config, args: ChatArgs) -> Result<()> {
    let engine = load_engine(&config, &args.model)?;
    let assistant = Assistant::open(engine, Arc::new(config))?;
    let rt = runtime()?;
    let ask = |question: String| -> Result<()> {
        let inbound = Inbound {
            user_id: args.user.clone(),
            user_name: args.user.clone(),
            channel_id: None,
            guild_id: None,
            text: question,
            kind: InboundKind::Terminal,
            role: Role::Customer,
        };
        rt.block_on(async {
            let mut stdout = std::io::stdout();
            match assistant.handle(inbound).await {
                Outcome::Silent => {}
                Outcome::Notice(notice) => println!("{notice}"),
                Outcome::Answer(mut events) => {
                    // Partial texts usually grow, but the guard may rewrite a sentence:
                    // print only what extends the text already shown, and the final answer
                    // again in full when it no longer starts with it.
                    let mut shown = String::new();
                    while let Some(event) = events.recv().await {
                        match event {
                            AnswerEvent::Partial(text) => {
                                if let Some(more) = text.strip_prefix(shown.as_str()) {
                                    print!("{more}");
                                    stdout.flush()?;
                                    shown = text;
                                }
                            }
                            AnswerEvent::Final(answer) => {
                                match answer.text.strip_prefix(shown.as_str()) {
                                    Some(rest) => println!("{rest}"),
                                    None => println!("\n--- corrected answer ---\n{}", answer.text),
                                }
                            }
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    if let Some(question) = args.once {
        return ask(question);
    }
    eprintln!("shopkeep chat: type a question and press Enter; Ctrl-D to quit.");
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        ask(line)?;
    }
}

fn bench(args: BenchArgs) -> Result<()> {
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
    let options = shopkeep::bench::BenchOptions {
        model_dir: model_dir.clone(),
        threads: args.threads,
        runs: args.runs.max(1),
        prompt: BENCH_PROMPT.to_string(),
        new_tokens: args.new_tokens,
        python: args.python.unwrap_or_else(|| cache.join("venv/bin/python")),
        tools_dir: shopkeep::bench::default_tools_dir(),
        concurrent: args.concurrent,
        history_tokens: args.history_tokens,
        quantized_model_dir: args
            .quantized_model_dir
            .or_else(|| Some(cache.join("models/gpt2-small-int8")))
            .filter(|dir| dir.join("model.onnx").is_file()),
        tuning: args.tuning,
    };
    let engine = EngineHandle::load(&model_dir, &SessionOptions::with_threads(args.threads))?;
    let report = runtime()?.block_on(shopkeep::bench::run(&options, &engine))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", shopkeep::bench::table(&report));
    }
    Ok(())
}

/// SIGHUP reloads the prompts (as `/reload-prompts` does); a broken set is logged and the
/// previous one stays in service.
fn reload_prompts_on_sighup(assistant: Assistant) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match assistant.reload_prompts() {
                Ok(report) => tracing::info!(report = %report.summary, "SIGHUP: prompts reloaded"),
                Err(error) => tracing::error!(%error, "SIGHUP: prompts not reloaded"),
            }
        }
    });
    Ok(())
}
