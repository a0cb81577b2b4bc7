//! Errors of the `xmpp-social` crate.

use std::time::Duration;

use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

/// Why a piece of XML could not be turned into a typed value.
///
/// Every parser of this crate returns this for malformed, oversized or hostile input; none panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The element has another name or namespace than the one expected.
    #[error("expected <{expected}/>, found <{found}/>")]
    WrongElement {
        /// `{namespace}name` that was expected.
        expected: String,
        /// `{namespace}name` that was found.
        found: String,
    },
    /// A required child element is missing.
    #[error("<{element}/> lacks the required <{child}/>")]
    MissingChild {
        /// The parent element.
        element: &'static str,
        /// The missing child.
        child: &'static str,
    },
    /// A required attribute is missing.
    #[error("<{element}/> lacks the required '{attribute}' attribute")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The missing attribute.
        attribute: &'static str,
    },
    /// A value is present but not valid (bad date, bad JID, unknown enumeration value...).
    #[error("invalid value in <{element}/>: {reason}")]
    InvalidValue {
        /// The element (or `element@attribute`).
        element: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The input is larger than this crate accepts.
    #[error("<{element}/> is too large: {size} > {limit}")]
    TooLarge {
        /// The element.
        element: &'static str,
        /// The size found (bytes or count, as the element's limit says).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The text is not well-formed XML.
    #[error("malformed XML: {0}")]
    Xml(String),
}

/// Errors returned by the `xmpp-social` crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stanza or payload could not be parsed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The peer answered an IQ with an error.
    #[error("the peer answered with an error: {}", describe_stanza_error(.0))]
    Stanza(Box<StanzaError>),
    /// No answer to an IQ came within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection is closed or could not be established.
    #[error("connection: {0}")]
    Connection(String),
    /// The connection was asked to do something it refuses (plaintext to a non-loopback host...).
    #[error("refused: {0}")]
    Refused(String),
    /// The server does not offer what the operation needs.
    #[error("unsupported by the server: {0}")]
    Unsupported(String),
    /// A caller-supplied argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// The stanza error if the peer answered with one.
    pub fn stanza_error(&self) -> Option<&StanzaError> {
        match self {
            Error::Stanza(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the peer answered with this defined condition.
    pub fn is_condition(&self, condition: DefinedCondition) -> bool {
        self.stanza_error()
            .is_some_and(|e| e.defined_condition == condition)
    }

    /// Whether the peer answered with `<item-not-found/>`.
    pub fn is_item_not_found(&self) -> bool {
        self.is_condition(DefinedCondition::ItemNotFound)
    }
}

impl From<StanzaError> for Error {
    fn from(e: StanzaError) -> Self {
        Error::Stanza(Box::new(e))
    }
}

fn describe_stanza_error(e: &StanzaError) -> String {
    let mut s = format!("{:?}", e.defined_condition);
    if let Some(other) = &e.other {
        s.push_str(&format!(" ({})", other.name()));
    }
    if let Some((_, text)) = e.texts.iter().next() {
        s.push_str(&format!(": {text}"));
    }
    s
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
