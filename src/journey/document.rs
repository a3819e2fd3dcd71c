//! The document of a created journey: which scenario renders it in each state, with the
//! journey's own facts, and the callback form of it (no `callbackSent`).

use serde_json::Value;

use super::record::{JourneyRecord, State};
use super::service::{JourneyError, Journeys};

impl Journeys {
    /// The scenario that renders `record` now, by name.
    fn rendering_scenario<'a>(&'a self, record: &'a JourneyRecord) -> &'a str {
        match record.state {
            State::Completed | State::Terminated | State::Expired => record
                .outcome
                .as_deref()
                .unwrap_or(record.scenario.as_str()),
            State::Created | State::InProgress if !record.scenario_terminal => &record.scenario,
            State::Created | State::InProgress => &self.settings.in_progress_scenario,
        }
    }

    /// The journey document (the `result` of get-journey). For a callback, without
    /// `callbackSent`, as the provider's callbacks are.
    pub fn document(
        &self,
        record: &JourneyRecord,
        for_callback: bool,
    ) -> Result<Value, JourneyError> {
        let catalogue = self.catalogue();
        let journey =
            record.to_journey(catalogue.client_id(), record.callback.sent && !for_callback);
        let (_, person) = catalogue.stateless_journey(&record.id);
        let name = self.rendering_scenario(record);
        let rendered = match catalogue.find(name) {
            Some(scenario) => catalogue.renderer().render(scenario, &journey, &person),
            None => {
                // The catalogue lacks the in-progress or expired scenario (a custom
                // catalogue): render the bound one and say what state the journey is in.
                let (status, step, message) = if record.state == State::Expired {
                    ("EXPIRED", "LINK_EXPIRED", "Journey Link Expired")
                } else {
                    ("IN_PROGRESS", "IN_PROGRESS", "Journey In Progress")
                };
                let bound = catalogue.find(&record.scenario).ok_or_else(|| {
                    JourneyError::Internal(format!(
                        "scenario {} is not in the catalogue",
                        record.scenario
                    ))
                })?;
                catalogue
                    .renderer()
                    .render(bound, &journey, &person)
                    .map(|mut v| {
                        if let Some(map) = v.as_object_mut() {
                            map.insert("currentStatus".into(), status.into());
                            map.insert("step".into(), step.into());
                            map.insert("message".into(), message.into());
                        }
                        v
                    })
            }
        };
        let mut document = rendered.map_err(|e| JourneyError::Internal(e.to_string()))?;
        if for_callback {
            if let Some(map) = document.as_object_mut() {
                map.shift_remove("callbackSent");
            }
        }
        Ok(document)
    }
}
