//! Message splitting (src/discord/split.rs) on arbitrary text and limits.
//!
//! Input: two bytes for the limit (64..=2111), then the text (lossy UTF-8). Checks the
//! contract of `split_message`: every part fits, no part is empty, the parts' bodies
//! concatenate to the input, and a part ends inside a code block exactly when the next
//! reopens one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shopkeep::discord::split::{segments, split_message};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limit = 64 + (usize::from(u16::from_le_bytes([data[0], data[1]])) % 2048);
    let text = String::from_utf8_lossy(&data[2..]).into_owned();
    let segs = segments(&text, limit);
    let rejoined: String = segs.iter().map(|s| s.body).collect();
    assert_eq!(rejoined, text, "the parts do not rejoin to the text");
    for (i, seg) in segs.iter().enumerate() {
        assert!(!seg.body.is_empty(), "empty part {i}");
        let rendered = seg.render();
        assert!(
            rendered.chars().count() <= limit,
            "part {i} has {} chars > {limit}",
            rendered.chars().count()
        );
        if let Some(next) = segs.get(i + 1) {
            assert_eq!(seg.close, next.reopen.is_some(), "fences of part {i}");
        } else {
            assert!(!seg.close, "the last part closes a fence it did not open");
        }
    }
    let parts = split_message(&text, limit);
    assert_eq!(parts.len(), segs.len());
});
