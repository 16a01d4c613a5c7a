//! Choosing the next token from logits: greedy, temperature, top-k, top-p and a repetition
//! penalty, with a seeded RNG so the same seed gives the same text.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use crate::backend::SamplingParams;

/// A stateful sampler; one per generation.
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

impl Sampler {
    /// A sampler whose random draws are seeded with `params.seed`: the same seed and logits
    /// give the same tokens.
    pub fn new(params: SamplingParams) -> Self {
        let rng = StdRng::seed_from_u64(params.seed);
        Self { params, rng }
    }

    /// Picks the next token. `logits` is modified in place; `seen` lists the ids the
    /// repetition penalty applies to.
    pub fn sample(&mut self, logits: &mut [f32], seen: &[u32]) -> u32 {
        apply_repetition_penalty(logits, seen, self.params.repetition_penalty);
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let candidates = filtered_distribution(
            logits,
            self.params.temperature,
            self.params.top_k,
            self.params.top_p,
        );
        let draw: f32 = self.rng.random();
        let mut cumulative = 0.0;
        for &(id, probability) in &candidates {
            cumulative += probability;
            if draw < cumulative {
                return id;
            }
        }
        candidates.last().map(|&(id, _)| id).unwrap_or(0)
    }
}

/// Index of the largest logit (the first one on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &value) in logits.iter().enumerate() {
        if value > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn apply_repetition_penalty(logits: &mut [f32], seen: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut penalised = vec![false; logits.len()];
    for &id in seen {
        let id = id as usize;
        if id < logits.len() && !penalised[id] {
            penalised[id] = true;
            let logit = &mut logits[id];
            *logit = if *logit > 0.0 {
                *logit / penalty
            } else {
                *logit * penalty
            };
        }
    }
}

/// The tokens that survive temperature, top-k and top-p, most likely first, with
/// probabilities renormalised to sum to 1.
pub fn filtered_distribution(
    logits: &[f32],
    temperature: f32,
    top_k: usize,
    top_p: f32,
) -> Vec<(u32, f32)> {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let keep = if top_k == 0 {
        logits.len()
    } else {
        top_k.min(logits.len())
    };
    let by_logit_desc = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
    if keep < order.len() {
        order.select_nth_unstable_by(keep - 1, by_logit_desc);
        order.truncate(keep);
    }
    order.sort_unstable_by(by_logit_desc);

    let temperature = temperature.max(1e-5);
    let max_logit = logits[order[0] as usize];
    let weights: Vec<f32> = order
        .iter()
        .map(|&id| ((logits[id as usize] - max_logit) / temperature).exp())
        .collect();
    let total: f32 = weights.iter().sum();

    let mut kept = Vec::with_capacity(order.len());
    let mut mass = 0.0;
    for (&id, &weight) in order.iter().zip(&weights) {
        let probability = weight / total;
        kept.push((id, probability));
        mass += probability;
        if mass >= top_p {
            break;
        }
    }
    let kept_mass: f32 = kept.iter().map(|&(_, p)| p).sum();
    for entry in &mut kept {
        entry.1 /= kept_mass;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![0.1, 2.0, -1.0, 1.5, 0.3, 3.0, -0.5, 0.0]
    }

    #[test]
    fn greedy_is_argmax() {
        let mut sampler = Sampler::new(SamplingParams::greedy());
        assert_eq!(sampler.sample(&mut logits(), &[]), 5);
    }

    #[test]
    fn top_k_one_equals_greedy_for_any_seed() {
        for seed in 0..20 {
            let mut sampler = Sampler::new(SamplingParams {
                temperature: 1.5,
                top_k: 1,
                top_p: 1.0,
                repetition_penalty: 1.0,
                seed,
            });
            assert_eq!(sampler.sample(&mut logits(), &[]), 5);
        }
        // And through the filtering path itself, not only the shortcut.
        let kept = filtered_distribution(&logits(), 1.5, 1, 1.0);
        assert_eq!(kept, vec![(5, 1.0)]);
    }

    #[test]
    fn same_seed_same_choices_different_seed_differs() {
        let params = |seed| SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed,
        };
        let run = |seed| {
            let mut sampler = Sampler::new(params(seed));
            (0..64)
                .map(|_| sampler.sample(&mut logits(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_p_keeps_smallest_set_reaching_p() {
        // Probabilities at temperature 1: ids 5 (3.0), 1 (2.0), 3 (1.5) carry most of the mass.
        let all = filtered_distribution(&logits(), 1.0, 0, 1.0);
        let probability = |id: u32| all.iter().find(|e| e.0 == id).unwrap().1;
        let p5 = probability(5);
        let p1 = probability(1);
        // p just above the first token's mass needs exactly two tokens.
        let kept = filtered_distribution(&logits(), 1.0, 0, p5 + 0.001);
        assert_eq!(kept.iter().map(|e| e.0).collect::<Vec<_>>(), vec![5, 1]);
        // p exactly reachable by the first token keeps only that one.
        let kept = filtered_distribution(&logits(), 1.0, 0, p5 - 0.001);
        assert_eq!(kept.iter().map(|e| e.0).collect::<Vec<_>>(), vec![5]);
        // Two tokens reach p5 + p1 - epsilon; a third is not needed.
        let kept = filtered_distribution(&logits(), 1.0, 0, p5 + p1 - 0.001);
        assert_eq!(kept.len(), 2);
        let total: f32 = kept.iter().map(|e| e.1).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }

    #[test]
    fn repetition_penalty_discourages_seen_tokens() {
        let mut values = vec![2.0, 1.9, -1.0];
        apply_repetition_penalty(&mut values, &[0, 0, 2], 2.0);
        assert_eq!(values, vec![1.0, 1.9, -2.0]);
        let mut sampler = Sampler::new(SamplingParams {
            repetition_penalty: 2.0,
            ..SamplingParams::greedy()
        });
        assert_eq!(sampler.sample(&mut [2.0, 1.9, -1.0], &[0]), 1);
    }

    #[test]
    fn temperature_sharpens_distribution() {
        let hot = filtered_distribution(&logits(), 2.0, 0, 1.0);
        let cold = filtered_distribution(&logits(), 0.5, 0, 1.0);
        assert!(cold[0].1 > hot[0].1);
    }
}
