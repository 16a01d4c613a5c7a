//! TEMPORARY stand-in until the lang branch lands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cues {
    pub asks_price: bool,
    pub asks_stock: bool,
    pub cheapest: bool,
    pub most_expensive: bool,
    pub max_price: Option<u64>,
    pub min_price: Option<u64>,
    pub compare: bool,
    pub recommend: bool,
    pub in_stock_only: bool,
}
pub fn cues(_text: &str) -> Cues { Cues::default() }
