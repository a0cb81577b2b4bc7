//! List templates, entries and views over XEP-0346 (Form Discovery and Publishing 0.2) nodes.

use jid::Jid;
use minidom::Element;
use serde::{Serialize, Serializer};

use crate::error::{Error, ParseError};
use crate::forms::{DataForm, Field, FieldOption, FormType, NS_DATA};
use crate::pubsub::Item;
use crate::util::{check_limits, ser_jid, ser_opt_jid};

/// The FDP disco identity type (`pubsub`/`urn:xmpp:fdp:0`) and namespace.
pub const NS_FDP: &str = "urn:xmpp:fdp:0";
/// Prefix of template nodes.
pub const TEMPLATE_PREFIX: &str = "fdp/template/";
/// Prefix of submitted-forms nodes.
pub const SUBMITTED_PREFIX: &str = "fdp/submitted/";
/// `FORM_TYPE` of Libervia's lists (its former "tickets" plugin), which this module writes so Libervia
/// reads the lists it makes.
pub const LIBERVIA_LIST_NS: &str = "org.salut-a-toi.tickets:0";
/// The hidden template field naming the list kind (`grocery`, `todo`, `tickets`), as Libervia writes it.
pub const LIBERVIA_LIST_TYPE_FIELD: &str = "org.salut-a-toi.tickets#type:0";
/// Item id of the template (Libervia's singleton id; the XEP's example uses `version01`).
pub const TEMPLATE_ITEM_ID: &str = "current";

/// A list: a pubsub service and an application suffix, which name the pair of XEP-0346 nodes
/// `fdp/template/<app>` and `fdp/submitted/<app>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListRef {
    /// The pubsub service (or PEP account).
    pub service: Jid,
    /// The application-specific suffix (the XEP suggests starting it with a domain one controls).
    pub app: String,
}

impl ListRef {
    /// A list reference.
    pub fn new(service: Jid, app: impl Into<String>) -> Self {
        ListRef {
            service,
            app: app.into(),
        }
    }

    /// The suffix Libervia gives a list named `name`: `org.salut-a-toi.tickets:0_<name>`.
    pub fn libervia_app(name: &str) -> String {
        format!("{LIBERVIA_LIST_NS}_{name}")
    }

    /// `fdp/template/<app>`.
    pub fn template_node(&self) -> String {
        format!("{TEMPLATE_PREFIX}{}", self.app)
    }

    /// `fdp/submitted/<app>`.
    pub fn submitted_node(&self) -> String {
        format!("{SUBMITTED_PREFIX}{}", self.app)
    }

    /// The list a template or submitted node belongs to (`None` for other nodes).
    pub fn from_node(service: Jid, node: &str) -> Option<Self> {
        let app = node
            .strip_prefix(TEMPLATE_PREFIX)
            .or_else(|| node.strip_prefix(SUBMITTED_PREFIX))?;
        (!app.is_empty()).then(|| ListRef::new(service, app))
    }
}

impl Serialize for ListRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            service: String,
            app: &'a str,
            template_node: String,
            submitted_node: String,
        }
        Json {
            service: self.service.to_string(),
            app: &self.app,
            template_node: self.template_node(),
            submitted_node: self.submitted_node(),
        }
        .serialize(s)
    }
}

/// Values to set in a list entry: `(var, values)` in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemValues(Vec<(String, Vec<String>)>);

impl ItemValues {
    /// No values.
    pub fn new() -> Self {
        ItemValues::default()
    }

    /// The same values with `var` set to one value (replacing an earlier setting).
    pub fn set(self, var: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_multi(var, vec![value.into()])
    }

    /// The same values with `var` set to several values (replacing an earlier setting).
    pub fn set_multi(mut self, var: impl Into<String>, values: Vec<String>) -> Self {
        let var = var.into();
        self.0.retain(|(v, _)| *v != var);
        self.0.push((var, values));
        self
    }

    /// The values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The values set for `var`.
    pub fn get(&self, var: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ItemValues {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        iter.into_iter()
            .fold(ItemValues::new(), |acc, (k, v)| acc.set(k, v))
    }
}

/// A list template: the XEP-0004 form describing an entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListTemplate {
    /// The form (`type='form'`): fields with types, labels, options and default values.
    pub form: DataForm,
}

fn field(var: &str, kind: Option<&str>, label: &str) -> Field {
    Field {
        var: Some(var.to_owned()),
        kind: kind.map(str::to_owned),
        label: (!label.is_empty()).then(|| label.to_owned()),
        ..Field::default()
    }
}

fn choice(var: &str, label: &str, options: &[(&str, &str)], default: &str) -> Field {
    Field {
        options: options
            .iter()
            .map(|(value, label)| FieldOption {
                label: Some((*label).to_owned()),
                value: (*value).to_owned(),
            })
            .collect(),
        values: vec![default.to_owned()],
        ..field(var, Some("list-single"), label)
    }
}

impl ListTemplate {
    /// An empty template of kind `kind` in Libervia's list format (`FORM_TYPE`
    /// `org.salut-a-toi.tickets:0` and the hidden kind field); add fields to [`ListTemplate::form`].
    pub fn new(kind: &str, title: Option<&str>) -> Self {
        let mut form = DataForm::with_form_type(FormType::Form, LIBERVIA_LIST_NS);
        form.title = title.map(str::to_owned);
        form.fields
            .push(Field::new(LIBERVIA_LIST_TYPE_FIELD, kind).with_kind("hidden"));
        ListTemplate { form }
    }

    /// A grocery list: `name`, `quantity`, and `status` (`to_buy` or `bought`, default `to_buy`).
    pub fn grocery() -> Self {
        let mut t = ListTemplate::new("grocery", Some("Grocery List"));
        t.form.fields.extend([
            Field {
                required: true,
                ..field("name", None, "name")
            },
            field("quantity", None, "quantity"),
            choice(
                "status",
                "status",
                &[("to_buy", "to buy"), ("bought", "bought")],
                "to_buy",
            ),
        ]);
        t
    }

    /// A to-do list: title, author, created/updated dates, time limit, labels, status (`todo`,
    /// `in_progress`, `done`), priority (`major`, `normal`, `minor`), body and a comments node URI.
    pub fn todo() -> Self {
        let mut t = ListTemplate::new("todo", Some("TODO List"));
        t.form.fields.extend([
            Field {
                required: true,
                ..field("title", None, "title")
            },
            field("author", None, "author"),
            field("created", None, "created"),
            field("updated", None, "updated"),
            field("time_limit", None, "time limit"),
            field("labels", Some("text-multi"), "labels"),
            choice(
                "status",
                "status",
                &[
                    ("todo", "to do"),
                    ("in_progress", "in progress"),
                    ("done", "done"),
                ],
                "todo",
            ),
            choice(
                "priority",
                "priority",
                &[("major", "major"), ("normal", "normal"), ("minor", "minor")],
                "normal",
            ),
            field("body", Some("text-multi"), "body"),
            field("comments_uri", None, ""),
        ]);
        t
    }

    /// A ticket tracker: title, author, dates, labels, type (`bug`, `feature`), status (`queued`,
    /// `started`, `review`, `closed`), priority, body and a comments node URI.
    pub fn tickets() -> Self {
        let mut t = ListTemplate::new("tickets", Some("Tickets"));
        t.form.fields.extend([
            Field {
                required: true,
                ..field("title", None, "title")
            },
            field("author", None, "author"),
            field("created", None, "created"),
            field("updated", None, "updated"),
            field("labels", Some("text-multi"), "labels"),
            choice(
                "type",
                "type",
                &[("bug", "bug"), ("feature", "feature request")],
                "bug",
            ),
            choice(
                "status",
                "status",
                &[
                    ("queued", "queued"),
                    ("started", "started"),
                    ("review", "review"),
                    ("closed", "closed"),
                ],
                "queued",
            ),
            choice(
                "priority",
                "priority",
                &[("major", "major"), ("normal", "normal"), ("minor", "minor")],
                "normal",
            ),
            field("body", Some("text-multi"), "body"),
            field("comments_uri", None, ""),
        ]);
        t
    }

    /// A ready-made template by name: `grocery`, `todo` or `tickets`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "grocery" => Some(ListTemplate::grocery()),
            "todo" => Some(ListTemplate::todo()),
            "tickets" => Some(ListTemplate::tickets()),
            _ => None,
        }
    }

    /// The kind (Libervia's hidden type field), when set.
    pub fn kind(&self) -> Option<&str> {
        self.form.value(LIBERVIA_LIST_TYPE_FIELD)
    }

    /// The visible fields: the columns of the list.
    pub fn columns(&self) -> impl Iterator<Item = &Field> {
        self.form
            .fields
            .iter()
            .filter(|f| f.var.is_some() && f.kind.as_deref() != Some("hidden"))
    }

    /// Reads a template `<x xmlns='jabber:x:data'/>`.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        check_limits(el, "template nesting")?;
        Ok(ListTemplate {
            form: DataForm::parse(el)?,
        })
    }

    /// The template `<x/>` element.
    pub fn to_element(&self) -> Element {
        self.form.to_element()
    }

    /// Builds the submitted form of an entry: every template field with `values` applied over `base`
    /// (an existing entry being updated) over the template's defaults. Refuses unknown or hidden fields,
    /// values outside a list field's options, several values in a single-value field, bad booleans and
    /// missing required values. Lines of `text-multi` values become separate values.
    pub fn submission(
        &self,
        values: &ItemValues,
        base: Option<&DataForm>,
    ) -> Result<DataForm, Error> {
        for (var, _) in values.iter() {
            match self.form.field(var) {
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "the list has no field {var:?}"
                    )))
                }
                Some(f) if f.kind.as_deref() == Some("hidden") => {
                    return Err(Error::InvalidArgument(format!(
                        "field {var:?} is not to be set"
                    )))
                }
                Some(_) => {}
            }
        }
        let mut form = DataForm::new(FormType::Submit);
        for tf in &self.form.fields {
            let Some(var) = tf.var.as_deref() else {
                continue;
            };
            let mut vals: Vec<String> = match values.get(var) {
                Some(v) => v.to_vec(),
                None => match base.and_then(|b| b.field(var)) {
                    Some(bf) => bf.values.clone(),
                    None => tf.values.clone(),
                },
            };
            let kind = tf.kind.as_deref().unwrap_or("text-single");
            if kind == "text-multi" {
                vals = vals
                    .iter()
                    .flat_map(|v| v.lines().map(str::to_owned).collect::<Vec<_>>())
                    .collect();
            }
            check_values(tf, kind, &vals)?;
            form.fields.push(Field {
                var: Some(var.to_owned()),
                kind: tf.kind.clone(),
                values: vals,
                ..Field::default()
            });
        }
        Ok(form)
    }
}

fn check_values(f: &Field, kind: &str, vals: &[String]) -> Result<(), Error> {
    let var = f.var.as_deref().unwrap_or_default();
    let bad = |why: String| Err(Error::InvalidArgument(format!("field {var:?}: {why}")));
    if f.required && vals.iter().all(|v| v.trim().is_empty()) {
        return bad("a value is required".into());
    }
    let single = matches!(
        kind,
        "text-single" | "text-private" | "list-single" | "boolean" | "jid-single" | "hidden"
    );
    if single && vals.len() > 1 {
        return bad(format!("takes one value, got {}", vals.len()));
    }
    if kind.starts_with("list-") && !f.options.is_empty() {
        if let Some(v) = vals
            .iter()
            .find(|v| !f.options.iter().any(|o| o.value == **v))
        {
            let allowed: Vec<&str> = f.options.iter().map(|o| o.value.as_str()).collect();
            return bad(format!("{v:?} is not one of {allowed:?}"));
        }
    }
    if kind == "boolean" {
        if let Some(v) = vals
            .iter()
            .find(|v| !matches!(v.as_str(), "0" | "1" | "true" | "false"))
        {
            return bad(format!("{v:?} is not a boolean"));
        }
    }
    if kind.starts_with("jid-") {
        if let Some(v) = vals.iter().find(|v| Jid::new(v).is_err()) {
            return bad(format!("{v:?} is not a JID"));
        }
    }
    Ok(())
}

/// One entry of a list (a submitted form).
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    /// The item id.
    pub id: String,
    /// The publisher, when the service exposes it.
    pub publisher: Option<Jid>,
    /// The submitted form.
    pub form: DataForm,
}

impl ListEntry {
    /// Reads a submitted-node item.
    pub fn from_item(item: &Item) -> Result<Self, ParseError> {
        let payload = item.payload.as_ref().ok_or(ParseError::MissingChild {
            element: "item",
            child: "x",
        })?;
        crate::xml::expect_element(payload, NS_DATA, "x")?;
        check_limits(payload, "entry nesting")?;
        Ok(ListEntry {
            id: item.id.clone(),
            publisher: item.publisher.clone(),
            form: DataForm::parse(payload)?,
        })
    }

    /// The first value of a field.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.form.value(var)
    }

    /// Every value of a field.
    pub fn values(&self, var: &str) -> &[String] {
        self.form
            .field(var)
            .map(|f| f.values.as_slice())
            .unwrap_or_default()
    }
}

impl Serialize for ListEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Fields<'a>(&'a [Field]);
        impl Serialize for Fields<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(
                    self.0
                        .iter()
                        .filter(|f| f.kind.as_deref() != Some("hidden"))
                        .filter_map(|f| f.var.as_deref().map(|v| (v, &f.values))),
                )
            }
        }
        #[derive(Serialize)]
        struct Json<'a> {
            id: &'a str,
            #[serde(
                serialize_with = "ser_opt_jid",
                skip_serializing_if = "Option::is_none"
            )]
            publisher: &'a Option<Jid>,
            fields: Fields<'a>,
        }
        Json {
            id: &self.id,
            publisher: &self.publisher,
            fields: Fields(&self.form.fields),
        }
        .serialize(s)
    }
}

/// An item of a submitted node that is not a valid entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidEntry {
    /// The item id.
    pub id: String,
    /// What was wrong.
    #[serde(serialize_with = "ser_parse_error")]
    pub error: ParseError,
}

fn ser_parse_error<S: Serializer>(e: &ParseError, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// A list as read: its template, its entries and the items that were not entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListView {
    /// The list.
    pub list: ListRef,
    /// The template (`None` when the template node has none).
    pub template: Option<ListTemplate>,
    /// The entries, in the service's order.
    pub entries: Vec<ListEntry>,
    /// Items that are not entries.
    pub invalid: Vec<InvalidEntry>,
}

impl ListView {
    /// Builds a view from submitted-node items.
    pub fn from_items(list: ListRef, template: Option<ListTemplate>, items: &[Item]) -> Self {
        let mut view = ListView {
            list,
            template,
            entries: Vec::new(),
            invalid: Vec::new(),
        };
        for item in items {
            match ListEntry::from_item(item) {
                Ok(e) => view.entries.push(e),
                Err(error) => view.invalid.push(InvalidEntry {
                    id: item.id.clone(),
                    error,
                }),
            }
        }
        view
    }

    /// The entry with this id.
    pub fn entry(&self, id: &str) -> Option<&ListEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Entries whose field `var` has the value `value`.
    pub fn entries_where<'a>(
        &'a self,
        var: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = &'a ListEntry> {
        self.entries
            .iter()
            .filter(move |e| e.values(var).iter().any(|v| v == value))
    }

    /// The list as one XEP-0004 multi-item result: `<reported/>` holds the template's visible fields
    /// (or, without template, every visible field seen), and one `<item/>` per entry.
    pub fn to_data_form(&self) -> DataForm {
        let mut form = DataForm::new(FormType::Result);
        let columns: Vec<Field> = match &self.template {
            Some(t) => {
                form.title = t.form.title.clone();
                t.columns()
                    .map(|f| Field {
                        var: f.var.clone(),
                        kind: f.kind.clone(),
                        label: f.label.clone(),
                        ..Field::default()
                    })
                    .collect()
            }
            None => {
                let mut cols: Vec<Field> = Vec::new();
                for f in self.entries.iter().flat_map(|e| e.form.fields.iter()) {
                    let visible = f.var.is_some() && f.kind.as_deref() != Some("hidden");
                    if visible && !cols.iter().any(|c| c.var == f.var) {
                        cols.push(Field {
                            var: f.var.clone(),
                            kind: f.kind.clone(),
                            ..Field::default()
                        });
                    }
                }
                cols
            }
        };
        for e in &self.entries {
            form.items.push(
                columns
                    .iter()
                    .map(|c| Field {
                        var: c.var.clone(),
                        values: c
                            .var
                            .as_deref()
                            .map(|v| e.values(v).to_vec())
                            .unwrap_or_default(),
                        ..Field::default()
                    })
                    .collect(),
            );
        }
        form.reported = columns;
        form
    }
}

/// A node found by discovery, as a list (XEP-0346 §Listing available templates).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoundList {
    /// The list.
    pub list: ListRef,
    /// The disco item's `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The service holding it (the disco item's `jid`).
    #[serde(serialize_with = "ser_jid")]
    pub jid: Jid,
}

/// Reads the lists of a `disco#items` result: one per template node (`fdp/template/...`).
pub fn lists_from_disco_items(query: &Element) -> Result<Vec<FoundList>, ParseError> {
    const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";
    crate::xml::expect_element(query, NS_ITEMS, "query")?;
    let mut out = Vec::new();
    for item in query.children().filter(|c| c.is("item", NS_ITEMS)) {
        let (Some(jid), Some(node)) = (item.attr("jid"), item.attr("node")) else {
            continue;
        };
        if !node.starts_with(TEMPLATE_PREFIX) {
            continue;
        }
        let jid = crate::util::parse_jid("item@jid", jid)?;
        if let Some(list) = ListRef::from_node(jid.clone(), node) {
            crate::util::push_bounded(
                &mut out,
                FoundList {
                    list,
                    name: item.attr("name").map(str::to_owned),
                    jid,
                },
                "disco items",
            )?;
        }
    }
    Ok(out)
}
