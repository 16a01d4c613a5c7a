//! The test harness does not depend on the developer's machine: a bot started by the tests
//! finds the runtime and models in the cache the tests use, even a custom
//! `SHOPKEEP_CACHE_DIR`. (One test in its own binary: it sets the process environment.)

mod support;

use support::*;

const CHANNEL: u64 = 570_000_000_000_000_001;
const CUSTOMER: u64 = 470_000_000_000_000_001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_finds_the_runtime_under_a_custom_cache_dir() {
    // A custom cache: links to the prepared runtime and models.
    let real = shopkeep::config::cache_dir();
    let custom = tempfile::tempdir().unwrap();
    for part in ["onnxruntime", "models"] {
        std::os::unix::fs::symlink(real.join(part), custom.path().join(part)).unwrap();
    }
    std::env::set_var("SHOPKEEP_CACHE_DIR", custom.path());
    assert_eq!(shopkeep::config::cache_dir(), custom.path());

    let fake = FakeDiscord::start().await;
    // No ORT_DYLIB_PATH, and no default cache to fall back on: only the custom one works.
    let _bot = Bot::start(
        &fake,
        &[
            ("ORT_DYLIB_PATH", ""),
            ("XDG_CACHE_HOME", "/nonexistent"),
            ("HOME", "/nonexistent"),
        ],
    );
    fake.wait_ready().await;
    let question = Msg::new(&fake, CHANNEL, CUSTOMER, "where is my order?").mentioning_bot();
    question.send(&fake);
    reply_to(&fake, CHANNEL, question.id).await;
}
