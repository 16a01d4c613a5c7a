//! The support desk through the fake Discord: threads under support channels, forum posts
//! and their tags, and the buttons on answers.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const CHANNEL: u64 = 500_000_000_000_000_001;
const SUPPORT_CHANNEL: u64 = 500_000_000_000_000_002;
const FORUM: u64 = 500_000_000_000_000_003;
const CUSTOMER: u64 = 400_000_000_000_000_001;
const COVERED: &str = "How much do I have to spend before shipping is free?";
const UNCOVERED: &str = "do you sell refurbished tractors with a lifetime warranty?";

/// A message from `author` in `channel` (a thread), with no mention.
fn plain(fake: &FakeDiscord, channel: u64, author: u64, text: &str) -> Msg {
    Msg::new(fake, channel, author, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_under_a_support_channel_is_answered_in_the_thread_without_mentions() {
    let support = SUPPORT_CHANNEL.to_string();
    let (fake, _bot) = started(&[("SHOPKEEP_SUPPORT_CHANNELS", &support)]).await;
    let thread = fake.id();
    fake.create_thread(thread_json(thread, SUPPORT_CHANNEL, CUSTOMER, "Shipping"));
    let question = plain(&fake, thread, CUSTOMER, COVERED);
    question.send(&fake);
    let answer = reply_to(&fake, thread, question.id).await;
    assert!(
        body(&answer)["content"].as_str().unwrap().contains("40"),
        "{answer:?}"
    );
    let follow_up = plain(
        &fake,
        thread,
        CUSTOMER,
        "and what does express delivery cost?",
    );
    follow_up.send(&fake);
    reply_to(&fake, thread, follow_up.id).await;
    assert!(
        fake.posts_to(SUPPORT_CHANNEL).is_empty(),
        "answered in the parent channel"
    );
    // THREAD_CREATE told the bot the parent: no need to read the thread.
    let thread_path = format!("/api/v10/channels/{thread}");
    assert!(
        !fake.requests().iter().any(|r| r.path == thread_path),
        "{}",
        fake.describe_requests()
    );
    assert_no_mentions_allowed(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_seen_only_by_its_messages_is_looked_up_and_other_threads_are_ignored() {
    let support = SUPPORT_CHANNEL.to_string();
    let (fake, _bot) = started(&[("SHOPKEEP_SUPPORT_CHANNELS", &support)]).await;
    // Threads opened before the bot started: no THREAD_CREATE, only their messages.
    let (under_support, elsewhere) = (fake.id(), fake.id());
    fake.add_channel(thread_json(under_support, SUPPORT_CHANNEL, CUSTOMER, "old"));
    fake.add_channel(thread_json(elsewhere, CHANNEL, CUSTOMER, "chat"));
    let ignored = plain(&fake, elsewhere, CUSTOMER, "anyone seen the new mugs?");
    ignored.send(&fake);
    let question = plain(&fake, under_support, CUSTOMER, COVERED);
    question.send(&fake);
    reply_to(&fake, under_support, question.id).await;
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    assert!(
        fake.posts_to(elsewhere).is_empty(),
        "answered a chat thread"
    );
    let reads = |id: u64| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == format!("/api/v10/channels/{id}"))
            .count()
    };
    // One read per thread, then the cache.
    let again = plain(&fake, elsewhere, CUSTOMER, "still nobody?");
    again.send(&fake);
    let sentinel = plain(&fake, under_support, CUSTOMER, "thanks!");
    sentinel.send(&fake);
    reply_to(&fake, under_support, sentinel.id).await;
    assert_eq!((reads(under_support), reads(elsewhere)), (1, 1));
}

/// A forum with the desk's tags, listed as the support channel, and a running bot.
async fn forum_desk(env: &[(&str, &str)]) -> (FakeDiscord, Bot, Value) {
    let fake = FakeDiscord::start().await;
    let forum = forum_json(&fake, FORUM, &["Shipping", "Answered", "Needs staff"]);
    fake.add_channel(forum.clone());
    let support = FORUM.to_string();
    let mut settings = vec![("SHOPKEEP_SUPPORT_CHANNELS", support.as_str())];
    settings.extend_from_slice(env);
    let bot = Bot::start(&fake, &settings);
    fake.wait_ready().await;
    (fake, bot, forum)
}

/// A new forum post: THREAD_CREATE, then its starter message (the thread's id).
fn post(fake: &FakeDiscord, title: &str, text: &str) -> Msg {
    let thread = fake.id();
    fake.create_thread(thread_json(thread, FORUM, CUSTOMER, title));
    let mut starter = plain(fake, thread, CUSTOMER, text);
    starter.id = thread;
    starter.send(fake);
    starter
}

async fn tags_of(fake: &FakeDiscord, thread: u64, count: usize) -> Vec<String> {
    fake.wait_for("the post's tags", ANSWER_WAIT, |f| {
        let tags = f.channel(thread)?["applied_tags"].as_array()?.clone();
        (tags.len() >= count).then(|| {
            tags.iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect()
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forum_posts_are_answered_in_their_thread_and_tagged() {
    let (fake, _bot, forum) = forum_desk(&[]).await;
    let covered = post(&fake, "Free shipping?", COVERED);
    let answer = reply_to(&fake, covered.channel, covered.id).await;
    assert!(body(&answer)["content"].as_str().unwrap().contains("40"));
    assert_eq!(
        tags_of(&fake, covered.channel, 1).await,
        vec![tag_id(&forum, "Answered")]
    );

    let uncovered = post(&fake, "Farm equipment", UNCOVERED);
    let answer = reply_to(&fake, uncovered.channel, uncovered.id).await;
    assert!(body(&answer)["content"]
        .as_str()
        .unwrap()
        .contains("not sure"));
    assert_eq!(
        tags_of(&fake, uncovered.channel, 1).await,
        vec![tag_id(&forum, "Needs staff")]
    );
    assert!(
        fake.posts_to(FORUM).is_empty(),
        "posted into the forum itself"
    );
    let refused = fake
        .requests()
        .into_iter()
        .filter(|r| r.status >= 400)
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect::<Vec<_>>();
    assert!(refused.is_empty(), "Discord refused: {refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_tag_names_are_used_and_off_applies_none() {
    let (fake, _bot, forum) = forum_desk(&[
        ("SHOPKEEP_FORUM_TAG_ANSWERED", "off"),
        ("SHOPKEEP_FORUM_TAG_HANDOFF", "shipping"),
    ])
    .await;
    let uncovered = post(&fake, "Farm equipment", UNCOVERED);
    reply_to(&fake, uncovered.channel, uncovered.id).await;
    assert_eq!(
        tags_of(&fake, uncovered.channel, 1).await,
        vec![tag_id(&forum, "Shipping")]
    );
    let covered = post(&fake, "Free shipping?", COVERED);
    reply_to(&fake, covered.channel, covered.id).await;
    fake.wait_quiet(Duration::from_millis(1500), ANSWER_WAIT)
        .await;
    assert_eq!(
        fake.channel(covered.channel).unwrap()["applied_tags"],
        json!([])
    );
}
