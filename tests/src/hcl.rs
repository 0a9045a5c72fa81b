//! Strings in HCL config files. HCL reads JSON's string syntax, so any value, a path or
//! a template with quotes and newlines, is written quoted by serde_json.

use std::path::Path;

/// `s` as an HCL string.
pub(crate) fn hcl(s: impl AsRef<str>) -> String {
    serde_json::to_string(s.as_ref()).expect("a string serialises")
}

/// `path` as an HCL string.
pub(crate) fn hcl_path(path: &Path) -> String {
    hcl(path.display().to_string())
}

/// `items` as an HCL list of strings.
pub(crate) fn hcl_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(hcl).collect();
    format!("[{}]", items.join(", "))
}
