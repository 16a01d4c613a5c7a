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

use super::decoder::{Decoder, KvCache, Logits, StepOutput};
use super::generate::{self, Sequence};
use super::kv_rows::{HeadShape, Positions, PrefixCache, RowKv};
use super::{score, EngineError, EngineState, Job, ModelInfo, StreamEvent, TextTokenizer};

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
    shared: Weak<EngineState>,
) {
    let prefixes = PrefixCache::new(options.prefix_cache_bytes);
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
        prefixes,
        rows: Vec::new(),
        cache: None,
        waiting: VecDeque::new(),
    };
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
    shared: Weak<EngineState>,
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
        let step = self.batch_cache(&[&kv]).and_then(|past| {
            self.decoder
                .forward(&input_ids, &positions, &mask, past, Logits::Last)
        });
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
        let step = self.decoder.empty_cache(group.len()).and_then(|past| {
            self.decoder
                .forward(&input_ids, &positions, &mask, past, Logits::Last)
        });
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
        let step = match self
            .decoder
            .forward(&input_ids, &positions, &mask, cache, Logits::Last)
        {
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
            let step = self.decoder.empty_cache(1).and_then(|past| {
                self.decoder
                    .forward(&tokens, &positions, &mask, past, Logits::Last)
            });
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
