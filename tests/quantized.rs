//! The 4-bit tiny Llama (`tiny-llama-q4`: GGUF-style Q4_1 linear layers and a Q8_0 tied
//! embedding, as `tools/llama_onnx.py --tiny-random --weights q4` builds it) against the
//! numpy reference in its `reference.json`: a float64 forward over the same blocks,
//! dequantized.

mod support;

use shopkeep::engine::{
    Decoder, EngineHandle, GenerateRequest, Logits, SamplingParams, SessionOptions,
};
use support::test_model;

/// Largest |logit difference| allowed against the numpy reference. The graph runs
/// MatMulNBits with accuracy_level 4, which rounds activations to int8 per block: about
/// 0.02 on logits of magnitude up to 2 here. A weight packing or zero-point mistake moves
/// logits by the order of the logits themselves.
const TOLERANCE: f32 = 0.05;

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    prompt_ids: Vec<i64>,
    last_logits: Vec<f32>,
}

fn reference() -> Reference {
    let path = test_model("tiny-llama-q4").join("reference.json");
    let text = std::fs::read_to_string(&path).expect("reference.json is written with the model");
    serde_json::from_str(&text).expect("reference.json parses")
}

#[test]
fn four_bit_logits_match_a_numpy_dequantize_and_matmul_reference() {
    let mut decoder = Decoder::load(
        &test_model("tiny-llama-q4").join("model.onnx"),
        &SessionOptions::with_threads(1),
    )
    .unwrap();
    let reference = reference();
    assert!(reference.cases.len() >= 3);
    for case in &reference.cases {
        let n = case.prompt_ids.len();
        let positions: Vec<i64> = (0..n as i64).collect();
        let output = decoder
            .forward(
                &case.prompt_ids,
                &positions,
                &vec![1; n],
                decoder.empty_cache(1).unwrap(),
                Logits::Last,
            )
            .unwrap();
        let ours = output.last_logits(0);
        assert_eq!(ours.len(), case.last_logits.len());
        let worst = ours
            .iter()
            .zip(&case.last_logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= TOLERANCE,
            "prompt {:?}: max |logit difference| {worst}",
            case.prompt_ids
        );
    }
}

#[test]
fn four_bit_model_decodes_with_the_cache_and_in_batches_like_alone() {
    let engine = EngineHandle::load(
        &test_model("tiny-llama-q4"),
        &SessionOptions::with_threads(1),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let request = |prompt: &str, use_kv_cache| GenerateRequest {
        prompt: prompt.to_string(),
        max_new_tokens: 16,
        sampling: SamplingParams::greedy(),
        stop: Vec::new(),
        use_kv_cache,
        prefix_cache_key: None,
    };
    let prompts = ["Hello world", "The shop opens at nine and closes at", "x"];
    let alone: Vec<_> = prompts
        .iter()
        .map(|p| {
            let cached = rt
                .block_on(engine.generate(request(p, true)).finish())
                .unwrap();
            let full = rt
                .block_on(engine.generate(request(p, false)).finish())
                .unwrap();
            assert_eq!(cached.output_ids, full.output_ids, "{p:?}");
            cached.output_ids
        })
        .collect();
    let together = engine.generate_many(prompts.iter().map(|p| request(p, true)).collect());
    for (stream, expected) in together.into_iter().zip(alone) {
        let generated = rt.block_on(stream.finish()).unwrap();
        assert_eq!(generated.output_ids, expected);
    }
}
