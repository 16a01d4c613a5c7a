//! Keys and values in host memory: one sequence's rows ([`RowKv`]), the strided copies
//! between a batch cache and its rows ([`HeadShape`]), and the cache of finished
//! conversations' prefixes for reuse ([`PrefixCache`]).

use super::decoder::HostLayer;

/// One sequence's keys and values in host memory: per layer (key, value), each
/// [kv_heads, len, head_dim] row-major.
#[derive(Clone)]
pub(crate) struct RowKv {
    pub(super) layers: Vec<HostLayer>,
    pub(super) len: usize,
}

impl RowKv {
    pub(super) fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|(k, v)| (k.len() + v.len()) * 4)
            .sum()
    }

    /// The first `len` positions.
    pub(super) fn truncated(&self, len: usize, shape: HeadShape) -> RowKv {
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
pub(super) struct HeadShape {
    pub(super) heads: usize,
    pub(super) head_dim: usize,
}

/// A run of positions in each head's block: the block holds `width` positions, the run
/// begins at `start`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Positions {
    pub(super) width: usize,
    pub(super) start: usize,
}

impl HeadShape {
    /// Numbers in one sequence's block of `width` positions.
    pub(super) fn len(self, width: usize) -> usize {
        self.heads * width * self.head_dim
    }

    /// Copies `count` positions of every head from `src` (read at `from`) into `dst`
    /// (written at `to`): the one strided copy behind splitting a batch cache into rows,
    /// building a batch cache from rows, and truncating a row.
    pub(super) fn copy(
        self,
        src: &[f32],
        from: Positions,
        dst: &mut [f32],
        to: Positions,
        count: usize,
    ) {
        let n = count * self.head_dim;
        for h in 0..self.heads {
            let src_at = (h * from.width + from.start) * self.head_dim;
            let dst_at = (h * to.width + to.start) * self.head_dim;
            dst[dst_at..dst_at + n].copy_from_slice(&src[src_at..src_at + n]);
        }
    }

    /// `count` positions of every head of `src` (read at `from`), as a block of their own.
    pub(super) fn copied(self, src: &[f32], from: Positions, count: usize) -> Vec<f32> {
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
    pub(super) fn new(capacity_bytes: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity_bytes,
            clock: 0,
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.kv.bytes()).sum()
    }

    /// The longest cached prefix of `prompt` (leaving at least one token to prefill) among
    /// the entries of `key`: its length and its entry (see [`PrefixCache::prefix`]). Only the
    /// same key's entries count, so that time to first token never tells one user how much
    /// of their prompt another user's conversation shares; requests without a key reuse
    /// nothing.
    pub(super) fn lookup(
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
    pub(super) fn prefix(&self, index: usize, len: usize, shape: HeadShape) -> RowKv {
        self.entries[index].kv.truncated(len, shape)
    }

    pub(super) fn insert(&mut self, key: Option<String>, tokens: Vec<u32>, kv: RowKv) {
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

    pub(super) fn forget(&mut self, key: Option<&str>) {
        match key {
            Some(key) => self.entries.retain(|e| e.key.as_deref() != Some(key)),
            None => self.entries.clear(),
        }
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
