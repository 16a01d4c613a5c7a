//! The bot side's own cost per model answer, with a backend that answers instantly (the
//! scripted backend): admission, the user's turn lock, routing, the prompt and its token
//! budget, streaming, the guard, the reply check, and recording the turn and the question
//! in an in-memory store. Discord is not included.
//!
//! `cargo bench --bench backends` (no model, no ONNX Runtime). Reports p50/p99/max per
//! answer for one conversation at a time, then the questions per second a 2-worker runtime
//! handles with 64 conversations at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shopkeep::assistant::content::Prompts;
use shopkeep::assistant::{AnswerEvent, Assistant, Inbound, InboundKind, Outcome, Role};
use shopkeep::backend::ScriptedBackend;
use shopkeep::config::Config;
use shopkeep::store::Store;

/// A general question: the knowledge does not answer it, so the model writes the reply.
const QUESTION: &str = "What's the capital of France?";
/// A shop question the knowledge quotes (no model), for comparison.
const QUOTED: &str = "where is my parcel??";
const REPLY: &str = "Paris is the capital of France, on the Seine.";
const ANSWERS: usize = 4000;
const CONCURRENT: usize = 64;

fn assistant() -> Assistant {
    let mut config = Config::from_env().unwrap();
    config.prompts_dir = format!("{}/prompts", env!("CARGO_MANIFEST_DIR")).into();
    config.limits.user_burst = u32::MAX / 2;
    config.limits.user_per_minute = u32::MAX / 2;
    config.limits.channel_burst = u32::MAX / 2;
    config.limits.channel_per_minute = u32::MAX / 2;
    config.limits.max_queue = 4 * CONCURRENT;
    let prompts = Prompts::load(&config.prompts_dir).expect("prompts/ loads");
    let backend = ScriptedBackend::new()
        .with_default(shopkeep::backend::scripted::Scripted::Text(REPLY.into()));
    Assistant::new(
        Arc::new(backend),
        Arc::new(config),
        Arc::new(Store::open_in_memory().unwrap()),
        Arc::new(prompts),
    )
}

/// One answer, start to final text; panics unless the model wrote it (`model`) or the
/// knowledge did (not `model`).
async fn answer_as(assistant: &Assistant, user: &str, question: &str, model: bool) -> Duration {
    let started = Instant::now();
    let outcome = assistant
        .handle(Inbound {
            user_id: user.into(),
            user_name: user.into(),
            channel_id: Some("support".into()),
            guild_id: None,
            text: question.into(),
            kind: InboundKind::Mention,
            role: Role::Customer,
        })
        .await;
    match outcome {
        Outcome::Answer(mut events) if model => {
            while let Some(event) = events.recv().await {
                if let AnswerEvent::Final(_) = event {
                    break;
                }
            }
        }
        Outcome::Reply(_) if !model => {}
        _ => panic!("{question:?} was not answered as expected"),
    }
    started.elapsed()
}

async fn answer(assistant: &Assistant, user: &str, question: &str) -> Duration {
    answer_as(assistant, user, question, true).await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let assistant = assistant();
    let mut times = runtime.block_on(async {
        // Warm-up, then one answer at a time; 200 users, so conversations grow a little.
        for index in 0..200 {
            answer(&assistant, &format!("warm-{index}"), QUESTION).await;
        }
        let mut times = Vec::with_capacity(ANSWERS);
        for index in 0..ANSWERS {
            let user = format!("user-{}", index % 200);
            times.push(answer(&assistant, &user, QUESTION).await);
        }
        times
    });
    times.sort();
    let mut quoted = runtime.block_on(async {
        let mut times = Vec::with_capacity(ANSWERS);
        for index in 0..ANSWERS {
            let user = format!("quoted-{}", index % 200);
            times.push(answer_as(&assistant, &user, QUOTED, false).await);
        }
        times
    });
    quoted.sort();
    println!(
        "bot-side overhead per model answer, scripted backend ({ANSWERS} answers, one at a time):"
    );
    println!(
        "  p50 {}  p99 {}  max {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap())
    );

    println!(
        "  for comparison, a quoted answer (routing, guard, store; no model path): p50 {}  p99 {}",
        ms(percentile(&quoted, 0.5)),
        ms(percentile(&quoted, 0.99)),
    );

    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|worker| {
                let assistant = assistant.clone();
                tokio::spawn(async move {
                    for _ in 0..ANSWERS / CONCURRENT {
                        let user = format!("c-{worker}");
                        answer(&assistant, &user, QUESTION).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let elapsed = started.elapsed();
    println!(
        "throughput, {CONCURRENT} conversations at once on 2 runtime workers: {:.0} answers/s ({} in {:.2} s)",
        (ANSWERS / CONCURRENT * CONCURRENT) as f64 / elapsed.as_secs_f64(),
        ANSWERS / CONCURRENT * CONCURRENT,
        elapsed.as_secs_f64()
    );
}
