//! XEP-0004 Data Forms, including `<reported/>` and `<item/>` (multi-item results) which xmpp-parsers lacks.
//!
//! Used for pubsub node configuration and publish-options, and by list templates (XEP-0346).

use minidom::Element;

use crate::error::ParseError;
use crate::xml::{expect_element, BuilderExt};

/// `jabber:x:data`.
pub const NS_DATA: &str = "jabber:x:data";

/// Most fields a form may carry; more is refused as hostile.
pub const MAX_FIELDS: usize = 1024;
/// Most values a field, or items a form, may carry.
pub const MAX_VALUES: usize = 10_000;

/// The `type` of a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormType {
    /// A form to fill in.
    Form,
    /// A filled-in form.
    Submit,
    /// A cancelled form.
    Cancel,
    /// Data returned.
    Result,
}

impl FormType {
    fn as_str(self) -> &'static str {
        match self {
            FormType::Form => "form",
            FormType::Submit => "submit",
            FormType::Cancel => "cancel",
            FormType::Result => "result",
        }
    }
}

/// One `<option/>` of a list field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldOption {
    /// Human-readable label.
    pub label: Option<String>,
    /// The value.
    pub value: String,
}

/// One `<field/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Field {
    /// `var`: the field's name (absent only on `fixed` fields).
    pub var: Option<String>,
    /// `type` (`text-single`, `list-multi`, `boolean`...), as written.
    pub kind: Option<String>,
    /// Human-readable label.
    pub label: Option<String>,
    /// Description.
    pub desc: Option<String>,
    /// Whether the field is required.
    pub required: bool,
    /// Values, in order.
    pub values: Vec<String>,
    /// Options of list fields.
    pub options: Vec<FieldOption>,
}

impl Field {
    /// A field with one value.
    pub fn new(var: impl Into<String>, value: impl Into<String>) -> Self {
        Field {
            var: Some(var.into()),
            values: vec![value.into()],
            ..Field::default()
        }
    }

    /// A field with several values.
    pub fn multi(var: impl Into<String>, values: Vec<String>) -> Self {
        Field {
            var: Some(var.into()),
            values,
            ..Field::default()
        }
    }

    /// The same field with a `type`.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// The first value.
    pub fn value(&self) -> Option<&str> {
        self.values.first().map(String::as_str)
    }

    fn parse(el: &Element) -> Result<Field, ParseError> {
        let mut f = Field {
            var: el.attr("var").map(str::to_owned),
            kind: el.attr("type").map(str::to_owned),
            label: el.attr("label").map(str::to_owned),
            ..Field::default()
        };
        for c in el.children() {
            if c.ns() != NS_DATA {
                continue;
            }
            match c.name() {
                "value" => {
                    if f.values.len() >= MAX_VALUES {
                        return Err(too_many("field values"));
                    }
                    f.values.push(c.text())
                }
                "desc" => f.desc = Some(c.text()),
                "required" => f.required = true,
                "option" => {
                    if f.options.len() >= MAX_VALUES {
                        return Err(too_many("field options"));
                    }
                    f.options.push(FieldOption {
                        label: c.attr("label").map(str::to_owned),
                        value: c
                            .get_child("value", NS_DATA)
                            .map(Element::text)
                            .unwrap_or_default(),
                    })
                }
                _ => {}
            }
        }
        Ok(f)
    }

    fn to_element(&self) -> Element {
        let mut b = Element::builder("field", NS_DATA)
            .a_opt("var", self.var.clone())
            .a_opt("type", self.kind.clone())
            .a_opt("label", self.label.clone());
        if let Some(d) = &self.desc {
            b = b.append(Element::builder("desc", NS_DATA).append(d.as_str()).build());
        }
        if self.required {
            b = b.append(Element::builder("required", NS_DATA).build());
        }
        for v in &self.values {
            b = b.append(
                Element::builder("value", NS_DATA)
                    .append(v.as_str())
                    .build(),
            );
        }
        for o in &self.options {
            b = b.append(
                Element::builder("option", NS_DATA)
                    .a_opt("label", o.label.clone())
                    .append(
                        Element::builder("value", NS_DATA)
                            .append(o.value.as_str())
                            .build(),
                    )
                    .build(),
            );
        }
        b.build()
    }
}

fn too_many(what: &'static str) -> ParseError {
    ParseError::TooLarge {
        element: what,
        size: MAX_VALUES + 1,
        limit: MAX_VALUES,
    }
}

/// A data form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataForm {
    /// The form's type.
    pub kind: FormType,
    /// `<title/>`.
    pub title: Option<String>,
    /// `<instructions/>` (one string per element).
    pub instructions: Vec<String>,
    /// The fields, in order, including the hidden `FORM_TYPE` field if any.
    pub fields: Vec<Field>,
    /// `<reported/>`: the columns of a multi-item result.
    pub reported: Vec<Field>,
    /// `<item/>`s of a multi-item result, each a list of fields.
    pub items: Vec<Vec<Field>>,
}

impl DataForm {
    /// An empty form of this type.
    pub fn new(kind: FormType) -> Self {
        DataForm {
            kind,
            title: None,
            instructions: Vec::new(),
            fields: Vec::new(),
            reported: Vec::new(),
            items: Vec::new(),
        }
    }

    /// A form whose first field is the hidden `FORM_TYPE` with this value.
    pub fn with_form_type(kind: FormType, form_type: &str) -> Self {
        let mut f = DataForm::new(kind);
        f.fields
            .push(Field::new("FORM_TYPE", form_type).with_kind("hidden"));
        f
    }

    /// The value of the `FORM_TYPE` field.
    pub fn form_type(&self) -> Option<&str> {
        self.field("FORM_TYPE").and_then(Field::value)
    }

    /// The field named `var`.
    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var.as_deref() == Some(var))
    }

    /// The first value of the field named `var`.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.field(var).and_then(Field::value)
    }

    /// Sets (replacing) a field's values.
    pub fn set(&mut self, var: &str, values: Vec<String>) {
        match self
            .fields
            .iter_mut()
            .find(|f| f.var.as_deref() == Some(var))
        {
            Some(f) => f.values = values,
            None => self.fields.push(Field::multi(var, values)),
        }
    }

    /// Parses `<x xmlns='jabber:x:data'/>`.
    pub fn parse(el: &Element) -> Result<DataForm, ParseError> {
        expect_element(el, NS_DATA, "x")?;
        let kind = match el.attr("type") {
            Some("form") => FormType::Form,
            Some("submit") => FormType::Submit,
            Some("cancel") => FormType::Cancel,
            Some("result") => FormType::Result,
            Some(other) => {
                return Err(ParseError::InvalidValue {
                    element: "x@type",
                    reason: format!("unknown form type {other:?}"),
                })
            }
            None => {
                return Err(ParseError::MissingAttribute {
                    element: "x",
                    attribute: "type",
                })
            }
        };
        let mut form = DataForm::new(kind);
        let fields_of = |parent: &Element| -> Result<Vec<Field>, ParseError> {
            let mut v = Vec::new();
            for c in parent.children().filter(|c| c.is("field", NS_DATA)) {
                if v.len() >= MAX_FIELDS {
                    return Err(ParseError::TooLarge {
                        element: "x fields",
                        size: MAX_FIELDS + 1,
                        limit: MAX_FIELDS,
                    });
                }
                v.push(Field::parse(c)?);
            }
            Ok(v)
        };
        form.fields = fields_of(el)?;
        for c in el.children().filter(|c| c.ns() == NS_DATA) {
            match c.name() {
                "title" => form.title = Some(c.text()),
                "instructions" => form.instructions.push(c.text()),
                "reported" => form.reported = fields_of(c)?,
                "item" => {
                    if form.items.len() >= MAX_VALUES {
                        return Err(too_many("form items"));
                    }
                    form.items.push(fields_of(c)?)
                }
                _ => {}
            }
        }
        Ok(form)
    }

    /// Serialises to `<x xmlns='jabber:x:data'/>`.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("x", NS_DATA).a("type", self.kind.as_str());
        if let Some(t) = &self.title {
            b = b.append(
                Element::builder("title", NS_DATA)
                    .append(t.as_str())
                    .build(),
            );
        }
        for i in &self.instructions {
            b = b.append(
                Element::builder("instructions", NS_DATA)
                    .append(i.as_str())
                    .build(),
            );
        }
        if !self.reported.is_empty() {
            b = b.append(
                Element::builder("reported", NS_DATA)
                    .append_all(self.reported.iter().map(Field::to_element))
                    .build(),
            );
        }
        for item in &self.items {
            b = b.append(
                Element::builder("item", NS_DATA)
                    .append_all(item.iter().map(Field::to_element))
                    .build(),
            );
        }
        b.append_all(self.fields.iter().map(Field::to_element))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_multi_item_result() {
        // XEP-0004 example 8 (shape): reported fields and items.
        let xml = "<x xmlns='jabber:x:data' type='result'><title>Search</title>\
            <reported><field var='name' label='Name'/><field var='url'/></reported>\
            <item><field var='name'><value>Comune di Verona</value></field><field var='url'><value>xmpp:conference.example</value></field></item>\
            <item><field var='name'><value>Other</value></field><field var='url'><value>xmpp:b</value></field></item></x>";
        let el: Element = xml.parse().expect("xml");
        let form = DataForm::parse(&el).expect("form");
        assert_eq!(form.reported.len(), 2);
        assert_eq!(form.items.len(), 2);
        assert_eq!(form.items[0][0].value(), Some("Comune di Verona"));
        let again = DataForm::parse(&form.to_element()).expect("reparse");
        assert_eq!(form, again);
    }

    #[test]
    fn refuses_bad_type() {
        let el: Element = "<x xmlns='jabber:x:data' type='bogus'/>"
            .parse()
            .expect("xml");
        assert!(DataForm::parse(&el).is_err());
        let el: Element = "<x xmlns='jabber:x:data'/>".parse().expect("xml");
        assert!(DataForm::parse(&el).is_err());
    }
}
