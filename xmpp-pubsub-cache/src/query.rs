//! Search queries: what callers write ([`Query`]), checked against the fields that the cache and its
//! analysers know ([`FieldSchema`]) into a backend-neutral [`CompiledQuery`] that each store renders
//! with bound parameters (user values never become SQL text).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::QueryError;
use crate::model::Micros;

/// Most filters in one query.
pub const MAX_FILTERS: usize = 64;
/// Most values in one list (filter values, profiles, nodes...).
pub const MAX_VALUES: usize = 512;
/// Most orderings.
pub const MAX_ORDERS: usize = 8;
/// Longest string value or path (bytes).
pub const MAX_STRING: usize = 4096;
/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 10_000;

/// The type of a searchable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A string.
    Text,
    /// A list of strings (e.g. tags).
    TextList,
    /// A date: RFC 3339 strings or microseconds in queries. In parsed JSON, analysers write dates with
    /// [`crate::analyser::json_date`] (fixed-width UTC) so that string order is time order.
    DateTime,
    /// A number.
    Number,
    /// A boolean.
    Bool,
    /// Any JSON (an object whose inner paths are not declared): compared as the value given.
    Any,
}

impl FieldType {
    fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::TextList => "text list",
            FieldType::DateTime => "date",
            FieldType::Number => "number",
            FieldType::Bool => "boolean",
            FieldType::Any => "any",
        }
    }
}

/// The parsed fields that analysers declare (path -> type). Built-in fields (`item_id`, `publisher`,
/// `created`, `modified`, `published`, `updated`, `author_jid`, `tags`, `service`, `node`,
/// `encrypted`, `decrypted`, `signature_verified`) are always known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSchema {
    fields: BTreeMap<String, FieldType>,
}

impl FieldSchema {
    /// An empty schema (built-in fields only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a parsed path. A path declared [`FieldType::Any`] also admits every path under it.
    pub fn declare(&mut self, path: &str, ty: FieldType) {
        self.fields.insert(path.to_owned(), ty);
    }

    /// The declared type of `path`.
    pub fn type_of(&self, path: &str) -> Option<FieldType> {
        if let Some(t) = self.fields.get(path) {
            return Some(*t);
        }
        let mut p = path;
        while let Some(i) = p.rfind(['.', '[']) {
            p = &p[..i];
            if self.fields.get(p) == Some(&FieldType::Any) {
                return Some(FieldType::Any);
            }
        }
        None
    }
}

/// A built-in column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// Item id.
    ItemId,
    /// Publisher JID.
    Publisher,
    /// Creation order.
    Created,
    /// Last change seen.
    Modified,
    /// Payload publication date.
    Published,
    /// Payload update date.
    Updated,
    /// Author JID.
    Author,
    /// Service JID.
    Service,
    /// Node name.
    Node,
    /// Encrypted flag.
    Encrypted,
    /// Decrypted flag.
    Decrypted,
    /// Signature-verified flag.
    SignatureVerified,
}

fn builtin(name: &str) -> Option<(Target, FieldType)> {
    let c = match name {
        "item_id" => (Column::ItemId, FieldType::Text),
        "publisher" => (Column::Publisher, FieldType::Text),
        "created" | "creation" => (Column::Created, FieldType::DateTime),
        "modified" | "modification" => (Column::Modified, FieldType::DateTime),
        "published" => (Column::Published, FieldType::DateTime),
        "updated" => (Column::Updated, FieldType::DateTime),
        "author_jid" => (Column::Author, FieldType::Text),
        "service" => (Column::Service, FieldType::Text),
        "node" => (Column::Node, FieldType::Text),
        "encrypted" => (Column::Encrypted, FieldType::Bool),
        "decrypted" => (Column::Decrypted, FieldType::Bool),
        "signature_verified" => (Column::SignatureVerified, FieldType::Bool),
        "tags" => return Some((Target::Tags, FieldType::TextList)),
        _ => return None,
    };
    Some((Target::Column(c.0), c.1))
}

/// What a condition reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A column of the items table.
    Column(Column),
    /// The tags of the item.
    Tags,
    /// A JSON path (`$.a.b[0]`, checked against the path grammar) into the parsed data.
    Json(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==` (on a list: contains).
    Eq,
    /// `!=` (on a list: does not contain).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// Inclusive range `[a, b]`.
    Between,
    /// One of the values (on a list: overlap).
    In,
    /// None of the values (on a list: disjoint).
    NotIn,
    /// The list shares a value with the given ones.
    Overlap,
    /// The list shares no value with the given ones.
    Disjoint,
    /// SQL `LIKE` pattern (`%`, `_`, `\` escapes), case-sensitive unless `ilike`.
    Like,
    /// Negated `LIKE`.
    NotLike,
}

/// Parses an operator name: `== != < <= > >= between in not_in overlap disjoint like not_like`, their
/// word forms (`eq ne lt le gt ge`), and the case-insensitive variants `ieq ine iin inot_in ioverlap
/// idisjoint ilike not_ilike` (also `i==`, `i!=`). Returns the operator and whether it ignores case.
pub fn parse_op(op: &str) -> Result<(Op, bool), QueryError> {
    Ok(match op {
        "==" | "=" | "eq" => (Op::Eq, false),
        "!=" | "ne" => (Op::Ne, false),
        "<" | "lt" => (Op::Lt, false),
        "<=" | "le" => (Op::Le, false),
        ">" | "gt" => (Op::Gt, false),
        ">=" | "ge" => (Op::Ge, false),
        "between" => (Op::Between, false),
        "in" => (Op::In, false),
        "not_in" => (Op::NotIn, false),
        "overlap" => (Op::Overlap, false),
        "disjoint" => (Op::Disjoint, false),
        "like" => (Op::Like, false),
        "not_like" => (Op::NotLike, false),
        "ieq" | "i==" => (Op::Eq, true),
        "ine" | "i!=" => (Op::Ne, true),
        "iin" => (Op::In, true),
        "inot_in" => (Op::NotIn, true),
        "ioverlap" => (Op::Overlap, true),
        "idisjoint" => (Op::Disjoint, true),
        "ilike" => (Op::Like, true),
        "not_ilike" => (Op::NotLike, true),
        _ => {
            return Err(QueryError::UnknownOperator {
                op: op.chars().take(64).collect(),
            })
        }
    })
}

/// A scalar value bound as a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Text.
    Text(String),
    /// Integer (also dates in microseconds for columns).
    Int(i64),
    /// Real.
    Real(f64),
    /// Boolean.
    Bool(bool),
}

/// A checked condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What it reads.
    pub target: Target,
    /// The field type.
    pub field_type: FieldType,
    /// The operator.
    pub op: Op,
    /// Ignore case (Unicode lower-casing on both sides).
    pub ignore_case: bool,
    /// The values (one for scalar operators, two for `between`, any number for lists).
    pub values: Vec<Scalar>,
}

/// A filter on a field: `path op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// A built-in field or a parsed path (`title`, `author.name`, `links[0].href`).
    pub path: String,
    /// The operator (see [`parse_op`]).
    pub op: String,
    /// The value: a JSON scalar, or an array for `between`/`in`/`not_in`/`overlap`/`disjoint`.
    pub value: Value,
}

/// One ordering: `creation`, `modification`, `published`, `updated`, `item_id`, `rank`, or any field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The field.
    pub field: String,
    /// Descending.
    pub desc: bool,
}

/// A search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Query {
    /// FTS5 query over the items' text (words, `"phrases"`, `AND OR NOT`, `prefix*`, `NEAR()`).
    pub fts: Option<String>,
    /// Only these profiles.
    pub profiles: Vec<String>,
    /// Only these services.
    pub services: Vec<String>,
    /// Only these node names.
    pub nodes: Vec<String>,
    /// Only nodes of these types.
    pub types: Vec<String>,
    /// Only nodes of these sub-types.
    pub subtypes: Vec<String>,
    /// Only these item ids.
    pub item_ids: Vec<String>,
    /// Filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// Orderings (ties are broken by storage order); default: creation, newest first.
    pub order_by: Vec<Order>,
    /// Rows to skip.
    pub offset: u64,
    /// Page size (default 50, at most 10,000).
    pub limit: Option<u32>,
    /// A cursor from a previous page of the same query (replaces `offset`).
    pub cursor: Option<String>,
    /// Return the raw payloads too.
    pub with_payload: bool,
}

impl Query {
    /// An empty query (everything, newest first).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the full-text query.
    pub fn fts(mut self, q: impl Into<String>) -> Self {
        self.fts = Some(q.into());
        self
    }
    /// Adds a filter.
    pub fn filter(mut self, path: impl Into<String>, op: impl Into<String>, value: Value) -> Self {
        self.filters.push(Filter {
            path: path.into(),
            op: op.into(),
            value,
        });
        self
    }
    /// Adds an ordering.
    pub fn order_by(mut self, field: impl Into<String>, desc: bool) -> Self {
        self.order_by.push(Order {
            field: field.into(),
            desc,
        });
        self
    }
    /// Sets the page size.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// Checks the query against `schema`.
    pub fn compile(&self, schema: &FieldSchema) -> Result<CompiledQuery, QueryError> {
        for list in [
            &self.profiles,
            &self.services,
            &self.nodes,
            &self.types,
            &self.subtypes,
            &self.item_ids,
        ] {
            if list.len() > MAX_VALUES {
                return Err(QueryError::TooLarge { what: "value list" });
            }
            if list.iter().any(|s| s.len() > MAX_STRING) {
                return Err(QueryError::TooLarge { what: "string" });
            }
        }
        if self.filters.len() > MAX_FILTERS {
            return Err(QueryError::TooLarge { what: "filters" });
        }
        if self.order_by.len() > MAX_ORDERS {
            return Err(QueryError::TooLarge { what: "orderings" });
        }
        let fts = match self.fts.as_deref().map(str::trim) {
            Some(q) if q.len() > MAX_STRING => return Err(QueryError::TooLarge { what: "fts" }),
            Some("") | None => None,
            Some(q) => Some(q.to_owned()),
        };
        let conditions = self
            .filters
            .iter()
            .map(|f| compile_filter(schema, f))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order = Vec::new();
        for o in &self.order_by {
            let key = match o.field.as_str() {
                "rank" => {
                    if fts.is_none() {
                        return Err(QueryError::RankWithoutFts);
                    }
                    OrderKey::Rank
                }
                f => {
                    let (target, ty) = resolve_field(schema, f)?;
                    if ty == FieldType::TextList {
                        return Err(QueryError::OperatorNotApplicable {
                            field: f.to_owned(),
                            op: "order_by".into(),
                            field_type: ty.name(),
                        });
                    }
                    OrderKey::Field(target)
                }
            };
            order.push((key, o.desc));
        }
        if order.is_empty() {
            order.push((OrderKey::Field(Target::Column(Column::Created)), true));
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let fingerprint = self.fingerprint();
        let offset = match &self.cursor {
            None => self.offset,
            Some(c) => {
                let (fp, off) = c.split_once('.').ok_or(QueryError::InvalidCursor)?;
                let fp = u64::from_str_radix(fp, 16).map_err(|_| QueryError::InvalidCursor)?;
                if fp != fingerprint {
                    return Err(QueryError::InvalidCursor);
                }
                off.parse().map_err(|_| QueryError::InvalidCursor)?
            }
        };
        Ok(CompiledQuery {
            fts,
            profiles: self.profiles.clone(),
            services: self.services.clone(),
            nodes: self.nodes.clone(),
            types: self.types.clone(),
            subtypes: self.subtypes.clone(),
            item_ids: self.item_ids.clone(),
            conditions,
            order,
            offset,
            limit,
            with_payload: self.with_payload,
            fingerprint,
        })
    }

    /// A hash of everything but the paging, so a cursor cannot be replayed on another query.
    fn fingerprint(&self) -> u64 {
        let mut q = self.clone();
        q.offset = 0;
        q.limit = None;
        q.cursor = None;
        let text = serde_json::to_string(&q).unwrap_or_default();
        // FNV-1a: stable across runs and versions (unlike std's hasher).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

/// An ordering key.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderKey {
    /// A field.
    Field(Target),
    /// Full-text rank (best first when ascending).
    Rank,
}

/// A checked query, ready for a store.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledQuery {
    /// Full-text query.
    pub fts: Option<String>,
    /// Profiles.
    pub profiles: Vec<String>,
    /// Services.
    pub services: Vec<String>,
    /// Nodes.
    pub nodes: Vec<String>,
    /// Types.
    pub types: Vec<String>,
    /// Sub-types.
    pub subtypes: Vec<String>,
    /// Item ids.
    pub item_ids: Vec<String>,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Orderings (never empty).
    pub order: Vec<(OrderKey, bool)>,
    /// Rows skipped.
    pub offset: u64,
    /// Page size.
    pub limit: u32,
    /// Return payloads.
    pub with_payload: bool,
    /// Query fingerprint for cursors.
    pub fingerprint: u64,
}

impl CompiledQuery {
    /// The cursor of the page after one that returned `returned` rows, if it was full.
    pub fn next_cursor(&self, returned: usize) -> Option<String> {
        (returned as u64 >= u64::from(self.limit) && self.limit > 0).then(|| {
            format!(
                "{:016x}.{}",
                self.fingerprint,
                self.offset + returned as u64
            )
        })
    }
}

/// Checks a parsed path against the grammar `name(.name|[index])*` (name: ASCII letters, digits, `_`,
/// `-`, not starting with a digit or `-`; index: up to 6 digits) and gives the SQLite/JSON path.
pub fn json_path(path: &str) -> Result<String, QueryError> {
    let bad = |reason| QueryError::InvalidPath {
        path: path.chars().take(128).collect(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty"));
    }
    if path.len() > 256 {
        return Err(bad("too long"));
    }
    let b = path.as_bytes();
    let mut out = String::from("$");
    let mut i = 0;
    let mut expect_name = true;
    while i < b.len() {
        if expect_name {
            let start = i;
            if !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
                return Err(bad("a name must start with a letter or `_`"));
            }
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-') {
                i += 1;
            }
            // Quoted so `-` is allowed; the name has no quote or backslash.
            out.push_str(".\"");
            out.push_str(&path[start..i]);
            out.push('"');
            expect_name = false;
        } else if b[i] == b'.' {
            i += 1;
            if i == b.len() {
                return Err(bad("ends with `.`"));
            }
            expect_name = true;
        } else if b[i] == b'[' {
            let start = i + 1;
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start || i - start > 6 || i >= b.len() || b[i] != b']' {
                return Err(bad("an index is `[digits]`"));
            }
            out.push('[');
            out.push_str(&path[start..i]);
            out.push(']');
            i += 1;
        } else {
            return Err(bad("unexpected character"));
        }
    }
    Ok(out)
}

fn resolve_field(schema: &FieldSchema, field: &str) -> Result<(Target, FieldType), QueryError> {
    if let Some(b) = builtin(field) {
        return Ok(b);
    }
    let path = json_path(field)?;
    let ty = schema
        .type_of(field)
        .ok_or_else(|| QueryError::UnknownField {
            field: field.chars().take(128).collect(),
        })?;
    Ok((Target::Json(path), ty))
}

fn parse_date(s: &str) -> Option<Micros> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_micros());
    }
    // A bare date means its midnight UTC.
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_micros())
}

fn scalar(
    v: &Value,
    ty: FieldType,
    target: &Target,
    wrong: &dyn Fn(&'static str) -> QueryError,
) -> Result<Scalar, QueryError> {
    Ok(match ty {
        FieldType::Text | FieldType::TextList => match v {
            Value::String(s) if s.len() <= MAX_STRING => Scalar::Text(s.clone()),
            Value::String(_) => return Err(QueryError::TooLarge { what: "string" }),
            _ => return Err(wrong("a string")),
        },
        FieldType::DateTime => {
            let micros = match v {
                Value::String(s) => parse_date(s).ok_or_else(|| wrong("an RFC 3339 date"))?,
                Value::Number(n) => n.as_i64().ok_or_else(|| wrong("a date"))?,
                _ => return Err(wrong("an RFC 3339 date")),
            };
            match target {
                Target::Json(_) => Scalar::Text(crate::analyser::json_date_micros(micros)),
                _ => Scalar::Int(micros),
            }
        }
        FieldType::Number => match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Real(n.as_f64().ok_or_else(|| wrong("a number"))?),
            },
            _ => return Err(wrong("a number")),
        },
        FieldType::Bool => match v {
            Value::Bool(b) => Scalar::Bool(*b),
            _ => return Err(wrong("a boolean")),
        },
        FieldType::Any => match v {
            Value::String(s) if s.len() <= MAX_STRING => Scalar::Text(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Real(n.as_f64().ok_or_else(|| wrong("a number"))?),
            },
            Value::Bool(b) => Scalar::Bool(*b),
            _ => return Err(wrong("a string, number or boolean")),
        },
    })
}

fn compile_filter(schema: &FieldSchema, f: &Filter) -> Result<Condition, QueryError> {
    let (op, ignore_case) = parse_op(&f.op)?;
    let (target, ty) = resolve_field(schema, &f.path)?;
    let field: String = f.path.chars().take(128).collect();
    let not_applicable = || QueryError::OperatorNotApplicable {
        field: field.clone(),
        op: f.op.clone(),
        field_type: ty.name(),
    };
    let wrong = |expected: &'static str| QueryError::WrongValueType {
        field: field.clone(),
        op: f.op.clone(),
        expected,
    };
    let textual = matches!(ty, FieldType::Text | FieldType::TextList | FieldType::Any);
    if ignore_case && !textual {
        return Err(not_applicable());
    }
    let list_op = matches!(op, Op::Overlap | Op::Disjoint);
    match ty {
        FieldType::TextList => {
            if !matches!(
                op,
                Op::Eq | Op::Ne | Op::In | Op::NotIn | Op::Overlap | Op::Disjoint
            ) {
                return Err(not_applicable());
            }
        }
        FieldType::Text => {
            if list_op {
                return Err(not_applicable());
            }
        }
        FieldType::DateTime | FieldType::Number => {
            if list_op || matches!(op, Op::Like | Op::NotLike) {
                return Err(not_applicable());
            }
        }
        FieldType::Bool => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(not_applicable());
            }
        }
        FieldType::Any => {}
    }
    let values = match op {
        Op::Between => match &f.value {
            Value::Array(a) if a.len() == 2 => a
                .iter()
                .map(|v| scalar(v, ty, &target, &wrong))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(wrong("an array of two values")),
        },
        Op::In | Op::NotIn | Op::Overlap | Op::Disjoint => match &f.value {
            Value::Array(a) if a.len() > MAX_VALUES => {
                return Err(QueryError::TooLarge { what: "value list" })
            }
            Value::Array(a) => a
                .iter()
                .map(|v| scalar(v, ty, &target, &wrong))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(wrong("an array")),
        },
        Op::Like | Op::NotLike => match &f.value {
            Value::String(s) if s.len() <= MAX_STRING => vec![Scalar::Text(s.clone())],
            _ => return Err(wrong("a LIKE pattern string")),
        },
        _ => vec![scalar(&f.value, ty, &target, &wrong)?],
    };
    if ignore_case && values.iter().any(|v| !matches!(v, Scalar::Text(_))) {
        return Err(wrong("strings"));
    }
    // On a list field, `in`/`not_in` are overlap/disjoint.
    let op = match (ty, op) {
        (FieldType::TextList, Op::In) => Op::Overlap,
        (FieldType::TextList, Op::NotIn) => Op::Disjoint,
        _ => op,
    };
    Ok(Condition {
        target,
        field_type: ty,
        op,
        ignore_case,
        values,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        assert_eq!(json_path("a").unwrap(), "$.\"a\"");
        assert_eq!(
            json_path("a.b_c[3].d-e").unwrap(),
            "$.\"a\".\"b_c\"[3].\"d-e\""
        );
        for bad in [
            "", "1a", "a.", "a..b", "a[x]", "a[]", "a'b", "a\"b", "$.a", "a b", "a[1",
        ] {
            assert!(json_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_errors() {
        let mut s = FieldSchema::new();
        s.declare("title", FieldType::Text);
        s.declare("extra", FieldType::Any);
        let q = |f: Filter| Query {
            filters: vec![f],
            ..Query::default()
        };
        let f = |p: &str, o: &str, v: Value| Filter {
            path: p.into(),
            op: o.into(),
            value: v,
        };
        assert!(matches!(
            q(f("nope", "==", json!("x"))).compile(&s),
            Err(QueryError::UnknownField { .. })
        ));
        assert!(matches!(
            q(f("published", ">", json!("yesterday"))).compile(&s),
            Err(QueryError::WrongValueType { .. })
        ));
        assert!(matches!(
            q(f("title", "~", json!("x"))).compile(&s),
            Err(QueryError::UnknownOperator { .. })
        ));
        assert!(matches!(
            q(f("published", "overlap", json!(["x"]))).compile(&s),
            Err(QueryError::OperatorNotApplicable { .. })
        ));
        assert!(matches!(
            q(f("tags", "overlap", json!("x"))).compile(&s),
            Err(QueryError::WrongValueType { .. })
        ));
        assert!(q(f("extra.deep[2].x", "==", json!(3))).compile(&s).is_ok());
        let c = q(f("published", "<", json!("2024-01-01T00:00:00Z")))
            .compile(&s)
            .unwrap();
        // `<` stays `<` (Libervia mapped it to `<=`).
        assert_eq!(c.conditions[0].op, Op::Lt);
        assert!(matches!(
            Query::new().order_by("rank", false).compile(&s),
            Err(QueryError::RankWithoutFts)
        ));
    }

    #[test]
    fn cursors() {
        let s = FieldSchema::new();
        let q = Query::new().fts("hello").limit(10);
        let c = q.compile(&s).unwrap();
        let cur = c.next_cursor(10).unwrap();
        let mut q2 = q.clone();
        q2.cursor = Some(cur.clone());
        assert_eq!(q2.compile(&s).unwrap().offset, 10);
        let mut other = Query::new().fts("bye").limit(10);
        other.cursor = Some(cur);
        assert_eq!(other.compile(&s), Err(QueryError::InvalidCursor));
        assert!(c.next_cursor(3).is_none());
    }
}
