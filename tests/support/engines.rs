//! The embedded engine on the tiny test models: loading one, greedy requests, the prompts
//! the batching tests share, and the two ways of generating them that the tests compare
//! (each alone, or three at once with the rest joining the running batch).

use shopkeep::engine::{
    EngineHandle, GenerateRequest, Generated, SamplingParams, SchedulerOptions, SessionOptions,
    StreamEvent,
};

use super::models::test_model;

/// Prompts of mixed lengths (one token to a long sentence).
pub const PROMPTS: [&str; 5] = [
    "Hello world",
    "The shop opens at nine and closes at six, except on",
    "x",
    "Thank you for your order! Your parcel will be shipped within two working days and",
    "Refunds",
];

/// The test model `name` on one thread with the given scheduling.
pub fn load_with(name: &str, scheduling: SchedulerOptions) -> EngineHandle {
    EngineHandle::load_with(
        &test_model(name),
        &SessionOptions::with_threads(1),
        scheduling,
    )
    .expect("model loads")
}

/// The test model `name` on one thread.
pub fn load(name: &str) -> EngineHandle {
    load_with(name, SchedulerOptions::default())
}

/// What loading the model directory `dir` on one thread fails with, as the user reads it.
///
/// # Panics
/// When the directory loads.
pub fn load_error(dir: &std::path::Path) -> String {
    match EngineHandle::load(dir, &SessionOptions::with_threads(1)) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(error) => error.to_string(),
    }
}

/// A greedy request for `prompt`, without stop strings or a prefix key.
pub fn greedy(prompt: &str, max_new_tokens: usize, use_kv_cache: bool) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.to_string(),
        max_new_tokens,
        sampling: SamplingParams::greedy(),
        stop: Vec::new(),
        use_kv_cache,
        prefix_cache_key: None,
    }
}

/// A current-thread runtime for the synchronous tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The greedy ids of each prompt generated on its own, one after another.
pub fn each_alone(
    rt: &tokio::runtime::Runtime,
    engine: &EngineHandle,
    prompts: &[&str],
    max_new_tokens: usize,
    use_kv_cache: bool,
) -> Vec<Vec<u32>> {
    prompts
        .iter()
        .map(|p| {
            rt.block_on(
                engine
                    .generate(greedy(p, max_new_tokens, use_kv_cache))
                    .finish(),
            )
            .unwrap()
            .output_ids
        })
        .collect()
}

/// Generates `prompts` greedily: the first three at once (with `generate_many`, one batched
/// prefill, when `prefilled_together`; else each with `generate`), the rest once the first
/// has streamed three texts, so that they join a batch that is decoding. Results in prompt
/// order.
pub fn three_then_the_rest(
    rt: &tokio::runtime::Runtime,
    engine: &EngineHandle,
    prompts: &[&str],
    max_new_tokens: usize,
    prefilled_together: bool,
) -> Vec<Generated> {
    rt.block_on(async {
        let requests = || prompts[..3].iter().map(|p| greedy(p, max_new_tokens, true));
        let mut first: Vec<_> = if prefilled_together {
            engine.generate_many(requests().collect())
        } else {
            requests().map(|request| engine.generate(request)).collect()
        };
        let mut texts = 0;
        while texts < 3 {
            if let Some(StreamEvent::Text(_)) = first[0].next().await {
                texts += 1;
            }
        }
        let later: Vec<_> = prompts[3..]
            .iter()
            .map(|p| engine.generate(greedy(p, max_new_tokens, true)))
            .collect();
        let mut results = Vec::new();
        for stream in first.into_iter().chain(later) {
            results.push(stream.finish().await.unwrap());
        }
        results
    })
}
