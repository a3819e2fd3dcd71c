//! Reading the values a skeleton needs straight out of the journey and person, without first
//! turning them into a `serde_json::Value` tree.
//!
//! A [`Trie`] holds the paths a fast-path plan wants (`person.images.files.3`,
//! `journey.prefilled.name`...). Serializing the journey and the person through a
//! [`Walker`] visits only the branches of that trie and writes each wanted value into one
//! buffer, in the form the skeleton splices in: the text Tera would print for `{{ x }}`, or the
//! JSON `json_encode` would give. Everything else is skipped without being copied, which is
//! what makes a fresh journey cheap: building the whole `Value` tree was most of the cost.

use std::fmt::{self, Display, Write as _};
use std::io::Write as _;
use std::ops::Range;

use serde::ser::{self, Serialize};

/// The name of the newtype by which [`verbatim`] marks text that needs no JSON escaping. Every
/// serializer but the fast path's sees through a newtype to the string inside; the fast path
/// copies such text as it is instead of scanning it for characters to escape.
pub(crate) const VERBATIM: &str = "$otk_mock::verbatim";

/// Serialize `text`, which must hold no quote, backslash or control character, as a string
/// that the fast path may copy without escaping.
pub(crate) fn verbatim<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    debug_assert!(!text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
    serializer.serialize_newtype_struct(VERBATIM, text)
}

/// How a wanted value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// What Tera prints for `{{ x }}` under the JSON escaper.
    Plain,
    /// JSON, as `json_encode` gives it.
    Json,
}

#[derive(Debug, Default)]
struct Node {
    children: Vec<(Box<str>, Node)>,
    /// [`tag`] of each child's key, in the same order: a lookup compares these words and
    /// compares text only on a match. Every field of every struct walked is looked up here
    /// and most are not wanted, so misses must be cheap.
    tags: Vec<u64>,
    capture: Option<(usize, Capture)>,
}

impl Node {
    fn child(&self, key: &str) -> Option<&Node> {
        let wanted = tag(key);
        self.tags
            .iter()
            .zip(&self.children)
            .find(|(t, (k, _))| **t == wanted && k.as_ref() == key)
            .map(|(_, (_, n))| n)
    }
}

/// A key's length with its first four and last three bytes: field names that share a length
/// almost always differ in one of them (`dateOfIssue`/`dateOfBirth`, `latitude`/`longitude`).
fn tag(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let mut tag = (bytes.len() as u64) << 56;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        tag |= u64::from(b) << (8 * i);
    }
    for (i, &b) in bytes.iter().rev().take(3).enumerate() {
        tag |= u64::from(b) << (32 + 8 * i);
    }
    tag
}

/// The wanted paths, each with its slot.
#[derive(Debug, Default)]
pub struct Trie {
    root: Node,
    slots: usize,
}

/// The values found, in one buffer.
#[derive(Debug, Default)]
pub struct Collected {
    pub buf: Vec<u8>,
    pub ranges: Vec<Option<Range<usize>>>,
    key: String,
}

impl Collected {
    /// Empty, keeping the buffers' capacity for the next walk.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ranges.clear();
        self.key.clear();
    }

    /// The text of slot `i`, if the walk found it.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.ranges
            .get(i)
            .and_then(|r| r.clone())
            .and_then(|r| self.buf.get(r))
    }
}

/// A walk that cannot give the wanted form (a `{{ x }}` of an object, say).
#[derive(Debug)]
pub struct Unprintable;

impl Display for Unprintable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value the fast path cannot print")
    }
}

impl std::error::Error for Unprintable {}

impl ser::Error for Unprintable {
    fn custom<T: Display>(_: T) -> Self {
        Unprintable
    }
}

impl Trie {
    /// Add `path` (`["person", "images", "files", "3"]`) as slot `slot`.
    pub fn insert(&mut self, path: &[String], slot: usize, capture: Capture) {
        let mut node = &mut self.root;
        for key in path {
            let at = match node.children.iter().position(|(k, _)| k.as_ref() == key) {
                Some(at) => at,
                None => {
                    node.children.push((key.as_str().into(), Node::default()));
                    node.tags.push(tag(key));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
        }
        node.capture = Some((slot, capture));
        self.slots = self.slots.max(slot + 1);
    }

    /// Walk `value`, known in the context as `root`, collecting what the trie wants of it.
    pub fn collect<T: Serialize + ?Sized>(
        &self,
        root: &str,
        value: &T,
        out: &mut Collected,
    ) -> Result<(), Unprintable> {
        if out.ranges.len() < self.slots {
            out.ranges.resize(self.slots, None);
        }
        match self.root.child(root) {
            Some(node) => visit(node, value, out),
            None => Ok(()),
        }
    }
}

/// Capture `value` at `node` if it is wanted there, or walk into it if something below is.
fn visit<T: Serialize + ?Sized>(
    node: &Node,
    value: &T,
    out: &mut Collected,
) -> Result<(), Unprintable> {
    match node.capture {
        Some((slot, capture)) => {
            let start = out.buf.len();
            match capture {
                Capture::Json => {
                    serde_json::to_writer(&mut out.buf, value).map_err(|_| Unprintable)?
                }
                Capture::Plain => value.serialize(Plain {
                    out: &mut out.buf,
                    verbatim: false,
                })?,
            }
            out.ranges[slot] = Some(start..out.buf.len());
            Ok(())
        }
        None if node.children.is_empty() => Ok(()),
        None => value.serialize(Walker { node, out }),
    }
}

/// Walks a value along the trie; primitives off the wanted paths are ignored.
struct Walker<'a> {
    node: &'a Node,
    out: &'a mut Collected,
}

struct Compound<'a> {
    node: &'a Node,
    out: &'a mut Collected,
    index: usize,
    pending: Option<&'a Node>,
}

macro_rules! ignore {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, _: $ty) -> Result<(), Unprintable> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for Walker<'a> {
    type Ok = ();
    type Error = Unprintable;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    ignore!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8], serialize_unit_struct: &'static str);

    fn serialize_none(self) -> Result<(), Unprintable> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unprintable> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unprintable> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Unprintable> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unprintable> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unprintable> {
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Unprintable> {
        Ok(self.compound())
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, Unprintable> {
        Ok(self.compound())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Unprintable> {
        Ok(self.compound())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Unprintable> {
        Ok(self.compound())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Unprintable> {
        Ok(self.compound())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Unprintable> {
        Ok(self.compound())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Unprintable> {
        Ok(self.compound())
    }
}

impl<'a> Walker<'a> {
    fn compound(self) -> Compound<'a> {
        Compound {
            node: self.node,
            out: self.out,
            index: 0,
            pending: None,
        }
    }
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unprintable> {
        let index = self.index;
        self.index += 1;
        if self.node.children.is_empty() {
            return Ok(());
        }
        // The index as the trie spells it (`files.3`), written on the stack.
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = index;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let key = std::str::from_utf8(&digits[at..]).map_err(|_| Unprintable)?;
        match self.node.child(key) {
            Some(child) => visit(child, value, self.out),
            None => Ok(()),
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Unprintable> {
        match self.node.child(key) {
            Some(child) => visit(child, value, self.out),
            None => Ok(()),
        }
    }
}

macro_rules! seq_like {
    ($($trait:ident :: $method:ident),*) => {
        $(impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Unprintable;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unprintable> {
                self.element(value)
            }
            fn end(self) -> Result<(), Unprintable> {
                Ok(())
            }
        })*
    };
}

seq_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Unprintable;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unprintable> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Unprintable> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Unprintable;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unprintable> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Unprintable> {
        Ok(())
    }
}

impl<'a> ser::SerializeMap for Compound<'a> {
    type Ok = ();
    type Error = Unprintable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unprintable> {
        self.pending = key.serialize(KeyLookup {
            node: self.node,
            scratch: &mut self.out.key,
        })?;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unprintable> {
        match self.pending.take() {
            Some(child) => visit(child, value, self.out),
            None => Ok(()),
        }
    }
    // Every field of a struct with a `flatten` in it (the person, the journey) comes through
    // here: the key is looked up where it is, not copied out first.
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Unprintable> {
        let child = key.serialize(KeyLookup {
            node: self.node,
            scratch: &mut self.out.key,
        })?;
        match child {
            Some(child) => visit(child, value, self.out),
            None => Ok(()),
        }
    }
    fn end(self) -> Result<(), Unprintable> {
        Ok(())
    }
}

/// The part of a leaf-only serializer that refuses every compound value: its associated types
/// and the methods that would start a sequence, map, struct or variant.
macro_rules! refuse_compounds {
    ($ok:ty) => {
        type Ok = $ok;
        type Error = Unprintable;
        type SerializeSeq = ser::Impossible<$ok, Unprintable>;
        type SerializeTuple = ser::Impossible<$ok, Unprintable>;
        type SerializeTupleStruct = ser::Impossible<$ok, Unprintable>;
        type SerializeTupleVariant = ser::Impossible<$ok, Unprintable>;
        type SerializeMap = ser::Impossible<$ok, Unprintable>;
        type SerializeStruct = ser::Impossible<$ok, Unprintable>;
        type SerializeStructVariant = ser::Impossible<$ok, Unprintable>;

        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<$ok, Unprintable> {
            Err(Unprintable)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unprintable> {
            Err(Unprintable)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unprintable> {
            Err(Unprintable)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Unprintable> {
            Err(Unprintable)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Unprintable> {
            Err(Unprintable)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unprintable> {
            Err(Unprintable)
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Unprintable> {
            Err(Unprintable)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Unprintable> {
            Err(Unprintable)
        }
    };
}

/// Finds the trie node of a map key: a string as it is, a number or boolean as serde_json
/// writes it as a key (formatted into `scratch` first).
struct KeyLookup<'a, 'n> {
    node: &'n Node,
    scratch: &'a mut String,
}

impl<'n> KeyLookup<'_, 'n> {
    fn formatted(self, key: impl Display) -> Result<Option<&'n Node>, Unprintable> {
        self.scratch.clear();
        let _ = write!(self.scratch, "{key}");
        Ok(self.node.child(self.scratch))
    }
}

macro_rules! key_display {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, v: $ty) -> Result<Option<&'n Node>, Unprintable> {
            self.formatted(v)
        })*
    };
}

impl<'n> ser::Serializer for KeyLookup<'_, 'n> {
    refuse_compounds!(Option<&'n Node>);

    key_display!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char);

    fn serialize_str(self, v: &str) -> Result<Option<&'n Node>, Unprintable> {
        Ok(self.node.child(v))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Option<&'n Node>, Unprintable> {
        Err(Unprintable)
    }
    fn serialize_none(self) -> Result<Option<&'n Node>, Unprintable> {
        Err(Unprintable)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Option<&'n Node>, Unprintable> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Option<&'n Node>, Unprintable> {
        Err(Unprintable)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Option<&'n Node>, Unprintable> {
        Err(Unprintable)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Option<&'n Node>, Unprintable> {
        Ok(self.node.child(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Option<&'n Node>, Unprintable> {
        v.serialize(self)
    }
}

/// What Tera prints for `{{ x }}` with the JSON escaper: strings escaped, numbers and booleans
/// as Rust displays them, null as nothing; anything else cannot be printed this way.
struct Plain<'a> {
    out: &'a mut Vec<u8>,
    /// Inside a [`verbatim`] newtype: the string is copied as it is.
    verbatim: bool,
}

macro_rules! plain_integer {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, v: $ty) -> Result<(), Unprintable> {
            // itoa writes what `Display` does, without the formatting machinery.
            self.out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(())
        })*
    };
}

impl ser::Serializer for Plain<'_> {
    refuse_compounds!(());

    plain_integer!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64);

    fn serialize_bool(self, v: bool) -> Result<(), Unprintable> {
        self.out
            .extend_from_slice(if v { b"true".as_slice() } else { b"false" });
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unprintable> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unprintable> {
        // A JSON number cannot be NaN or infinite; Tera would have seen null there.
        if v.is_finite() {
            let _ = write!(self.out, "{v}");
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unprintable> {
        let mut buf = [0u8; 4];
        super::escape_json_into(v.encode_utf8(&mut buf), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Unprintable> {
        if self.verbatim {
            self.out.extend_from_slice(v.as_bytes());
        } else {
            super::escape_json_into(v, self.out);
        }
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unprintable> {
        Err(Unprintable)
    }
    fn serialize_none(self) -> Result<(), Unprintable> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unprintable> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unprintable> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unprintable> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unprintable> {
        super::escape_json_into(variant, self.out);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<(), Unprintable> {
        v.serialize(Plain {
            out: self.out,
            verbatim: name == VERBATIM,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        first_name: String,
        score: f64,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Outer {
        #[serde(flatten)]
        inner: Inner,
        files: Vec<String>,
        started_at: Option<i64>,
        info: serde_json::Map<String, serde_json::Value>,
        skipped: Vec<u8>,
    }

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn collects_what_is_wanted_in_the_wanted_form() {
        let mut trie = Trie::default();
        trie.insert(&path("p.firstName"), 0, Capture::Plain);
        trie.insert(&path("p.score"), 1, Capture::Plain);
        trie.insert(&path("p.files.1"), 2, Capture::Plain);
        trie.insert(&path("p.startedAt"), 3, Capture::Json);
        trie.insert(&path("p.info"), 4, Capture::Json);
        trie.insert(&path("p.info.absent"), 5, Capture::Plain);
        let value = Outer {
            inner: Inner {
                first_name: "Zoë \"Q\"".into(),
                score: 0.9670456647872925,
            },
            files: vec!["a".into(), "b\\c".into()],
            started_at: None,
            info: json!({"b": 1, "a": [true]}).as_object().cloned().unwrap(),
            skipped: vec![1, 2, 3],
        };
        let mut out = Collected::default();
        trie.collect("p", &value, &mut out).unwrap();
        let text = |i| String::from_utf8(out.get(i).unwrap().to_vec()).unwrap();
        assert_eq!(text(0), r#"Zoë \"Q\""#);
        assert_eq!(text(1), "0.9670456647872925");
        assert_eq!(text(2), r"b\\c");
        assert_eq!(text(3), "null");
        assert_eq!(text(4), r#"{"b":1,"a":[true]}"#);
        assert_eq!(out.get(5), None);
    }

    struct Marked(&'static str);

    impl Serialize for Marked {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            verbatim(self.0, s)
        }
    }

    #[test]
    fn verbatim_text_is_copied_plainly_and_stays_a_string_in_json() {
        let value = (Marked("https://h/a/1.png"), "not/marked\\");
        let mut plain = Trie::default();
        plain.insert(&path("p.0"), 0, Capture::Plain);
        plain.insert(&path("p.1"), 1, Capture::Plain);
        let mut out = Collected::default();
        plain.collect("p", &value, &mut out).unwrap();
        let text = |out: &Collected, i| String::from_utf8(out.get(i).unwrap().to_vec()).unwrap();
        assert_eq!(text(&out, 0), "https://h/a/1.png");
        assert_eq!(text(&out, 1), r"not/marked\\");

        let mut json = Trie::default();
        json.insert(&path("p.0"), 0, Capture::Json);
        let mut out = Collected::default();
        json.collect("p", &value, &mut out).unwrap();
        assert_eq!(text(&out, 0), r#""https://h/a/1.png""#);
        assert_eq!(
            serde_json::to_value(Marked("x")).unwrap(),
            serde_json::json!("x")
        );
    }

    #[test]
    fn printing_a_whole_object_plainly_is_refused() {
        let mut trie = Trie::default();
        trie.insert(&path("p.info"), 0, Capture::Plain);
        let value = json!({"info": {"a": 1}});
        let mut out = Collected::default();
        assert!(trie.collect("p", &value, &mut out).is_err());
    }
}
