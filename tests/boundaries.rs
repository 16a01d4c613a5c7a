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

/// The assistant's parts (each file or folder directly under src/assistant, without mod.rs),
/// each with its code outside unit tests, comments removed.
fn assistant_parts() -> std::collections::BTreeMap<String, Vec<(usize, String)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/assistant");
    let mut parts = std::collections::BTreeMap::<String, Vec<(usize, String)>>::new();
    for path in rust_files(&root) {
        let relative: Vec<String> = path
            .strip_prefix(&root)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if relative == ["mod.rs"] {
            continue;
        }
        let part = relative[0].trim_end_matches(".rs").to_string();
        // How many `super::` lead from this file's module up to `assistant`.
        let depth = relative.len() - usize::from(relative.last().unwrap() == "mod.rs");
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        let code = match code.find("#[cfg(test)]\nmod tests") {
            Some(at) => code[..at].to_string(),
            None => code,
        };
        parts.entry(part).or_default().push((depth, code));
    }
    parts
}

/// The names src/assistant/mod.rs re-exports, each with the part it comes from.
fn reexports(mod_rs: &str) -> std::collections::BTreeMap<String, String> {
    let mut names = std::collections::BTreeMap::new();
    let code = code_of(mod_rs);
    for statement in code.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let part = path.split("::").next().unwrap().trim().to_string();
        let tail = path.rsplit("::").next().unwrap();
        for name in tail.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.split(" as ").last().unwrap().trim();
            if !name.is_empty() {
                names.insert(name.to_string(), part.clone());
            }
        }
    }
    names
}

/// The names a path continues with after `prefix`: one name, or each first name in a
/// `{…}` group.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
        } else {
            names.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    names
}

/// Which of the assistant's parts each part uses (by `crate::assistant::`, or `super::` up
/// to the assistant), with re-exported names traced to the part they come from.
fn assistant_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/assistant");
    let reexported = reexports(&std::fs::read_to_string(root.join("mod.rs")).unwrap());
    let parts = assistant_parts();
    let mut graph = std::collections::BTreeMap::new();
    for (part, files) in &parts {
        let mut uses = std::collections::BTreeSet::new();
        for (depth, code) in files {
            let mut names = names_after(code, "crate::assistant::");
            names.extend(names_after(code, &"super::".repeat(*depth)));
            for name in names {
                let used = if parts.contains_key(&name) {
                    Some(name)
                } else {
                    reexported.get(&name).cloned()
                };
                if let Some(used) = used.filter(|used| used != part) {
                    uses.insert(used);
                }
            }
        }
        graph.insert(part.clone(), uses);
    }
    graph
}

/// A cycle in `graph`, as the parts along it, if there is one.
fn find_cycle(
    graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_assistants_parts_depend_one_way() {
    let graph = assistant_graph();
    let shown: Vec<String> = graph
        .iter()
        .map(|(part, uses)| {
            let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
            format!("{part} -> {}", uses.join(", "))
        })
        .collect();
    println!("{}", shown.join("\n"));
    assert!(graph.len() > 10, "too few parts found: {graph:?}");
    assert!(
        graph["answer"].contains("service") && graph["limits"].contains("inbound"),
        "the scan misses known uses:\n{}",
        shown.join("\n")
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the assistant's parts use each other in a cycle: {}\n{}",
            cycle.join(" -> "),
            shown.join("\n")
        );
    }
}

#[test]
fn the_assistants_mod_rs_only_declares_and_reexports() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/assistant/mod.rs");
    let code = code_of(&std::fs::read_to_string(path).unwrap());
    let mut statement = String::new();
    let mut found = Vec::new();
    for line in code.lines().map(str::trim).filter(|line| !line.is_empty()) {
        statement.push_str(line);
        if !line.ends_with(';') {
            continue;
        }
        let declares = ["mod ", "pub mod ", "pub use "]
            .iter()
            .any(|start| statement.starts_with(start));
        if !declares {
            found.push(statement.clone());
        }
        statement.clear();
    }
    if !statement.is_empty() {
        found.push(statement);
    }
    assert!(
        found.is_empty(),
        "src/assistant/mod.rs should hold only `mod` and `pub use`:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_cycle_is_found_and_reexports_are_traced() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph =
            std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
        for (from, to) in edges {
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
            graph.entry(to.to_string()).or_default();
        }
        graph
    };
    let cycle = find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]));
    assert_eq!(cycle.unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    let names = reexports("mod outcome;\npub use outcome::{Notice, Outcome};\npub use a::b::C;");
    assert_eq!(names["Notice"], "outcome");
    assert_eq!(names["C"], "a");
    let used = names_after(
        "use super::{inbound::Role, Assistant};\nsuper::x::y()",
        "super::",
    );
    assert_eq!(used, ["inbound", "Assistant", "x"]);
}
