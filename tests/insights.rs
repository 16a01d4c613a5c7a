//! `shopkeep insights` on a store filled by a scripted session of `shopkeep chat` runs
//! (the tiny random GPT-2; routing and hand-offs do not depend on what it generates):
//! text, JSON and CSV, and the HTML report, which is well-formed, fetches nothing and opens
//! in headless Chromium without console messages.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;
use shopkeep::insights_chart;
use support::test_model;

fn shopkeep(db: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_shopkeep"))
        .args(args)
        .env("SHOPKEEP_DB", db)
        .env("SHOPKEEP_MAX_NEW_TOKENS", "4")
        .env(
            "SHOPKEEP_PROMPTS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
        )
        .output()
        .expect("shopkeep runs");
    assert!(
        output.status.success(),
        "shopkeep {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Asks each (user, question) once with `shopkeep chat --once`, logging it in `db`.
fn ask(db: &Path, session: &[(&str, &str)]) {
    let model = test_model("tiny-gpt2");
    for (user, question) in session {
        shopkeep(
            db,
            &[
                "chat",
                "--user",
                user,
                "--once",
                question,
                "--model-dir",
                model.to_str().unwrap(),
            ],
        );
    }
}

/// The insights of the last two days (today's questions, even just after midnight) as JSON.
fn json_insights(db: &Path) -> Value {
    let output = shopkeep(db, &["insights", "--days", "2", "--format", "json"]);
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn insights_show_the_topics_and_the_unanswered_questions_of_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    ask(
        &db,
        &[
            ("ann", "where is my parcel"),
            ("bo", "where is my parcel"),
            ("cy", "can I change my delivery address"),
            ("di", "do you sell tractors"),
            ("ed", "Do you sell tractors"),
            ("fi", "Do you offer gift wrapping for corporate orders?"),
        ],
    );
    let insights = json_insights(&db);
    assert_eq!(insights["questions"], 6, "{insights:#}");
    assert_eq!(insights["outcomes"]["handoff"], 3, "{insights:#}");
    // Three answered by the bot, none handed off later or voted down, of six.
    assert_eq!(insights["deflection"]["deflected"], 3, "{insights:#}");
    assert_eq!(insights["deflection"]["share"], 0.5, "{insights:#}");
    assert_eq!(insights["tickets"]["opened"], 0, "{insights:#}");
    let today = insights["daily"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let yesterday = &insights["daily"][0];
    let per_day =
        |day: &Value| ["answered", "handed_off", "not_answered"].map(|k| day[k].as_u64().unwrap());
    assert_eq!(
        [per_day(yesterday), per_day(&today)]
            .concat()
            .iter()
            .sum::<u64>(),
        6,
        "{insights:#}"
    );
    assert_eq!(
        insights["topics"][0]["intent"], "track_order",
        "{insights:#}"
    );
    assert_eq!(insights["topics"][0]["questions"], 2, "{insights:#}");
    assert!(
        insights["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["intent"] == "change_shipping_address"),
        "{insights:#}"
    );
    let unanswered: Vec<(&str, u64)> = insights["unanswered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["question"].as_str().unwrap(),
                u["times"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        unanswered,
        [
            ("do you sell tractors", 2),
            ("Do you offer gift wrapping for corporate orders?", 1)
        ],
        "{insights:#}"
    );
    let csv = shopkeep(&db, &["insights", "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.contains("topic,track_order,2\n"), "{csv}");
    assert!(csv.contains("deflection,deflected,3\n"), "{csv}");
    let text = shopkeep(&db, &["insights"]);
    let text = String::from_utf8(text.stdout).unwrap();
    let tractors = text
        .lines()
        .find(|line| {
            line.trim_start()
                .starts_with("\"do you sell tractors\" ×2 ")
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert!(tractors.ends_with("(handed off)"), "{text}");
    assert!(text.contains("Deflection        50.0 %"), "{text}");
}

/// A question whose text is markup, to see it escaped in the report.
const MARKUP: &str = "do you sell <b>tractors</b> & \"ploughs\"?";

#[test]
fn the_html_report_is_well_formed_self_contained_and_opens_without_console_messages() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    ask(&db, &[("ann", "where is my parcel"), ("bo", MARKUP)]);
    let report = dir.path().join("report.html");
    let out = report.to_str().unwrap();
    shopkeep(
        &db,
        &["insights", "--days", "2", "--format", "html", "--out", out],
    );
    let html = std::fs::read_to_string(&report).unwrap();
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let document = roxmltree::Document::parse_with_options(&html, options).expect("well-formed");
    assert_eq!(document.root_element().tag_name().name(), "html");
    // Nothing to fetch: no script, and every src or href is inline data.
    let elements: Vec<roxmltree::Node> =
        document.descendants().filter(|n| n.is_element()).collect();
    assert!(!elements.iter().any(|n| n.has_tag_name("script")), "{html}");
    for node in &elements {
        for attribute in node.attributes() {
            if ["src", "href"].contains(&attribute.name()) {
                assert!(
                    attribute.value().starts_with("data:"),
                    "{}",
                    attribute.value()
                );
            }
        }
    }
    let image = elements
        .iter()
        .find(|n| n.has_tag_name("img"))
        .expect("the chart");
    let data = image
        .attribute("src")
        .unwrap()
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URL");
    let chart = support::images::decode_png(
        &base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
    );
    assert_eq!(
        (chart.width, chart.height),
        (insights_chart::WIDTH, insights_chart::HEIGHT)
    );
    // The figures are those of the JSON output; the customer's markup is text.
    let insights = json_insights(&db);
    let figure = |name: &str| {
        let row = elements
            .iter()
            .find(|n| n.has_tag_name("th") && n.text() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row"));
        let cell = row.next_sibling_element().unwrap();
        cell.text().unwrap().to_string()
    };
    assert_eq!(figure("Questions"), insights["questions"].to_string());
    assert_eq!(
        figure("Hand-offs"),
        insights["outcomes"]["handoff"].to_string()
    );
    assert_eq!(
        figure("Answered by the bot"),
        insights["outcomes"]["answered"].to_string()
    );
    assert_eq!(insights["questions"], 2, "{insights:#}");
    assert!(
        elements
            .iter()
            .any(|n| n.has_tag_name("td") && n.text() == Some(MARKUP)),
        "the question is not shown as text:\n{html}"
    );

    let opened = support::browser::open(&report, 1100, 1400);
    assert!(opened.console.is_empty(), "{:#?}", opened.console);
    // The chart is shown: today's bar of questions answered by the bot.
    assert!(opened.screenshot.pixels_near(insights_chart::ANSWERED, 4) > 300);

    // The same check fails for a page that tries to run a script or fetch an image.
    let broken = dir.path().join("broken.html");
    let injected = html.replace(
        "</body>",
        "<script>console.log(1)</script><img src=\"https://example.invalid/x.png\"/></body>",
    );
    std::fs::write(&broken, injected).unwrap();
    let opened = support::browser::open(&broken, 800, 600);
    assert_eq!(opened.console.len(), 2, "{:#?}", opened.console);
}
