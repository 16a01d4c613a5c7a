//! The fused layout (`tools/llama_fused.py`: GroupQueryAttention with rotary inside, one
//! key/value buffer per layer shared in place between past and present) against the Optimum
//! layout built from the same seeded weights: `tiny-llama-fused` / `tiny-llama`, and
//! `tiny-llama-q4-fused` / `tiny-llama-q4`, which `./scripts/test.sh` builds into the cache.

mod support;

use shopkeep::engine::{
    GenerateRequest, ModelLayout, SchedulerOptions, SessionOptions, StreamEvent,
};
use support::engines::{
    each_alone, greedy, load, load_error, load_with, runtime, three_then_the_rest, PROMPTS,
};
use support::test_model;

/// (Optimum layout, fused layout) of the same weights.
const PAIRS: [(&str, &str); 2] = [
    ("tiny-llama", "tiny-llama-fused"),
    ("tiny-llama-q4", "tiny-llama-q4-fused"),
];

#[test]
fn the_fused_models_load_as_the_fused_layout_and_the_others_do_not() {
    for (optimum, fused) in PAIRS {
        let fused_info = load(fused).info().clone();
        assert_eq!(fused_info.layers, 2);
        assert_eq!(fused_info.kv_heads, 2);
        let manifest = shopkeep::engine::ModelDir::open(&test_model(fused)).unwrap();
        assert_eq!(manifest.manifest.layout, Some(ModelLayout::Fused));
        let manifest = shopkeep::engine::ModelDir::open(&test_model(optimum)).unwrap();
        assert_eq!(
            manifest.manifest.layout.unwrap_or_default(),
            ModelLayout::Optimum
        );
    }
}

#[test]
fn a_manifest_that_names_the_wrong_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = test_model("tiny-llama-fused");
    for file in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    std::fs::write(
        dir.path().join("manifest.json"),
        r#"{"family":"llama","layout":"optimum"}"#,
    )
    .unwrap();
    let text = load_error(dir.path());
    assert!(
        text.contains("manifest.json") && text.contains("Fused"),
        "{text}"
    );
}

#[test]
fn fused_greedy_ids_equal_the_unfused_graphs() {
    let rt = runtime();
    for (optimum, fused) in PAIRS {
        let expected = each_alone(&rt, &load(optimum), &PROMPTS, 40, true);
        let fused_engine = load(fused);
        assert_eq!(
            each_alone(&rt, &fused_engine, &PROMPTS, 40, true),
            expected,
            "{fused} with its shared buffer against {optimum}"
        );
        // Without the cache every step is a first prompt of the whole sequence.
        assert_eq!(
            each_alone(&rt, &fused_engine, &PROMPTS[..2], 12, false),
            expected[..2]
                .iter()
                .map(|ids| ids[..12].to_vec())
                .collect::<Vec<_>>(),
            "{fused} recomputed"
        );
    }
}

#[test]
fn fused_batches_that_start_together_and_join_later_match_the_unfused_graph_alone() {
    let rt = runtime();
    for (optimum, fused) in PAIRS {
        let alone = each_alone(&rt, &load(optimum), &PROMPTS, 40, true);
        let engine = load(fused);
        // Three are prefilled together (right-padded); two join while they decode.
        let results = three_then_the_rest(&rt, &engine, &PROMPTS, 40, true);
        for ((prompt, expected), result) in PROMPTS.iter().zip(&alone).zip(&results) {
            assert_eq!(&result.output_ids, expected, "{fused}: {prompt:?}");
        }
        assert_eq!(results[0].prefill_batch, 3, "{fused}: one batched prefill");
        assert!(
            results.iter().map(|r| r.max_batch).max().unwrap() >= 4,
            "{fused}: sequences were batched"
        );
    }
}

#[test]
fn fused_prefix_reuse_gives_the_same_tokens_as_the_unfused_full_prefill() {
    let rt = runtime();
    for (optimum, fused) in PAIRS {
        let engine = load(fused);
        let keyed = |prompt: &str| GenerateRequest {
            prefix_cache_key: Some("user-1".into()),
            ..greedy(prompt, 12, true)
        };
        let first_prompt = "System: be helpful.\nCustomer: where is my parcel? It was due on Monday and nothing came.\nAssistant:";
        let first = rt
            .block_on(engine.generate(keyed(first_prompt)).finish())
            .unwrap();
        let second_prompt = format!(
            "{first_prompt}{}\nCustomer: and can I get a refund?\nAssistant:",
            first.text
        );
        let reused = rt
            .block_on(engine.generate(keyed(&second_prompt)).finish())
            .unwrap();
        assert!(
            reused.reused_prefix_tokens >= 20,
            "{fused}: reused {}",
            reused.reused_prefix_tokens
        );
        let full = rt
            .block_on(
                load(optimum)
                    .generate(greedy(&second_prompt, 12, true))
                    .finish(),
            )
            .unwrap();
        assert_eq!(reused.output_ids, full.output_ids, "{fused}");
    }
}

#[test]
fn a_cancelled_fused_request_frees_its_batch_slot_and_the_others_go_on_unchanged() {
    let rt = runtime();
    let (optimum, fused) = PAIRS[1];
    let expected = rt
        .block_on(
            load(optimum)
                .generate(greedy("Hello world", 300, true))
                .finish(),
        )
        .unwrap()
        .output_ids;
    let engine = load_with(
        fused,
        SchedulerOptions {
            max_batch: 2,
            ..SchedulerOptions::default()
        },
    );
    rt.block_on(async {
        let long = engine.generate(greedy("Hello world", 300, true));
        let mut cancelled = engine.generate(greedy("The shop", 300, true));
        while !matches!(cancelled.next().await, Some(StreamEvent::Text(_))) {}
        let waiting = engine.generate(greedy("Refunds", 4, true));
        drop(cancelled);
        let short = waiting.finish().await.unwrap();
        assert_eq!(short.output_ids.len(), 4);
        let long = long.finish().await.unwrap();
        assert_eq!(
            long.output_ids, expected,
            "the row that stayed is unchanged"
        );
        assert_eq!(engine.cancelled(), 1);
    });
}

#[test]
fn a_long_fused_conversation_past_the_prefill_budget_matches_a_full_recompute() {
    let rt = runtime();
    let (_, fused) = PAIRS[1];
    // A prompt over the per-turn prefill budget, and a generation that outgrows the shared
    // buffer several times (it starts 64 positions past the prompt).
    let prompt = PROMPTS[3].repeat(6);
    let engine = load_with(
        fused,
        SchedulerOptions {
            prefill_tokens_per_step: 32,
            ..SchedulerOptions::default()
        },
    );
    let cached = rt
        .block_on(engine.generate(greedy(&prompt, 200, true)).finish())
        .unwrap();
    assert!(cached.prompt_ids.len() > 32, "{}", cached.prompt_ids.len());
    assert_eq!(cached.output_ids.len(), 200);
    let recomputed = rt
        .block_on(engine.generate(greedy(&prompt, 200, false)).finish())
        .unwrap();
    assert_eq!(cached.output_ids, recomputed.output_ids);
    // A returning user's longer conversation, on top of the cached prefix, still matches.
    let keyed = |prompt: &str| GenerateRequest {
        prefix_cache_key: Some("long".into()),
        ..greedy(prompt, 40, true)
    };
    let first = rt
        .block_on(engine.generate(keyed(&prompt)).finish())
        .unwrap();
    let follow_up = format!("{prompt}{}{}", first.text, PROMPTS[1]);
    let reused = rt
        .block_on(engine.generate(keyed(&follow_up)).finish())
        .unwrap();
    assert!(reused.reused_prefix_tokens > 32);
    let recomputed = rt
        .block_on(engine.generate(greedy(&follow_up, 40, false)).finish())
        .unwrap();
    assert_eq!(reused.output_ids, recomputed.output_ids);
}

#[test]
fn generation_gets_each_rows_last_logits_alone_and_the_same_values_as_all_positions() {
    use shopkeep::engine::{Decoder, Logits};
    let dir = test_model("tiny-llama-q4-fused");
    let mut decoder = Decoder::load(&dir.join("model.onnx"), &SessionOptions::with_threads(1))
        .expect("the fused tiny model loads");
    // Two rows of 3 and 5 tokens, left-padded to 5 (the Optimum-style contract of `forward`).
    let input_ids = [0, 0, 11, 12, 13, 21, 22, 23, 24, 25];
    let mask = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    let positions = [0, 0, 0, 1, 2, 0, 1, 2, 3, 4];
    let mut run = |wanted| {
        let cache = decoder.empty_cache(2).unwrap();
        decoder
            .forward(&input_ids, &positions, &mask, cache, wanted)
            .unwrap()
    };
    let (all, last) = (run(Logits::All), run(Logits::Last));
    let vocab = all.vocab;
    assert_eq!(all.logits().len(), 2 * 5 * vocab);
    assert_eq!(
        last.logits().len(),
        2 * vocab,
        "the LM head ran on one position per row"
    );
    for b in 0..2 {
        let worst = all
            .last_logits(b)
            .iter()
            .zip(last.last_logits(b))
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "row {b}: {worst}");
    }
}

#[test]
fn fused_perplexity_equals_the_unfused_graphs() {
    let text = "The kettle is made of stainless steel and holds one litre of water.";
    for (optimum, fused) in PAIRS {
        let score = |name: &str| {
            runtime()
                .block_on(load(name).perplexity(text.to_string()))
                .unwrap()
                .perplexity
        };
        let (theirs, ours) = (score(optimum), score(fused));
        assert!(
            (theirs - ours).abs() < 1e-3 * theirs,
            "{optimum} {theirs} against {fused} {ours}"
        );
    }
}
