//! The catalogue: every scenario and template, loaded, compiled and rendered once for a
//! sample journey before anything is served.
//!
//! [`Catalogue::load`] either returns a catalogue in which every scenario renders to a JSON
//! object, or every error it found, each naming its file. Nothing half-loaded is ever served.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::render::extract;
use crate::render::facts::{uuid, Journey};
use crate::render::family::{self, Family, Role};
use crate::render::person::{self, Person};
use crate::render::shadow::Shadow;
use crate::render::{RenderError, Renderer};
use crate::scenario::loader::{self, CatalogueSource, LoadError, LoadErrors};
use crate::scenario::{PrefixIndex, Scenario};

/// What a journey says about its document, beside its scenario: the family (`X-Mock-Document`
/// or `userInfo.id`, by name) and the IP check (`X-Mock-Ip-Check`). `None` leaves it to the
/// scenario, and then to the journey id.
#[derive(Debug, Clone, Copy, Default)]
pub struct Choice<'a> {
    pub document: Option<&'a str>,
    pub ip_check: Option<bool>,
}

/// A checked catalogue, ready to render.
pub struct Catalogue {
    scenarios: Vec<Scenario>,
    keys: HashMap<String, usize, foldhash::fast::RandomState>,
    prefixes: PrefixIndex,
    renderer: Renderer,
    seed: u64,
    client_id: String,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("scenarios", &self.names())
            .field("seed", &self.seed)
            .finish()
    }
}

/// How many journeys each scenario's fast path is compared with Tera on at start-up.
const FAST_PATH_SAMPLES: usize = 12;

/// The id validation renders each scenario for: `<name>-sample`.
pub fn sample_journey_id(scenario: &str) -> String {
    format!("{scenario}-sample")
}

impl Catalogue {
    /// Read, parse, compile and render everything; all errors or a catalogue.
    pub fn load(source: &CatalogueSource, seed: u64) -> Result<Catalogue, LoadErrors> {
        let files = loader::read(source)?;
        let mut errors = Vec::new();
        let scenarios = loader::parse_scenarios(&files.scenarios, &mut errors);
        let mut renderer = Renderer::compile(&files.templates, &mut errors);
        for scenario in &scenarios {
            renderer.plan(scenario);
        }
        let mut rng = person::journey_rng(seed, "\u{0}client");
        let catalogue = Catalogue {
            keys: scenarios
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    std::iter::once((s.name.clone(), i))
                        .chain(s.aliases.iter().map(move |a| (a.clone(), i)))
                })
                .collect(),
            prefixes: PrefixIndex::new(&scenarios),
            scenarios,
            renderer,
            seed,
            client_id: uuid(&mut rng),
        };
        errors.extend(family::bundled_errors().iter().cloned());
        for scenario in &catalogue.scenarios {
            check_document_settings(scenario, &files.scenarios, &mut errors);
        }
        if catalogue.scenarios.is_empty() && errors.is_empty() {
            errors.push(LoadError::new(
                "scenarios",
                "the catalogue has no scenarios; add at least one .toml file",
            ));
        }
        for scenario in &catalogue.scenarios {
            if !catalogue.renderer.has_template(&scenario.template) {
                // A template with its own error was reported already; say what this one needs.
                let line = files
                    .scenarios
                    .iter()
                    .find(|f| f.origin == scenario.source)
                    .and_then(|f| {
                        f.text
                            .lines()
                            .position(|l| l.trim_start().starts_with("template"))
                    })
                    .map(|i| i + 1);
                errors.push(
                    LoadError::new(
                        &scenario.source,
                        format!(
                            "template {:?} is not among the templates that loaded",
                            scenario.template
                        ),
                    )
                    .at_line(line)
                    .field("template"),
                );
                continue;
            }
            let id = sample_journey_id(&scenario.name);
            let (journey, person) = catalogue.scenario_journey(scenario, &id, Choice::default());
            // Tera's own render is the check: its errors name the template and the line.
            if let Err(e) = catalogue.renderer.render_tera(scenario, &journey, &person) {
                errors.push(LoadError::new(&scenario.source, e.to_string()).field("template"));
                continue;
            }
            // The fast path must give Tera's bytes; a few journeys of each document family
            // show whether it does before it is trusted.
            let families = family::bundled().list();
            let samples: Vec<(Journey, Person)> = (0..FAST_PATH_SAMPLES)
                .map(|i| {
                    let choice = Choice {
                        document: families
                            .get(i % families.len().max(1))
                            .map(|f| f.name.as_str()),
                        ip_check: (i % 5 == 4).then_some(false),
                    };
                    catalogue.scenario_journey(scenario, &format!("{id}-{i}"), choice)
                })
                .collect();
            catalogue.renderer.check_fast_path(scenario, &samples);
        }
        if errors.is_empty() {
            Ok(catalogue)
        } else {
            Err(LoadErrors(errors))
        }
    }

    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    pub fn names(&self) -> Vec<&str> {
        self.scenarios.iter().map(|s| s.name.as_str()).collect()
    }

    /// The scenario with this name or alias.
    pub fn find(&self, key: &str) -> Option<&Scenario> {
        self.keys.get(key).map(|&i| &self.scenarios[i])
    }

    /// The scenario whose name or alias prefixes the journey id (`liveness_failed-42`).
    pub fn by_prefix(&self, journey_id: &str) -> Option<&Scenario> {
        self.prefixes.lookup(journey_id).map(|i| &self.scenarios[i])
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The `clientId` every journey of this mock carries (one client, as for a real account).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    /// Check every `shadow.every`-th fast-path body against Tera (`--verify-fast-path`); the
    /// server gives each catalogue it serves the same counters.
    pub fn set_shadow(&mut self, shadow: Option<Arc<Shadow>>) {
        self.renderer.set_shadow(shadow);
    }

    /// Test hook for `--verify-fast-path`: the fast path of `scenario` (name) gives wrong
    /// bodies from now on. Whether it has a fast path.
    #[doc(hidden)]
    pub fn corrupt_fast_path(&self, scenario: &str) -> bool {
        self.renderer.corrupt_fast_path(scenario)
    }

    /// The person and the stateless journey for an id, with the document family the id draws
    /// and the document read as a journey that passes every check reads it.
    pub fn stateless_journey(&self, journey_id: &str) -> (Journey, Person) {
        let mut rng = person::journey_rng(self.seed, journey_id);
        let mut person = person::generate(&mut rng);
        let journey = Journey::stateless(journey_id, &self.client_id, &mut rng, &person);
        extract::settle(&mut person, &Default::default(), &journey.user_info);
        (journey, person)
    }

    /// The family a journey's document is of: the journey's choice, else the scenario's,
    /// else (`None`) the one its id draws. A name no family has counts as no choice (the
    /// request checks of `X-Mock-Document` and the load checks of `document` refuse them).
    pub fn family_for(&self, scenario: &Scenario, choice: Choice<'_>) -> Option<&'static Family> {
        let families = family::bundled();
        choice
            .document
            .and_then(|name| families.find(name))
            .or_else(|| scenario.document.as_deref().and_then(|n| families.find(n)))
    }

    /// The journey and person for `journey_id` read by id alone, as `scenario` renders it: the
    /// family chosen (see [`Catalogue::family_for`]), the IP check, the document as OCR read it.
    pub fn scenario_journey(
        &self,
        scenario: &Scenario,
        journey_id: &str,
        choice: Choice<'_>,
    ) -> (Journey, Person) {
        let mut rng = person::journey_rng(self.seed, journey_id);
        let mut person = person::generate_with(&mut rng, self.family_for(scenario, choice));
        let mut journey = Journey::stateless(journey_id, &self.client_id, &mut rng, &person);
        journey.ip_check = choice.ip_check.unwrap_or(scenario.ip_check);
        extract::settle(&mut person, &scenario.ocr, &journey.user_info);
        (journey, person)
    }

    /// The person behind a created journey, whose facts are `journey`: drawn from its id with
    /// the family chosen, then the document settled for `scenario` and the pre-fill. `bound`
    /// is the scenario the journey ends with, whose family and IP check it keeps in every state.
    pub fn created_person(
        &self,
        scenario: &Scenario,
        bound: &Scenario,
        journey: &mut Journey,
        choice: Choice<'_>,
    ) -> Person {
        let mut rng = person::journey_rng(self.seed, &journey.id);
        let mut person = person::generate_with(&mut rng, self.family_for(bound, choice));
        journey.ip_check = choice.ip_check.unwrap_or(bound.ip_check);
        extract::settle(&mut person, &scenario.ocr, &journey.user_info);
        person
    }

    /// The minified document of a journey known only by its id, as served.
    pub fn stateless_bytes(
        &self,
        scenario: &Scenario,
        journey_id: &str,
    ) -> Result<Vec<u8>, RenderError> {
        let mut out = Vec::new();
        self.stateless_into(scenario, journey_id, Choice::default(), &mut out)?;
        Ok(out)
    }

    /// [`Catalogue::stateless_bytes`] with the journey's own choices, appended to `out`.
    pub fn stateless_into(
        &self,
        scenario: &Scenario,
        journey_id: &str,
        choice: Choice<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), RenderError> {
        let (journey, person) = self.scenario_journey(scenario, journey_id, choice);
        self.renderer.render_into(scenario, &journey, &person, out)
    }

    /// Render the document of a journey known only by its id.
    pub fn render_stateless(
        &self,
        scenario: &Scenario,
        journey_id: &str,
    ) -> Result<Value, RenderError> {
        self.render_stateless_with(scenario, journey_id, Choice::default())
    }

    /// [`Catalogue::render_stateless`] with the journey's own choices.
    pub fn render_stateless_with(
        &self,
        scenario: &Scenario,
        journey_id: &str,
        choice: Choice<'_>,
    ) -> Result<Value, RenderError> {
        let (journey, person) = self.scenario_journey(scenario, journey_id, choice);
        self.renderer.render(scenario, &journey, &person)
    }
}

/// A scenario's `document` must name a family, and the roles its OCR variables name must be
/// roles of the document model; each mistake names the file, line and field.
fn check_document_settings(
    scenario: &Scenario,
    files: &[loader::SourceFile],
    errors: &mut Vec<LoadError>,
) {
    let text = files
        .iter()
        .find(|f| f.origin == scenario.source)
        .map(|f| f.text.as_str())
        .unwrap_or("");
    let line = |key: &str| {
        text.lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map(|i| i + 1)
    };
    if let Some(name) = &scenario.document {
        if family::bundled().find(name).is_none() {
            errors.push(
                LoadError::new(
                    &scenario.source,
                    format!(
                        "{name:?} is not a document family; known: {}",
                        family::bundled().names()
                    ),
                )
                .at_line(line("document"))
                .field("document"),
            );
        }
    }
    let ocr = &scenario.ocr;
    let named = ocr
        .not_extracted
        .iter()
        .map(|r| ("notExtracted", r))
        .chain(ocr.mismatch.iter().map(|r| ("ocrMismatch", r)));
    for (var, role) in named {
        if Role::parse(role).is_none() {
            errors.push(
                LoadError::new(
                    &scenario.source,
                    format!(
                        "{role:?} is not a role of the document; known: {}",
                        Role::NAMES
                    ),
                )
                .at_line(line(var))
                .field(format!("variables.{var}")),
            );
        }
    }
}
