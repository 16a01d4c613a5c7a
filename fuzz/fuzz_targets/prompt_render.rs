//! Prompt rendering (src/assistant/prompts.rs) with arbitrary customer and channel text,
//! on the demo shop's prompts/ folder.
//!
//! Input: one flags byte, then NUL-separated pieces (lossy UTF-8): the question, then up to
//! seven history turns. Flags: bit 0 the prompt format (ChatML or completion), bits 1-3 how
//! many history turns, bits 4-7 who said turns 1-4 (later turns alternate). Renders the
//! answer (routed, then rendered or answered not-sure, as the assistant does), the summary map and reduce
//! steps, and both drafts. Checks the contract of `neutralise_data`: customer text cannot
//! add prompt structure. Each prompt must have exactly as many ChatML markers
//! (`<|im_start|>`, `<|im_end|>`), data delimiters (`<question>`, `<messages>`, `<notes>`
//! and their closing tags), line breaks and, in the completion format, `Customer:` /
//! `Assistant:` line starts as the same prompt rendered with "x" in place of every piece
//! of customer text. Rendering never
//! fails, and neutralised text has no angle brackets, line breaks or control characters
//! and at most `MAX_DATA_CHARS` characters.

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use shopkeep::assistant::content::{
    neutralise_data, HistoryTurn, PromptSet, Speaker, SummaryMessage, MAX_DATA_CHARS,
};
use shopkeep::assistant::knowledge::RouteKind;
use shopkeep::engine::PromptFormat;

static SET: LazyLock<PromptSet> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts");
    PromptSet::load(&dir).unwrap_or_else(|e| panic!("{e}"))
});

const MARKERS: [&str; 8] = [
    "<|im_start|>",
    "<|im_end|>",
    "<question>",
    "</question>",
    "<messages>",
    "</messages>",
    "<notes>",
    "</notes>",
];

/// What customer text must not change: marker counts, line breaks, and lines that start a
/// completion-format turn (in ChatML, where turns are marked by `<|im_start|>`, a turn's
/// text legitimately starts a line and may say "Assistant: …").
fn structure(prompt: &str, format: PromptFormat) -> Vec<usize> {
    let mut counts: Vec<usize> = MARKERS.iter().map(|m| prompt.matches(m).count()).collect();
    counts.push(prompt.matches('\n').count());
    counts.push(prompt.matches('\r').count());
    if format == PromptFormat::Completion {
        for role in ["Customer:", "Assistant:"] {
            counts.push(prompt.lines().filter(|l| l.starts_with(role)).count());
        }
    }
    counts
}

fn same_structure(what: &str, format: PromptFormat, fuzzed: &str, placeholder: &str) {
    assert_eq!(
        structure(fuzzed, format),
        structure(placeholder, format),
        "{what}: customer text changed the prompt's structure:\n{fuzzed}\n--- expected like ---\n{placeholder}"
    );
}

fn history(pieces: &[&str], speakers: u8) -> Vec<HistoryTurn> {
    pieces
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let customer = if i < 4 {
                speakers & (1 << i) == 0
            } else {
                i % 2 == 0
            };
            HistoryTurn {
                speaker: if customer {
                    Speaker::Customer
                } else {
                    Speaker::Assistant
                },
                text: text.to_string(),
            }
        })
        .collect()
}

fn messages(pieces: &[&str]) -> Vec<SummaryMessage> {
    pieces
        .iter()
        .enumerate()
        .map(|(i, text)| SummaryMessage {
            number: i + 1,
            author: text.chars().take(32).collect(),
            text: text.to_string(),
            link: Some(format!("https://discord.com/channels/1/2/{i}")),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let format = if flags & 1 == 0 {
        PromptFormat::Chatml
    } else {
        PromptFormat::Completion
    };
    let turns = usize::from((flags >> 1) & 7);
    let speakers = flags >> 4;
    let text = String::from_utf8_lossy(rest);
    let mut pieces: Vec<&str> = text.split('\0').collect();
    pieces.resize(1 + turns, "");
    let (question, turn_texts) = (pieces[0], &pieces[1..=turns]);
    let placeholders = vec!["x"; turns];
    let set = &*SET;

    for piece in &pieces {
        let clean = neutralise_data(piece);
        assert!(clean.chars().count() <= MAX_DATA_CHARS);
        assert!(
            !clean.contains(['<', '>', '\n', '\r']) && !clean.chars().any(char::is_control),
            "not neutralised: {clean:?}"
        );
        assert_eq!(clean.trim(), clean);
    }

    // The answer prompt, as the assistant renders it, against the same route with "x".
    let route = set.knowledge.route(question);
    if route.kind == RouteKind::NotSure {
        let reply = set.not_sure_reply(question, &route).expect("renders");
        let placeholder = set.not_sure_reply("x", &route).expect("renders");
        same_structure("not sure", format, &reply, &placeholder);
    } else {
        let prompt = set
            .render_answer(format, question, &route, &history(turn_texts, speakers))
            .expect("the answer renders");
        let placeholder = set
            .render_answer(format, "x", &route, &history(&placeholders, speakers))
            .expect("the answer renders");
        same_structure("answer", format, &prompt, &placeholder);
    }

    // The summary steps: channel messages and model-written partial summaries.
    let all: Vec<&str> = pieces.clone();
    let xs = vec!["x"; all.len()];
    let map = set
        .render_summary_map(format, &messages(&all), 1, 2)
        .expect("the summary map renders");
    let map_x = set
        .render_summary_map(format, &messages(&xs), 1, 2)
        .expect("the summary map renders");
    same_structure("summary map", format, &map, &map_x);
    let partials: Vec<String> = all.iter().map(|p| p.to_string()).collect();
    let partials_x: Vec<String> = xs.iter().map(|p| p.to_string()).collect();
    same_structure(
        "summary reduce",
        format,
        &set.render_summary_reduce(format, &partials)
            .expect("renders"),
        &set.render_summary_reduce(format, &partials_x)
            .expect("renders"),
    );

    // Drafts: moderator notes and topics are data too.
    let catalogue = &set.knowledge.catalogue;
    let product = &catalogue[usize::from(flags) % catalogue.len()].id;
    same_structure(
        "product draft",
        format,
        &set.render_product_draft(format, product, question)
            .expect("renders"),
        &set.render_product_draft(format, product, "x")
            .expect("renders"),
    );
    let notes = turn_texts.first().copied().unwrap_or("");
    let post = set
        .render_post_draft(format, question, notes)
        .expect("renders");
    let post_x = set.render_post_draft(format, "x", "x").expect("renders");
    // Product facts (named in the topic or notes) add lines; markers must not change.
    assert_eq!(
        structure(&post, format)[..MARKERS.len()],
        structure(&post_x, format)[..MARKERS.len()],
        "post draft: customer text changed the markers:\n{post}"
    );
});
