//! Schema inference: from any set of JSON documents, the shape they share, key path by key
//! path.
//!
//! A [`Node`] is what was seen at one path over all the documents: which JSON types, whether
//! `null`, and below it the keys of objects and the union of array elements. `null` is read as
//! *nullable*, not as a type: a path seen only as `null` has an unknown type, and so never
//! conflicts with one. Objects whose keys are data rather than names (an IP address, a document
//! field name, a check name) are folded into one value shape when their path is in the
//! [`MapPaths`] list, so their keys are never compared, only their values (as the union over
//! all keys).

use std::fmt;

use indexmap::IndexMap;
use serde_json::Value;

/// The paths, relative to the journey document, of objects whose keys are data:
///
/// - `ipAddresses`: keyed by the end user's IP address (spec §3.10);
/// - `documentIntelligence.extractedFields`: keyed by the document's field names, which change
///   with the document (spec §3.7);
/// - `documentIntelligence.authenticityCheck.*`: the front and back check lists, keyed by check
///   name (`photoEmbedType`, `image pattern`, `liveness`, `ocrSecurityText`...), which change
///   with the document and the checks Regula ran (spec §3.7).
///
/// `*` stands for any one key. Nothing else is a map: every other key is a name, and a name the
/// mock lacks is drift.
pub const OTK_MAP_PATHS: &[&str] = &[
    "ipAddresses",
    "documentIntelligence.extractedFields",
    "documentIntelligence.authenticityCheck.*",
];

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A named key of an object.
    Key(String),
    /// Any element of an array.
    Item,
    /// Any value of a map (an object at one of the [`MapPaths`]).
    MapValue,
}

/// A path in a document: `$.documentIntelligence.extractedFields.*`,
/// `$.externalApiResponses[*].input["emirates id number"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonPath(pub Vec<Segment>);

impl JsonPath {
    pub fn root() -> Self {
        JsonPath(Vec::new())
    }

    /// This path with one more segment.
    pub fn child(&self, segment: Segment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        JsonPath(segments)
    }

    pub fn key(&self, key: &str) -> Self {
        self.child(Segment::Key(key.to_string()))
    }

    /// `segments` under `prefix` (`result` for a get-journey response).
    pub fn under(prefix: &[&str], path: &JsonPath) -> Self {
        let mut segments: Vec<Segment> = prefix
            .iter()
            .map(|k| Segment::Key((*k).to_string()))
            .collect();
        segments.extend(path.0.iter().cloned());
        JsonPath(segments)
    }
}

/// Whether a key can be written after a dot in a path; others are written `["like this"]`.
fn plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.0 {
            match segment {
                Segment::Key(k) if plain_key(k) => write!(f, ".{k}")?,
                Segment::Key(k) => {
                    let quoted = serde_json::to_string(k).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?
                }
                Segment::Item => f.write_str("[*]")?,
                Segment::MapValue => f.write_str(".*")?,
            }
        }
        Ok(())
    }
}

/// Which objects are maps: a list of dotted key patterns, `*` for any one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapPaths(Vec<Vec<String>>);

impl MapPaths {
    /// Patterns such as `"documentIntelligence.authenticityCheck.*"`.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Self {
        MapPaths(
            patterns
                .into_iter()
                .map(|p| p.split('.').map(str::to_string).collect())
                .collect(),
        )
    }

    /// The OTK journey document's maps: [`OTK_MAP_PATHS`].
    pub fn otk() -> Self {
        MapPaths::new(OTK_MAP_PATHS.iter().copied())
    }

    /// No maps at all: every key is a name.
    pub fn none() -> Self {
        MapPaths(Vec::new())
    }

    /// Whether the object at `path` is a map. Only paths made of named keys can be.
    pub fn is_map(&self, path: &JsonPath) -> bool {
        self.0.iter().any(|pattern| {
            pattern.len() == path.0.len()
                && pattern.iter().zip(&path.0).all(|(p, s)| match s {
                    Segment::Key(k) => p == "*" || p == k,
                    _ => false,
                })
        })
    }
}

/// A set of JSON types other than `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Kinds(u8);

impl Kinds {
    pub const BOOLEAN: Kinds = Kinds(1);
    pub const NUMBER: Kinds = Kinds(2);
    pub const STRING: Kinds = Kinds(4);
    pub const ARRAY: Kinds = Kinds(8);
    pub const OBJECT: Kinds = Kinds(16);
    const ALL: [(Kinds, &'static str); 5] = [
        (Kinds::BOOLEAN, "boolean"),
        (Kinds::NUMBER, "number"),
        (Kinds::STRING, "string"),
        (Kinds::ARRAY, "array"),
        (Kinds::OBJECT, "object"),
    ];

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: Kinds) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Kinds) -> Kinds {
        Kinds(self.0 | other.0)
    }

    /// The kinds in `self` that `other` lacks.
    pub fn minus(self, other: Kinds) -> Kinds {
        Kinds(self.0 & !other.0)
    }

    /// JSON Schema's names for these kinds, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Kinds::ALL
            .iter()
            .filter(|(k, _)| self.contains(*k))
            .map(|(_, n)| *n)
            .collect()
    }

    /// The kind of a non-null value (`None` for `null`).
    pub fn of(value: &Value) -> Option<Kinds> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(Kinds::BOOLEAN),
            Value::Number(_) => Some(Kinds::NUMBER),
            Value::String(_) => Some(Kinds::STRING),
            Value::Array(_) => Some(Kinds::ARRAY),
            Value::Object(_) => Some(Kinds::OBJECT),
        }
    }
}

/// What was seen of objects at one path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectShape {
    /// How many objects were seen here.
    pub count: usize,
    /// Whether this path is a map (its keys are data).
    pub map: bool,
    /// Named keys, in the order first seen, with how many of the objects had each.
    pub fields: IndexMap<String, Field>,
    /// For a map: the union of all its values over all its keys; `None` while every map seen
    /// here was empty.
    pub values: Option<Box<Node>>,
}

/// A named key of an object: how often it was there, and what its values were.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field {
    pub present: usize,
    pub node: Node,
}

/// Everything seen at one path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// The non-null types seen.
    pub kinds: Kinds,
    /// Whether `null` was seen.
    pub nullable: bool,
    /// Set when an object was seen.
    pub object: Option<ObjectShape>,
    /// The union of the elements of every array seen here; `None` while every array seen was
    /// empty (or none was seen).
    pub items: Option<Box<Node>>,
}

impl Node {
    /// A one-line description of the types: `string`, `number|null`, `object|string`.
    pub fn describe(&self) -> String {
        let mut names = self.kinds.names();
        if self.nullable {
            names.push("null");
        }
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join("|")
        }
    }

    /// Fold one value, found at `path`, into this node.
    pub fn add(&mut self, value: &Value, path: &JsonPath, maps: &MapPaths) {
        match Kinds::of(value) {
            None => self.nullable = true,
            Some(kind) => self.kinds = self.kinds.union(kind),
        }
        match value {
            Value::Array(items) => {
                let item_path = path.child(Segment::Item);
                for item in items {
                    self.items
                        .get_or_insert_with(Box::default)
                        .add(item, &item_path, maps);
                }
            }
            Value::Object(object) => {
                let shape = self.object.get_or_insert_with(|| ObjectShape {
                    map: maps.is_map(path),
                    ..ObjectShape::default()
                });
                shape.count += 1;
                if shape.map {
                    let value_path = path.child(Segment::MapValue);
                    for value in object.values() {
                        shape
                            .values
                            .get_or_insert_with(Box::default)
                            .add(value, &value_path, maps);
                    }
                } else {
                    for (key, value) in object {
                        let field = shape.fields.entry(key.clone()).or_default();
                        field.present += 1;
                        field.node.add(value, &path.key(key), maps);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The inferred shape of a set of documents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// How many documents went in.
    pub documents: usize,
    pub root: Node,
}

impl Schema {
    /// Infer the shape of `documents`, with `maps` saying which objects are maps.
    pub fn infer<'a>(documents: impl IntoIterator<Item = &'a Value>, maps: &MapPaths) -> Self {
        let mut schema = Schema::default();
        for document in documents {
            schema.add(document, maps);
        }
        schema
    }

    /// Fold one more document in.
    pub fn add(&mut self, document: &Value, maps: &MapPaths) {
        self.documents += 1;
        self.root.add(document, &JsonPath::root(), maps);
    }

    /// Every path with its types, one per line (`$.a.b: string`): a plain view for tests and
    /// for reading.
    pub fn paths(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        walk(&self.root, &JsonPath::root(), &mut out);
        out
    }
}

fn walk(node: &Node, path: &JsonPath, out: &mut Vec<(String, String)>) {
    out.push((path.to_string(), node.describe()));
    if let Some(items) = &node.items {
        walk(items, &path.child(Segment::Item), out);
    }
    if let Some(object) = &node.object {
        if let Some(values) = &object.values {
            walk(values, &path.child(Segment::MapValue), out);
        }
        for (key, field) in &object.fields {
            walk(&field.node, &path.key(key), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn lines(schema: &Schema) -> Vec<String> {
        schema
            .paths()
            .into_iter()
            .map(|(p, t)| format!("{p}: {t}"))
            .collect()
    }

    #[test]
    fn arrays_are_the_union_of_their_elements_and_null_is_nullable() {
        let docs = [
            json!({"a": [1, "x", {"k": true}], "b": null, "c": 1}),
            json!({"a": [], "b": "s", "c": null, "d": [[]]}),
        ];
        let schema = Schema::infer(&docs, &MapPaths::none());
        assert_eq!(
            lines(&schema),
            vec![
                "$: object",
                "$.a: array",
                "$.a[*]: number|string|object",
                "$.a[*].k: boolean",
                "$.b: string|null",
                "$.c: number|null",
                "$.d: array",
                "$.d[*]: array",
            ]
        );
        let root = schema.root.object.as_ref().unwrap();
        assert_eq!(root.count, 2);
        assert_eq!(root.fields["d"].present, 1);
        // The inner arrays of `d` were all empty: no element shape is known.
        assert!(root.fields["d"]
            .node
            .items
            .as_ref()
            .unwrap()
            .items
            .is_none());
    }

    #[test]
    fn map_paths_fold_keys_into_one_value_shape() {
        let doc = json!({
            "ipAddresses": {"203.0.113.7": {"asn": "1"}, "198.51.100.2": {"vpn": "false"}},
            "documentIntelligence": {
                "authenticityCheck": {
                    "frontAuthenticityCheckList": {"image pattern": [{"ElementResult": true}]}
                },
                "extractedFields": {"Date of Birth": "01/01/1990", "Split Address": {"state": [["KA"]]}}
            }
        });
        let schema = Schema::infer([&doc], &MapPaths::otk());
        assert_eq!(
            lines(&schema),
            vec![
                "$: object",
                "$.ipAddresses: object",
                "$.ipAddresses.*: object",
                "$.ipAddresses.*.asn: string",
                "$.ipAddresses.*.vpn: string",
                "$.documentIntelligence: object",
                "$.documentIntelligence.authenticityCheck: object",
                "$.documentIntelligence.authenticityCheck.frontAuthenticityCheckList: object",
                "$.documentIntelligence.authenticityCheck.frontAuthenticityCheckList.*: array",
                "$.documentIntelligence.authenticityCheck.frontAuthenticityCheckList.*[*]: object",
                "$.documentIntelligence.authenticityCheck.frontAuthenticityCheckList.*[*].ElementResult: boolean",
                "$.documentIntelligence.extractedFields: object",
                "$.documentIntelligence.extractedFields.*: string|object",
                "$.documentIntelligence.extractedFields.*.state: array",
                "$.documentIntelligence.extractedFields.*.state[*]: array",
                "$.documentIntelligence.extractedFields.*.state[*][*]: string",
            ]
        );
    }

    #[test]
    fn paths_quote_keys_that_are_not_identifiers() {
        let path = JsonPath::root()
            .key("externalApiResponses")
            .child(Segment::Item)
            .key("input")
            .key("emirates id number")
            .key("Guardian's \"Name\"");
        assert_eq!(
            path.to_string(),
            r#"$.externalApiResponses[*].input["emirates id number"]["Guardian's \"Name\""]"#
        );
        assert_eq!(
            JsonPath::under(&["result"], &JsonPath::root().key("_id")).to_string(),
            "$.result._id"
        );
    }

    #[test]
    fn map_patterns_match_whole_key_paths_only() {
        let maps = MapPaths::otk();
        let at =
            |keys: &[&str]| JsonPath(keys.iter().map(|k| Segment::Key(k.to_string())).collect());
        assert!(maps.is_map(&at(&["ipAddresses"])));
        assert!(maps.is_map(&at(&["documentIntelligence", "authenticityCheck", "x"])));
        assert!(!maps.is_map(&at(&["documentIntelligence", "authenticityCheck"])));
        assert!(!maps.is_map(&at(&["documentIntelligence"])));
        assert!(!maps.is_map(&JsonPath(vec![Segment::Item])));
    }
}
