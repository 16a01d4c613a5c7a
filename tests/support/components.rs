//! Message components as Discord checks them, and the button presses a test makes.

use serde_json::{json, Value};

use super::{user, FakeDiscord, APP_ID, GUILD_ID};

/// Every custom id in a message's components.
pub fn custom_ids(components: &Value) -> Vec<String> {
    components
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
        .collect()
}

/// Discord's rules for a message's components (buttons only): at most 5 action rows
/// (type 1) of one to five buttons (type 2) each; a button has a style from 1 to 5, a
/// label (at most 80 characters) or an emoji; a link button (style 5) has a `url` and no
/// custom id, every other one a custom id of 1 to 100 characters, unique within the
/// message. An empty list removes the components.
pub fn check(components: &Value) -> Result<(), String> {
    let rows = components.as_array().ok_or("components must be a list")?;
    if rows.len() > 5 {
        return Err("at most 5 action rows".into());
    }
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        if row["type"] != json!(1) {
            return Err(format!(
                "a top-level component must be an action row: {row}"
            ));
        }
        let buttons = row["components"]
            .as_array()
            .ok_or("a row needs components")?;
        if buttons.is_empty() || buttons.len() > 5 {
            return Err("an action row holds 1 to 5 buttons".into());
        }
        for button in buttons {
            if button["type"] != json!(2) {
                return Err(format!("only buttons are supported: {button}"));
            }
            let style = button["style"].as_u64().unwrap_or(0);
            let label = button["label"].as_str();
            if label.is_none() && button.get("emoji").is_none() {
                return Err("a button needs a label or an emoji".into());
            }
            if label.is_some_and(|l| l.chars().count() > 80) {
                return Err("a button label is at most 80 characters".into());
            }
            match (style, button["custom_id"].as_str(), button["url"].as_str()) {
                (5, None, Some(_)) => {}
                (1..=4, Some(id), None) if (1..=100).contains(&id.chars().count()) => {
                    if !seen.insert(id.to_string()) {
                        return Err(format!("custom id {id} used twice"));
                    }
                }
                _ => return Err(format!("bad button style, custom_id or url: {button}")),
            }
        }
    }
    Ok(())
}

/// An INTERACTION_CREATE payload of type 3: `user_id` (a member of the server) pressed
/// the button `custom_id` on `message`.
pub fn press_payload(
    fake: &FakeDiscord,
    message: &Value,
    custom_id: &str,
    user_id: u64,
    roles: &[u64],
) -> (u64, String, Value) {
    let id = fake.id();
    let token = format!("interaction-token-{id}");
    let payload = json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "type": 3,
        "data": {"custom_id": custom_id, "component_type": 2},
        "guild_id": GUILD_ID.to_string(),
        "channel_id": message["channel_id"],
        "message": message,
        "member": {
            "user": user(user_id, &format!("user{user_id}"), false),
            "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "deaf": false,
            "mute": false,
            "flags": 0,
            "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "permissions": "0",
        },
        "token": token,
        "version": 1,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 8388608,
    });
    (id, token, payload)
}

/// Discord's rules for a modal (an interaction response of type 9): a custom id of 1 to
/// 100 characters, a title of 1 to 45, and 1 to 5 action rows of one text input (type 4)
/// each, with a custom id, a label of 1 to 45 characters and a style of 1 or 2.
pub fn check_modal(data: &Value) -> Result<(), String> {
    let id = data["custom_id"].as_str().unwrap_or("");
    if id.is_empty() || id.chars().count() > 100 {
        return Err("a modal needs a custom id of 1 to 100 characters".into());
    }
    let title = data["title"].as_str().unwrap_or("");
    if title.is_empty() || title.chars().count() > 45 {
        return Err("a modal title is 1 to 45 characters".into());
    }
    let rows = data["components"]
        .as_array()
        .ok_or("a modal needs components")?;
    if rows.is_empty() || rows.len() > 5 {
        return Err("a modal holds 1 to 5 rows".into());
    }
    for row in rows {
        let inputs = row["components"]
            .as_array()
            .ok_or("a row needs components")?;
        let [input] = inputs.as_slice() else {
            return Err("a modal row holds exactly one text input".into());
        };
        let label = input["label"].as_str().unwrap_or("");
        if row["type"] != json!(1)
            || input["type"] != json!(4)
            || input["custom_id"].as_str().is_none_or(str::is_empty)
            || label.is_empty()
            || label.chars().count() > 45
            || !matches!(input["style"].as_u64(), Some(1 | 2))
        {
            return Err(format!("bad text input: {input}"));
        }
    }
    Ok(())
}

/// An INTERACTION_CREATE payload of type 5: `user_id` submitted the modal `custom_id`.
pub fn modal_submit_payload(
    fake: &FakeDiscord,
    custom_id: &str,
    values: &[(&str, &str)],
    (user_id, roles): (u64, &[u64]),
    channel: u64,
) -> (u64, String, Value) {
    let id = fake.id();
    let token = format!("interaction-token-{id}");
    let rows: Vec<Value> = values
        .iter()
        .map(|(input, value)| {
            json!({"type": 1, "components": [{"type": 4, "custom_id": input, "value": value}]})
        })
        .collect();
    let payload = json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "type": 5,
        "data": {"custom_id": custom_id, "components": rows},
        "guild_id": GUILD_ID.to_string(),
        "channel_id": channel.to_string(),
        "member": {
            "user": user(user_id, &format!("user{user_id}"), false),
            "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "deaf": false,
            "mute": false,
            "flags": 0,
            "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "permissions": "0",
        },
        "token": token,
        "version": 1,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 8388608,
    });
    (id, token, payload)
}
