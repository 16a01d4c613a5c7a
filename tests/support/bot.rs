//! The real `shopkeep run` binary as a child process, pointed at a fake Discord.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{model_dir, FakeDiscord, ADMIN_ROLE, GUILD_ID, MOD_ROLE};

/// The `shopkeep run` process, pointed at a fake Discord; killed when dropped.
///
/// It runs in an empty directory of its own with no `.env` read (`SHOPKEEP_ENV_FILE=off`),
/// and every `SHOPKEEP_*`, `DISCORD_*` and `RUST_LOG` variable of the developer's
/// environment removed, except `SHOPKEEP_CACHE_DIR`, which is set to the cache the tests
/// themselves use (the runtime library and models are found there).
pub struct Bot {
    child: Child,
    stderr: Arc<Mutex<String>>,
    _workdir: Option<tempfile::TempDir>,
}

/// The token every test bot uses: recognisable, so the log test can look for it.
pub const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.SECRET-TOKEN-shopkeep-test.zZ9yY8xX7";

impl Bot {
    /// Starts the bot with the test defaults (tiny model, 16 new tokens, no limits in the
    /// way), plus `env`, which overrides them.
    pub fn start(fake: &FakeDiscord, env: &[(&str, &str)]) -> Self {
        Self::start_at(&fake.url(), env)
    }

    /// [`Bot::start`] against the Discord API at `url` (which may not answer yet).
    pub fn start_at(url: &str, env: &[(&str, &str)]) -> Self {
        let workdir = tempfile::tempdir().expect("a working directory for the bot");
        let mut bot = Self::start_in(url, env, workdir.path());
        bot._workdir = Some(workdir);
        bot
    }

    /// [`Bot::start_at`] in the working directory `dir` (which may hold a `.env`).
    pub fn start_in(url: &str, env: &[(&str, &str)], dir: &std::path::Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shopkeep"));
        command.arg("run");
        for (key, _) in std::env::vars() {
            if key.starts_with("SHOPKEEP_") || key.starts_with("DISCORD_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        let prompts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let mut settings: Vec<(String, String)> = vec![
            ("DISCORD_TOKEN".into(), TOKEN.into()),
            ("SHOPKEEP_ENV_FILE".into(), "off".into()),
            (
                "SHOPKEEP_CACHE_DIR".into(),
                shopkeep::config::cache_dir().display().to_string(),
            ),
            ("DISCORD_API_URL".into(), url.to_string()),
            ("SHOPKEEP_DB".into(), ":memory:".into()),
            (
                "SHOPKEEP_MODEL_DIR".into(),
                model_dir().display().to_string(),
            ),
            ("SHOPKEEP_MAX_NEW_TOKENS".into(), "16".into()),
            ("SHOPKEEP_THREADS".into(), "1".into()),
            ("SHOPKEEP_USER_BURST".into(), "100".into()),
            ("SHOPKEEP_USER_PER_MINUTE".into(), "1000".into()),
            ("SHOPKEEP_CHANNEL_BURST".into(), "100".into()),
            ("SHOPKEEP_CHANNEL_PER_MINUTE".into(), "1000".into()),
            ("SHOPKEEP_GUILDS".into(), GUILD_ID.to_string()),
            ("SHOPKEEP_MOD_ROLES".into(), MOD_ROLE.to_string()),
            ("SHOPKEEP_ADMIN_ROLES".into(), ADMIN_ROLE.to_string()),
            ("RUST_LOG".into(), "shopkeep=debug,warn".into()),
        ];
        if prompts.is_dir() {
            settings.push(("SHOPKEEP_PROMPTS_DIR".into(), prompts.display().to_string()));
        }
        for (key, value) in env {
            settings.retain(|(k, _)| k != key);
            settings.push((key.to_string(), value.to_string()));
        }
        command.envs(settings);
        command.current_dir(dir);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("could not start shopkeep");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            stderr,
            _workdir: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// The address the metrics endpoint bound, from the log line that announces it.
    pub async fn metrics_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let logs = self.logs();
            if let Some(line) = logs.lines().find(|l| l.contains("serving metrics")) {
                let addr = line
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("addr="))
                    .expect("addr= in the metrics log line");
                return addr.parse().expect("a socket address");
            }
            assert!(Instant::now() < deadline, "no metrics address in:\n{logs}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /metrics`, as text.
    pub async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.metrics_addr().await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        answer
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not exit; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- shopkeep stderr ---\n{}", self.logs());
        }
    }
}
