//! The `openai` backend against a fake OpenAI-compatible server (raw HTTP on 127.0.0.1, so
//! each test scripts exactly what the server does): streaming into the assistant, retries
//! before the first token and never after it, timeouts, the concurrency limit, the circuit
//! breaker, and the API key (sent to the server, never logged).

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use shopkeep::assistant::{Assistant, Notice};
use shopkeep::backend::openai::ApiKey;
use shopkeep::backend::{Backend, GenerateRequest, OpenAiBackend, StreamEvent};
use shopkeep::config::{Config, OpenAiSettings};
use support::assistants::{assistant_over, customer_question};

/// What the fake server does with one chat request.
#[derive(Clone)]
enum Plan {
    /// 200 and these deltas as server-sent events, `gap` apart, then `[DONE]`.
    Stream(Vec<&'static str>, Duration),
    /// These deltas, then the connection closes without `[DONE]`.
    Cut(Vec<&'static str>),
    /// This status, with a Retry-After in seconds when given.
    Status(u16, Option<&'static str>),
    /// Headers, then silence.
    Stall,
}

#[derive(Default)]
struct State {
    plans: VecDeque<Plan>,
    /// Request heads and bodies of the chat requests, in order.
    chats: Vec<(String, serde_json::Value)>,
    /// When the request for each chat arrived.
    arrivals: Vec<Instant>,
    /// Chat requests being answered right now, and the most at once.
    running: usize,
    most_running: usize,
    /// `/models` answers 503 while down.
    down: bool,
}

#[derive(Clone)]
struct FakeServer {
    state: Arc<Mutex<State>>,
    base_url: String,
}

impl FakeServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Self {
            state: Arc::default(),
            base_url: format!("http://{addr}/v1"),
        };
        let state = server.state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, state.clone()));
            }
        });
        server
    }

    fn plan(&self, plan: Plan) -> &Self {
        self.state.lock().unwrap().plans.push_back(plan);
        self
    }

    fn chats(&self) -> Vec<(String, serde_json::Value)> {
        self.state.lock().unwrap().chats.clone()
    }

    fn settings(&self) -> OpenAiSettings {
        let mut settings = OpenAiSettings::new(&self.base_url);
        settings.read_timeout = Duration::from_secs(2);
        settings.start_timeout = Duration::from_secs(2);
        settings
    }
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let (head, body) = loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..end]).to_string();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        if request.len() >= end + 4 + length {
            break (head, request[end + 4..end + 4 + length].to_vec());
        }
    };
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let reply = |status: &str, body: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    };
    if path == "/v1/models" {
        let down = state.lock().unwrap().down;
        let answer = if down {
            reply("503 Service Unavailable", "{}")
        } else {
            reply(
                "200 OK",
                r#"{"data":[{"id":"fake-model","max_model_len":4096}]}"#,
            )
        };
        let _ = socket.write_all(answer.as_bytes()).await;
        return;
    }
    if path != "/v1/chat/completions" {
        let _ = socket
            .write_all(reply("404 Not Found", "{}").as_bytes())
            .await;
        return;
    }
    let plan = {
        let mut state = state.lock().unwrap();
        state
            .chats
            .push((head, serde_json::from_slice(&body).unwrap()));
        state.arrivals.push(Instant::now());
        state.running += 1;
        state.most_running = state.most_running.max(state.running);
        state
            .plans
            .pop_front()
            .unwrap_or(Plan::Stream(vec!["ok"], Duration::ZERO))
    };
    let sse_head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    let delta = |text: &str| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        )
    };
    match plan {
        Plan::Stream(deltas, gap) => {
            let _ = socket.write_all(sse_head.as_bytes()).await;
            for text in deltas {
                tokio::time::sleep(gap).await;
                if socket.write_all(delta(text).as_bytes()).await.is_err() {
                    break;
                }
            }
            let end = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
            let _ = socket.write_all(end.as_bytes()).await;
        }
        Plan::Cut(deltas) => {
            let _ = socket.write_all(sse_head.as_bytes()).await;
            for text in deltas {
                let _ = socket.write_all(delta(text).as_bytes()).await;
            }
        }
        Plan::Status(status, retry_after) => {
            let retry = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            let answer = format!("HTTP/1.1 {status} Refused\r\n{retry}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}");
            let _ = socket.write_all(answer.as_bytes()).await;
        }
        Plan::Stall => {
            let _ = socket.write_all(sse_head.as_bytes()).await;
            // Until the client hangs up.
            while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
        }
    }
    let _ = socket.shutdown().await;
    state.lock().unwrap().running -= 1;
}

async fn texts(backend: &OpenAiBackend, prompt: &str) -> (Vec<String>, Result<String, String>) {
    let mut stream = backend.generate(GenerateRequest::new(prompt, 16));
    let mut deltas = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            StreamEvent::Text(delta) => deltas.push(delta),
            StreamEvent::Done(result) => {
                return (deltas, result.map(|g| g.text).map_err(|e| e.to_string()))
            }
        }
    }
    (deltas, Err("no end".into()))
}

#[tokio::test]
async fn deltas_stream_in_order_with_the_request_the_server_needs() {
    let server = FakeServer::start().await;
    server.plan(Plan::Stream(vec!["Hel", "lo", " there"], Duration::ZERO));
    let backend = OpenAiBackend::connect(server.settings()).await.unwrap();
    assert_eq!(backend.model().name, "fake-model");
    assert_eq!(backend.model().context_length, 4096, "vLLM's max_model_len");
    let mut request = GenerateRequest::new(
        "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        33,
    );
    request.stop = vec!["<|im_end|>".into()];
    let mut stream = backend.generate(request);
    let mut deltas = Vec::new();
    let generated = loop {
        match stream.next().await.unwrap() {
            StreamEvent::Text(delta) => deltas.push(delta),
            StreamEvent::Done(result) => break result.unwrap(),
        }
    };
    assert_eq!(deltas, ["Hel", "lo", " there"]);
    assert_eq!(generated.text, "Hello there");
    assert_eq!(generated.output_tokens, 3);
    let (_, body) = server.chats().pop().unwrap();
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 33);
    assert_eq!(body["stop"], serde_json::json!(["<|im_end|>"]));
    assert_eq!(
        body["messages"][1],
        serde_json::json!({"role": "user", "content": "hi"})
    );
}

#[tokio::test]
async fn refusals_are_retried_honouring_retry_after_but_never_after_a_token() {
    let server = FakeServer::start().await;
    server
        .plan(Plan::Status(503, Some("1")))
        .plan(Plan::Status(429, None))
        .plan(Plan::Stream(vec!["fine"], Duration::ZERO));
    let backend = OpenAiBackend::connect(server.settings()).await.unwrap();
    let (_, result) = texts(&backend, "hi").await;
    assert_eq!(result.unwrap(), "fine");
    let arrivals = server.state.lock().unwrap().arrivals.clone();
    assert_eq!(arrivals.len(), 3);
    assert!(
        arrivals[1] - arrivals[0] >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured"
    );

    // A stream cut after its first token is not retried: the text so far, then an error.
    server.plan(Plan::Cut(vec!["half"]));
    let (deltas, result) = texts(&backend, "again").await;
    assert_eq!(deltas, ["half"]);
    assert!(result.is_err());
    assert_eq!(server.chats().len(), 4, "retried after a token");

    // A request error that is ours (400) is not retried either.
    server.plan(Plan::Status(400, None));
    assert!(texts(&backend, "bad").await.1.unwrap_err().contains("400"));
    assert_eq!(server.chats().len(), 5);
}

#[tokio::test]
async fn a_silent_server_times_out_and_dropping_a_stream_closes_its_request() {
    let server = FakeServer::start().await;
    server.plan(Plan::Stall);
    let backend = OpenAiBackend::connect(server.settings()).await.unwrap();
    let started = Instant::now();
    let (_, result) = texts(&backend, "hi").await;
    assert!(result.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the read timeout did not fire"
    );

    server.plan(Plan::Stream(vec!["a"; 200], Duration::from_millis(20)));
    let mut stream = backend.generate(GenerateRequest::new("long", 500));
    assert!(matches!(stream.next().await, Some(StreamEvent::Text(_))));
    drop(stream);
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        while backend.status().pending > 0 || server.state.lock().unwrap().running > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the request went on after the stream was dropped"
    );
}

#[tokio::test]
async fn at_most_max_concurrency_requests_run_at_once() {
    let server = FakeServer::start().await;
    for _ in 0..6 {
        server.plan(Plan::Stream(vec!["x", "y", "z"], Duration::from_millis(60)));
    }
    let mut settings = server.settings();
    settings.max_concurrency = 2;
    let backend = OpenAiBackend::connect(settings).await.unwrap();
    let streams: Vec<_> = (0..6)
        .map(|i| backend.generate(GenerateRequest::new(format!("q{i}"), 8)))
        .collect();
    for stream in streams {
        assert_eq!(stream.finish().await.unwrap().text, "xyz");
    }
    assert_eq!(server.state.lock().unwrap().most_running, 2);
}

fn assistant(backend: OpenAiBackend) -> Assistant {
    let mut config = Config::from_env().unwrap();
    config.limits.user_burst = 1000;
    assistant_over(Arc::new(backend), config)
}

async fn ask(assistant: &Assistant, question: &str) -> String {
    let inbound = customer_question("ann", question);
    assistant.handle(inbound).await.shown_text().await
}

#[tokio::test]
async fn a_failing_server_opens_the_breaker_and_its_health_closes_it() {
    let server = FakeServer::start().await;
    let backend = OpenAiBackend::connect(server.settings()).await.unwrap();
    let assistant = assistant(backend.clone());
    server.state.lock().unwrap().down = true;
    for _ in 0..3 {
        server.plan(Plan::Status(500, None));
    }
    let apology = Notice::GenerationFailed.to_string();
    for _ in 0..3 {
        assert_eq!(
            ask(&assistant, "What's the capital of France?").await,
            apology
        );
    }
    assert!(
        !backend.status().healthy,
        "three failures in a row open the circuit"
    );
    // Open: no request reaches the server, the apology comes at once, quoted answers stay.
    let asked = server.chats().len();
    assert_eq!(
        ask(&assistant, "What's the capital of France?").await,
        apology
    );
    assert_eq!(server.chats().len(), asked);
    assert!(ask(&assistant, "where is my parcel??")
        .await
        .contains("tracking"));

    server.state.lock().unwrap().down = false;
    server.plan(Plan::Stream(
        vec!["Paris is the capital of France."],
        Duration::ZERO,
    ));
    let healthy = tokio::time::timeout(Duration::from_secs(5), async {
        while !backend.status().healthy {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        healthy.is_ok(),
        "the health check did not close the circuit"
    );
    assert_eq!(
        ask(&assistant, "What's the capital of France?").await,
        "Paris is the capital of France."
    );
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_reaches_the_server_and_never_the_logs() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let secret = "sk-test-5ecret-key";
    let server = FakeServer::start().await;
    server
        .plan(Plan::Status(503, None))
        .plan(Plan::Stream(vec!["ok"], Duration::ZERO))
        .plan(Plan::Status(500, None));
    let mut settings = server.settings();
    settings.api_key = Some(ApiKey::new(secret));
    tracing::info!(?settings, "settings");
    let backend = OpenAiBackend::connect(settings).await.unwrap();
    tracing::info!(?backend, "backend");
    assert_eq!(texts(&backend, "hi").await.1.unwrap(), "ok");
    let error = texts(&backend, "hi").await.1.unwrap_err();
    tracing::error!(%error, "failed");
    let (head, _) = server.chats().pop().unwrap();
    assert!(
        head.contains(&format!("authorization: Bearer {secret}"))
            || head.contains(&format!("Authorization: Bearer {secret}")),
        "{head}"
    );
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("redacted"), "{logs}");
    assert!(!logs.contains(secret), "the key leaked:\n{logs}");
}
