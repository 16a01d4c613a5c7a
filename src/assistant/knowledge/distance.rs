//! How far a typed word is from a known one: the optimal-string-alignment distance, where
//! an insertion, a deletion, a substitution or a swap of two neighbours each count one.

/// Rows of up to this many cells live on the stack; longer words use the heap.
const STACK_CELLS: usize = 3 * 48;

/// The distance between `a` and `b` when it is at most `budget`, else `None`. Compares
/// characters (bytes when both are ASCII) and stops as soon as every alignment of the
/// prefixes read so far costs more than `budget`, so a far-off candidate costs little.
pub(super) fn edit_distance_within(a: &str, b: &str, budget: usize) -> Option<usize> {
    if a.is_ascii() && b.is_ascii() {
        return within(a.as_bytes(), b.as_bytes(), budget);
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    within(&a, &b, budget)
}

fn within<T: PartialEq>(a: &[T], b: &[T], budget: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > budget {
        return None;
    }
    let cells = 3 * (b.len() + 1);
    if cells <= STACK_CELLS {
        within_rows(a, b, budget, &mut [0; STACK_CELLS][..cells])
    } else {
        within_rows(a, b, budget, &mut vec![0; cells])
    }
}

/// The dynamic programme over three rolling rows in `rows` (3 × (b.len() + 1) cells): the
/// row being filled, the one before it and the one before that (for swaps).
fn within_rows<T: PartialEq>(a: &[T], b: &[T], budget: usize, rows: &mut [usize]) -> Option<usize> {
    let width = b.len() + 1;
    for (j, cell) in rows[..width].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        let current = (i % 3) * width;
        let previous = ((i - 1) % 3) * width;
        let before_previous = ((i + 1) % 3) * width;
        rows[current] = i;
        let mut row_best = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[previous + j] + 1)
                .min(rows[current + j - 1] + 1)
                .min(rows[previous + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[before_previous + j - 2] + 1);
            }
            rows[current + j] = best;
            row_best = row_best.min(best);
        }
        // A later row can only improve on this one through a swap reaching back one more
        // row, and that row's own best would then have been within budget here too.
        if row_best > budget {
            return None;
        }
    }
    let distance = rows[(a.len() % 3) * width + b.len()];
    (distance <= budget).then_some(distance)
}

/// How often each character occurs in a word, folded into 32 buckets by character code.
/// Every edit changes the counts on each side by at most one, so the larger of the two
/// one-sided differences is a lower bound of the edit distance, found without the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LetterCounts([u8; 32]);

impl LetterCounts {
    pub(super) fn of(word: &str) -> Self {
        let mut counts = [0u8; 32];
        for c in word.chars() {
            let bucket = &mut counts[c as usize % 32];
            *bucket = bucket.saturating_add(1);
        }
        Self(counts)
    }

    /// At most [`edit_distance_within`]'s distance between the two words counted.
    pub(super) fn distance_at_least(&self, other: &Self) -> usize {
        let (mut missing, mut extra) = (0usize, 0usize);
        for (mine, theirs) in self.0.iter().zip(&other.0) {
            missing += usize::from(mine.saturating_sub(*theirs));
            extra += usize::from(theirs.saturating_sub(*mine));
        }
        missing.max(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook full-table distance, to check the bounded one against.
    fn full_distance(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in table.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in table[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (table[i - 1][j] + 1)
                    .min(table[i][j - 1] + 1)
                    .min(table[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(table[i - 2][j - 2] + 1);
                }
                table[i][j] = best;
            }
        }
        table[a.len()][b.len()]
    }

    #[test]
    fn letter_counts_bound_the_distance_and_tell_far_words_apart() {
        let teapot = LetterCounts::of("teapot");
        assert_eq!(teapot.distance_at_least(&LetterCounts::of("teapto")), 0);
        assert_eq!(teapot.distance_at_least(&LetterCounts::of("teapots")), 1);
        assert_eq!(teapot.distance_at_least(&LetterCounts::of("kettle")), 3);
    }

    #[test]
    fn swaps_count_as_one_edit() {
        assert_eq!(edit_distance_within("kettel", "kettle", 2), Some(1));
        assert_eq!(edit_distance_within("rooibus", "rooibos", 1), Some(1));
        assert_eq!(edit_distance_within("mug", "mug", 0), Some(0));
        assert_eq!(edit_distance_within("abc", "", 3), Some(3));
        assert_eq!(edit_distance_within("abc", "", 2), None);
        assert_eq!(edit_distance_within("thé", "hté", 1), Some(1));
    }

    #[test]
    fn the_bounded_distance_agrees_with_the_full_table_for_every_budget() {
        let words = [
            "",
            "a",
            "tea",
            "teapot",
            "teapto",
            "kettle",
            "kettel",
            "ketle",
            "rooibos",
            "rooibus",
            "oolong",
            "olong",
            "sencha",
            "matcha",
            "machta",
            "delivery",
            "delivry",
            "dleivery",
            "refund",
            "refudn",
            "réfund",
            "茶壶",
            "茶杯",
            "a-very-long-word-indeed",
            "a-very-long-wrod-indeed",
            "the-longest-word-in-this-list-of-test-words-by-far!!",
            "the-longest-word-in-this-list-of-test-words-by-far!?",
        ];
        for a in words {
            for b in words {
                let full = full_distance(a, b);
                for budget in 0..4 {
                    let expected = (full <= budget).then_some(full);
                    assert_eq!(
                        edit_distance_within(a, b, budget),
                        expected,
                        "{a:?} {b:?} {budget}"
                    );
                }
            }
        }
    }
}
