//! Engine tests on the tiny random models that `./scripts/test.sh` builds into the cache.

mod support;

use std::path::Path;
use std::process::Command;

use shopkeep::engine::{
    EngineHandle, FinishReason, GenerateRequest, ModelFamily, PromptFormat, SamplingParams,
    SchedulerOptions, SessionOptions, StreamDecoder, StreamEvent, TextTokenizer,
};
use support::cli::{last_perplexity, stdout_of};
use support::engines::{
    each_alone, greedy, load, load_error, load_with, runtime, three_then_the_rest, PROMPTS,
};
use support::{test_model, venv_python};

fn shopkeep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shopkeep"))
}

/// Runs `shopkeep generate --json` and returns the parsed line.
fn generate_json(args: &[&str]) -> serde_json::Value {
    let stdout = stdout_of(shopkeep().arg("generate").args(args).arg("--json"));
    serde_json::from_str(&stdout).expect("one JSON line")
}

#[test]
fn gpt2_tokenizer_gives_known_ids() {
    let tokenizer =
        TextTokenizer::from_file(&test_model("gpt2-tokenizer").join("tokenizer.json")).unwrap();
    assert_eq!(tokenizer.encode("Hello world").unwrap(), vec![15496, 995]);
    assert_eq!(tokenizer.encode(" Hello").unwrap(), vec![18435]);
    assert_eq!(tokenizer.token_id("<|endoftext|>"), Some(50256));
}

#[test]
fn greedy_ids_match_the_checked_in_onnxruntime_reference() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/tiny_gpt2_greedy.json")).unwrap();
    let dir = test_model("tiny-gpt2");
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let line = generate_json(&[
            "--model-dir",
            dir.to_str().unwrap(),
            "--prompt",
            prompt,
            "--greedy",
            "--max-new-tokens",
            "24",
        ]);
        assert_eq!(
            line["prompt_ids"], case["prompt_ids"],
            "prompt ids for {prompt:?}"
        );
        assert_eq!(
            line["output_ids"], case["output_ids"],
            "output ids for {prompt:?}"
        );
        assert_eq!(line["text"], case["text"]);
        assert!(line["tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(line["prefill_ms"].as_f64().is_some());
    }
}

#[test]
fn greedy_ids_match_a_live_onnxruntime_python_loop() {
    for name in ["tiny-gpt2", "tiny-llama"] {
        let dir = test_model(name);
        let prompt = "Customer: my order never arrived, what can I do?\nAssistant:";
        let reference = Command::new(venv_python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/reference_greedy.py"))
            .args(["--model-dir", dir.to_str().unwrap(), "--prompt", prompt])
            .args([
                "--max-new-tokens",
                "20",
                "--threads",
                "1",
                "--json",
                "--eos",
                "-1",
            ])
            .output()
            .unwrap();
        assert!(
            reference.status.success(),
            "{}",
            String::from_utf8_lossy(&reference.stderr)
        );
        let reference: serde_json::Value = serde_json::from_slice(&reference.stdout).unwrap();
        let ours = generate_json(&[
            "--model-dir",
            dir.to_str().unwrap(),
            "--prompt",
            prompt,
            "--greedy",
            "--max-new-tokens",
            "20",
            "--threads",
            "1",
        ]);
        assert_eq!(ours["prompt_ids"], reference["prompt_ids"], "{name}");
        let ours_ids = ours["output_ids"].as_array().unwrap();
        let reference_ids = reference["output_ids"].as_array().unwrap();
        // Our engine stops before an end token; the reference loop was told not to stop.
        assert!(!ours_ids.is_empty(), "{name}");
        assert_eq!(ours_ids[..], reference_ids[..ours_ids.len()], "{name}");
    }
}

#[test]
fn kv_cache_equals_full_recompute() {
    let rt = runtime();
    for name in ["tiny-gpt2", "tiny-llama"] {
        let engine = load(name);
        for prompt in ["Hello world", "The shop opens at nine and closes at", "x"] {
            let cached = rt
                .block_on(engine.generate(greedy(prompt, 32, true)).finish())
                .unwrap();
            let full = rt
                .block_on(engine.generate(greedy(prompt, 32, false)).finish())
                .unwrap();
            assert_eq!(cached.output_ids, full.output_ids, "{name}: {prompt:?}");
            assert!(!cached.output_ids.is_empty());
        }
    }
}

#[test]
fn two_file_directory_loads_as_gpt2_completion_model() {
    let engine = load("tiny-gpt2");
    let info = engine.info();
    assert_eq!(info.family, ModelFamily::Gpt2);
    assert_eq!(info.prompt_format, PromptFormat::Completion);
    assert_eq!(info.end_token_ids, vec![50256]);
    assert_eq!(info.context_length, 1024);
    assert_eq!((info.layers, info.kv_heads, info.head_dim), (2, 2, 32));
}

#[test]
fn llama_manifest_is_read_and_layout_comes_from_the_session() {
    let engine = load("tiny-llama");
    let info = engine.info();
    assert_eq!(info.family, ModelFamily::Llama);
    assert_eq!(info.prompt_format, PromptFormat::Chatml);
    assert_eq!((info.layers, info.kv_heads, info.head_dim), (2, 2, 16));
    assert!(!info.end_token_ids.is_empty());
}

#[test]
fn sampling_with_the_same_seed_repeats_and_top_k_one_is_greedy() {
    let rt = runtime();
    let engine = load("tiny-gpt2");
    let sampled = |seed: u64, top_k: usize| {
        let request = GenerateRequest {
            sampling: SamplingParams {
                temperature: 1.0,
                top_k,
                top_p: 0.95,
                repetition_penalty: 1.2,
                seed,
            },
            ..greedy("Once upon a time", 24, true)
        };
        rt.block_on(engine.generate(request).finish())
            .unwrap()
            .output_ids
    };
    assert_eq!(sampled(42, 0), sampled(42, 0));
    assert_ne!(sampled(42, 0), sampled(43, 0));
    let greedy_with_penalty = GenerateRequest {
        sampling: SamplingParams {
            repetition_penalty: 1.2,
            ..SamplingParams::greedy()
        },
        ..greedy("Once upon a time", 24, true)
    };
    let expected = rt
        .block_on(engine.generate(greedy_with_penalty).finish())
        .unwrap();
    assert_eq!(sampled(7, 1), expected.output_ids);
}

#[test]
fn stops_at_max_tokens_and_before_stop_strings() {
    let rt = runtime();
    let engine = load("tiny-gpt2");
    let full = rt
        .block_on(engine.generate(greedy("Hello world", 24, true)).finish())
        .unwrap();
    assert_eq!(full.output_ids.len(), 24);
    assert_eq!(full.finish, FinishReason::MaxTokens);
    // Stop on a word the unconstrained run produces: the text ends right before it.
    let stop = " Pandora";
    let at = full
        .text
        .find(stop)
        .expect("fixture text contains the stop word");
    let request = GenerateRequest {
        stop: vec![stop.to_string()],
        ..greedy("Hello world", 24, true)
    };
    let mut stream = engine.generate(request);
    let mut streamed = String::new();
    let stopped = rt.block_on(async {
        loop {
            match stream.next().await.unwrap() {
                StreamEvent::Text(delta) => streamed.push_str(&delta),
                StreamEvent::Done(result) => break result.unwrap(),
            }
        }
    });
    assert_eq!(stopped.finish, FinishReason::StopString);
    assert_eq!(stopped.text, full.text[..at]);
    assert_eq!(
        streamed, stopped.text,
        "deltas add up to the text and never include the stop"
    );
}

#[test]
fn context_overflow_drops_oldest_tokens_and_stays_within_positions() {
    let rt = runtime();
    let engine = load("tiny-llama");
    let context = engine.info().context_length;
    assert_eq!(context, 512);
    let long_prompt = "apples and pears ".repeat(400);
    let result = rt
        .block_on(engine.generate(greedy(&long_prompt, 16, true)).finish())
        .unwrap();
    assert!(result.dropped_prompt_tokens > 0);
    assert!(result.prompt_ids.len() + result.output_ids.len() <= context);
    let all = engine.tokenizer().encode(&long_prompt).unwrap();
    assert_eq!(
        result.prompt_ids[..],
        all[all.len() - result.prompt_ids.len()..],
        "newest tokens kept"
    );
    // Asking for more new tokens than the context holds is clamped, not an error.
    let result = rt
        .block_on(engine.generate(greedy("Hi", 5000, true)).finish())
        .unwrap();
    assert!(result.prompt_ids.len() + result.output_ids.len() <= context);
}

#[test]
fn streamed_text_never_splits_a_character() {
    let tokenizer =
        TextTokenizer::from_file(&test_model("gpt2-tokenizer").join("tokenizer.json")).unwrap();
    let text = "Grüße aus Köln 👋🏽 — 日本語のテキスト, ok!";
    let ids = tokenizer.encode(text).unwrap();
    let mut decoder = StreamDecoder::new();
    let mut joined = String::new();
    for id in ids {
        let delta = decoder.push(&tokenizer, id).unwrap();
        assert!(
            !delta.contains('\u{FFFD}'),
            "delta {delta:?} holds half a character"
        );
        joined.push_str(&delta);
    }
    joined.push_str(&decoder.finish(&tokenizer).unwrap());
    assert_eq!(joined, text);
}

#[test]
fn dropping_the_stream_cancels_the_generation() {
    let rt = runtime();
    let engine = load("tiny-gpt2");
    let mut stream = engine.generate(greedy("Hello world", 900, false));
    rt.block_on(async {
        while let Some(event) = stream.next().await {
            if let StreamEvent::Text(_) = event {
                break;
            }
        }
    });
    drop(stream);
    let after = rt
        .block_on(engine.generate(greedy("Hello", 4, true)).finish())
        .unwrap();
    assert_eq!(after.output_ids.len(), 4);
    assert_eq!(engine.cancelled(), 1);
}

#[test]
fn clear_errors_for_bad_model_directories() {
    let missing = shopkeep()
        .args([
            "generate",
            "--model-dir",
            "/nonexistent/model",
            "--prompt",
            "hi",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let text = String::from_utf8_lossy(&missing.stderr);
    assert!(
        text.contains("/nonexistent/model") && text.contains("does not exist"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        test_model("tiny-gpt2").join("model.onnx"),
        dir.path().join("model.onnx"),
    )
    .unwrap();
    let no_tokenizer = load_error(dir.path());
    assert!(no_tokenizer.contains("tokenizer.json"), "{no_tokenizer}");

    std::fs::write(dir.path().join("tokenizer.json"), "{ not json").unwrap();
    let bad_tokenizer = load_error(dir.path());
    assert!(bad_tokenizer.contains("tokenizer"), "{bad_tokenizer}");

    std::fs::copy(
        test_model("tiny-gpt2").join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("model.onnx"), b"this is not an onnx file").unwrap();
    let bad_model = load_error(dir.path());
    assert!(bad_model.contains("model.onnx"), "{bad_model}");
}

#[test]
fn model_without_the_kv_cache_inputs_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, onnx
from onnx import helper, TensorProto
ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])
mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])
logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s", 4])
cast = helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT)
unsq = helper.make_node("Unsqueeze", ["f", "axes"], ["u"])
expand = helper.make_node("Expand", ["u", "shape"], ["logits"])
axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 1, 4])
graph = helper.make_graph([cast, unsq, expand], "no_past", [ids, mask], [logits], [axes, shape])
onnx.save(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
"#;
    let status = Command::new(venv_python())
        .args([
            "-c",
            script,
            dir.path().join("model.onnx").to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::copy(
        test_model("tiny-gpt2").join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let text = load_error(dir.path());
    assert!(
        text.contains("past_key_values.0.key") && text.contains("text-generation-with-past"),
        "{text}"
    );
}

#[test]
fn missing_runtime_library_says_what_to_run() {
    let output = shopkeep()
        .args(["generate", "--model-dir"])
        .arg(test_model("tiny-gpt2"))
        .args(["--prompt", "hi"])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("ONNX Runtime library not found"), "{text}");
    assert!(
        text.contains("ORT_DYLIB_PATH") && text.contains("scripts/run.sh"),
        "{text}"
    );
}

#[test]
fn perplexity_prints_its_figure_last() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("text.txt");
    std::fs::write(
        &text_file,
        "The cat sat on the mat. The dog sat on the log. ".repeat(20),
    )
    .unwrap();
    let ours = last_perplexity(
        shopkeep()
            .args(["perplexity", "--model-dir"])
            .arg(test_model("tiny-gpt2"))
            .arg("--text-file")
            .arg(&text_file),
    );
    let reference = last_perplexity(
        Command::new(venv_python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/perplexity_reference.py"))
            .arg("--model-dir")
            .arg(test_model("tiny-gpt2"))
            .arg("--text-file")
            .arg(&text_file),
    );
    assert!(
        (ours - reference).abs() / reference < 0.01,
        "ours {ours}, onnxruntime Python {reference}"
    );
}

#[test]
fn batched_decoding_matches_each_sequence_alone() {
    let rt = runtime();
    for name in ["tiny-gpt2", "tiny-llama"] {
        let engine = load(name);
        let alone = each_alone(&rt, &engine, &PROMPTS, 40, true);
        // Three start together; two more join while the first three are decoding.
        let results = three_then_the_rest(&rt, &engine, &PROMPTS, 40, false);
        for ((prompt, expected), result) in PROMPTS.iter().zip(&alone).zip(&results) {
            assert_eq!(&result.output_ids, expected, "{name}: {prompt:?}");
        }
        assert!(
            results.iter().map(|r| r.max_batch).max().unwrap() >= 3,
            "{name}: sequences were batched"
        );
    }
}

#[test]
fn prompts_prefilled_together_match_each_prefilled_alone() {
    let rt = runtime();
    for name in ["tiny-gpt2", "tiny-llama"] {
        let engine = load(name);
        let alone = each_alone(&rt, &engine, &PROMPTS, 24, true);
        let streams = engine.generate_many(PROMPTS.iter().map(|p| greedy(p, 24, true)).collect());
        let together: Vec<_> = rt.block_on(async {
            let mut results = Vec::new();
            for stream in streams {
                results.push(stream.finish().await.unwrap());
            }
            results
        });
        let lengths: std::collections::BTreeSet<_> =
            together.iter().map(|r| r.prompt_ids.len()).collect();
        assert!(lengths.len() > 2, "{name}: prompts of mixed lengths");
        for ((prompt, expected), result) in PROMPTS.iter().zip(&alone).zip(&together) {
            assert_eq!(&result.output_ids, expected, "{name}: {prompt:?}");
            assert_eq!(
                result.prefill_batch,
                PROMPTS.len(),
                "{name}: one batched prefill"
            );
        }
    }
}

#[test]
fn a_cancelled_request_frees_its_batch_slot() {
    let rt = runtime();
    let engine = load_with(
        "tiny-gpt2",
        SchedulerOptions {
            max_batch: 2,
            ..SchedulerOptions::default()
        },
    );
    rt.block_on(async {
        let mut long = engine.generate(greedy("Hello world", 800, true));
        let mut cancelled = engine.generate(greedy("The shop", 800, true));
        while !matches!(cancelled.next().await, Some(StreamEvent::Text(_))) {}
        let waiting = engine.generate(greedy("Refunds", 4, true));
        drop(cancelled);
        let short = waiting.finish().await.unwrap();
        assert_eq!(short.output_ids.len(), 4);
        // The long generation is still running: the short one took the freed slot.
        let mut long_still_running = false;
        while let Some(event) = long.next().await {
            match event {
                StreamEvent::Text(_) => long_still_running = true,
                StreamEvent::Done(result) => {
                    assert_eq!(result.unwrap().output_ids.len(), 800);
                    break;
                }
            }
        }
        assert!(long_still_running);
        assert_eq!(engine.cancelled(), 1);
    });
}

#[test]
fn prefix_reuse_gives_the_same_tokens_as_a_full_prefill() {
    let rt = runtime();
    let engine = load("tiny-gpt2");
    let keyed = |prompt: &str| GenerateRequest {
        prefix_cache_key: Some("user-1".into()),
        ..greedy(prompt, 12, true)
    };
    let first_prompt = "System: be helpful.\nCustomer: where is my parcel? It was due on Monday and nothing came.\nAssistant:";
    let first = rt
        .block_on(engine.generate(keyed(first_prompt)).finish())
        .unwrap();
    assert_eq!(first.reused_prefix_tokens, 0);
    let second_prompt = format!(
        "{first_prompt}{}\nCustomer: and can I get a refund?\nAssistant:",
        first.text
    );
    let reused = rt
        .block_on(engine.generate(keyed(&second_prompt)).finish())
        .unwrap();
    assert!(
        reused.reused_prefix_tokens >= 20,
        "reused {}",
        reused.reused_prefix_tokens
    );
    // Another user's identical prompt reuses nothing of user-1's conversation.
    let other_user = GenerateRequest {
        prefix_cache_key: Some("user-2".into()),
        ..greedy(&second_prompt, 12, true)
    };
    let other = rt.block_on(engine.generate(other_user).finish()).unwrap();
    assert_eq!(other.reused_prefix_tokens, 0);
    let fresh = load_with(
        "tiny-gpt2",
        SchedulerOptions {
            prefix_cache_bytes: 0,
            ..SchedulerOptions::default()
        },
    );
    let full = rt
        .block_on(fresh.generate(keyed(&second_prompt)).finish())
        .unwrap();
    assert_eq!(full.reused_prefix_tokens, 0);
    assert_eq!(reused.output_ids, full.output_ids);
    // Forgetting the key drops the cached prefix.
    engine.forget_prefixes(Some("user-1"));
    let after = rt
        .block_on(engine.generate(keyed(&second_prompt)).finish())
        .unwrap();
    assert_eq!(after.reused_prefix_tokens, 0);
    assert_eq!(after.output_ids, full.output_ids);
}

/// Runs a perplexity command and parses its last line, `perplexity: X`.
/// The tiny GPT-2 with a manifest that claims a far longer context than its 1,024
/// positions: it loads, and a step past position 1,023 fails at run time.
fn tiny_gpt2_overclaimed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["model.onnx", "tokenizer.json"] {
        std::os::unix::fs::symlink(test_model("tiny-gpt2").join(file), dir.path().join(file))
            .unwrap();
    }
    std::fs::write(
        dir.path().join("manifest.json"),
        r#"{"name": "tiny-gpt2-overclaimed", "family": "gpt2", "context_length": 100000}"#,
    )
    .unwrap();
    dir
}

#[test]
fn a_decode_step_that_fails_for_one_request_ends_only_that_request() {
    let rt = runtime();
    let model = tiny_gpt2_overclaimed();
    let engine =
        EngineHandle::load(model.path(), &SessionOptions::with_threads(1)).expect("model loads");
    // 1,020 prompt tokens: the prefill fits the model's 1,024 positions, the fifth decode
    // step does not.
    let doomed_prompt = " a".repeat(1020);
    assert_eq!(engine.tokenizer().count(&doomed_prompt), 1020);
    let survivor = "Customer: where is my parcel?\nAssistant:";
    let alone = rt
        .block_on(engine.generate(greedy(survivor, 24, true)).finish())
        .unwrap();
    let streams = engine.generate_many(vec![
        greedy(&doomed_prompt, 24, true),
        greedy(survivor, 24, true),
    ]);
    let [doomed, survivor] = <[_; 2]>::try_from(streams).ok().expect("two streams");
    let (doomed, survived) =
        rt.block_on(async { (doomed.finish().await, survivor.finish().await) });
    let error = doomed.expect_err("the request past the model's positions fails");
    let survived = survived.expect("the other request in the batch finishes");
    assert_eq!(survived.output_ids, alone.output_ids, "{error}");
    assert!(survived.max_batch >= 2, "the two were decoded together");
}
