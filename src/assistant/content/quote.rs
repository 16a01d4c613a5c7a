//! Replies written from the knowledge and the shop's templates alone, with no model: a
//! composed answer (a FAQ answer, quoted sentences, catalogue facts), small talk, the
//! off-topic reply and the hand-off to a person, in the customer's language where the shop
//! has templates for it.

use minijinja::context;

use super::problems::PromptError;
use super::PromptSet;
use crate::assistant::knowledge::{CatalogueAnswer, Composed, GroundedAnswers, Route, RouteKind};
use crate::assistant::question::{Lang, SmallTalk};

impl PromptSet {
    /// The reply written from the knowledge alone, for a route that carries a composed
    /// answer ([`Route::answer`]): a FAQ answer, quoted sentences, or catalogue facts rendered
    /// with product.j2 and catalogue.j2 (the locale's product.j2 for other languages). `None`
    /// when there is no composed answer, or when the model should write it: an English
    /// grounded route when shop.toml says `grounded_answers = "generate"`. Pass it through
    /// [`PromptSet::guard_reply`] to add the citations.
    pub fn quoted_answer(&self, route: &Route) -> Result<Option<String>, PromptError> {
        let Some(answer) = &route.answer else {
            return Ok(None);
        };
        let generate = self.knowledge.routing.grounded_answers == GroundedAnswers::Generate;
        if route.kind == RouteKind::Grounded && generate && route.lang == Lang::En {
            return Ok(None);
        }
        let text = match answer {
            Composed::Catalogue(answer) => self.render_catalogue(answer, route.lang)?,
            quoted => self.in_english(
                &self.knowledge.quoted_text(quoted).unwrap_or_default(),
                route.lang,
            )?,
        };
        Ok(Some(text))
    }

    /// The shop's English `answer` for a customer writing in `lang`: under the lead-in of
    /// templates/locale/<code>/in_english.j2 when the shop has one for the language ("Hier
    /// ist unsere Antwort (auf Englisch):"), else as it is.
    pub(super) fn in_english(&self, answer: &str, lang: Lang) -> Result<String, PromptError> {
        let template = format!("locale/{}/in_english.j2", lang.code());
        if lang == Lang::En || !self.template_sources.contains_key(&template) {
            return Ok(answer.to_string());
        }
        let context = context! { shop => &self.shop, answer };
        Ok(self.render(&template, context)?.trim().to_string())
    }

    /// The reply to a greeting, thanks or goodbye, from small_talk.j2 in the customer's
    /// language when the shop has it.
    pub fn small_talk_reply(&self, kind: SmallTalk, lang: Lang) -> Result<String, PromptError> {
        let context = context! { shop => &self.shop, kind => kind.kind() };
        let template = self.localised("small_talk.j2", lang);
        Ok(self.render(&template, context)?.trim().to_string())
    }

    /// The reply when a general question got no usable model answer: small_talk.j2 with
    /// `kind` "off_topic" (what the bot can help with instead).
    pub fn off_topic_reply(&self) -> Result<String, PromptError> {
        let context = context! { shop => &self.shop, kind => "off_topic" };
        Ok(self.render("small_talk.j2", context)?.trim().to_string())
    }

    /// The reply when a person is needed: the matched answer, if any, then the hand-off
    /// (escalate.j2).
    pub fn escalate_reply(&self, answer: Option<&str>) -> Result<String, PromptError> {
        let context = context! { shop => &self.shop, answer => answer.unwrap_or_default() };
        Ok(self.render("escalate.j2", context)?.trim().to_string())
    }

    /// The template `name` in the language (templates/locale/<code>/), or the English one.
    pub(super) fn localised(&self, name: &str, lang: Lang) -> String {
        let localised = format!("locale/{}/{name}", lang.code());
        if lang != Lang::En && self.template_sources.contains_key(&localised) {
            localised
        } else {
            name.to_string()
        }
    }

    /// Writes a catalogue answer: each product through product.j2, then catalogue.j2 around
    /// them (English), or the product lines alone in another language.
    pub(super) fn render_catalogue(
        &self,
        answer: &CatalogueAnswer,
        lang: Lang,
    ) -> Result<String, PromptError> {
        let catalogue = &self.knowledge.catalogue;
        let product_template = self.localised("product.j2", lang);
        let mut lines = Vec::new();
        for &index in answer.shown() {
            let product = &catalogue[index];
            let line = self.render(&product_template, self.product_value_in(product, lang))?;
            lines.push((
                product.name_in(lang.code()).to_string(),
                line.trim().to_string(),
            ));
        }
        if lang != Lang::En && !lines.is_empty() {
            let lines: Vec<String> = lines.into_iter().map(|(_, line)| line).collect();
            return Ok(lines.join("\n"));
        }
        let products: Vec<_> = lines
            .into_iter()
            .map(|(name, line)| context! { name, line })
            .collect();
        let context = context! {
            shop => &self.shop,
            kind => answer.kind(),
            products,
            more => answer.not_shown(),
        };
        Ok(self.render("catalogue.j2", context)?.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use crate::assistant::content::test_support::demo;
    use crate::assistant::knowledge::{Composed, Route, RouteKind};
    use crate::assistant::question::Lang;

    fn faq_route(entry_id: &str, lang: Lang) -> Route {
        let mut route = Route::empty(RouteKind::Grounded, lang);
        route.answer = Some(Composed::Faq {
            entry_id: entry_id.into(),
        });
        route
    }

    #[test]
    fn an_english_answer_to_a_question_in_german_comes_under_a_german_lead_in() {
        let set = demo();
        let english = set
            .knowledge
            .entry("delivery-options")
            .unwrap()
            .answer
            .trim();
        let german = set
            .quoted_answer(&faq_route("delivery-options", Lang::De))
            .unwrap()
            .unwrap();
        let (lead_in, answer) = german.split_once('\n').expect("a lead-in line");
        assert!(lead_in.contains("Englisch"), "{german}");
        assert_eq!(answer, english);
        let plain = set
            .quoted_answer(&faq_route("delivery-options", Lang::En))
            .unwrap()
            .unwrap();
        assert_eq!(plain, english);
        // A language without in_english.j2 gets the answer as it is.
        let other = set
            .quoted_answer(&faq_route("delivery-options", Lang::Other))
            .unwrap()
            .unwrap();
        assert_eq!(other, english);
    }
}
