//! The `openai` backend against a real llama.cpp server (llama-cpp-python's, which
//! `./scripts/setup.sh llama-server` builds into the cache) serving the SmolLM2-135M-Instruct
//! GGUF on 127.0.0.1: streaming end to end (`shopkeep chat --once` prints what the server
//! itself answers), cancellation, the server killed mid-answer and coming back, and a server
//! slow to start. Each test skips, saying so, when the server is not prepared.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use shopkeep::assistant::{Assistant, Notice};
use shopkeep::backend::{
    chatml, Backend, GenerateRequest, OpenAiBackend, SamplingParams, StreamEvent,
};
use shopkeep::config::{cache_dir, Config, OpenAiSettings};
use support::assistants::{assistant_over, customer_question};

/// One server at a time: they share two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ALIAS: &str = "smollm2";
const GENERAL: &str = "What's the capital of France?";

/// The prepared server's Python and the GGUF, or `None` (the test then skips).
fn prepared() -> Option<(PathBuf, PathBuf)> {
    let dir = cache_dir().join("llama-server");
    let python = dir.join("bin/python");
    let gguf = cache_dir().join("wheels/SmolLM2-135M-Instruct.Q4_1.gguf");
    if python.is_file() && dir.join(".installed").is_file() && gguf.is_file() {
        return Some((python, gguf));
    }
    eprintln!(
        "SKIPPED: llama.cpp's server is not prepared in {}; run ./scripts/setup.sh llama-server",
        dir.display()
    );
    None
}

struct LlamaServer {
    child: Option<Child>,
    port: u16,
    python: PathBuf,
    gguf: PathBuf,
    log: tempfile::NamedTempFile,
}

impl LlamaServer {
    /// Starts the server on a free port (not yet ready: see [`LlamaServer::ready`]).
    fn spawn(python: PathBuf, gguf: PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            child: None,
            port,
            python,
            gguf,
            log: tempfile::NamedTempFile::new().unwrap(),
        };
        server.restart();
        server
    }

    /// Starts (again) on the same port.
    fn restart(&mut self) {
        let log = self.log.reopen().unwrap();
        let child = Command::new(&self.python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&self.gguf)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--n_threads",
                "2",
                "--n_ctx",
                "2048",
                "--model_alias",
                ALIAS,
            ])
            // By default a new request interrupts the one streaming; queue them instead.
            .args(["--interrupt_requests", "False"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the llama.cpp server starts");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn settings(&self) -> OpenAiSettings {
        let mut settings = OpenAiSettings::new(&self.base_url());
        settings.model = Some(ALIAS.into());
        settings.context_length = Some(2048);
        settings.start_timeout = Duration::from_secs(120);
        settings.read_timeout = Duration::from_secs(60);
        settings
    }

    /// Waits until `/v1/models` answers.
    async fn ready(&self) {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            let answered = http.get(format!("{}/models", self.base_url())).send().await;
            if answered.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "the llama.cpp server did not start:\n{}",
            std::fs::read_to_string(self.log.path()).unwrap_or_default()
        );
    }

    /// The server's own (not streamed) answer to `body`.
    async fn complete(&self, mut body: serde_json::Value) -> String {
        body["model"] = json!(ALIAS);
        body["stream"] = json!(false);
        let response = reqwest::Client::new()
            .post(format!("{}/chat/completions", self.base_url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let answer: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn chatml_prompt(system: &str, user: &str) -> String {
    format!("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
}

fn greedy(prompt: String, max_new_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        sampling: SamplingParams::greedy(),
        stop: vec!["<|im_end|>".into()],
        ..GenerateRequest::new(prompt, max_new_tokens)
    }
}

fn assistant(backend: OpenAiBackend) -> Assistant {
    let mut config = Config::from_env().unwrap();
    config.limits.user_burst = 1000;
    config.model.max_new_tokens = 48;
    assistant_over(Arc::new(backend), config)
}

async fn ask(assistant: &Assistant, question: &str) -> String {
    let inbound = customer_question("ann", question);
    let answer = async { assistant.handle(inbound).await.shown_text().await };
    tokio::time::timeout(Duration::from_secs(120), answer)
        .await
        .expect("the answer hung")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_text_streams_and_equals_the_servers_own_completion() {
    let Some((python, gguf)) = prepared() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let server = LlamaServer::spawn(python, gguf);
    server.ready().await;
    let backend = OpenAiBackend::connect(server.settings()).await.unwrap();
    assert!(backend.status().healthy);
    let prompt = chatml_prompt(
        "You are a helpful assistant.",
        "Tell me about tea in three sentences.",
    );
    let mut stream = backend.generate(greedy(prompt.clone(), 64));
    let mut deltas = Vec::new();
    let generated = loop {
        match stream.next().await.expect("an end") {
            StreamEvent::Text(delta) => deltas.push(delta),
            StreamEvent::Done(result) => break result.expect("the server answered"),
        }
    };
    assert!(deltas.len() > 5, "not streamed: {deltas:?}");
    assert_eq!(deltas.concat(), generated.text);
    let own = server
        .complete(json!({
            "messages": chatml::messages(&prompt),
            "max_tokens": 64,
            "temperature": 0.0,
            "seed": 0,
            "stop": ["<|im_end|>"],
        }))
        .await;
    assert!(!own.is_empty());
    assert_eq!(generated.text, own);

    // A token count from the server's own tokenizer, not the estimate.
    let counted = backend.count_tokens("Hello world").await;
    assert!(counted <= 4, "{counted}");
}

/// `shopkeep chat --once` on the server prints exactly what the server answers to the same
/// messages with the same settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_once_prints_what_the_server_answers() {
    let Some((python, gguf)) = prepared() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let server = LlamaServer::spawn(python, gguf);
    server.ready().await;
    let shopkeep = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shopkeep"))
            .args(args)
            .env("SHOPKEEP_BACKEND", "openai")
            .env("SHOPKEEP_OPENAI_BASE_URL", server.base_url())
            .env("SHOPKEEP_OPENAI_MODEL", ALIAS)
            .env("SHOPKEEP_EMBEDDING_MODEL_DIR", "off")
            .env("SHOPKEEP_DB", ":memory:")
            .env("SHOPKEEP_MAX_NEW_TOKENS", "48")
            .env("SHOPKEEP_TEMPERATURE", "0")
            .env("SHOPKEEP_REPETITION_PENALTY", "1.1")
            .output()
            .unwrap()
    };
    let shown = shopkeep(&["eval", "route", GENERAL, "--show-prompt", "chatml"]);
    let prompt = String::from_utf8(shown.stdout).unwrap();
    assert!(prompt.contains(GENERAL), "{prompt}");
    let own = server
        .complete(json!({
            "messages": chatml::messages(&prompt),
            "max_tokens": 48,
            "temperature": 0.0,
            "seed": 0,
            "repeat_penalty": 1.1,
            "repetition_penalty": 1.1,
            "stop": ["<|im_start|>", "<|im_end|>", "\n\n"],
        }))
        .await;
    let chat = shopkeep(&["chat", "--once", GENERAL]);
    let printed = String::from_utf8(chat.stdout).unwrap();
    assert!(
        chat.status.success(),
        "{}",
        String::from_utf8_lossy(&chat.stderr)
    );
    assert!(!own.trim().is_empty());
    assert_eq!(printed.trim(), own.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_cancels_and_the_server_answers_on() {
    let Some((python, gguf)) = prepared() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let server = LlamaServer::spawn(python, gguf);
    server.ready().await;
    let backend = OpenAiBackend::connect(server.settings()).await.unwrap();
    let long = chatml_prompt(
        "You are a storyteller.",
        "Write a very long story about a teapot.",
    );
    let mut stream = backend.generate(greedy(long, 1000));
    for _ in 0..3 {
        assert!(matches!(stream.next().await, Some(StreamEvent::Text(_))));
    }
    drop(stream);
    let idle = tokio::time::timeout(Duration::from_secs(10), async {
        while backend.status().pending > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(idle.is_ok(), "the dropped generation is still pending");
    let short = chatml_prompt("You are brief.", "Say hello.");
    let next = tokio::time::timeout(
        Duration::from_secs(60),
        backend.generate(greedy(short, 8)).finish(),
    )
    .await
    .expect("the server is still busy with the cancelled story");
    assert!(!next.unwrap().text.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_answer_means_an_apology_and_it_recovers_when_back() {
    let Some((python, gguf)) = prepared() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let mut server = LlamaServer::spawn(python, gguf);
    server.ready().await;
    let backend = OpenAiBackend::connect(server.settings()).await.unwrap();
    let assistant = assistant(backend.clone());

    let long = chatml_prompt(
        "You are a storyteller.",
        "Write a very long story about a teapot.",
    );
    let mut stream = backend.generate(greedy(long, 1000));
    assert!(matches!(stream.next().await, Some(StreamEvent::Text(_))));
    server.kill();
    let end = tokio::time::timeout(Duration::from_secs(30), stream.finish())
        .await
        .expect("the stream hung after the server died");
    assert!(end.is_err(), "a cut answer is an error, not a short answer");

    let apology = Notice::GenerationFailed.to_string();
    for _ in 0..3 {
        assert_eq!(ask(&assistant, GENERAL).await, apology);
    }
    assert!(!backend.status().healthy, "the breaker opened");
    assert!(ask(&assistant, "where is my parcel??")
        .await
        .contains("tracking"));
    assert!(ask(&assistant, "hey whats up")
        .await
        .contains("Kettle & Kiln"));

    server.restart();
    server.ready().await;
    let healthy = tokio::time::timeout(Duration::from_secs(10), async {
        while !backend.status().healthy {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        healthy.is_ok(),
        "the breaker did not close when the server came back"
    );
    let answer = ask(&assistant, GENERAL).await;
    assert_ne!(answer, apology);
    assert!(!answer.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slow_to_start_is_waited_for_or_joined_later() {
    let Some((python, gguf)) = prepared() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let mut server = LlamaServer::spawn(python.clone(), gguf.clone());
    server.kill();

    // Not waiting: the bot starts at once, answers from its knowledge, apologises for model
    // answers, and joins the server once it is up.
    let mut settings = server.settings();
    settings.start_timeout = Duration::ZERO;
    let backend = OpenAiBackend::connect(settings).await.unwrap();
    assert!(!backend.status().healthy);
    let assistant = assistant(backend.clone());
    assert!(ask(&assistant, "where is my parcel??")
        .await
        .contains("tracking"));
    assert_eq!(
        ask(&assistant, GENERAL).await,
        Notice::GenerationFailed.to_string()
    );
    server.restart();
    server.ready().await;
    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        while !backend.status().healthy {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(joined.is_ok(), "the backend did not join the server");
    assert_ne!(
        ask(&assistant, GENERAL).await,
        Notice::GenerationFailed.to_string()
    );

    // Waiting: connect returns once the server that starts during the wait is ready.
    server.kill();
    let settings = server.settings();
    let connecting = tokio::spawn(OpenAiBackend::connect(settings));
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart();
    let backend = connecting.await.unwrap().unwrap();
    assert!(backend.status().healthy);
    let text = backend
        .generate(greedy(chatml_prompt("You are brief.", "Say hello."), 8))
        .finish()
        .await
        .unwrap()
        .text;
    assert!(!text.is_empty());
}
