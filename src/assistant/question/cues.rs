//! What a question asks of the catalogue: prices, stock, the cheapest or dearest product, a
//! price bound, a comparison, a recommendation, or shipping. Recognised in English, German,
//! French, Spanish, Chinese and Japanese; English cue words also when misspelt by one letter
//! ("cheapst", "pirce").

use std::sync::LazyLock;

use regex::Regex;

use super::language::{detect, Lang};
use super::{fold, has_phrase, phrase_positions, words};

/// The cues found in one question. `Default` is a question with none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cues {
    /// The answer should show prices: a price word ("how much", "Preis", "combien", "价格"),
    /// a currency, a price bound, or a cheapest / most expensive cue.
    pub asks_price: bool,
    /// Stock or availability ("in stock", "sold out", "vorrätig", "disponible", "在庫").
    pub asks_stock: bool,
    /// The cheapest product(s) ("cheapest", "budget", "günstigste", "moins cher", "最便宜").
    pub cheapest: bool,
    /// The most expensive product(s) ("priciest", "teuerste", "le plus cher", "最贵").
    pub most_expensive: bool,
    /// An upper price bound in cents ("under €10", "unter 10 €", "10欧元以下" give 1000).
    pub max_price: Option<u64>,
    /// A lower price bound in cents ("over 20 euros", "mehr als 20 €", "20ユーロ以上").
    pub min_price: Option<u64>,
    /// Two or more things compared ("difference between", "vs", "sencha or oolong?",
    /// "Unterschied", "différence", "区别", "違い").
    pub compare: bool,
    /// A recommendation ("what would you recommend", "empfehlen", "conseillez", "推荐").
    pub recommend: bool,
    /// Shipping or delivery ("how much is shipping", "Versand", "livraison", "送料").
    pub asks_shipping: bool,
}

impl Cues {
    /// Whether the question filters or ranks the catalogue by price (a bound or a
    /// superlative), so that a list of products, not one product, answers it.
    pub fn ranks_by_price(&self) -> bool {
        self.cheapest || self.most_expensive || self.max_price.is_some() || self.min_price.is_some()
    }
}

/// The cues in `text`.
pub fn cues(text: &str) -> Cues {
    let folded = fold(text);
    let (max_price, min_price, rest) = price_bounds(&folded);
    let mut tokens = words(&rest);
    if detect(text) == Lang::En {
        correct_english_typos(&mut tokens);
    }
    let has = |phrases: &[&str]| phrases.iter().any(|phrase| has_phrase(&tokens, phrase));
    let has_cjk = |needles: &[&str]| needles.iter().any(|needle| rest.contains(needle));

    let cheapest = has(CHEAPEST) || has_cjk(CHEAPEST_CJK);
    let most_expensive = has(MOST_EXPENSIVE) || has_cjk(MOST_EXPENSIVE_CJK);
    let asks_price = has(PRICE)
        || has_cjk(PRICE_CJK)
        || asks_how_much(&tokens)
        || folded.contains(['€', '$', '£'])
        || cheapest
        || most_expensive
        || max_price.is_some()
        || min_price.is_some();
    Cues {
        asks_price,
        asks_stock: has(STOCK) || has_cjk(STOCK_CJK),
        cheapest,
        most_expensive,
        max_price,
        min_price,
        compare: compares(&tokens, &rest),
        recommend: has(RECOMMEND) || has_cjk(RECOMMEND_CJK),
        asks_shipping: has(SHIPPING) || has_cjk(SHIPPING_CJK),
    }
}

/// Phrases are folded (lower case, no accents) and matched as whole words; the `_CJK`
/// lists are matched as substrings.
const PRICE: &[&str] = &[
    "price",
    "prices",
    "pricing",
    "priced",
    "cost",
    "costs",
    "costing",
    "expensive",
    "pricey",
    "euro",
    "euros",
    "eur",
    "preis",
    "preise",
    "kostet",
    "kosten",
    "teuer",
    "wie teuer",
    "prix",
    "coute",
    "coutent",
    "couter",
    "tarif",
    "tarifs",
    "cher",
    "chere",
    "precio",
    "precios",
    "cuesta",
    "cuestan",
    "cuanto vale",
    "cuanto valen",
    "cuanto es",
    "caro",
    "cara",
];
const PRICE_CJK: &[&str] = &[
    "价格",
    "多少钱",
    "价钱",
    "售价",
    "几块钱",
    "价位",
    "定价",
    "贵吗",
    "贵不贵",
    "欧元",
    "いくら",
    "値段",
    "価格",
    "料金",
    "ユーロ",
    "円",
];

const STOCK: &[&str] = &[
    "stock",
    "in stock",
    "available",
    "availability",
    "unavailable",
    "sold out",
    "restock",
    "restocked",
    "any left",
    "still have",
    "lager",
    "vorratig",
    "verfugbar",
    "lieferbar",
    "ausverkauft",
    "noch da",
    "bestand",
    "disponible",
    "disponibles",
    "disponibilite",
    "epuise",
    "epuisee",
    "rupture",
    "disponibilidad",
    "existencias",
    "agotado",
    "agotada",
    "quedan",
];
const STOCK_CJK: &[&str] = &[
    "有货",
    "有没有货",
    "库存",
    "现货",
    "缺货",
    "售罄",
    "卖完",
    "没货",
    "在庫",
    "品切れ",
    "売り切れ",
    "入荷",
];

const CHEAPEST: &[&str] = &[
    "cheapest",
    "least expensive",
    "lowest price",
    "lowest priced",
    "lowest cost",
    "most affordable",
    "affordable",
    "budget",
    "cheap",
    "cheaper",
    "inexpensive",
    "gunstigste",
    "gunstigsten",
    "gunstigster",
    "gunstigstes",
    "billigste",
    "billigsten",
    "billigster",
    "billigstes",
    "preiswerteste",
    "preiswertesten",
    "gunstig",
    "billig",
    "moins cher",
    "moins chere",
    "meilleur marche",
    "bon marche",
    "pas cher",
    "pas chere",
    "mas barato",
    "mas barata",
    "mas baratos",
    "mas baratas",
    "mas economico",
    "mas economica",
    "barato",
    "barata",
    "economico",
    "economica",
];
const CHEAPEST_CJK: &[&str] = &[
    "最便宜",
    "便宜",
    "最实惠",
    "最低价",
    "实惠",
    "一番安い",
    "最も安い",
    "最安",
    "いちばん安い",
    "安い",
];

const MOST_EXPENSIVE: &[&str] = &[
    "most expensive",
    "priciest",
    "highest price",
    "highest priced",
    "most costly",
    "dearest",
    "teuerste",
    "teuersten",
    "teuerster",
    "teuerstes",
    "am teuersten",
    "plus cher",
    "plus chere",
    "mas caro",
    "mas cara",
    "mas caros",
    "mas caras",
];
const MOST_EXPENSIVE_CJK: &[&str] = &[
    "最贵",
    "最高价",
    "一番高い",
    "最も高い",
    "いちばん高い",
    "最高値",
];

const COMPARE: &[&str] = &[
    "difference",
    "differences",
    "different",
    "differ",
    "vs",
    "versus",
    "compare",
    "compared",
    "comparison",
    "unterschied",
    "unterschiede",
    "vergleich",
    "vergleichen",
    "difference entre",
    "differences",
    "comparer",
    "comparaison",
    "diferencia",
    "diferencias",
    "comparar",
    "comparacion",
];
const COMPARE_CJK: &[&str] = &[
    "区别",
    "不同",
    "比较",
    "对比",
    "哪个好",
    "違い",
    "比較",
    "比べ",
    "どっち",
];

/// "X or Y" compares when a choice word is near, or the message is little more than that.
const OR_WORDS: &[&str] = &["or", "oder", "ou", "o"];
const OR_CJK: &[&str] = &["还是", "或者", "それとも"];
const CHOICE: &[&str] = &[
    "which",
    "better",
    "prefer",
    "choose",
    "pick",
    "stronger",
    "milder",
    "best",
    "welche",
    "welcher",
    "welches",
    "besser",
    "lequel",
    "laquelle",
    "mieux",
    "meilleur",
    "meilleure",
    "cual",
    "mejor",
];
const CHOICE_CJK: &[&str] = &["哪个", "哪一个", "哪种", "どちら", "どれ"];
/// At most this many words besides the "or" make a bare "X or Y?" question.
const BARE_CHOICE_WORDS: usize = 5;

const RECOMMEND: &[&str] = &[
    "recommend",
    "recommended",
    "recommendation",
    "recommendations",
    "suggest",
    "suggestion",
    "suggestions",
    "should i buy",
    "should i get",
    "should i try",
    "should i choose",
    "should i order",
    "best for",
    "good for",
    "looking for",
    "empfehlen",
    "empfiehlst",
    "empfehlt",
    "empfehlung",
    "was soll ich",
    "vorschlag",
    "recommander",
    "recommandez",
    "recommandes",
    "recommandation",
    "conseiller",
    "conseillez",
    "conseil",
    "suggerer",
    "suggerez",
    "recomendar",
    "recomiendas",
    "recomienda",
    "recomiendan",
    "recomendacion",
    "sugerir",
    "sugieres",
    "sugerencia",
    "aconsejar",
    "aconsejas",
];
const RECOMMEND_CJK: &[&str] = &[
    "推荐",
    "建议",
    "おすすめ",
    "オススメ",
    "お勧め",
    "お薦め",
    "推薦",
];

const SHIPPING: &[&str] = &[
    "shipping",
    "ship",
    "ships",
    "shipped",
    "delivery",
    "deliver",
    "delivered",
    "postage",
    "courier",
    "versand",
    "versenden",
    "versandkosten",
    "lieferung",
    "liefern",
    "lieferzeit",
    "zustellung",
    "porto",
    "livraison",
    "livrer",
    "expedition",
    "expedier",
    "envoi",
    "frais de port",
    "envio",
    "envios",
    "enviar",
    "entrega",
    "entregar",
];
const SHIPPING_CJK: &[&str] = &[
    "运费", "配送", "发货", "快递", "送货", "邮费", "送料", "発送", "届", "配達",
];

/// "how much" asks a price when a verb or a determiner follows, not a quantity word
/// ("how much caffeine"); likewise "wie viel", "combien" (not "combien de") and "cuánto".
fn asks_how_much(tokens: &[String]) -> bool {
    const FOLLOWERS: &[&str] = &[
        "is", "are", "does", "do", "for", "would", "will", "was", "it", "the", "this", "that",
        "these", "those", "s", "re", "to", "kostet", "kosten", "ist", "sind", "fur", "coute",
        "coutent", "pour", "cuesta", "cuestan", "vale", "valen", "es", "sale", "cobran",
    ];
    let followed_well = |phrase: &str, length: usize| {
        phrase_positions(tokens, phrase).any(|start| {
            tokens
                .get(start + length)
                .is_none_or(|next| FOLLOWERS.contains(&next.as_str()))
        })
    };
    followed_well("how much", 2)
        || followed_well("wie viel", 2)
        || followed_well("wieviel", 1)
        || followed_well("cuanto", 1)
        || phrase_positions(tokens, "combien").any(|start| {
            tokens
                .get(start + 1)
                .is_none_or(|next| next != "de" && next != "d")
        })
}

fn compares(tokens: &[String], text: &str) -> bool {
    let has = |phrases: &[&str]| phrases.iter().any(|phrase| has_phrase(tokens, phrase));
    let has_cjk = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
    if has(COMPARE) || has_cjk(COMPARE_CJK) {
        return true;
    }
    let or_count = tokens
        .iter()
        .filter(|token| OR_WORDS.contains(&token.as_str()))
        .count();
    let has_or = or_count > 0
        && tokens
            .first()
            .is_some_and(|first| !OR_WORDS.contains(&first.as_str()));
    if has_or {
        return has(CHOICE) || tokens.len() - or_count <= BARE_CHOICE_WORDS;
    }
    has_cjk(OR_CJK) && (has_cjk(CHOICE_CJK) || text.chars().count() <= 12)
}

/// English cue words a customer may misspell; each also stands for its misspellings at
/// one edit (a letter added, dropped, changed or two swapped).
const TYPO_TARGETS: &[&str] = &[
    "price",
    "prices",
    "pricing",
    "cheapest",
    "cheaper",
    "expensive",
    "priciest",
    "affordable",
    "available",
    "availability",
    "stock",
    "restock",
    "shipping",
    "delivery",
    "deliver",
    "recommend",
    "recommendation",
    "suggest",
    "difference",
    "compare",
    "comparison",
    "versus",
];

/// Real words one edit away from a target, which must keep their own meaning.
const NOT_TYPOS: &[&str] = &[
    "prime",
    "pride",
    "prince",
    "prize",
    "stuck",
    "stick",
    "stack",
    "stork",
    "shock",
    "smock",
    "stocky",
    "shopping",
    "slipping",
    "skipping",
    "whipping",
    "chipping",
    "cheater",
    "deliverer",
    "compere",
    "stocks",
];

/// Shorter words are too often another real word one edit away.
const MIN_TYPO_LENGTH: usize = 5;

fn correct_english_typos(tokens: &mut [String]) {
    for token in tokens.iter_mut() {
        if token.chars().count() < MIN_TYPO_LENGTH
            || TYPO_TARGETS.contains(&token.as_str())
            || NOT_TYPOS.contains(&token.as_str())
        {
            continue;
        }
        if let Some(target) = TYPO_TARGETS
            .iter()
            .find(|target| within_one_edit(token, target))
        {
            *token = (*target).to_string();
        }
    }
}

/// Whether `a` becomes `b` by at most one insertion, deletion, substitution or swap of
/// two neighbouring letters (optimal string alignment distance ≤ 1).
fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (rest_a, rest_b) = (&a[prefix..], &b[prefix..]);
    if rest_a.is_empty() && rest_b.is_empty() {
        return true;
    }
    rest_a.get(1..) == rest_b.get(1..)
        || rest_a == rest_b.get(1..).unwrap_or_default()
        || rest_a.get(1..).unwrap_or_default() == rest_b
        || (rest_a.len() >= 2
            && rest_a.len() == rest_b.len()
            && rest_a[0] == rest_b[1]
            && rest_a[1] == rest_b[0]
            && rest_a[2..] == rest_b[2..])
}

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
fn price_bounds(folded: &str) -> (Option<u64>, Option<u64>, String) {
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

    fn all(texts: &[&str], predicate: impl Fn(&Cues) -> bool, what: &str) {
        for text in texts {
            assert!(
                predicate(&cues(text)),
                "{what}: {text:?} gave {:?}",
                cues(text)
            );
        }
    }

    fn none(texts: &[&str], predicate: impl Fn(&Cues) -> bool, what: &str) {
        for text in texts {
            assert!(
                !predicate(&cues(text)),
                "not {what}: {text:?} gave {:?}",
                cues(text)
            );
        }
    }

    #[test]
    fn price_questions_in_six_languages() {
        all(
            &[
                "How much is the Tetsubin teapot?",
                "how much does the kettle cost",
                "price of morning sencha?",
                "kettel pirce?",
                "is the teapot €30?",
                "Was kostet die Teekanne?",
                "Wie viel kostet der Sencha?",
                "Quel est le prix du mug ?",
                "Combien coûte le mug ?",
                "¿Cuánto cuesta la tetera?",
                "precio del té verde",
                "这个茶壶多少钱？",
                "茶壶的价格是多少",
                "このティーポットはいくらですか",
                "煎茶の値段は？",
            ],
            |c| c.asks_price,
            "price",
        );
        none(
            &[
                "how much caffeine is in the sencha?",
                "where is my order?",
                "combien de temps pour la livraison ?",
                "¿cuánto tarda el envío?",
                "wie viel Koffein hat der Tee?",
                "can I return a mug that arrived chipped?",
                "Morning Sencha",
                "the mug arrived with a prime sticker",
            ],
            |c| c.asks_price,
            "price",
        );
    }

    #[test]
    fn stock_questions() {
        all(
            &[
                "is the tetsubin in stock?",
                "is the rooibos available?",
                "is the kettle sold out",
                "any left of the matcha bowl?",
                "is the mug avaiable",
                "Ist der Sencha vorrätig?",
                "Ist die Teekanne auf Lager?",
                "Le mug est-il disponible ?",
                "¿La tetera está en stock?",
                "茶壶有货吗？",
                "在庫はありますか",
            ],
            |c| c.asks_stock,
            "stock",
        );
        none(
            &[
                "my parcel is stuck in customs",
                "how much is the teapot",
                "what is oolong",
            ],
            |c| c.asks_stock,
            "stock",
        );
    }

    #[test]
    fn cheapest_and_most_expensive() {
        all(
            &[
                "what's your cheapest tea?",
                "cheapst teapot",
                "least expensive mug",
                "something on a budget?",
                "Welcher Tee ist am günstigsten?",
                "die billigste Tasse",
                "Quel est le thé le moins cher ?",
                "¿Cuál es el té más barato?",
                "最便宜的茶是哪个？",
                "一番安いお茶は？",
            ],
            |c| c.cheapest && c.asks_price && !c.most_expensive,
            "cheapest",
        );
        all(
            &[
                "what is the most expensive teapot",
                "most expnsive kettle?",
                "your priciest tea",
                "Was ist die teuerste Teekanne?",
                "Quel est le thé le plus cher ?",
                "¿Cuál es la tetera más cara?",
                "最贵的茶壶",
                "一番高いティーポット",
            ],
            |c| c.most_expensive && c.asks_price && !c.cheapest,
            "most expensive",
        );
        none(
            &["how much is the teapot", "Wie teuer ist die Tasse?"],
            |c| c.cheapest || c.most_expensive,
            "superlative",
        );
    }

    #[test]
    fn upper_price_bounds_in_cents() {
        for (text, expected) in [
            ("teas under 10", 1000),
            ("any teapot below €10?", 1000),
            ("mugs for less than 10 euros", 1000),
            ("something under €7.50", 750),
            ("Tee unter 10 €", 1000),
            ("Tassen bis 12,50 €", 1250),
            ("un thé à moins de 10 € ?", 1000),
            ("quelque chose de moins cher que 15 €", 1500),
            ("té por menos de 10", 1000),
            ("10欧元以下的茶", 1000),
            ("不超过20欧元的茶壶", 2000),
            ("10ユーロ以下のお茶", 1000),
        ] {
            let found = cues(text);
            assert_eq!(found.max_price, Some(expected), "{text:?}: {found:?}");
            assert!(found.asks_price && found.ranks_by_price(), "{text:?}");
            assert!(!found.cheapest, "a bound is not a superlative: {text:?}");
        }
    }

    #[test]
    fn lower_price_bounds_in_cents() {
        for (text, expected) in [
            ("teapots over €40", 4000),
            ("tea above 20 euros", 2000),
            ("Teekannen über 30 €", 3000),
            ("théières à plus de 30 €", 3000),
            ("teteras de más de 30 euros", 3000),
            ("20ユーロ以上のティーポット", 2000),
        ] {
            let found = cues(text);
            assert_eq!(found.min_price, Some(expected), "{text:?}: {found:?}");
            assert_eq!(found.max_price, None, "{text:?}");
        }
    }

    #[test]
    fn numbers_that_are_not_prices_are_not_bounds() {
        for text in [
            "my order is more than 2 weeks late",
            "can I return it within 14 days?",
            "delivery takes up to 5 days",
            "bis 3 Tage Lieferzeit?",
            "I ordered over 3 items",
            "order #1234 under my name",
            "is it under 5 kg?",
        ] {
            let found = cues(text);
            assert_eq!(
                (found.max_price, found.min_price),
                (None, None),
                "{text:?}: {found:?}"
            );
        }
    }

    #[test]
    fn comparisons() {
        all(
            &[
                "what's the difference between sencha and oolong?",
                "sencha vs oolong",
                "compare the two kettles",
                "sencha or oolong?",
                "which is better for mornings, sencha or genmaicha",
                "whats the diffrence between the mugs",
                "Was ist der Unterschied zwischen Sencha und Oolong?",
                "Quelle est la différence entre le sencha et l'oolong ?",
                "¿Cuál es la diferencia entre sencha y oolong?",
                "煎茶和乌龙茶有什么区别？",
                "煎茶とウーロン茶の違いは？",
            ],
            |c| c.compare,
            "compare",
        );
        none(
            &[
                "can I return or exchange a mug that arrived chipped with a big crack in it?",
                "where is my order",
                "is the sencha in stock",
            ],
            |c| c.compare,
            "compare",
        );
    }

    #[test]
    fn recommendations_and_shipping() {
        all(
            &[
                "which tea would you recommend for someone who doesn't like caffeine?",
                "any suggestions for a gift?",
                "what tea is good for the evening",
                "Kannst du mir einen Tee empfehlen?",
                "Quel thé me conseillez-vous ?",
                "¿Qué té me recomiendas?",
                "推荐一款绿茶",
                "おすすめのお茶は？",
            ],
            |c| c.recommend,
            "recommend",
        );
        all(
            &[
                "how much is shipping to Germany?",
                "do you ship to canada",
                "when will my delivery arrive",
                "Wie lange dauert der Versand?",
                "Quels sont les frais de livraison ?",
                "¿Cuánto cuesta el envío?",
                "运费多少？",
                "送料はいくらですか",
            ],
            |c| c.asks_shipping,
            "shipping",
        );
        none(
            &["I love shopping here", "what is the cheapest tea"],
            |c| c.asks_shipping || c.recommend,
            "shipping or recommend",
        );
    }

    #[test]
    fn plain_questions_have_no_cues() {
        for text in [
            "hi",
            "where is my order",
            "what is the capital of France?",
            "",
        ] {
            let found = cues(text);
            assert_eq!(found, Cues::default(), "{text:?}");
        }
    }

    #[test]
    fn one_edit_distance() {
        assert!(within_one_edit("pirce", "price"));
        assert!(within_one_edit("cheapst", "cheapest"));
        assert!(within_one_edit("expnsive", "expensive"));
        assert!(within_one_edit("prise", "price"));
        assert!(within_one_edit("price", "price"));
        assert!(!within_one_edit("spice", "price"));
        assert!(within_one_edit("prcie", "price"));
        assert!(!within_one_edit("pricing", "price"));
    }

    #[test]
    fn amounts_to_cents() {
        assert_eq!(cents("10"), Some(1000));
        assert_eq!(cents("7,5"), Some(750));
        assert_eq!(cents("12.99"), Some(1299));
    }
}
