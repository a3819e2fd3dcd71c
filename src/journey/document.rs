//! The document of a created journey: which scenario renders it in each state, with the
//! journey's own facts, and the callback form of it (no `callbackSent`). It is rendered by
//! the same entry point as a stateless journey's (`Renderer::render_into`).

use serde_json::Value;

use super::record::{JourneyRecord, State};
use super::service::{JourneyError, Journeys};
use crate::catalogue::Choice;

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

    /// The journey document as get-journey serves it (its `result`), appended to `out`:
    /// rendered by the entry point every journey goes through (`Renderer::render_into`, which
    /// decides between the fast path and Tera), so a created journey and a stateless one
    /// come out in the same format.
    pub fn document_into(
        &self,
        record: &JourneyRecord,
        overrides: Choice<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), JourneyError> {
        self.render_record(record, record.callback.sent, overrides, out)
    }

    /// The journey document as a value. For a callback, without `callbackSent`, as the
    /// provider's callbacks are.
    pub fn document(
        &self,
        record: &JourneyRecord,
        for_callback: bool,
    ) -> Result<Value, JourneyError> {
        let mut bytes = Vec::new();
        self.render_record(
            record,
            record.callback.sent && !for_callback,
            Choice::default(),
            &mut bytes,
        )?;
        let mut document: Value =
            serde_json::from_slice(&bytes).map_err(|e| JourneyError::Internal(e.to_string()))?;
        if for_callback {
            if let Some(map) = document.as_object_mut() {
                map.shift_remove("callbackSent");
            }
        }
        Ok(document)
    }

    /// A request's `X-Mock-Document` / `X-Mock-Ip-Check` win over what the journey was created
    /// with, which wins over its scenario's choice.
    fn render_record(
        &self,
        record: &JourneyRecord,
        callback_sent: bool,
        overrides: Choice<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), JourneyError> {
        let catalogue = self.catalogue();
        let mut journey = record.to_journey(catalogue.client_id(), callback_sent);
        let choice = Choice {
            document: overrides.document.or(record.document.as_deref()),
            ip_check: overrides.ip_check.or(record.ip_check),
        };
        let internal = |e: crate::render::RenderError| JourneyError::Internal(e.to_string());
        let bound = catalogue
            .find(
                record
                    .outcome
                    .as_deref()
                    .unwrap_or(record.scenario.as_str()),
            )
            .or_else(|| catalogue.find(&record.scenario));
        if let Some(scenario) = catalogue.find(self.rendering_scenario(record)) {
            let person =
                catalogue.created_person(scenario, bound.unwrap_or(scenario), &mut journey, choice);
            return catalogue
                .renderer()
                .render_into(scenario, &journey, &person, out)
                .map_err(internal);
        }
        // The catalogue lacks the in-progress or expired scenario (a custom catalogue):
        // render the bound one and say what state the journey is in.
        let (status, step, message) = if record.state == State::Expired {
            ("EXPIRED", "LINK_EXPIRED", "Journey Link Expired")
        } else {
            ("IN_PROGRESS", "IN_PROGRESS", "Journey In Progress")
        };
        let bound = bound.ok_or_else(|| {
            JourneyError::Internal(format!(
                "scenario {} is not in the catalogue",
                record.scenario
            ))
        })?;
        let person = catalogue.created_person(bound, bound, &mut journey, choice);
        let mut document = catalogue
            .renderer()
            .render(bound, &journey, &person)
            .map_err(internal)?;
        if let Some(map) = document.as_object_mut() {
            map.insert("currentStatus".into(), status.into());
            map.insert("step".into(), step.into());
            map.insert("message".into(), message.into());
        }
        serde_json::to_writer(out, &document).map_err(|e| JourneyError::Internal(e.to_string()))
    }
}
