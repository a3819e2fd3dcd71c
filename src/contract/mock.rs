//! The mock's side of a comparison: each scenario rendered for many journeys, folded into one
//! shape.
//!
//! One render is not enough: the fake person behind a journey changes with its id (an Indian
//! driving licence, a US one, a UAE resident card...), and with it parts of the document. So
//! each scenario is rendered for [`RENDERS`] journey ids, and the shape is their union. Half of
//! them are read by id alone (stateless: no `authKeyForCallback`, a small `userInfo`), half are
//! journeys as an app creates them, with a callback and every `userInfo` field the create call
//! takes, because those parts of the document echo the app's request rather than the scenario.
//! A callback body is the same document without `callbackSent` and without the `result`
//! envelope (spec §6).

use serde_json::{json, Map, Value};

use super::schema::{MapPaths, Schema};
use crate::catalogue::{Catalogue, Choice};
use crate::render::facts::UserInfo;
use crate::render::family;
use crate::render::RenderError;
use crate::scenario::Scenario;

/// How many journeys each scenario is rendered for.
pub const RENDERS: usize = 24;

/// Which kind of body a recording is, and so which mock body it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A get-journey response: `{"result": document}`.
    GetJourney,
    /// A callback body: the bare document, without `callbackSent`.
    Callback,
}

impl BodyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::GetJourney => "get-journey response",
            BodyKind::Callback => "callback body",
        }
    }
}

/// The callback body the mock sends for a document: the same document without `callbackSent`,
/// which the provider sets only after delivery (spec §6).
pub fn callback_body(document: &Value) -> Value {
    match document {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "callbackSent")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Render `scenario` for the `index`-th contract journey (`contract-00`, `contract-01`...):
/// stateless for even indexes, as a journey created with a callback and a full pre-fill for odd
/// ones; each document family in turn, since the family is not the scenario's alone to
/// decide (a scenario that names a family keeps it for the first half of the journeys, as a
/// journey that names none would have it). The flow's IP check is the scenario's.
pub fn render(
    catalogue: &Catalogue,
    scenario: &Scenario,
    index: usize,
) -> Result<Value, RenderError> {
    render_with(catalogue, scenario, index, None)
}

/// [`render`], with the IP check set by the journey (`X-Mock-Ip-Check`) where `ip_check` is
/// given.
pub fn render_with(
    catalogue: &Catalogue,
    scenario: &Scenario,
    index: usize,
    ip_check: Option<bool>,
) -> Result<Value, RenderError> {
    let id = format!("contract-{index:02}");
    let families = family::bundled().list();
    let choice = Choice {
        document: (scenario.document.is_none() || index >= RENDERS / 2)
            .then(|| families.get(index / 2 % families.len().max(1)))
            .flatten()
            .map(|f| f.name.as_str()),
        ip_check,
    };
    if index.is_multiple_of(2) {
        return catalogue.render_stateless_with(scenario, &id, choice);
    }
    let (mut journey, person) = catalogue.scenario_journey(scenario, &id, choice);
    let config = std::sync::Arc::make_mut(&mut journey.processing_config);
    config.insert(
        "callbackUrl".into(),
        json!("https://app.example/otk/callback"),
    );
    config.insert(
        "authKeyForCallback".into(),
        json!(format!("cb-{}", &journey.db_id)),
    );
    let user_info = json!({
        "phoneNumber": person.phone,
        "externalReferenceId": journey.user_id,
        "dateOfBirth": person.identity.date_of_birth,
        "emailAddress": person.email,
        "matchImage": person.images.selfie,
        "name": {
            "firstName": person.identity.first_name,
            "lastName": person.identity.last_name
        },
        "address": {
            "street": person.address.street,
            "street2": person.address.street2,
            "city": person.address.city,
            "region": person.address.region,
            "postalCode": person.address.postal_code,
            "country": person.address.country
        },
        "id": {
            "idType": person.document.id_type,
            "country": person.document.country
        }
    });
    journey.user_info = UserInfo::Supplied(match user_info {
        Value::Object(map) => map,
        _ => Map::new(),
    });
    journey.callback_sent = true;
    // The document settled again, for this pre-fill.
    let person = catalogue.created_person(scenario, scenario, &mut journey, choice);
    catalogue.renderer().render(scenario, &journey, &person)
}

/// Every render of a scenario, as get-journey documents (without the envelope).
pub fn documents(
    catalogue: &Catalogue,
    scenario: &Scenario,
    count: usize,
) -> Result<Vec<Value>, RenderError> {
    (0..count).map(|i| render(catalogue, scenario, i)).collect()
}

/// A scenario as the contract check sees it: its rendered status, and its shapes.
#[derive(Debug, Clone)]
pub struct MockShape {
    pub scenario: String,
    /// `currentStatus` and `step` as rendered (not as the scenario file says).
    pub status: Option<String>,
    pub step: Option<String>,
    /// The shape of the document get-journey returns inside `result`.
    pub document: Schema,
    /// The shape of the callback body.
    pub callback: Schema,
    /// One render (a stateless journey), for telling apart scenarios of the same shape.
    pub sample: Value,
    /// The same scenario with the flow's IP check the other way (a journey's own setting,
    /// `X-Mock-Ip-Check`): a recording may show either.
    pub flipped: Option<Box<MockShape>>,
}

impl MockShape {
    pub fn build(
        catalogue: &Catalogue,
        scenario: &Scenario,
        count: usize,
        maps: &MapPaths,
    ) -> Result<MockShape, RenderError> {
        let mut shape = Self::build_with(catalogue, scenario, count, maps, None)?;
        shape.flipped = Some(Box::new(Self::build_with(
            catalogue,
            scenario,
            count,
            maps,
            Some(!scenario.ip_check),
        )?));
        Ok(shape)
    }

    fn build_with(
        catalogue: &Catalogue,
        scenario: &Scenario,
        count: usize,
        maps: &MapPaths,
        ip_check: Option<bool>,
    ) -> Result<MockShape, RenderError> {
        let documents = (0..count)
            .map(|i| render_with(catalogue, scenario, i, ip_check))
            .collect::<Result<Vec<_>, _>>()?;
        let text = |key: &str| {
            documents
                .first()
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let callbacks: Vec<Value> = documents.iter().map(callback_body).collect();
        Ok(MockShape {
            scenario: scenario.name.clone(),
            status: text("currentStatus"),
            step: text("step"),
            document: Schema::infer(&documents, maps),
            callback: Schema::infer(&callbacks, maps),
            sample: documents.first().cloned().unwrap_or(Value::Null),
            flipped: None,
        })
    }

    pub fn shape(&self, kind: BodyKind) -> &Schema {
        match kind {
            BodyKind::GetJourney => &self.document,
            BodyKind::Callback => &self.callback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::loader::CatalogueSource;

    #[test]
    fn renders_cover_every_document_country_and_both_journey_kinds() {
        let catalogue = Catalogue::load(&CatalogueSource::default(), 0).unwrap();
        let success = catalogue.find("success").unwrap();
        let docs = documents(&catalogue, success, RENDERS).unwrap();
        let mut countries: Vec<&str> = docs
            .iter()
            .filter_map(|d| d["capturedData"]["country"].as_str())
            .collect();
        countries.sort();
        countries.dedup();
        assert_eq!(countries, ["AE", "IN", "US"]);
        let mut types: Vec<&str> = docs
            .iter()
            .filter_map(|d| d["capturedData"]["idType"].as_str())
            .collect();
        types.sort();
        types.dedup();
        assert_eq!(types, ["Driving License", "Passport", "Resident ID Card"]);
        assert!(docs
            .iter()
            .any(|d| d["processingConfig"].get("authKeyForCallback").is_some()));
        assert!(docs
            .iter()
            .any(|d| d["processingConfig"].get("authKeyForCallback").is_none()));
        let callback = callback_body(&docs[1]);
        assert!(callback.get("callbackSent").is_none());
        assert!(docs[1].get("callbackSent").is_some());
    }
}
