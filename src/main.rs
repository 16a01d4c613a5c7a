//! The `shopkeep` command line: the edge where errors become messages and exit codes.
//! The commands themselves are in [`cli`].

mod cli;

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
    if let Err(error) = cli::run() {
        eprintln!("error: {}", cli::describe(&error));
        std::process::exit(1);
    }
}
