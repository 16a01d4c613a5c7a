//! The `shopkeep` command line: the edge where errors become messages and exit codes.
//! The commands themselves are in [`cli`].

mod cli;

fn main() {
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(shopkeep::logging::filter(
            std::env::var("RUST_LOG").ok().as_deref(),
        ))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(error) = cli::run() {
        eprintln!("error: {}", cli::describe(&error));
        std::process::exit(1);
    }
}
