//! Conversation context and rate limits end to end: through the `shopkeep` binary (context
//! survives the process exiting) and through `Assistant::handle` on the tiny random GPT-2
//! that `./scripts/test.sh` builds into the cache.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shopkeep::assistant::content::Prompts;
use shopkeep::assistant::conversation::conversation_key;
use shopkeep::assistant::{AnswerEvent, Assistant, Inbound, InboundKind, Outcome, Role};
use shopkeep::backend::OnnxBackend;
use shopkeep::config::Config;
use shopkeep::engine::{EngineHandle, SessionOptions};
use shopkeep::store::Store;
use support::test_model;

fn shopkeep(db: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_shopkeep"))
        .args(args)
        .env("SHOPKEEP_DB", db)
        .env("SHOPKEEP_MAX_NEW_TOKENS", "16")
        .output()
        .expect("shopkeep runs");
    assert!(
        output.status.success(),
        "shopkeep {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn chat_once(db: &Path, user: &str, question: &str) {
    let model = test_model("tiny-gpt2");
    let model = model.to_str().unwrap();
    shopkeep(
        db,
        &[
            "chat",
            "--user",
            user,
            "--once",
            question,
            "--model-dir",
            model,
        ],
    );
}

fn export(db: &Path, user: &str) -> serde_json::Value {
    let output = shopkeep(db, &["user", "export", user]);
    serde_json::from_slice(&output.stdout).expect("export prints JSON")
}

fn exported_questions(export: &serde_json::Value) -> Vec<String> {
    export["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["turns"].as_array().unwrap().iter())
        .map(|t| t["question"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn chat_turns_survive_the_process_and_export_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/shopkeep.sqlite3");
    chat_once(&db, "alice", "Where is my order?");
    chat_once(&db, "alice", "And when does it arrive?");
    chat_once(&db, "bob", "Do you ship to Norway?");

    let alice = export(&db, "alice");
    assert_eq!(alice["user"], "alice");
    let conversations = alice["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1, "one conversation: {alice:#}");
    let turns = conversations[0]["turns"].as_array().unwrap();
    assert_eq!(
        exported_questions(&alice),
        ["Where is my order?", "And when does it arrive?"]
    );
    assert!(turns.iter().all(|t| t["answer"].is_string()));
    assert_eq!(alice["questions"].as_array().unwrap().len(), 2);
    assert_eq!(alice["questions"][0]["outcome"], "answered");
    assert_eq!(
        exported_questions(&export(&db, "bob")),
        ["Do you ship to Norway?"]
    );
}

#[test]
fn user_forget_deletes_the_users_data_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shopkeep.sqlite3");
    chat_once(&db, "alice", "Please forget me");
    chat_once(&db, "bob", "Keep me");
    let forget = shopkeep(&db, &["user", "forget", "alice"]);
    assert!(String::from_utf8_lossy(&forget.stderr).contains("1 conversation(s) with 1 turn(s)"));
    let alice = export(&db, "alice");
    assert_eq!(alice["conversations"], serde_json::json!([]));
    assert_eq!(alice["questions"], serde_json::json!([]));
    assert_eq!(exported_questions(&export(&db, "bob")), ["Keep me"]);
}

fn assistant(configure: impl FnOnce(&mut Config)) -> Assistant {
    assistant_on(Store::open_in_memory().unwrap(), configure)
}

fn assistant_on(store: Store, configure: impl FnOnce(&mut Config)) -> Assistant {
    let engine =
        EngineHandle::load(&test_model("tiny-gpt2"), &SessionOptions::with_threads(1)).unwrap();
    let mut config = Config::from_env().unwrap();
    config.model.max_new_tokens = 8;
    configure(&mut config);
    let prompts = Prompts::load(&config.prompts_dir).expect("the repository's prompts/ load");
    Assistant::new(
        Arc::new(OnnxBackend::new(engine)),
        Arc::new(config),
        Arc::new(store),
        Arc::new(prompts),
    )
}

fn inbound(user: &str, text: &str) -> Inbound {
    Inbound {
        user_id: user.into(),
        user_name: user.into(),
        channel_id: Some("support".into()),
        guild_id: Some("shop".into()),
        text: text.into(),
        kind: InboundKind::Mention,
        role: Role::Customer,
    }
}

/// Reads an answer (streamed by the model, or written from a template or the knowledge) to
/// the end; `Err(Some(text))` for a hand-off or a notice, `Err(None)` for silence.
async fn answer_text(outcome: Outcome) -> Result<String, Option<String>> {
    match outcome {
        Outcome::Answer(mut events) => {
            while let Some(event) = events.recv().await {
                if let AnswerEvent::Final(answer) = event {
                    return Ok(answer.text);
                }
            }
            panic!("the answer stream ended without a final answer")
        }
        Outcome::Reply(text) => Ok(text),
        Outcome::Handoff(text) => Err(Some(text)),
        Outcome::Notice(notice) => Err(Some(notice.to_string())),
        Outcome::Summary(_) | Outcome::Draft(_) => Err(None),
        Outcome::Silent => Err(None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_messages_are_answered_and_recorded_in_order() {
    let assistant = assistant(|config| config.limits.user_burst = 10);
    // As an adapter would: call `handle` per message in arrival order, and stream each
    // answer from its own task.
    let mut answers = Vec::new();
    for i in 1..=4 {
        let outcome = assistant
            .handle(inbound("alice", &format!("question {i}")))
            .await;
        answers.push(tokio::spawn(answer_text(outcome)));
    }
    for answer in answers {
        let answer = answer.await.unwrap();
        assert!(answer.is_ok(), "{answer:?}");
    }
    let export = assistant.conversations().export("alice").unwrap();
    assert_eq!(
        exported_questions(&export),
        ["question 1", "question 2", "question 3", "question 4"]
    );
    assert_eq!(assistant.conversations().users_with_turns_in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_gets_the_burst_and_one_notice_while_others_are_answered() {
    let assistant = assistant(|config| {
        config.limits.user_burst = 3;
        config.limits.user_per_minute = 6;
        config.limits.channel_burst = 100;
    });
    let started = Instant::now();
    let mut outcomes = Vec::new();
    // Questions the knowledge does not cover: each admitted one is a model answer that
    // holds the flooder's turn until it has streamed.
    for i in 0..15 {
        let outcome = assistant
            .handle(inbound("flooder", &format!("question {i}")))
            .await;
        outcomes.push(tokio::spawn(answer_text(outcome)));
    }
    let mut answered = 0;
    let mut notices = Vec::new();
    for outcome in outcomes {
        match outcome.await.unwrap() {
            Ok(_) => answered += 1,
            Err(Some(notice)) => notices.push(notice),
            Err(None) => {}
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the flood took too long for the 10 s refill to stay out of it"
    );
    assert_eq!(answered, 3);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("try again in"), "{}", notices[0]);

    let other = tokio::time::timeout(
        Duration::from_secs(30),
        answer_text(assistant.handle(inbound("patient", "tell me a joke")).await),
    )
    .await
    .expect("another user is answered promptly");
    assert!(other.is_ok(), "{other:?}");

    let logged = assistant.store().questions_since(0, 100).unwrap();
    let limited = logged
        .iter()
        .filter(|q| q.outcome == shopkeep::store::QuestionOutcome::Limited)
        .count();
    assert_eq!(limited, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_clears_the_context_of_a_running_assistant() {
    let assistant = assistant(|_| {});
    assert!(answer_text(
        assistant
            .handle(inbound("alice", "hello there, it is a lovely day"))
            .await
    )
    .await
    .is_ok());
    assert_eq!(
        exported_questions(&assistant.conversations().export("alice").unwrap()),
        ["hello there, it is a lovely day"]
    );
    assert!(assistant
        .conversations()
        .is_cached(&conversation_key("alice", Some("shop"))));
    assistant.forget("alice").await.unwrap();
    assert!(!assistant
        .conversations()
        .is_cached(&conversation_key("alice", Some("shop"))));
    assert!(exported_questions(&assistant.conversations().export("alice").unwrap()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_of_only_invisible_characters_is_empty() {
    let assistant = assistant(|_| {});
    let invisible = "\u{202E}\u{200B}\u{2066} \u{200D}\u{FEFF}\u{2069}";
    assert!(matches!(
        assistant.handle(inbound("alice", invisible)).await,
        Outcome::Silent
    ));
    assert!(exported_questions(&assistant.conversations().export("alice").unwrap()).is_empty());
    // Inside a question they are dropped before anything sees it.
    let _ = answer_text(
        assistant
            .handle(inbound(
                "bob",
                "hello\u{200B} there, it is a love\u{202E}ly day",
            ))
            .await,
    )
    .await;
    assert_eq!(
        exported_questions(&assistant.conversations().export("bob").unwrap()),
        ["hello there, it is a lovely day"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_forget_from_the_command_line_reaches_the_running_assistant() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.sqlite3");
    let assistant = assistant_on(Store::open(db.to_str().unwrap()).unwrap(), |_| {});
    let said = "hello there, my address is 12 Elm Street";
    let _ = answer_text(assistant.handle(inbound("alice", said)).await).await;
    let key = conversation_key("alice", Some("shop"));
    assert!(assistant.conversations().is_cached(&key));
    // Another process forgets alice while this one runs.
    let output = shopkeep(&db, &["user", "forget", "alice"]);
    assert!(output.status.success(), "{output:?}");
    let turn = assistant.conversations().lock_user(&key).await;
    assert!(
        assistant.conversations().history(&turn).unwrap().is_empty(),
        "the running assistant still holds the forgotten turns"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_said_in_a_dm_does_not_feed_answers_in_a_server() {
    let assistant = assistant(|_| {});
    let mut dm = inbound("alice", "hello there, my address is 12 Elm Street");
    dm.guild_id = None;
    dm.channel_id = None;
    dm.kind = InboundKind::DirectMessage;
    let _ = answer_text(assistant.handle(dm).await).await;
    let in_server = conversation_key("alice", Some("shop"));
    let turn = assistant.conversations().lock_user(&in_server).await;
    assert!(assistant.conversations().history(&turn).unwrap().is_empty());
    drop(turn);
    let turn = assistant
        .conversations()
        .lock_user(&conversation_key("alice", None))
        .await;
    assert_eq!(assistant.conversations().history(&turn).unwrap().len(), 1);
    drop(turn);
    // Export and forget by user id cover every place.
    assert_eq!(
        exported_questions(&assistant.conversations().export("alice").unwrap()),
        ["hello there, my address is 12 Elm Street"]
    );
}
