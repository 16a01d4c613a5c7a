//! The worker thread: continuous batching over one decoder session.
//!
//! Every loop turn the scheduler admits waiting requests in arrival order (prefilling each,
//! reusing a cached prompt prefix when one matches, within a per-turn prefill budget), merges
//! them into the running batch, runs ONE batched decode step for every active sequence, and
//! drops finished or cancelled sequences. Sequences of different lengths share the batch by
//! left padding: each row has its own attention mask and position ids.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Weak};

use tokio::sync::mpsc;

use super::decoder::{Decoder, HostLayer, KvCache, StepOutput};
use super::generate::{self, Sequence};
use super::{score, EngineError, Job, ModelInfo, Shared, StreamEvent, TextTokenizer};

/// Batching and caching limits.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Sequences decoded together at most.
    pub max_batch: usize,
    /// Prompt tokens prefilled per loop turn (at least one request is always admitted when
    /// there is room), so new requests never stall running ones for long.
    pub prefill_tokens_per_step: usize,
    /// Memory for cached prompt prefixes (keys and values), in bytes; 0 disables reuse.
    pub prefix_cache_bytes: usize,
    /// Shortest prefix worth reusing, in tokens.
    pub min_prefix_tokens: usize,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            max_batch: 16,
            prefill_tokens_per_step: 512,
            prefix_cache_bytes: 256 << 20,
            min_prefix_tokens: 16,
        }
    }
}

/// One sequence's keys and values in host memory: per layer (key, value), each
/// [kv_heads, len, head_dim] row-major.
#[derive(Clone)]
pub(crate) struct RowKv {
    layers: Vec<HostLayer>,
    len: usize,
}

impl RowKv {
    fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|(k, v)| (k.len() + v.len()) * 4)
            .sum()
    }

    /// The first `len` positions.
    fn truncated(&self, len: usize, shape: HeadShape) -> RowKv {
        let cut = |full: &[f32]| {
            shape.copied(
                full,
                Positions {
                    width: self.len,
                    start: 0,
                },
                len,
            )
        };
        RowKv {
            layers: self.layers.iter().map(|(k, v)| (cut(k), cut(v))).collect(),
            len,
        }
    }
}

/// The shape of one sequence's keys (or values) in a layer: `heads` blocks, each of
/// `width` positions of `head_dim` numbers, row-major ([heads, width, head_dim]).
#[derive(Debug, Clone, Copy)]
struct HeadShape {
    heads: usize,
    head_dim: usize,
}

/// A run of positions in each head's block: the block holds `width` positions, the run
/// begins at `start`.
#[derive(Debug, Clone, Copy)]
struct Positions {
    width: usize,
    start: usize,
}

impl HeadShape {
    /// Numbers in one sequence's block of `width` positions.
    fn len(self, width: usize) -> usize {
        self.heads * width * self.head_dim
    }

    /// Copies `count` positions of every head from `src` (read at `from`) into `dst`
    /// (written at `to`): the one strided copy behind splitting a batch cache into rows,
    /// building a batch cache from rows, and truncating a row.
    fn copy(self, src: &[f32], from: Positions, dst: &mut [f32], to: Positions, count: usize) {
        let n = count * self.head_dim;
        for h in 0..self.heads {
            let src_at = (h * from.width + from.start) * self.head_dim;
            let dst_at = (h * to.width + to.start) * self.head_dim;
            dst[dst_at..dst_at + n].copy_from_slice(&src[src_at..src_at + n]);
        }
    }

    /// `count` positions of every head of `src` (read at `from`), as a block of their own.
    fn copied(self, src: &[f32], from: Positions, count: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.len(count)];
        let to = Positions {
            width: count,
            start: 0,
        };
        self.copy(src, from, &mut out, to, count);
        out
    }
}

struct PrefixEntry {
    key: Option<String>,
    tokens: Vec<u32>,
    kv: RowKv,
    last_used: u64,
}

/// Keys and values of finished conversations, reused when a new prompt starts with the same
/// tokens (llama.cpp's cache_prompt). Bounded in bytes, least recently used out first.
pub(crate) struct PrefixCache {
    entries: Vec<PrefixEntry>,
    capacity_bytes: usize,
    clock: u64,
}

impl PrefixCache {
    fn new(capacity_bytes: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity_bytes,
            clock: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.kv.bytes()).sum()
    }

    /// The longest cached prefix of `prompt` (leaving at least one token to prefill) among
    /// the entries of `key`: its length and its entry (see [`PrefixCache::prefix`]). Only the
    /// same key's entries count, so that time to first token never tells one user how much
    /// of their prompt another user's conversation shares; requests without a key reuse
    /// nothing.
    fn lookup(
        &mut self,
        prompt: &[u32],
        key: Option<&str>,
        min_tokens: usize,
    ) -> Option<(usize, usize)> {
        let key = key?;
        let limit = prompt.len().saturating_sub(1);
        let (index, shared) = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.key.as_deref() == Some(key))
            .map(|(i, entry)| {
                let common = entry
                    .tokens
                    .iter()
                    .zip(prompt)
                    .take(limit.min(entry.kv.len))
                    .take_while(|(a, b)| a == b)
                    .count();
                (i, common)
            })
            .max_by_key(|&(_, common)| common)?;
        if shared < min_tokens.max(1) {
            return None;
        }
        self.clock += 1;
        self.entries[index].last_used = self.clock;
        Some((shared, index))
    }

    /// The keys and values of the first `len` positions of entry `index`.
    fn prefix(&self, index: usize, len: usize, shape: HeadShape) -> RowKv {
        self.entries[index].kv.truncated(len, shape)
    }

    fn insert(&mut self, key: Option<String>, tokens: Vec<u32>, kv: RowKv) {
        if kv.bytes() > self.capacity_bytes {
            return;
        }
        // A newer conversation of the same key supersedes the older one.
        if key.is_some() {
            self.entries.retain(|e| e.key != key);
        }
        self.clock += 1;
        self.entries.push(PrefixEntry {
            key,
            tokens,
            kv,
            last_used: self.clock,
        });
        while self.bytes() > self.capacity_bytes {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
                .expect("non-empty while over capacity");
            self.entries.remove(oldest);
        }
    }

    fn forget(&mut self, key: Option<&str>) {
        match key {
            Some(key) => self.entries.retain(|e| e.key.as_deref() != Some(key)),
            None => self.entries.clear(),
        }
    }
}

struct Active {
    sequence: Sequence,
    events: mpsc::UnboundedSender<StreamEvent>,
    /// Positions of this sequence held in the batch cache.
    len: usize,
}

struct Joining {
    active: Active,
    kv: RowKv,
}

/// Runs until every [`super::EngineHandle`] is dropped.
pub(crate) fn run(
    mut decoder: Decoder,
    tokenizer: TextTokenizer,
    info: ModelInfo,
    options: SchedulerOptions,
    inbox: std_mpsc::Receiver<Job>,
    shared: Weak<Shared>,
) {
    let mut worker = Worker {
        shape: HeadShape {
            heads: decoder.layout.kv_heads,
            head_dim: decoder.layout.head_dim,
        },
        decoder: &mut decoder,
        tokenizer: &tokenizer,
        info: &info,
        options,
        shared,
        prefixes: PrefixCache::new(0),
        rows: Vec::new(),
        cache: None,
        waiting: VecDeque::new(),
    };
    worker.prefixes.capacity_bytes = worker.options.prefix_cache_bytes;
    loop {
        let idle = worker.rows.is_empty() && worker.waiting.is_empty();
        if idle {
            match inbox.recv() {
                Ok(job) => worker.take(job),
                Err(_) => return,
            }
        }
        while let Ok(job) = inbox.try_recv() {
            worker.take(job);
        }
        let started = std::time::Instant::now();
        if let Err(error) = worker.turn() {
            worker.fail_all(error);
        }
        worker.record_time(started.elapsed());
    }
}

struct Worker<'a> {
    decoder: &'a mut Decoder,
    tokenizer: &'a TextTokenizer,
    info: &'a ModelInfo,
    options: SchedulerOptions,
    shared: Weak<Shared>,
    prefixes: PrefixCache,
    rows: Vec<Active>,
    /// Batch cache: [rows, heads, max len, head_dim], left-padded.
    cache: Option<KvCache>,
    waiting: VecDeque<(super::GenerateRequest, mpsc::UnboundedSender<StreamEvent>)>,
    /// The layout of one sequence's keys (or values) in a layer.
    shape: HeadShape,
}

impl Worker<'_> {
    fn take(&mut self, job: Job) {
        match job {
            Job::Generate(requests) => self.waiting.extend(requests),
            Job::Perplexity { text, reply } => {
                let _ = reply.send(score(self.decoder, self.tokenizer, self.info, &text));
            }
            Job::ForgetPrefixes { key } => self.prefixes.forget(key.as_deref()),
        }
    }

    fn release(&self, cancelled: bool) {
        if let Some(shared) = self.shared.upgrade() {
            if cancelled {
                shared.cancelled.fetch_add(1, Ordering::SeqCst);
            }
            shared.waiting.fetch_sub(1, Ordering::SeqCst);
            shared.batch_size.store(self.rows.len(), Ordering::SeqCst);
        }
    }

    /// Adds a turn's duration and the session time so far to the shared counters.
    fn record_time(&self, turn: std::time::Duration) {
        if let Some(shared) = self.shared.upgrade() {
            shared
                .turn_nanos
                .fetch_add(turn.as_nanos() as u64, Ordering::SeqCst);
            shared.session_run_nanos.store(
                self.decoder.session_run_time.as_nanos() as u64,
                Ordering::SeqCst,
            );
        }
    }

    /// One scheduling turn: admit, merge, decode one step, retire.
    fn turn(&mut self) -> Result<(), EngineError> {
        let joining = self.admit()?;
        if !joining.is_empty() {
            self.merge(joining)?;
        }
        if !self.rows.is_empty() {
            self.decode_step()?;
        }
        self.retire()
    }

    /// Prefills waiting requests in arrival order while there is room and budget. Requests
    /// with a cached prompt prefix are prefilled alone on top of it; the others are
    /// prefilled together in one batched run (left-padded to the longest prompt).
    fn admit(&mut self) -> Result<Vec<Joining>, EngineError> {
        let mut joining = Vec::new();
        let mut fresh: Vec<(Sequence, mpsc::UnboundedSender<StreamEvent>)> = Vec::new();
        let mut reused_tokens = 0;
        let mut longest_fresh = 0;
        while self.rows.len() + joining.len() + fresh.len() < self.options.max_batch.max(1) {
            let Some((request, events)) = self.waiting.pop_front() else {
                break;
            };
            if events.is_closed() {
                self.release(true);
                continue;
            }
            if !request.use_kv_cache {
                let result = generate::run(
                    self.decoder,
                    self.tokenizer,
                    self.info,
                    &request,
                    &mut text_sink(&events),
                );
                let cancelled =
                    matches!(&result, Ok(g) if g.finish == super::FinishReason::Cancelled);
                let _ = events.send(StreamEvent::Done(result));
                self.release(cancelled);
                continue;
            }
            let sequence = match Sequence::new(self.tokenizer, self.info, request) {
                Ok(sequence) => sequence,
                Err(error) => {
                    let _ = events.send(StreamEvent::Done(Err(error)));
                    self.release(false);
                    continue;
                }
            };
            let prompt_len = sequence.prompt_ids.len();
            let reused = self.prefixes.lookup(
                &sequence.prompt_ids,
                sequence.request.prefix_cache_key.as_deref(),
                self.options.min_prefix_tokens,
            );
            // Prefill cost: new tokens on a reused prefix, padded tokens in the batch.
            let spent = match &reused {
                Some((shared, _)) => {
                    reused_tokens + (prompt_len - shared) + fresh.len() * longest_fresh
                }
                None => reused_tokens + (fresh.len() + 1) * longest_fresh.max(prompt_len),
            };
            let admitted = joining.len() + fresh.len();
            if admitted > 0 && spent > self.options.prefill_tokens_per_step {
                self.waiting.push_front((sequence.request.clone(), events));
                break;
            }
            match reused {
                Some((shared, entry)) => {
                    reused_tokens += prompt_len - shared;
                    let kv = self.prefixes.prefix(entry, shared, self.shape);
                    self.prefill_on_prefix(sequence, events, shared, kv, &mut joining);
                }
                None => {
                    longest_fresh = longest_fresh.max(prompt_len);
                    fresh.push((sequence, events));
                }
            }
        }
        if !fresh.is_empty() {
            self.prefill_batch(fresh, &mut joining);
        }
        Ok(joining)
    }

    /// Prefills the rest of one prompt on top of its cached prefix `kv` (`shared` tokens).
    fn prefill_on_prefix(
        &mut self,
        mut sequence: Sequence,
        events: mpsc::UnboundedSender<StreamEvent>,
        shared: usize,
        kv: RowKv,
        joining: &mut Vec<Joining>,
    ) {
        tracing::debug!(
            reused = shared,
            prompt = sequence.prompt_ids.len(),
            "prompt prefix reused"
        );
        sequence.reused_prefix_tokens = shared;
        let prompt = &sequence.prompt_ids;
        let input_ids: Vec<i64> = prompt[shared..].iter().map(|&t| t as i64).collect();
        let positions: Vec<i64> = (shared..prompt.len()).map(|p| p as i64).collect();
        let mask = vec![1i64; prompt.len()];
        let step = self
            .batch_cache(&[&kv])
            .and_then(|past| self.decoder.forward(&input_ids, &positions, &mask, past));
        match step {
            Ok(step) => self.start_rows(vec![(sequence, events)], &step, joining),
            Err(error) => self.fail_prefill(error, &events),
        }
    }

    /// Prefills fresh prompts in one run (left padding, per-row masks and positions) and
    /// samples each one's first token. If the batched run fails, each prompt is retried
    /// alone, so a failure ends only the request that causes it, never silently.
    fn prefill_batch(
        &mut self,
        mut group: Vec<(Sequence, mpsc::UnboundedSender<StreamEvent>)>,
        joining: &mut Vec<Joining>,
    ) {
        let width = group
            .iter()
            .map(|(s, _)| s.prompt_ids.len())
            .max()
            .unwrap_or(0);
        let (mut input_ids, mut positions, mut mask) = (vec![], vec![], vec![]);
        for (sequence, _) in &group {
            let pad = width - sequence.prompt_ids.len();
            input_ids.extend(std::iter::repeat_n(0i64, pad));
            input_ids.extend(sequence.prompt_ids.iter().map(|&t| t as i64));
            positions.extend(std::iter::repeat_n(0i64, pad));
            positions.extend(0..sequence.prompt_ids.len() as i64);
            mask.extend(std::iter::repeat_n(0i64, pad));
            mask.extend(std::iter::repeat_n(1i64, sequence.prompt_ids.len()));
        }
        let step = self
            .decoder
            .empty_cache(group.len())
            .and_then(|past| self.decoder.forward(&input_ids, &positions, &mask, past));
        match step {
            Ok(step) => {
                let rows = group.len();
                for (sequence, _) in &mut group {
                    sequence.prefill_batch = rows;
                }
                self.start_rows(group, &step, joining)
            }
            Err(error) if group.len() == 1 => {
                let (_, events) = group.into_iter().next().expect("one");
                self.fail_prefill(error, &events);
            }
            Err(error) => {
                tracing::warn!(%error, rows = group.len(), "batched prefill failed; retrying each prompt alone");
                for member in group {
                    self.prefill_batch(vec![member], joining);
                }
            }
        }
    }

    /// Samples each prefilled row's first token and moves it to `joining` (or finishes it).
    fn start_rows(
        &mut self,
        group: Vec<(Sequence, mpsc::UnboundedSender<StreamEvent>)>,
        step: &StepOutput,
        joining: &mut Vec<Joining>,
    ) {
        let lens: Vec<usize> = group.iter().map(|(s, _)| s.prompt_ids.len()).collect();
        let kvs = match self.split_rows(&step.cache, &lens) {
            Ok(kvs) => kvs,
            Err(error) => {
                for (_, events) in &group {
                    self.fail_prefill(error.clone(), events);
                }
                return;
            }
        };
        for (b, ((mut sequence, events), kv)) in group.into_iter().zip(kvs).enumerate() {
            let mut logits = step.last_logits(b).to_vec();
            if let Err(error) = sequence.accept(
                &mut logits,
                self.tokenizer,
                self.info,
                &mut text_sink(&events),
            ) {
                self.fail_prefill(error, &events);
                continue;
            }
            let active = Active {
                len: sequence.prompt_ids.len(),
                sequence,
                events,
            };
            if active.sequence.is_finished() {
                self.finish(active, kv);
            } else {
                joining.push(Joining { active, kv });
            }
        }
    }

    /// Ends one request whose prefill failed, with the error.
    fn fail_prefill(&self, error: EngineError, events: &mpsc::UnboundedSender<StreamEvent>) {
        tracing::error!(%error, "prefill failed");
        let _ = events.send(StreamEvent::Done(Err(error)));
        self.release(false);
    }

    /// Adds prefilled sequences to the running batch (re-packing its cache).
    fn merge(&mut self, joining: Vec<Joining>) -> Result<(), EngineError> {
        let mut kvs = match self.cache.take() {
            Some(cache) => self.split_rows(&cache, &self.row_lens())?,
            None => Vec::new(),
        };
        for join in joining {
            kvs.push(join.kv);
            self.rows.push(join.active);
        }
        let refs: Vec<&RowKv> = kvs.iter().collect();
        self.cache = Some(self.batch_cache(&refs)?);
        Ok(())
    }

    /// One batched decode step: every active row feeds its last token.
    fn decode_step(&mut self) -> Result<(), EngineError> {
        let cache = self.cache.take().expect("rows imply a cache");
        let width = cache.len;
        let mut input_ids = Vec::with_capacity(self.rows.len());
        let mut positions = Vec::with_capacity(self.rows.len());
        let mut mask = Vec::with_capacity(self.rows.len() * (width + 1));
        for row in &self.rows {
            let (token, position) = row.sequence.next_input();
            debug_assert_eq!(position, row.len);
            input_ids.push(token as i64);
            positions.push(position as i64);
            mask.extend(std::iter::repeat_n(0i64, width - row.len));
            mask.extend(std::iter::repeat_n(1i64, row.len + 1));
        }
        let step = match self.decoder.forward(&input_ids, &positions, &mask, cache) {
            Ok(step) => step,
            Err(error) if self.rows.len() > 1 => return self.decode_rows_alone(error),
            Err(error) => return Err(error),
        };
        let batch = self.rows.len();
        for (b, row) in self.rows.iter_mut().enumerate() {
            row.len += 1;
            row.sequence.max_batch = row.sequence.max_batch.max(batch);
            let mut logits = step.last_logits(b).to_vec();
            let events = row.events.clone();
            row.sequence.accept(
                &mut logits,
                self.tokenizer,
                self.info,
                &mut text_sink(&events),
            )?;
        }
        self.cache = Some(step.cache);
        if let Some(shared) = self.shared.upgrade() {
            shared.batch_size.store(self.rows.len(), Ordering::SeqCst);
        }
        Ok(())
    }

    /// After a batched decode step failed (its cache went with it): each row's step is redone
    /// alone by prefilling its tokens so far, so a failure ends only the request that
    /// causes it; the others go on in a re-packed batch.
    fn decode_rows_alone(&mut self, error: EngineError) -> Result<(), EngineError> {
        tracing::warn!(%error, rows = self.rows.len(), "batched decode step failed; retrying each sequence alone");
        let mut joining = Vec::new();
        for row in std::mem::take(&mut self.rows) {
            let tokens: Vec<i64> = row.sequence.tokens().iter().map(|&t| t as i64).collect();
            let positions: Vec<i64> = (0..tokens.len() as i64).collect();
            let mask = vec![1i64; tokens.len()];
            let step = self
                .decoder
                .empty_cache(1)
                .and_then(|past| self.decoder.forward(&tokens, &positions, &mask, past));
            let Active {
                mut sequence,
                events,
                ..
            } = row;
            let redone = step.and_then(|step| {
                let kv = self.split_rows(&step.cache, &[tokens.len()])?.remove(0);
                let mut logits = step.last_logits(0).to_vec();
                sequence.accept(
                    &mut logits,
                    self.tokenizer,
                    self.info,
                    &mut text_sink(&events),
                )?;
                Ok(kv)
            });
            match redone {
                Ok(kv) => {
                    let active = Active {
                        len: tokens.len(),
                        sequence,
                        events,
                    };
                    joining.push(Joining { active, kv });
                }
                Err(error) => {
                    tracing::error!(%error, "decode step failed");
                    let _ = events.send(StreamEvent::Done(Err(error)));
                    self.release(false);
                }
            }
        }
        if !joining.is_empty() {
            self.merge(joining)?;
        }
        Ok(())
    }

    /// Removes finished and cancelled rows, re-packing the cache when any left.
    fn retire(&mut self) -> Result<(), EngineError> {
        for row in &mut self.rows {
            if row.events.is_closed() {
                row.sequence.cancel();
            }
        }
        if !self.rows.iter().any(|row| row.sequence.is_finished()) {
            return Ok(());
        }
        let cache = self.cache.take().expect("rows imply a cache");
        let kvs = self.split_rows(&cache, &self.row_lens())?;
        let mut kept_kvs = Vec::new();
        let rows = std::mem::take(&mut self.rows);
        for (row, kv) in rows.into_iter().zip(kvs) {
            if row.sequence.is_finished() {
                self.finish(row, kv);
            } else {
                kept_kvs.push(kv);
                self.rows.push(row);
            }
        }
        if !self.rows.is_empty() {
            let refs: Vec<&RowKv> = kept_kvs.iter().collect();
            self.cache = Some(self.batch_cache(&refs)?);
        }
        Ok(())
    }

    /// Sends the result and keeps the sequence's keys and values for prefix reuse.
    fn finish(&mut self, row: Active, kv: RowKv) {
        let key = row.sequence.request.prefix_cache_key.clone();
        let tokens = row.sequence.tokens();
        let result = row
            .sequence
            .finish(self.tokenizer, &mut text_sink(&row.events));
        let cancelled = matches!(&result, Ok(g) if g.finish == super::FinishReason::Cancelled);
        if !cancelled && key.is_some() && self.options.prefix_cache_bytes > 0 {
            let len = kv.len.min(tokens.len());
            self.prefixes.insert(key, tokens[..len].to_vec(), kv);
        }
        let _ = row.events.send(StreamEvent::Done(result));
        self.release(cancelled);
    }

    /// Ends every running sequence with `error` (the session failed); the worker goes on.
    fn fail_all(&mut self, error: EngineError) {
        tracing::error!(%error, rows = self.rows.len(), "batched step failed");
        self.cache = None;
        for row in std::mem::take(&mut self.rows) {
            let _ = row.events.send(StreamEvent::Done(Err(error.clone())));
            self.release(false);
        }
    }

    fn row_lens(&self) -> Vec<usize> {
        self.rows.iter().map(|row| row.len).collect()
    }

    /// Copies each row of a batch cache out, without its left padding; `lens[b]` is the
    /// number of real positions of row b.
    fn split_rows(&self, cache: &KvCache, lens: &[usize]) -> Result<Vec<RowKv>, EngineError> {
        debug_assert_eq!(lens.len(), cache.batch);
        let host = cache.to_host()?;
        let shape = self.shape;
        let width = cache.len;
        let block = shape.len(width);
        Ok(lens
            .iter()
            .enumerate()
            .map(|(b, &len)| {
                let from = Positions {
                    width,
                    start: width - len,
                };
                let take = |full: &[f32]| shape.copied(&full[b * block..], from, len);
                RowKv {
                    layers: host.iter().map(|(k, v)| (take(k), take(v))).collect(),
                    len,
                }
            })
            .collect())
    }

    /// Builds a left-padded batch cache from rows.
    fn batch_cache(&self, rows: &[&RowKv]) -> Result<KvCache, EngineError> {
        let shape = self.shape;
        let width = rows.iter().map(|r| r.len).max().unwrap_or(0);
        let batch = rows.len();
        let block = shape.len(width);
        self.decoder.cache_from_host(batch, width, |layer| {
            let mut keys = vec![0f32; batch * block];
            let mut values = vec![0f32; batch * block];
            for (b, row) in rows.iter().enumerate() {
                let (k, v) = &row.layers[layer];
                let from = Positions {
                    width: row.len,
                    start: 0,
                };
                let to = Positions {
                    width,
                    start: width - row.len,
                };
                let slot = b * block..(b + 1) * block;
                shape.copy(k, from, &mut keys[slot.clone()], to, row.len);
                shape.copy(v, from, &mut values[slot], to, row.len);
            }
            (keys, values)
        })
    }
}

/// A sink that forwards non-empty deltas and reports whether anyone still listens.
fn text_sink(events: &mpsc::UnboundedSender<StreamEvent>) -> impl FnMut(&str) -> bool + '_ {
    move |delta: &str| {
        if !delta.is_empty() {
            let _ = events.send(StreamEvent::Text(delta.to_string()));
        }
        !events.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(len: usize, fill: f32) -> RowKv {
        RowKv {
            layers: vec![(vec![fill; 2 * len * 3], vec![fill; 2 * len * 3])],
            len,
        }
    }

    #[test]
    fn prefix_cache_finds_longest_shared_prefix_and_respects_capacity() {
        let mut cache = PrefixCache::new(row(10, 0.0).bytes() * 2);
        cache.insert(Some("a".into()), (0..10).collect(), row(10, 1.0));
        cache.insert(
            Some("b".into()),
            vec![0, 1, 2, 9, 9, 9, 9, 9, 9, 9],
            row(10, 2.0),
        );
        let prompt: Vec<u32> = (0..20).collect();
        let (shared, entry) = cache.lookup(&prompt, Some("a"), 2).unwrap();
        assert_eq!(shared, 10);
        assert_eq!(cache.entries[entry].kv.layers[0].0[0], 1.0);
        // Never the whole prompt: one token must be left to produce logits.
        let (shared, _) = cache
            .lookup(&(0..10).collect::<Vec<_>>(), Some("a"), 2)
            .unwrap();
        assert_eq!(shared, 9);
        // A third entry evicts the least recently used ("b").
        cache.insert(Some("c".into()), (100..110).collect(), row(10, 3.0));
        assert_eq!(cache.entries.len(), 2);
        assert!(cache.entries.iter().all(|e| e.key.as_deref() != Some("b")));
        // Another key's entry is never reused, however much it shares ("a" shares 10
        // tokens with the prompt, "c" none); nor is any entry for a request without a key.
        assert!(cache.lookup(&prompt, Some("c"), 2).is_none());
        assert!(cache.lookup(&prompt, Some("z"), 2).is_none());
        assert!(cache.lookup(&prompt, None, 2).is_none());
        cache.forget(Some("a"));
        assert!(cache.lookup(&prompt, Some("a"), 2).is_none());
    }

    #[test]
    fn rows_copied_into_a_left_padded_batch_and_back_are_unchanged() {
        // heads = 2, head_dim = 2; row a has 1 position, row b 3: value = row*100 + h*10 + p.
        let shape = HeadShape {
            heads: 2,
            head_dim: 2,
        };
        let row = |id: f32, len: usize| -> Vec<f32> {
            (0..2)
                .flat_map(|h| {
                    (0..len).flat_map(move |p| [id * 100.0 + h as f32 * 10.0 + p as f32; 2])
                })
                .collect()
        };
        let (a, b) = (row(1.0, 1), row(2.0, 3));
        let width = 3;
        let block = shape.len(width);
        let mut batch = vec![-1.0; 2 * block];
        for (slot, (data, len)) in [(&a, 1), (&b, 3)].into_iter().enumerate() {
            let from = Positions {
                width: len,
                start: 0,
            };
            let to = Positions {
                width,
                start: width - len,
            };
            shape.copy(
                data,
                from,
                &mut batch[slot * block..(slot + 1) * block],
                to,
                len,
            );
        }
        // Row a sits at the last position of each head, after two padding positions.
        assert_eq!(
            &batch[..block],
            &[-1.0, -1.0, -1.0, -1.0, 100.0, 100.0, -1.0, -1.0, -1.0, -1.0, 110.0, 110.0]
        );
        for (slot, (data, len)) in [(&a, 1), (&b, 3)].into_iter().enumerate() {
            let from = Positions {
                width,
                start: width - len,
            };
            assert_eq!(&shape.copied(&batch[slot * block..], from, len), data);
        }
    }

    #[test]
    fn truncation_keeps_the_first_positions_of_each_head() {
        // heads = 2, len = 3, head_dim = 1: values h*10 + position.
        let kv = RowKv {
            layers: vec![(vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0], vec![0.0; 6])],
            len: 3,
        };
        let cut = kv.truncated(
            2,
            HeadShape {
                heads: 2,
                head_dim: 1,
            },
        );
        assert_eq!(cut.layers[0].0, vec![0.0, 1.0, 10.0, 11.0]);
        assert_eq!(cut.len, 2);
    }
}
