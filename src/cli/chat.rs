//! `shopkeep chat`: the assistant in the terminal, through the same pipeline as on Discord.
//!
//! Each answer runs as in-flight work of a [`InFlight`] set, as on Discord. SIGINT (Ctrl-C)
//! or SIGTERM stops the chat: no new question is read, the answer being written is cancelled
//! at once (what was shown is marked as interrupted), and the command exits normally.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use tokio::sync::{mpsc, oneshot, watch};

use shopkeep::assistant::{AnswerEvent, Assistant, Inbound, InboundKind, Outcome, Role};
use shopkeep::config::Config;
use shopkeep::lifecycle::{self, InFlight};

use super::ModelArgs;

/// How long an answer may go on after Ctrl-C: not at all, the person at the terminal asked
/// to stop.
const SIGNAL_GRACE: Duration = Duration::ZERO;

/// At the end of input the last answer has been printed and its task is ending; how long
/// to wait for it.
const END_GRACE: Duration = Duration::from_secs(10);

/// Printed after the part of an answer that was shown when the chat was stopped.
const INTERRUPTED: &str = "[interrupted]";

#[derive(Args)]
pub(super) struct ChatArgs {
    /// Answer this one question and exit.
    #[arg(long)]
    once: Option<String>,
    /// Whose conversation this is.
    #[arg(long, default_value = "terminal")]
    user: String,
    /// Ask as if at this place key of places.toml (e.g. `channel:123`, `category:456`;
    /// repeat it, most specific first): that place's persona and knowledge answer.
    #[arg(long = "place")]
    places: Vec<String>,
    #[command(flatten)]
    model: ModelArgs,
}

impl Default for ChatArgs {
    /// What `shopkeep chat` with no flags does.
    fn default() -> Self {
        Self {
            once: None,
            user: "terminal".into(),
            places: Vec::new(),
            model: ModelArgs::default(),
        }
    }
}

/// Answers `--once`, or each line of stdin until end of input or a termination signal.
pub(super) fn chat(config: Config, args: ChatArgs) -> Result<()> {
    let runtime = super::runtime()?;
    let backend = super::load_backend(&config, &args.model, &runtime)?;
    let assistant = Assistant::open(backend, Arc::new(config))?;
    let terminal = Terminal {
        assistant,
        user: args.user,
        places: args.places,
        in_flight: InFlight::new(),
    };
    runtime.block_on(terminal.serve(args.once))
}

struct Terminal {
    assistant: Assistant,
    user: String,
    places: Vec<String>,
    in_flight: InFlight,
}

impl Terminal {
    async fn serve(self, once: Option<String>) -> Result<()> {
        let mut stop = lifecycle::stop_on_termination();
        let questions = match once {
            Some(question) => Questions::Once(Some(question)),
            None => {
                eprintln!("shopkeep chat: type a question and press Enter; Ctrl-D to quit.");
                Questions::stdin()
            }
        };
        let ended = self.answer_each(questions, &mut stop).await;
        let signalled = *stop.borrow();
        let grace = if signalled { SIGNAL_GRACE } else { END_GRACE };
        self.in_flight.shut_down(grace).await;
        ended
    }

    /// Answers questions one at a time until they run out or `stop` turns true.
    async fn answer_each(
        &self,
        mut questions: Questions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        loop {
            let question = tokio::select! {
                question = questions.next() => question,
                _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            };
            let question = match question {
                None => return Ok(()),
                Some(question) => question?,
            };
            if question.trim().is_empty() {
                continue;
            }
            let (done_tx, done) = oneshot::channel();
            let answer = self.answer(question);
            if !self.in_flight.spawn(async move {
                let _ = done_tx.send(answer.await);
            }) {
                return Ok(());
            }
            tokio::select! {
                printed = done => printed.unwrap_or(Ok(()))?,
                _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            }
        }
    }

    /// Asks the assistant and prints what it decides; owns everything it needs, so it can
    /// run as in-flight work.
    fn answer(
        &self,
        question: String,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send + 'static {
        let inbound = Inbound {
            user_id: self.user.clone(),
            user_name: self.user.clone(),
            channel_id: None,
            guild_id: None,
            text: question,
            kind: InboundKind::Terminal,
            role: Role::Customer,
        };
        let assistant = self.assistant.clone();
        let cancel = self.in_flight.cancellation();
        let places = self.places.clone();
        async move {
            match assistant.handle_at(inbound, &places).await {
                Outcome::Silent => Ok(()),
                Outcome::Notice(notice) => {
                    println!("{notice}");
                    Ok(())
                }
                Outcome::Reply(text) | Outcome::Handoff(text) => {
                    println!("{text}");
                    Ok(())
                }
                Outcome::Summary(_) | Outcome::Draft(_) => Ok(()),
                Outcome::Answer(events) => print_answer(events, cancel).await,
            }
        }
    }
}

/// Prints an answer as it streams. Partial texts usually grow, but the guard may rewrite a
/// sentence: only what extends the text already shown is printed, and the final answer
/// again in full when it no longer starts with it. Stops, marking the answer as
/// interrupted, when `cancel` turns true.
async fn print_answer(
    mut events: mpsc::Receiver<AnswerEvent>,
    mut cancel: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut stdout = std::io::stdout();
    let mut shown = String::new();
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = cancel.wait_for(|cancelled| *cancelled) => {
                println!("\n{INTERRUPTED}");
                return Ok(());
            }
        };
        match event {
            None => return Ok(()),
            Some(AnswerEvent::Partial(text)) => {
                if let Some(more) = text.strip_prefix(shown.as_str()) {
                    print!("{more}");
                    stdout.flush()?;
                    shown = text;
                }
            }
            Some(AnswerEvent::Final(answer)) => match answer.text.strip_prefix(shown.as_str()) {
                Some(rest) => println!("{rest}"),
                None => println!("\n--- corrected answer ---\n{}", answer.text),
            },
        }
    }
}

/// Where the questions come from: `--once`, or the lines of stdin.
enum Questions {
    Once(Option<String>),
    /// Lines read on a thread of their own, so that a termination signal is noticed while
    /// the chat waits for input; the thread prompts (`> ` on stderr) and reads one line
    /// each time `want` is sent to.
    Stdin {
        want: std::sync::mpsc::Sender<()>,
        lines: mpsc::UnboundedReceiver<std::io::Result<String>>,
    },
}

impl Questions {
    fn stdin() -> Self {
        let (want, wanted) = std::sync::mpsc::channel::<()>();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            while wanted.recv().is_ok() {
                eprint!("> ");
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                match stdin.lock().read_line(&mut line) {
                    Ok(0) => return,
                    Ok(_) => {
                        if tx.send(Ok(line)).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = tx.send(Err(error));
                        return;
                    }
                }
            }
        });
        Questions::Stdin { want, lines }
    }

    /// The next question; `None` at the end of input.
    async fn next(&mut self) -> Option<std::io::Result<String>> {
        match self {
            Questions::Once(question) => question.take().map(Ok),
            Questions::Stdin { want, lines } => {
                want.send(()).ok()?;
                lines.recv().await
            }
        }
    }
}
