//! Node configuration (XEP-0060 §8.2) and publish-options (§7.1.5) as typed settings over a data form.

use crate::forms::{DataForm, Field, FormType};

/// `pubsub#access_model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessModel {
    /// Anyone may subscribe and retrieve.
    Open,
    /// Contacts with a presence subscription.
    Presence,
    /// Contacts in given roster groups.
    Roster,
    /// The owner approves subscriptions.
    Authorize,
    /// Only JIDs on a whitelist.
    Whitelist,
}

impl AccessModel {
    /// The protocol string.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessModel::Open => "open",
            AccessModel::Presence => "presence",
            AccessModel::Roster => "roster",
            AccessModel::Authorize => "authorize",
            AccessModel::Whitelist => "whitelist",
        }
    }

    /// Parses the protocol string.
    pub fn from_protocol(s: &str) -> Option<Self> {
        Some(match s {
            "open" => AccessModel::Open,
            "presence" => AccessModel::Presence,
            "roster" => AccessModel::Roster,
            "authorize" => AccessModel::Authorize,
            "whitelist" => AccessModel::Whitelist,
            _ => return None,
        })
    }
}

/// `pubsub#publish_model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishModel {
    /// Only publishers (and owners).
    Publishers,
    /// Subscribers too.
    Subscribers,
    /// Anyone.
    Open,
}

impl PublishModel {
    /// The protocol string.
    pub fn as_str(self) -> &'static str {
        match self {
            PublishModel::Publishers => "publishers",
            PublishModel::Subscribers => "subscribers",
            PublishModel::Open => "open",
        }
    }

    /// Parses the protocol string.
    pub fn from_protocol(s: &str) -> Option<Self> {
        Some(match s {
            "publishers" => PublishModel::Publishers,
            "subscribers" => PublishModel::Subscribers,
            "open" => PublishModel::Open,
            _ => return None,
        })
    }
}

/// `pubsub#max_items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxItems {
    /// `max`: as many as the service allows.
    Max,
    /// A number.
    Count(u32),
}

/// Node settings: `pubsub#...` fields in order. Unknown fields are kept as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeConfig {
    fields: Vec<Field>,
}

impl NodeConfig {
    /// No settings.
    pub fn new() -> Self {
        NodeConfig::default()
    }

    /// Sets a field (full `var`, e.g. `pubsub#title`) to one value.
    pub fn set(mut self, var: &str, value: impl Into<String>) -> Self {
        self.insert(var, vec![value.into()]);
        self
    }

    /// Sets a field to several values.
    pub fn set_multi(mut self, var: &str, values: Vec<String>) -> Self {
        self.insert(var, values);
        self
    }

    fn insert(&mut self, var: &str, values: Vec<String>) {
        match self
            .fields
            .iter_mut()
            .find(|f| f.var.as_deref() == Some(var))
        {
            Some(f) => f.values = values,
            None => self.fields.push(Field::multi(var, values)),
        }
    }

    /// `pubsub#access_model`.
    pub fn access_model(self, m: AccessModel) -> Self {
        self.set("pubsub#access_model", m.as_str())
    }

    /// `pubsub#publish_model`.
    pub fn publish_model(self, m: PublishModel) -> Self {
        self.set("pubsub#publish_model", m.as_str())
    }

    /// `pubsub#max_items`.
    pub fn max_items(self, m: MaxItems) -> Self {
        let v = match m {
            MaxItems::Max => "max".to_owned(),
            MaxItems::Count(n) => n.to_string(),
        };
        self.set("pubsub#max_items", v)
    }

    /// `pubsub#persist_items`.
    pub fn persist_items(self, b: bool) -> Self {
        self.set("pubsub#persist_items", bool_str(b))
    }

    /// `pubsub#notify_retract`.
    pub fn notify_retract(self, b: bool) -> Self {
        self.set("pubsub#notify_retract", bool_str(b))
    }

    /// `pubsub#deliver_payloads`.
    pub fn deliver_payloads(self, b: bool) -> Self {
        self.set("pubsub#deliver_payloads", bool_str(b))
    }

    /// `pubsub#send_last_published_item` (`never`, `on_sub`, `on_sub_and_presence`).
    pub fn send_last_published_item(self, v: &str) -> Self {
        self.set("pubsub#send_last_published_item", v)
    }

    /// `pubsub#title`.
    pub fn title(self, t: impl Into<String>) -> Self {
        self.set("pubsub#title", t)
    }

    /// `pubsub#type`: the payload namespace.
    pub fn payload_type(self, ns: impl Into<String>) -> Self {
        self.set("pubsub#type", ns)
    }

    /// The first value of a field.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.var.as_deref() == Some(var))
            .and_then(Field::value)
    }

    /// The access model, if set and known.
    pub fn get_access_model(&self) -> Option<AccessModel> {
        self.get("pubsub#access_model")
            .and_then(AccessModel::from_protocol)
    }

    /// The publish model, if set and known.
    pub fn get_publish_model(&self) -> Option<PublishModel> {
        self.get("pubsub#publish_model")
            .and_then(PublishModel::from_protocol)
    }

    /// `pubsub#max_items`, if set and valid.
    pub fn get_max_items(&self) -> Option<MaxItems> {
        match self.get("pubsub#max_items")? {
            "max" => Some(MaxItems::Max),
            n => n.trim().parse().ok().map(MaxItems::Count),
        }
    }

    /// Iterates over `(var, values)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.fields
            .iter()
            .filter_map(|f| f.var.as_deref().map(|v| (v, f.values.as_slice())))
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// This configuration without the given fields.
    pub fn without(&self, vars: &[&str]) -> NodeConfig {
        NodeConfig {
            fields: self
                .fields
                .iter()
                .filter(|f| !vars.contains(&f.var.as_deref().unwrap_or("")))
                .cloned()
                .collect(),
        }
    }

    /// A `submit` form with the given FORM_TYPE.
    pub fn to_form(&self, form_type: &str) -> DataForm {
        let mut form = DataForm::with_form_type(FormType::Submit, form_type);
        form.fields.extend(
            self.fields
                .iter()
                .filter(|f| f.var.as_deref() != Some("FORM_TYPE"))
                .map(|f| Field {
                    kind: None,
                    options: Vec::new(),
                    label: None,
                    desc: None,
                    required: false,
                    ..f.clone()
                }),
        );
        form
    }

    /// Reads the fields of a configuration form (without FORM_TYPE and `fixed` fields).
    pub fn from_form(form: &DataForm) -> NodeConfig {
        NodeConfig {
            fields: form
                .fields
                .iter()
                .filter(|f| {
                    f.var.is_some()
                        && f.var.as_deref() != Some("FORM_TYPE")
                        && f.kind.as_deref() != Some("fixed")
                })
                .cloned()
                .collect(),
        }
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}
