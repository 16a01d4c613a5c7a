//! The `shopkeep` binary run as a command: its standard output when it succeeds, and the
//! figure of `shopkeep perplexity`.

use std::process::Command;

/// Runs `command` and returns its standard output; panics with its standard error unless it
/// exits successfully.
pub fn stdout_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The perplexity `command` (a `shopkeep perplexity` run) prints on its last line.
pub fn last_perplexity(command: &mut Command) -> f64 {
    let stdout = stdout_of(command);
    let last = stdout.lines().last().expect("some output");
    last.strip_prefix("perplexity: ")
        .unwrap_or_else(|| panic!("last line is {last:?}"))
        .trim()
        .parse()
        .unwrap()
}
