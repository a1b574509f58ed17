//! JSON rendering of a [`Report`]; the schema is documented in docs/json.md.

use crate::schema::Report;

pub fn render<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
}

/// The report of a run as JSON.
pub fn report(r: &Report) -> String {
    render(r)
}
