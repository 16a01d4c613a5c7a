//! Price bounds stated in a question ("under €10", "mehr als 20 €", "10欧元以下"), read
//! in cents, and the text with the phrases that stated them blanked out.

use std::sync::LazyLock;

use regex::Regex;

const AMOUNT: &str = r"(\d+(?:[.,]\d{1,2})?)";
const CURRENCY_BEFORE: &str = r"(?:€|\$|£|eur\b|euros?\b|usd\b)";
const CURRENCY_AFTER: &str =
    r"(?:€|\$|£|eur\b|euros?\b|bucks\b|dollars?\b|pounds?\b|quid\b|欧元|欧|块|元|ユーロ|円)";

/// Phrases before an amount that bound a price from above; the `_WEAK` ones only with a
/// currency next to the amount ("bis 10 €", not "bis 3 Tage").
const MAX_BEFORE: &str = r"under|below|beneath|less than|cheaper than|no more than|not more than|not over|at most|for less than|unter|unterhalb von|unterhalb|weniger als|gunstiger als|billiger als|hochstens|moins de|moins cher que|moins chere que|en dessous de|en-dessous de|au-dessous de|inferieur a|inferieure a|menos de|por menos de|por debajo de|debajo de|como maximo|mas barato que|mas barata que|inferior a|低于|少于|不超过|不到|不高于";
const MAX_BEFORE_WEAK: &str =
    r"up to|max|maximum|within|bis zu|bis|maximal|jusqu'a|jusqu a|hasta|maximo";
const MAX_AFTER: &str =
    r"以下|以内|之内|未満|まで|or less|or under|and under|et moins|o menos|oder weniger";
const MIN_BEFORE: &str = r"over|above|more than|at least|more expensive than|uber|mehr als|mindestens|teurer als|plus de|plus cher que|plus chere que|au moins|au-dessus de|superieur a|superieure a|mas de|por encima de|al menos|como minimo|mas caro que|mas cara que|superior a|高于|超过|多于|不低于";
const MIN_BEFORE_WEAK: &str = r"from|starting at|ab|a partir de|desde";
const MIN_AFTER: &str = r"以上|or more|and up|and above|and over|et plus|o mas|oder mehr";

/// Units after a bare number that make it something other than a price.
const NOT_MONEY_UNITS: &str = r"^\s*(?:days?|weeks?|months?|years?|hours?|hrs?|minutes?|mins?|items?|pieces?|pcs|units?|g|kg|grams?|ml|l|litres?|liters?|cm|mm|cups?|bags?|people|persons?|%|percent|x|tage?n?|wochen|stunden|stuck|jours?|semaines?|heures?|dias?|semanas?|horas?|天|日|周|週間|時間|个|件|杯)\b";

struct BoundPatterns {
    before: Regex,
    before_weak: Regex,
    after: Regex,
    not_money: Regex,
}

static MAX_PATTERNS: LazyLock<BoundPatterns> =
    LazyLock::new(|| bound_patterns(MAX_BEFORE, MAX_BEFORE_WEAK, MAX_AFTER));
static MIN_PATTERNS: LazyLock<BoundPatterns> =
    LazyLock::new(|| bound_patterns(MIN_BEFORE, MIN_BEFORE_WEAK, MIN_AFTER));

fn bound_patterns(before: &str, before_weak: &str, after: &str) -> BoundPatterns {
    let compile = |pattern: String| Regex::new(&pattern).expect("price bound patterns are valid");
    BoundPatterns {
        before: compile(format!(
            r"(?:^|[^\w])(?:{before})\s*(?:{CURRENCY_BEFORE}\s*)?{AMOUNT}(\s*{CURRENCY_AFTER})?"
        )),
        before_weak: compile(format!(
            r"(?:^|[^\w])(?:{before_weak})\s*(?:(?:{CURRENCY_BEFORE})\s*{AMOUNT}|{AMOUNT}\s*{CURRENCY_AFTER})"
        )),
        after: compile(format!(
            r"(?:{CURRENCY_BEFORE}\s*)?{AMOUNT}\s*(?:{CURRENCY_AFTER}\s*)?(?:的)?(?:{after})"
        )),
        not_money: compile(NOT_MONEY_UNITS.to_string()),
    }
}

/// The upper and lower price bounds in `folded` text, in cents, and the text with the
/// phrases that stated them blanked out (so "moins cher que 10 €" is not also "cheapest").
pub(super) fn price_bounds(folded: &str) -> (Option<u64>, Option<u64>, String) {
    let mut rest = folded.to_string();
    let max = find_bound(&MAX_PATTERNS, folded, &mut rest);
    let min = find_bound(&MIN_PATTERNS, folded, &mut rest);
    (max, min, rest)
}

fn find_bound(patterns: &BoundPatterns, folded: &str, rest: &mut String) -> Option<u64> {
    let blank = |rest: &mut String, range: std::ops::Range<usize>| {
        rest.replace_range(range.clone(), &" ".repeat(range.len()));
    };
    for captures in patterns.before.captures_iter(folded) {
        let whole = captures.get(0)?;
        let amount = captures.get(1)?;
        let has_currency = captures.get(2).is_some();
        if !has_currency && patterns.not_money.is_match(&folded[amount.end()..]) {
            continue;
        }
        blank(rest, whole.range());
        return cents(amount.as_str());
    }
    if let Some(captures) = patterns.before_weak.captures(folded) {
        let amount = captures.get(1).or_else(|| captures.get(2))?;
        blank(rest, captures.get(0)?.range());
        return cents(amount.as_str());
    }
    if let Some(captures) = patterns.after.captures(folded) {
        blank(rest, captures.get(0)?.range());
        return cents(captures.get(1)?.as_str());
    }
    None
}

/// "7,50" or "7.50" is 750 cents; "10" is 1000.
fn cents(amount: &str) -> Option<u64> {
    let normalised = amount.replace(',', ".");
    let (units, fraction) = normalised.split_once('.').unwrap_or((&normalised, ""));
    let units: u64 = units.parse().ok()?;
    let fraction: u64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<u64>().ok()? * 10,
        _ => fraction.get(..2)?.parse().ok()?,
    };
    units.checked_mul(100)?.checked_add(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_to_cents() {
        assert_eq!(cents("10"), Some(1000));
        assert_eq!(cents("7,5"), Some(750));
        assert_eq!(cents("12.99"), Some(1299));
    }
}
