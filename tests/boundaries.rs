//! The layers' boundaries, checked on the source: only src/discord/ knows Discord
//! (serenity, poise, the Discord settings and error kinds), only src/engine/ knows ONNX
//! Runtime (`ort`), and the assistant core imports no adapter.

use std::path::{Path, PathBuf};

/// Words that name Discord's libraries or the adapter's own Discord types.
const DISCORD_LIBRARIES: [&str; 2] = ["serenity", "poise"];

/// The adapter's own Discord types; the binary (main.rs, cli/) wires the adapter up.
const DISCORD_TYPES: [&str; 3] = ["DiscordSettings", "DiscordToken", "DiscordErrorKind"];

/// Ways code reaches ONNX Runtime.
const ORT_WORDS: [&str; 3] = ["ort::", "use ort", "ort::{"];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The code of a source file without its comments (line comments and doc comments), so
/// that prose may name what code must not use.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every (file, line, word) under src/ where one of `words` appears in code outside the
/// folders `allowed` (paths relative to src/, with forward slashes).
fn violations(words: &[&str], allowed: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for path in rust_files(&src) {
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if allowed.iter().any(|folder| relative.starts_with(folder)) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        for (index, line) in code.lines().enumerate() {
            for word in words {
                if is_word_in(line, word) {
                    found.push(format!("src/{relative}:{}: {word}", index + 1));
                }
            }
        }
    }
    found
}

/// Whether `word` occurs in `line` not as part of a longer identifier.
fn is_word_in(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn only_the_discord_adapter_knows_discord() {
    let mut found = violations(&DISCORD_LIBRARIES, &["discord/"]);
    found.extend(violations(&DISCORD_TYPES, &["discord/", "main.rs", "cli/"]));
    assert!(
        found.is_empty(),
        "Discord outside src/discord/:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_engine_knows_onnx_runtime() {
    let found = violations(&ORT_WORDS, &["engine/"]);
    assert!(
        found.is_empty(),
        "ort outside src/engine/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_core_imports_no_adapter() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for folder in ["assistant", "engine"] {
        for path in rust_files(&src.join(folder)) {
            let code = code_of(&std::fs::read_to_string(&path).unwrap());
            for (index, line) in code.lines().enumerate() {
                if line.contains("crate::discord") || line.contains("crate::cli") {
                    found.push(format!("{}:{}", path.display(), index + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the core imports an adapter:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_a_planted_use() {
    let planted = code_of("use serenity::all::Message; // the adapter's type\nlet x = 1;");
    assert!(planted.lines().any(|line| is_word_in(line, "serenity")));
    let commented = code_of("/// the serenity adapter\n// uses ort::Session");
    assert!(!commented
        .lines()
        .any(|line| is_word_in(line, "serenity") || is_word_in(line, "ort::")));
    assert!(!is_word_in("let sort::x = 1;", "ort::"));
}
