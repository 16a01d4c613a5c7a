//! A moderator's requests that generate text: a channel summary
//! ([`Assistant::summarise`]) and a draft ([`Assistant::draft`]). They take places in the
//! same generation queue as answers, in the background share, and go through the same
//! guard; the plain parts (the summary's structure, finding a product) are in
//! [`super::moderation`].

use super::content::{self, PromptError, PromptSet, SummaryMessage};
use super::invisible::strip_invisible;
use super::knowledge::RouteKind;
use super::limits::{generation_tokens, Claim, Priority};
use super::moderation::drafts::{find_product, route_with, Draft, DraftRequest, DraftSubject};
use super::moderation::summary::{
    analyse, guard_overview, ChannelMessage, ChannelSummary, MAX_SUMMARY_CHUNKS,
};
use super::outcome::{Notice, Outcome};
use super::service::Assistant;

/// Tokens reserved for the summary templates' own text and the message numbers.
const SUMMARY_TEMPLATE_TOKENS: usize = 300;

/// A summarised message counts toward a knowledge entry's topic from this match score.
const SUMMARY_TOPIC_MIN_SCORE: f32 = 0.2;

impl Assistant {
    /// Summarises channel messages (oldest first) for a moderator: [`Outcome::Summary`]
    /// with the sections built by rule (key topics, open questions, complaints and mood,
    /// needs a moderator; each point refers to its source message), and the model's
    /// overview; or a [`Notice`] saying why there is none (no messages, busy, a failure).
    /// The model summarises numbered chunks (map), then merges the partial summaries
    /// (reduce, skipped for one chunk); its `[n]` references become links and
    /// unknown numbers are dropped. Channel text is data: it never changes the sections,
    /// and no mention in it survives. Nothing is stored. Takes one place in the generation
    /// queue per chunk, at most [`MAX_SUMMARY_CHUNKS`] (the overview then covers the newest
    /// messages and says so) and at most what fits the queue's tokens (a context per chunk),
    /// and only while a quarter of the queue's places and tokens stays free for customers
    /// (otherwise: the busy notice).
    pub async fn summarise(&self, messages: Vec<ChannelMessage>) -> Outcome {
        if messages.is_empty() {
            return Outcome::Notice(Notice::NothingToSummarise);
        }
        let set = self.prompts.current();
        let format = self.backend.model().prompt_format;
        let numbered: Vec<SummaryMessage> = messages
            .iter()
            .enumerate()
            .map(|(index, m)| SummaryMessage {
                number: index + 1,
                author: strip_invisible(&m.author),
                text: strip_invisible(&m.text),
                link: m.link.clone(),
            })
            .collect();
        // Each map prompt must leave room for its template and the reply; about three
        // characters per token is a safe estimate for English chat.
        let room_tokens = self
            .backend
            .model()
            .context_length
            .saturating_sub(self.config.model.max_new_tokens + SUMMARY_TEMPLATE_TOKENS);
        let mut chunks = content::summary_chunks(&numbered, (room_tokens * 3).max(500));
        // At most MAX_SUMMARY_CHUNKS generations, each a place in the queue and its tokens,
        // with room left for customers: the overview covers the newest messages that fit (the
        // sections below it still cover all of them).
        let max_chunks = MAX_SUMMARY_CHUNKS.min(self.limits.background_places());
        chunks.drain(..chunks.len().saturating_sub(max_chunks));
        let (map_prompts, tokens) = self.newest_chunks_that_fit(&set, &mut chunks).await;
        let overview_from = chunks
            .first()
            .and_then(|chunk| chunk.first())
            .map_or(1, |message| message.number);
        let parts = chunks.len();
        let claim = Claim {
            places: parts,
            tokens,
            priority: Priority::Background,
        };
        let Ok(_admission) = self.limits.admit(claim) else {
            return Outcome::Notice(Notice::Busy);
        };
        tracing::info!(parts, messages = messages.len(), "summary map step");
        // The parts are independent: queued together, they are prefilled and decoded in
        // one batch.
        let mut partials = match self.generate_texts(map_prompts).await {
            Ok(texts) => texts,
            Err(notice) => return Outcome::Notice(notice),
        };
        let overview = if parts == 1 {
            partials.pop().unwrap_or_default()
        } else {
            tracing::info!(parts, "summary reduce step");
            match self
                .generate_text(set.render_summary_reduce(format, &partials))
                .await
            {
                Ok(text) => text,
                Err(notice) => return Outcome::Notice(notice),
            }
        };
        let overview = guard_overview(&set, &overview);
        let overview = if overview_from > 1 {
            format!(
                "(Overview of messages {overview_from}–{} of {}.) {overview}",
                messages.len(),
                messages.len()
            )
        } else {
            overview
        };
        // A message's topic: the closest knowledge entry when it is close enough (a
        // looser bar than answering needs), else the first catalogue product it names.
        // Routing every message (embeddings included) is blocking work: off the async
        // workers.
        let analysed = tokio::task::spawn_blocking(move || {
            let topic_of = |text: &str| {
                let route = set.knowledge.route(text);
                if route.kind == RouteKind::SmallTalk {
                    return None;
                }
                route
                    .hits
                    .first()
                    .filter(|hit| hit.score >= SUMMARY_TOPIC_MIN_SCORE)
                    .map(|hit| hit.title.clone())
                    .or_else(|| route.products.first().map(|p| p.name.clone()))
            };
            let digest = analyse(&messages, &topic_of);
            (digest, messages)
        })
        .await;
        let Ok((digest, messages)) = analysed else {
            tracing::error!("the summary analysis crashed");
            return Outcome::Notice(Notice::GenerationFailed);
        };
        Outcome::Summary(ChannelSummary {
            digest,
            messages,
            overview,
        })
    }
}

impl Assistant {
    /// Drops the oldest of `chunks` until their map generations' tokens together (each its
    /// prompt and reply room) fit what a moderator job may hold in the queue, keeping one at
    /// least; returns the map prompts of those kept and the tokens they claim. The reduce
    /// step later runs in what the map step held: its prompt is the map's replies.
    async fn newest_chunks_that_fit(
        &self,
        set: &PromptSet,
        chunks: &mut Vec<&[SummaryMessage]>,
    ) -> (Vec<Result<String, PromptError>>, usize) {
        let format = self.backend.model().prompt_format;
        let context = self.backend.model().context_length;
        let reply_room = self.config.model.max_new_tokens;
        let render = |chunks: &[&[_]]| -> Vec<_> {
            let parts = chunks.len();
            chunks
                .iter()
                .enumerate()
                .map(|(index, chunk)| set.render_summary_map(format, chunk, index + 1, parts))
                .collect()
        };
        let claims = |prompts: Vec<Result<String, PromptError>>| async move {
            let mut claims = Vec::new();
            for prompt in &prompts {
                let tokens = match prompt {
                    Ok(text) => self.backend.count_tokens(text).await,
                    Err(_) => 0,
                };
                claims.push(generation_tokens(tokens, reply_room, context));
            }
            (prompts, claims)
        };
        let (mut prompts, mut tokens) = claims(render(chunks)).await;
        let room = self.limits.background_tokens();
        let over = (0..tokens.len())
            .take_while(|&dropped| {
                dropped + 1 < tokens.len() && tokens[dropped..].iter().sum::<usize>() > room
            })
            .count();
        if over > 0 {
            chunks.drain(..over);
            (prompts, tokens) = claims(render(chunks)).await;
        }
        (prompts, tokens.iter().sum())
    }
}

impl Assistant {
    /// Drafts a product description or community post for a moderator:
    /// [`Outcome::Draft`] with the guarded draft (prices not in the catalogue removed,
    /// mentions broken), or a [`Notice`] saying why there is none (an unknown product with
    /// close names, busy, a failed generation). Takes a place in the generation queue, and
    /// the prompt's tokens and reply room.
    pub async fn draft(&self, request: DraftRequest) -> Outcome {
        let set = self.prompts.current();
        let format = self.backend.model().prompt_format;
        let (subject, prompt, route) = match &request {
            DraftRequest::Product { name, notes } => {
                let product = match find_product(&set.knowledge.catalogue, name) {
                    Ok(product) => product.clone(),
                    Err(error) => return Outcome::Notice(Notice::UnknownProduct(error)),
                };
                (
                    DraftSubject::Product(product.name.clone()),
                    set.render_product_draft(format, &product.id, notes),
                    route_with(vec![product]),
                )
            }
            DraftRequest::Post { topic, notes } => {
                let products = set
                    .knowledge
                    .products_mentioned(&format!("{topic} {notes}"))
                    .into_iter()
                    .cloned()
                    .collect();
                (
                    DraftSubject::Post(topic.trim().to_string()),
                    set.render_post_draft(format, topic, notes),
                    route_with(products),
                )
            }
        };
        let prompt_tokens = match &prompt {
            Ok(text) => self.backend.count_tokens(text).await,
            Err(_) => 0,
        };
        let _admission = match self.admit(prompt_tokens) {
            Ok(admission) => admission,
            Err(notice) => return Outcome::Notice(notice),
        };
        let text = match self.generate_text(prompt).await {
            Ok(text) => text,
            Err(notice) => return Outcome::Notice(notice),
        };
        let guarded = set.guard_reply(&route, &text, true);
        if !guarded.findings.is_empty() {
            tracing::info!(findings = ?guarded.findings, "the guard changed a draft");
        }
        Outcome::Draft(Draft {
            subject,
            text: guarded.text,
        })
    }
}

impl Assistant {
    /// Generates the whole reply to a rendered prompt; the error is the notice to show.
    async fn generate_text(&self, prompt: Result<String, PromptError>) -> Result<String, Notice> {
        let mut texts = self.generate_texts(vec![prompt]).await?;
        Ok(texts.pop().unwrap_or_default())
    }

    /// Generates whole replies to several rendered prompts, queued together, in order; the
    /// first failure is the notice to show.
    async fn generate_texts(
        &self,
        prompts: Vec<Result<String, PromptError>>,
    ) -> Result<Vec<String>, Notice> {
        let prompts = prompts
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                tracing::error!(%error, "could not render a prompt");
                Notice::Unavailable
            })?;
        let stop = PromptSet::stop_strings(self.backend.model().prompt_format);
        let requests = prompts
            .into_iter()
            .map(|prompt| self.request(prompt, stop.clone(), None))
            .collect();
        let mut texts = Vec::new();
        for stream in self.backend.generate_many(requests) {
            match stream.finish().await {
                Ok(generated) => texts.push(generated.text.trim().to_string()),
                Err(error) => {
                    tracing::error!(%error, "generation failed");
                    return Err(Notice::GenerationFailed);
                }
            }
        }
        Ok(texts)
    }
}
