//! What a question asks of the catalogue: prices, stock, the cheapest or dearest product, a
//! price bound, a comparison, a recommendation, or shipping. Recognised in English, German,
//! French, Spanish, Chinese and Japanese; English cue words also when misspelt by one letter
//! ("cheapst", "pirce").

use super::language::{detect, Lang};
use super::price_bounds::price_bounds;
use super::typos::correct_english_typos;
use std::sync::LazyLock;

use super::cue_phrases::*;
use super::{fold, phrase_positions, words, Phrases};

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
    /// An item that stopped working or never worked ("my kettle stopped working", "it won't
    /// turn on", "funktioniert nicht", "ne marche plus", "no funciona"): a problem for the
    /// shop's rules on faulty items, not a question about the product.
    pub reports_fault: bool,
    /// Whether the shop sells something ("do you sell", "do you stock", "verkauft ihr",
    /// "vendez-vous", "venden"): answered by the catalogue, or not at all.
    pub asks_if_sold: bool,
    /// An item that arrived damaged ("broken", "zerbrochen", "cassée", "llegó rota"), or that
    /// did not work when it arrived ("kam kaputt an"): a problem for the shop's rules on
    /// damaged items, not a question about the product.
    pub reports_damage: bool,
    /// Sending something back ("return", "zurückschicken", "renvoyer", "devolver"): the
    /// returns rules, not a question about the product.
    pub asks_return: bool,
    /// Brewing advice or tea and health ("how long should I steep", "water temperature",
    /// "any tips for a beginner", "healthier than coffee"): advice that no product's
    /// description gives.
    pub asks_preparation: bool,
    /// Trade terms: wholesale or bulk prices, reselling ("Großhandel", "en gros", "al por
    /// mayor"). The catalogue's retail prices do not answer them.
    pub asks_trade_terms: bool,
}

impl Cues {
    /// Whether the question reports a problem with an item or wants to send it back
    /// ([`Cues::reports_fault`], [`Cues::reports_damage`], [`Cues::asks_return`]): the
    /// shop's rules answer it, not the item's catalogue facts.
    pub fn reports_a_problem(&self) -> bool {
        self.reports_fault || self.reports_damage || self.asks_return
    }

    /// Whether the question filters or ranks the catalogue by price (a bound or a
    /// superlative), so that a list of products, not one product, answers it.
    pub fn ranks_by_price(&self) -> bool {
        self.cheapest || self.most_expensive || self.max_price.is_some() || self.min_price.is_some()
    }
}

/// The cues in `text`.
pub fn cues(text: &str) -> Cues {
    cues_in(text, detect(text))
}

/// The cues in `text`, whose language is already known to be `lang` (as [`detect`] says, or
/// English for text corrected as English): English cue words are read through their typos
/// only in English text.
pub fn cues_in(text: &str, lang: Lang) -> Cues {
    let folded = fold(text);
    let (max_price, min_price, rest) = price_bounds(&folded);
    let mut tokens = words(&rest);
    if lang == Lang::En {
        correct_english_typos(&mut tokens);
    }
    let has = |phrases: &LazyLock<Phrases>| phrases.any_in(&tokens);
    let has_cjk = |needles: &[&str]| needles.iter().any(|needle| rest.contains(needle));

    let cheapest = has(&CHEAPEST_PHRASES) || has_cjk(CHEAPEST_CJK);
    let most_expensive = has(&MOST_EXPENSIVE_PHRASES) || has_cjk(MOST_EXPENSIVE_CJK);
    let asks_price = has(&PRICE_PHRASES)
        || has_cjk(PRICE_CJK)
        || asks_how_much(&tokens)
        || folded.contains(['€', '$', '£'])
        || cheapest
        || most_expensive
        || max_price.is_some()
        || min_price.is_some();
    Cues {
        asks_price,
        asks_stock: has(&STOCK_PHRASES) || has_cjk(STOCK_CJK),
        cheapest,
        most_expensive,
        max_price,
        min_price,
        compare: compares(&tokens, &rest),
        recommend: has(&RECOMMEND_PHRASES) || has_cjk(RECOMMEND_CJK),
        asks_shipping: has(&SHIPPING_PHRASES) || has_cjk(SHIPPING_CJK),
        reports_fault: has(&FAULT_PHRASES) || has_cjk(FAULT_CJK) || stopped_doing(&tokens),
        asks_if_sold: has(&SOLD_PHRASES),
        asks_trade_terms: has(&TRADE_PHRASES),
        reports_damage: has(&DAMAGE_PHRASES) || (has(&FAULT_PHRASES) && has(&ARRIVAL_PHRASES)),
        asks_return: has(&RETURN_PHRASES),
        asks_preparation: has(&PREPARATION_PHRASES),
    }
}

/// The phrase lists below, indexed for matching.
static CHEAPEST_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(CHEAPEST));
static MOST_EXPENSIVE_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(MOST_EXPENSIVE));
static PRICE_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(PRICE));
static STOCK_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(STOCK));
static RECOMMEND_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(RECOMMEND));
static SHIPPING_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(SHIPPING));
static FAULT_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(FAULT));
static COMPARE_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(COMPARE));
static SOLD_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(SOLD));
static TRADE_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(TRADE));
static DAMAGE_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(DAMAGE));
static RETURN_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(RETURN));
static ARRIVAL_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(ARRIVAL));
static PREPARATION_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(PREPARATION));
static CHOICE_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(CHOICE));

/// Whether an item is said to have stopped doing something: in English a third-person
/// negation, then a verb and "anymore" or "any more" among the five words from the verb on
/// ("the lid doesn't close anymore", "it won't boil any more"); in German, French and Spanish
/// their "no longer" around the verb ("heizt nicht mehr", "ne chauffe plus", "n'allume plus",
/// "ya no calienta"). A wish or the shop's range is not a fault ([`NOT_FAULT_VERBS`]: "my son
/// doesn't like it anymore", "the chai is not available anymore", "ne me plaît plus").
fn stopped_doing(tokens: &[String]) -> bool {
    const NEGATIONS: &[&[&str]] = &[
        &["doesnt"],
        &["does", "not"],
        &["wont"],
        &["will", "not"],
        &["isnt"],
        &["is", "not"],
    ];
    let is = |i: usize, word: &str| tokens.get(i).is_some_and(|t| t == word);
    let a_fault = |verbs: &[String]| {
        !verbs.is_empty()
            && verbs
                .iter()
                .all(|verb| !NOT_FAULT_VERBS.contains(&verb.as_str()))
    };
    let anymore_at = |i: usize| is(i, "anymore") || (is(i, "any") && is(i + 1, "more"));
    (0..tokens.len()).any(|start| {
        let english = NEGATIONS.iter().any(|negation| {
            let after = start + negation.len();
            after < tokens.len()
                && tokens[start..after]
                    .iter()
                    .zip(negation.iter())
                    .all(|(t, w)| t == w)
                && a_fault(&tokens[after..=after])
                && (after..tokens.len().min(after + 5)).any(anymore_at)
        });
        let german = is(start, "nicht")
            && is(start + 1, "mehr")
            && a_fault(&tokens[start.saturating_sub(5)..start]);
        let french = (is(start, "ne") || is(start, "n"))
            && (start + 2..tokens.len().min(start + 5))
                .find(|&end| is(end, "plus"))
                .is_some_and(|end| a_fault(&tokens[start + 1..end]));
        let spanish = is(start, "ya")
            && is(start + 1, "no")
            && tokens.get(start + 2..start + 3).is_some_and(a_fault);
        english || german || french || spanish
    })
}

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

/// At most this many words besides the "or" make a bare "X or Y?" question.
const BARE_CHOICE_WORDS: usize = 5;

fn compares(tokens: &[String], text: &str) -> bool {
    let has = |phrases: &LazyLock<Phrases>| phrases.any_in(tokens);
    let has_cjk = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
    if has(&COMPARE_PHRASES) || has_cjk(COMPARE_CJK) {
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
        return has(&CHOICE_PHRASES) || tokens.len() - or_count <= BARE_CHOICE_WORDS;
    }
    has_cjk(OR_CJK) && (has_cjk(CHOICE_CJK) || text.chars().count() <= 12)
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
    fn an_item_that_stopped_working_in_five_languages() {
        all(
            &[
                "my kettle stopped working after two weeks",
                "the kettle won't turn on",
                "it doesn't heat any more",
                "the infuser is faulty",
                "my infuser doesn't close anymore, what can you do?",
                "the lid of the teapot won't stay shut any more",
                "the kettle is not boiling anymore",
                "La bouilloire col de cygne ne chauffe plus après 3 mois",
                "la bouilloire ne s'allume plus",
                "der Wasserkocher heizt nicht mehr",
                "el hervidor ya no calienta",
                "Mein Wasserkocher funktioniert nicht mehr",
                "die Teekanne ist kaputt",
                "la bouilloire ne marche plus",
                "el hervidor ya no funciona",
                "水壶坏了",
            ],
            |c| c.reports_fault,
            "fault",
        );
        none(
            &[
                "We run a small café. Do you do wholesale prices if we buy tea in bulk?",
                "does the kettle work on induction?",
                "how does the infuser work",
                "my order has not arrived",
                "Funktioniert der Wasserkocher mit 110 V?",
                "my son doesn't like the mug anymore, can I return it?",
                "I don't want it anymore",
                "the chai is not available anymore?",
                "je ne le veux plus",
                "la tasse ne me plaît plus",
                "Gibt es den Sencha nicht mehr?",
                "ich will ihn nicht mehr",
                "¿ya no venden el sencha?",
            ],
            |c| c.reports_fault,
            "fault",
        );
    }

    #[test]
    fn asking_whether_the_shop_sells_something() {
        all(
            &[
                "do you sell tractors?",
                "Do you stock matcha?",
                "Verkauft ihr auch Kaffee?",
                "Vendez-vous du café ?",
                "¿Venden café?",
            ],
            |c| c.asks_if_sold,
            "sold",
        );
        none(
            &["do you ship to Norway?", "can I get a refund?"],
            |c| c.asks_if_sold,
            "sold",
        );
    }

    #[test]
    fn damage_and_returns_in_four_languages() {
        all(
            &[
                "my teapot arrived broken",
                "die Tasse kam zerbrochen an",
                "la théière est arrivée cassée",
                "me llegó la tetera rota",
                "la taza llegó dañada",
                "Mein Teesieb kam verbogen und kaputt an",
                "the kettle arrived and it won't turn on",
            ],
            |c| c.reports_damage,
            "damage",
        );
        all(
            &[
                "can I return it?",
                "Kann ich die Tasse zurückschicken?",
                "j'ai combien de temps pour la renvoyer ?",
                "¿puedo devolverla?",
            ],
            |c| c.asks_return,
            "return",
        );
        none(
            &["Mein Wasserkocher ist nach einem Jahr kaputt"],
            |c| c.reports_damage,
            "a fault later on is not damage on arrival",
        );
        none(
            &["how much is the teapot?", "Was kostet die Teekanne?"],
            |c| c.reports_damage || c.asks_return,
            "damage or return",
        );
    }

    #[test]
    fn brewing_advice() {
        all(
            &[
                "how long should I steep black tea?",
                "what's the ideal water temperature for green tea?",
                "any tips for a first-time loose leaf drinker?",
                "is green tea healthier than coffee?",
            ],
            |c| c.asks_preparation,
            "preparation",
        );
        none(
            &[
                "do you have a caffeine-free tea?",
                "which teapot holds the most?",
            ],
            |c| c.asks_preparation,
            "preparation",
        );
    }

    #[test]
    fn trade_terms_in_four_languages() {
        all(
            &[
                "do you do wholesale prices for a café?",
                "can I buy the sencha in bulk?",
                "Gibt es Großhandelspreise?",
                "vendez-vous en gros ?",
                "¿Venden al por mayor?",
            ],
            |c| c.asks_trade_terms,
            "trade",
        );
        none(
            &[
                "how much is the sencha?",
                "is there a discount for students?",
            ],
            |c| c.asks_trade_terms,
            "trade",
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
}
