//! The `shopkeep` command line: the edge where errors become messages and exit codes.
//! The commands themselves are in [`cli`].

mod cli;

fn main() {
    load_env_file();
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

/// Reads settings from `SHOPKEEP_ENV_FILE` (default `.env` in the current directory, not
/// its parents); `off` reads none. Variables already set win over the file.
fn load_env_file() {
    let file = std::env::var("SHOPKEEP_ENV_FILE").unwrap_or_else(|_| ".env".to_string());
    if file.is_empty() || file == "off" {
        return;
    }
    let _ = dotenvy::from_path(&file);
}
