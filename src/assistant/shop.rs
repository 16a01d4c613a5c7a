//! The shop itself, as shop.toml describes it: plain data every other part may use.

use serde::Serialize;

/// The shop description from shop.toml.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shop {
    /// The shop's name, as customers know it.
    pub name: String,
    /// The shop's website, if it has one; links to it are always allowed.
    pub website: Option<String>,
    /// ISO code of the currency of every catalogue price ("EUR").
    pub currency: String,
    /// What customers see ("€").
    pub currency_symbol: String,
    /// Who a customer is handed to when the bot is not sure.
    pub human_contact: String,
}
