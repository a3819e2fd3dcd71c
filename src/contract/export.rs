//! `contract schema`: the inferred shape of every bundled scenario, as a JSON Schema (draft
//! 2020-12) of the get-journey response, for teams to use in their own validators.
//!
//! How a [`Node`] becomes a schema:
//!
//! - its types become `type` (`"number"` for every number: the provider's numbers are not
//!   reliably integers, `confidence` is `0` in one body and a fraction in another);
//! - `null` seen adds `"null"`; a path seen *only* as `null` gets no `type` at all (its type is
//!   unknown, see [`super::schema`]);
//! - an object gets `properties` for its keys, and `required` for those present in every
//!   rendered body, except keys that echo the app's request ([`super::diff::ECHO_PATHS`]);
//!   other keys stay allowed, because the real provider adds fields the docs never mention
//!   (spec §10);
//! - a map gets `additionalProperties` with the union of its values;
//! - an array gets `items` with the union of its elements, or nothing when every rendered array
//!   there was empty.

use serde_json::{json, Map, Value};

use super::diff::is_echo;
use super::mock::{documents, RENDERS};
use super::schema::{JsonPath, MapPaths, Node, Schema, Segment};
use crate::catalogue::Catalogue;
use crate::render::RenderError;

/// The JSON Schema dialect written.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema of one node, found at `path` (relative to the journey document).
pub fn node_schema(node: &Node) -> Value {
    schema_at(node, &JsonPath::root())
}

fn schema_at(node: &Node, path: &JsonPath) -> Value {
    let mut out = Map::new();
    let mut types: Vec<&str> = node.kinds.names();
    if types.is_empty() {
        out.insert(
            "description".into(),
            json!("Only null in every rendered body: the type is unknown."),
        );
        return Value::Object(out);
    }
    if node.nullable {
        types.push("null");
    }
    out.insert(
        "type".into(),
        match types.as_slice() {
            [one] => json!(one),
            many => json!(many),
        },
    );
    if let Some(object) = &node.object {
        if object.map {
            if let Some(values) = &object.values {
                out.insert(
                    "additionalProperties".into(),
                    schema_at(values, &path.child(Segment::MapValue)),
                );
            }
        } else {
            let properties: Map<String, Value> = object
                .fields
                .iter()
                .map(|(k, f)| (k.clone(), schema_at(&f.node, &path.key(k))))
                .collect();
            let required: Vec<&String> = object
                .fields
                .iter()
                .filter(|(k, f)| f.present == object.count && !is_echo(&path.key(k)))
                .map(|(k, _)| k)
                .collect();
            out.insert("properties".into(), Value::Object(properties));
            if !required.is_empty() {
                out.insert("required".into(), json!(required));
            }
        }
    }
    if let Some(items) = &node.items {
        out.insert("items".into(), schema_at(items, &path.child(Segment::Item)));
    }
    Value::Object(out)
}

/// The JSON Schema of `{"result": document}` for a shape inferred from journey documents.
pub fn get_journey_schema(documents: &Schema, scenarios: &[&str]) -> Value {
    json!({
        "$schema": DRAFT_2020_12,
        "title": "OTK get-journey response (otk-mock)",
        "description": format!(
            "The shape of POST /api/v3/otk-service/get-journey/{{journeyId}} as otk-mock renders \
             it, inferred from {} bodies of the scenarios {}. Objects allow keys not listed \
             here; ipAddresses, documentIntelligence.extractedFields and the check lists under \
             documentIntelligence.authenticityCheck are maps whose keys are data.",
            documents.documents,
            scenarios.join(", ")
        ),
        "type": "object",
        "properties": { "result": node_schema(&documents.root) },
        "required": ["result"]
    })
}

/// The schema covering every scenario of `catalogue`, each rendered for [`RENDERS`] journeys.
pub fn catalogue_schema(catalogue: &Catalogue) -> Result<Value, RenderError> {
    let maps = MapPaths::otk();
    let mut schema = Schema::default();
    for scenario in catalogue.scenarios() {
        for document in documents(catalogue, scenario, RENDERS)? {
            schema.add(&document, &maps);
        }
    }
    Ok(get_journey_schema(&schema, &catalogue.names()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn nodes_become_types_properties_required_and_items() {
        let docs = [
            json!({"a": 1, "b": null, "m": {"x": "1"}, "l": [[]], "o": {"k": true}}),
            json!({"a": null, "o": {"k": false, "j": "s"}, "ipAddresses": {"192.0.2.1": {"asn": "1"}}, "userInfo": {"name": "x"}}),
        ];
        let schema = Schema::infer(&docs, &MapPaths::otk());
        assert_eq!(
            node_schema(&schema.root),
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": ["number", "null"]},
                    "b": {"description": "Only null in every rendered body: the type is unknown."},
                    "m": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
                    "l": {"type": "array", "items": {"type": "array"}},
                    "o": {
                        "type": "object",
                        "properties": {"k": {"type": "boolean"}, "j": {"type": "string"}},
                        "required": ["k"]
                    },
                    "ipAddresses": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"asn": {"type": "string"}},
                            "required": ["asn"]
                        }
                    },
                    "userInfo": {"type": "object", "properties": {"name": {"type": "string"}}}
                },
                "required": ["a", "o"]
            })
        );
    }
}
