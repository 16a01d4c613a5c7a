//! The core without Discord: an assistant over any backend with the repository's prompts
//! and an in-memory store, and a customer's direct question to it.

use std::sync::Arc;

use shopkeep::assistant::content::Prompts;
use shopkeep::assistant::{Assistant, Inbound, InboundKind, Role};
use shopkeep::backend::Backend;
use shopkeep::config::Config;
use shopkeep::store::Store;

/// An assistant answering through `backend` with `config` and the prompts it names.
pub fn assistant_over(backend: Arc<dyn Backend>, config: Config) -> Assistant {
    let prompts = Prompts::load(&config.prompts_dir).expect("the repository's prompts/ load");
    Assistant::new(
        backend,
        Arc::new(config),
        Arc::new(Store::open_in_memory().unwrap()),
        Arc::new(prompts),
    )
}

/// `text` from customer `user`, mentioning the bot outside any channel.
pub fn customer_question(user: &str, text: &str) -> Inbound {
    Inbound {
        user_id: user.into(),
        user_name: user.into(),
        channel_id: None,
        guild_id: None,
        text: text.into(),
        kind: InboundKind::Mention,
        role: Role::Customer,
    }
}
