//! The Discord adapter (serenity): the only code that knows Discord.
//!
//! It translates gateway events into [`Inbound`](crate::assistant::Inbound) questions for
//! the [`Assistant`] and its [`Outcome`](crate::assistant::Outcome)s into Discord messages,
//! and nothing more:
//! - [`events`]: which messages the bot answers (pure routing);
//! - [`commands`]: slash commands and their permission checks;
//! - [`reply`]: streaming replies by editing, split past 2,000 characters;
//! - [`split`]: the splitting itself (pure);
//! - [`message_order`]: one user's messages answered one at a time, in order;
//! - [`threads`]: threads and forum posts under support channels, and forum tags;
//! - [`rest`]: sends with retries, and with no mentions allowed on every message;
//! - [`ratelimit`]: Discord's per-route and global rate limits, kept by the bot itself;
//! - [`insights`] and [`digest`]: `/insights` as markdown with a chart, and its daily digest.
//!
//! [`run`] connects and serves until SIGTERM/SIGINT, then stops taking new work, lets
//! in-flight replies finish within `shutdown_grace`, cancels the rest, closes the gateway,
//! and returns `Ok(())`.

mod answering;
pub mod buttons;
pub mod commands;
pub mod digest;
pub mod events;
pub mod feedback;
pub mod history;
pub mod insights;
pub mod mentions;
pub mod message_order;
pub mod modlog;
pub mod ratelimit;
pub mod reply;
pub mod rest;
pub mod settings;
pub mod split;
pub mod staff;
pub mod summary;
pub mod threads;
pub mod tickets;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serenity::all::{
    Command, Context, EventHandler, GatewayIntents, GuildChannel, GuildId, Interaction, Message,
    Reaction, Ready,
};
use serenity::client::ClientBuilder;
use serenity::gateway::GatewayError;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use crate::assistant::{Assistant, Role};
use crate::lifecycle::{self, InFlight};
use crate::metrics::{MetricsError, Source, METRICS};
use events::{MessageFacts, RoutingRules};
use message_order::MessageOrder;
use reply::{OwnMessages, Target};
use rest::DiscordErrorKind;
use rest::{discord_http, Rest};
pub use settings::{DiscordSettings, DiscordToken};

/// Why the bot could not run.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// `DISCORD_TOKEN` is not set.
    #[error("DISCORD_TOKEN is not set")]
    NoToken,
    /// serenity could not build its client.
    #[error("could not set up the Discord client")]
    Setup(#[source] serenity::Error),
    /// Discord refused the token when the gateway connected.
    #[error(
        "Discord refused the bot token: check DISCORD_TOKEN (Developer Portal, Bot page, Reset Token)"
    )]
    BadToken,
    /// Discord refused the intents: Message Content is not switched on for the bot.
    #[error(
        "Discord refused the gateway intents: switch on Message Content Intent (Developer Portal, Bot page, Privileged Gateway Intents)"
    )]
    IntentsNotAllowed,
    /// The gateway connection failed for another reason.
    #[error("the Discord connection failed")]
    Gateway(#[source] serenity::Error),
    /// The metrics endpoint could not be served.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Longest wait between two attempts to reach Discord at start.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(60);

/// Gateway intents the bot asks for. Message Content is privileged: it must be switched on
/// in the Developer Portal.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::GUILD_MESSAGE_REACTIONS
}

/// The answer when handling a message or command panicked (a bug; it is logged).
const SOMETHING_WENT_WRONG: &str =
    "Sorry, something went wrong on my side while answering that. Please try again later.";

/// The answer to a question or slash command that arrives during shutdown.
const SHUTTING_DOWN: &str = "I am restarting right now; please try again in a minute.";

/// State shared by every event handler.
pub struct BotState {
    assistant: Assistant,
    settings: DiscordSettings,
    rest: Rest,
    /// The bot's user id; 0 until known (from `GET /users/@me` at start, or READY).
    bot_id: watch::Sender<u64>,
    commands_registered: AtomicBool,
    /// Replies being written; shutdown waits for them.
    in_flight: InFlight,
    /// One user's questions are answered one at a time, in order.
    message_order: MessageOrder,
    own_messages: OwnMessages,
    /// The shop's servers' roles, for server-wide permissions.
    guild_permissions: staff::GuildPermissions,
    /// Threads and forums seen, for their parents and tags.
    channels: threads::Channels,
}

impl BotState {
    fn bot_id(&self) -> u64 {
        *self.bot_id.borrow()
    }

    /// The bot's id, waiting a little for READY if it is not known yet.
    async fn known_bot_id(&self) -> u64 {
        let mut rx = self.bot_id.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|id| *id != 0)).await;
        self.bot_id()
    }

    fn rules(&self) -> RoutingRules {
        RoutingRules::new(self.bot_id(), &self.settings)
    }

    /// The asker's role: configured role ids, plus server-wide permissions when `guild` is
    /// one of the shop's servers (never one channel's permissions).
    async fn role_of(&self, guild: Option<u64>, user: u64, roles: &[u64]) -> Role {
        let rules = self.rules();
        let by_roles = rules.role(guild, roles, None);
        let Some(shop_guild) = guild.filter(|_| rules.is_shop_guild(guild)) else {
            return by_roles;
        };
        if by_roles == Role::Admin {
            return by_roles;
        }
        let permissions = self
            .guild_permissions
            .of(&self.rest, shop_guild, user, roles)
            .await;
        rules.role(guild, roles, permissions)
    }
}

/// The gateway's event handler. serenity takes it before the client exists, and the bot's
/// state is built on the client's `Http`, so [`run`] sets the state once the client is
/// built, before starting it; events arrive only after the start.
struct Handler {
    state: Arc<OnceLock<Arc<BotState>>>,
}

impl Handler {
    /// The bot's state; `None` (logged, the event ignored) only for an event before [`run`]
    /// set it, which serenity does not deliver.
    fn shared(&self) -> Option<&Arc<BotState>> {
        let state = self.state.get();
        if state.is_none() {
            tracing::error!("a gateway event arrived before the bot's state was set; ignored");
        }
        state
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let Some(shared) = self.shared() else {
            return;
        };
        shared.bot_id.send_replace(ready.user.id.get());
        tracing::info!(
            bot = ready.user.id.get(),
            application = ready.application.id.get(),
            guilds = ready.guilds.len(),
            "connected to Discord"
        );
        if shared.commands_registered.swap(true, Ordering::SeqCst) {
            return;
        }
        let rules = shared.rules();
        for guild in &ready.guilds {
            if !rules.serves(Some(guild.id.get())) {
                tracing::warn!(
                    guild = guild.id.get(),
                    "the bot is in a server that is not in SHOPKEEP_GUILDS; it ignores it \
                     (switch off Public Bot on the Developer Portal's Bot page)"
                );
            }
        }
        let http = Arc::clone(&ctx.http);
        let guilds = shared.settings.registration_guilds();
        tokio::spawn(async move {
            if guilds.is_empty() {
                register(None, || {
                    Command::set_global_commands(&http, commands::definitions())
                })
                .await;
                return;
            }
            for guild in guilds {
                register(Some(guild), || {
                    GuildId::new(guild).set_commands(&http, commands::definitions())
                })
                .await;
            }
            // Registered per server: clear global commands left from an earlier setup,
            // so no server that is not the shop's sees them.
            register(None, || Command::set_global_commands(&http, Vec::new())).await;
        });
    }

    async fn resume(&self, _ctx: Context, _: serenity::model::event::ResumedEvent) {
        tracing::info!("gateway session resumed");
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        let received = Instant::now();
        let Some(shared) = self.shared() else {
            return;
        };
        let bot_id = shared.known_bot_id().await;
        let mut facts =
            MessageFacts::from_message(&msg, bot_id, |id| shared.own_messages.contains(id));
        let rules = shared.rules();
        let mut thread = None;
        if rules.route(&facts).is_none() && rules.needs_parent(&facts) {
            thread = shared
                .channels
                .get(&shared.rest, facts.channel_id)
                .await
                .filter(|info| info.kind == threads::ChannelKind::Thread);
            facts.parent_channel_id = thread.as_ref().and_then(|info| info.parent_id);
        }
        let Some(mut inbound) = rules.route(&facts) else {
            return;
        };
        // A forum post's first message is its thread's starter: the title is part of it.
        if let Some(title) = thread
            .filter(|_| msg.id.get() == msg.channel_id.get())
            .and_then(|info| info.name)
        {
            inbound.text = format!("{title}\n{}", inbound.text);
        }
        let span = tracing::info_span!(
            "message",
            guild = facts.guild_id,
            channel = facts.channel_id,
            user = facts.author_id,
            message_id = msg.id.get(),
        );
        METRICS.request(Source::Message);
        let (channel_id, message_id) = (msg.channel_id, msg.id);
        let work = Arc::clone(shared).answer_message(msg, inbound, received);
        let after = Arc::clone(shared);
        let task = async move {
            if let Err(panic) = lifecycle::catch_panic(work.in_current_span()).await {
                tracing::error!(%panic, "answering a message panicked");
                let mut reply = after.reply(Target::Channel {
                    channel_id,
                    reply_to: Some(message_id),
                });
                after.show(&mut reply, SOMETHING_WENT_WRONG).await;
            }
        }
        .instrument(span.clone());
        if !shared.in_flight.spawn(task) {
            span.in_scope(|| tracing::info!("shutting down: message answered with a notice"));
            let mut reply = shared.reply(Target::Channel {
                channel_id,
                reply_to: Some(message_id),
            });
            shared
                .show(&mut reply, SHUTTING_DOWN)
                .instrument(span)
                .await;
        }
    }

    async fn thread_create(&self, _ctx: Context, thread: GuildChannel) {
        let Some(shared) = self.shared() else {
            return;
        };
        match serde_json::to_value(&thread)
            .ok()
            .and_then(|value| threads::ChannelInfo::from_json(&value))
        {
            Some(info) => shared.channels.learn(info),
            None => tracing::debug!(thread = thread.id.get(), "an unreadable thread"),
        }
    }

    async fn reaction_add(&self, _ctx: Context, reaction: Reaction) {
        if let Some(shared) = self.shared() {
            feedback::on_reaction(shared, reaction, true).await;
        }
    }

    async fn reaction_remove(&self, _ctx: Context, reaction: Reaction) {
        if let Some(shared) = self.shared() {
            feedback::on_reaction(shared, reaction, false).await;
        }
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let Some(state) = self.shared() else {
            return;
        };
        let (id, application, token, span) = match &interaction {
            Interaction::Command(command) => (
                command.id,
                command.application_id,
                command.token.clone(),
                tracing::info_span!(
                    "interaction",
                    guild = command.guild_id.map(|g| g.get()),
                    channel = command.channel_id.get(),
                    user = command.user.id.get(),
                    command = %command.data.name,
                ),
            ),
            Interaction::Component(press) => (
                press.id,
                press.application_id,
                press.token.clone(),
                tracing::info_span!(
                    "button",
                    guild = press.guild_id.map(|g| g.get()),
                    channel = press.channel_id.get(),
                    user = press.user.id.get(),
                    message_id = press.message.id.get(),
                    button = %press.data.custom_id,
                ),
            ),
            Interaction::Modal(submit) => (
                submit.id,
                submit.application_id,
                submit.token.clone(),
                tracing::info_span!(
                    "modal",
                    guild = submit.guild_id.map(|g| g.get()),
                    channel = submit.channel_id.get(),
                    user = submit.user.id.get(),
                    modal = %submit.data.custom_id,
                ),
            ),
            _ => return,
        };
        let shared = Arc::clone(state);
        let panic_token = token.clone();
        let task = async move {
            let work = {
                let shared = Arc::clone(&shared);
                async move {
                    match interaction {
                        Interaction::Command(command) => commands::handle(&shared, command).await,
                        Interaction::Component(press) => buttons::on_press(&shared, press).await,
                        Interaction::Modal(submit) => tickets::on_submit(&shared, submit).await,
                        _ => {}
                    }
                }
                .in_current_span()
            };
            if let Err(panic) = lifecycle::catch_panic(work).await {
                tracing::error!(%panic, "an interaction panicked");
                commands::answer_after_panic(
                    &shared,
                    (id, application),
                    &panic_token,
                    SOMETHING_WENT_WRONG,
                )
                .await;
            }
        }
        .instrument(span.clone());
        if !state.in_flight.spawn(task) {
            span.in_scope(|| tracing::info!("shutting down: interaction not taken"));
            let busy = reply::ephemeral_message(SHUTTING_DOWN);
            if let Err(error) = reply::respond(&state.rest, id, &token, busy).await {
                span.in_scope(|| tracing::warn!(%error, "could not answer an interaction"));
            }
        }
    }
}

/// Registers the slash commands (globally, or in `guild`), retrying a few times.
async fn register<F, Fut>(guild: Option<u64>, put: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = serenity::Result<Vec<Command>>>,
{
    for attempt in 1..=4u32 {
        match put().await {
            Ok(set) => {
                tracing::info!(?guild, commands = set.len(), "slash commands registered");
                return;
            }
            Err(error) => {
                tracing::warn!(?guild, attempt, %error, "could not register slash commands");
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
        }
    }
    tracing::error!(
        ?guild,
        "slash commands are not registered; they will not show in Discord"
    );
}

/// The bot permissions to grant in the invite (docs/discord.md): View Channels, Send
/// Messages, Send Messages in Threads, Read Message History, Manage Threads (to tag forum
/// posts), Create Public Threads (answers in a thread), Create Private Threads (hand-off
/// tickets).
pub fn invite_permissions() -> serenity::model::Permissions {
    use serenity::model::Permissions as P;
    P::VIEW_CHANNEL
        | P::SEND_MESSAGES
        | P::SEND_MESSAGES_IN_THREADS
        | P::READ_MESSAGE_HISTORY
        | P::MANAGE_THREADS
        | P::CREATE_PUBLIC_THREADS
        | P::CREATE_PRIVATE_THREADS
}

/// Connects to Discord and serves until SIGTERM or SIGINT; see the module docs.
pub async fn run(assistant: Assistant, settings: DiscordSettings) -> Result<(), DiscordError> {
    METRICS.declare_platform_errors(&DiscordErrorKind::ALL.map(DiscordErrorKind::label));
    let token = settings.token.clone().ok_or(DiscordError::NoToken)?;
    // serenity's rate limiter is off, with or without a proxy: `Rest` keeps the limits
    // itself, so production runs the path the tests exercise.
    if let Some(url) = &settings.api_url {
        tracing::info!(api = %url, "using a Discord API proxy");
    }
    // One HTTP client for everything: serenity's client takes it by value, so it first
    // serves the wait for Discord, then goes into the client, whose shared `Http` every send
    // (through `Rest`) uses. Its own calls (the bot's user, gateway discovery, command
    // registration) happen at start; they are retried, not rate-limited.
    let http = discord_http(&token, settings.api_url.as_deref());

    if let Some(addr) = assistant.config().metrics_addr {
        let bound = crate::metrics::serve(addr, Some(assistant.backend().clone())).await?;
        tracing::info!(addr = %bound, "serving metrics on /metrics");
    }

    // SIGTERM/SIGINT flips `stop`, at any point from here on.
    let mut stop = lifecycle::stop_on_termination();
    let api = settings
        .api_url
        .clone()
        .unwrap_or_else(|| "https://discord.com".to_string());
    if !wait_for_discord(&http, &api, &mut stop).await {
        tracing::info!("shutdown requested before Discord was reached; stopped");
        return Ok(());
    }

    let state = Arc::new(OnceLock::new());
    let mut client = ClientBuilder::new_with_http(http, intents())
        .event_handler(Handler {
            state: Arc::clone(&state),
        })
        .await
        .map_err(DiscordError::Setup)?;
    let rest = Rest::new(Arc::clone(&client.http));
    let mod_log = modlog::spawn(&assistant, rest.clone(), settings.mod_log_channel);
    let digest = settings
        .digest_at
        .zip(settings.mod_log_channel)
        .map(|(at, channel)| {
            let clock = Arc::new(crate::assistant::conversation::SystemClock);
            let store = Arc::clone(assistant.store());
            digest::spawn(store, rest.clone(), channel, at, clock, digest::POLL)
        });
    let shared = Arc::new(BotState {
        assistant,
        rest,
        bot_id: watch::Sender::new(0),
        commands_registered: AtomicBool::new(false),
        in_flight: InFlight::new(),
        message_order: MessageOrder::default(),
        own_messages: OwnMessages::default(),
        guild_permissions: staff::GuildPermissions::default(),
        channels: threads::Channels::default(),
        settings,
    });
    // The client has not started: no event has come, and none comes before this.
    let _ = state.set(Arc::clone(&shared));

    // Know who we are before the first message can arrive (READY confirms it).
    match client.http.get_current_user().await {
        Ok(me) => {
            shared.bot_id.send_replace(me.id.get());
        }
        Err(error) => {
            tracing::warn!(%error, "could not read the bot's own user; waiting for READY")
        }
    }

    let shard_manager = Arc::clone(&client.shard_manager);
    let stopper = Arc::clone(&shared);
    let stopped = Arc::new(AtomicBool::new(false));
    let stopped_flag = Arc::clone(&stopped);
    tokio::spawn(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        tracing::info!("shutdown requested: finishing in-flight replies");
        stopper
            .in_flight
            .shut_down(stopper.settings.shutdown_grace)
            .await;
        if let Some(digest) = digest {
            digest.abort();
        }
        if let Some(mod_log) = mod_log {
            mod_log.drain(modlog::DRAIN_WAIT).await;
        }
        stopped_flag.store(true, Ordering::SeqCst);
        shard_manager.shutdown_all().await;
    });

    let result = client.start().await;
    if stopped.load(Ordering::SeqCst) {
        tracing::info!("stopped");
        return Ok(());
    }
    result.map_err(|error| match error {
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => DiscordError::BadToken,
        serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => {
            DiscordError::IntentsNotAllowed
        }
        other => DiscordError::Gateway(other),
    })
}

/// Waits until Discord's gateway discovery (`GET /api/v10/gateway`, the first thing the
/// client needs) answers, retrying with a doubling backoff from 1 s up to
/// [`MAX_CONNECT_BACKOFF`] and logging a clear error for each failure, so an outage at start
/// is neither a crash nor a restart loop. Returns false when `stop` turns true first.
async fn wait_for_discord(
    http: &serenity::http::Http,
    api: &str,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut wait = Duration::from_secs(1);
    let mut failures = 0u32;
    loop {
        match http.get_gateway().await {
            Ok(_) => {
                if failures > 0 {
                    tracing::info!(failures, "Discord is reachable again");
                }
                return true;
            }
            Err(error) => {
                failures += 1;
                METRICS.platform_error(DiscordErrorKind::GatewayUnreachable.label());
                tracing::error!(
                    %error,
                    attempt = failures,
                    retry_in_s = wait.as_secs(),
                    "cannot reach Discord at {api} (gateway discovery failed); retrying",
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return false,
        }
        wait = (wait * 2).min(MAX_CONNECT_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_invite_grants_exactly_the_permissions_needed() {
        let docs = include_str!("../../docs/discord.md");
        let bits = invite_permissions().bits().to_string();
        assert!(
            docs.contains(&format!("permissions={bits}")),
            "docs/discord.md: update the invite URL to permissions={bits}"
        );
        assert!(docs.contains("scope=bot+applications.commands"));
    }

    #[test]
    fn message_content_intent_is_requested() {
        assert!(intents().contains(GatewayIntents::MESSAGE_CONTENT));
        assert!(
            intents().contains(GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES)
        );
    }
}
