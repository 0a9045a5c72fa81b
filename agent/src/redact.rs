//! How a template's Vault requests appear in logs, error messages and metric
//! labels.
//!
//! A path written as a string constant in a template is configuration: it is
//! shown, up to any `?` or whitespace (request arguments, which may hold
//! values). A path computed while rendering, as in
//! `{{ with secret .Data.data.path }}` or `{{ secret (env "DB_PATH") }}`, may
//! be a secret itself: it is shown only as the place in the template that
//! computed it. Vault's error messages can repeat the path and a write's
//! parameters, so they are withheld for computed paths and for writes with
//! parameters; the method, the HTTP status and the path as shown here remain.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::template::{Request, VaultCall, VaultFunction};
use crate::vault;

/// A Vault request as it may be shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownPath {
    /// What is shown in place of the path.
    label: String,
    /// Whether the path was computed while rendering.
    computed: bool,
    /// Whether the request is a write with parameters.
    parameters: bool,
}

impl ShownPath {
    /// `request`, whose path a template wrote as a string constant.
    pub fn literal(request: &Request) -> Self {
        let path = request.path();
        let end = path
            .find(|c: char| c == '?' || c.is_whitespace())
            .unwrap_or(path.len());
        Self {
            label: path[..end].trim_matches('/').to_owned(),
            computed: false,
            parameters: has_parameters(request),
        }
    }

    /// `request`, whose path was computed while rendering the template named
    /// `template`. `computed` are that template's calls with a computed path:
    /// when only one of them can have made the request, its position is shown.
    pub fn computed(request: &Request, template: &str, computed: &[VaultCall]) -> Self {
        let mut candidates = computed.iter().filter(|call| makes(call.function, request));
        let label = match (candidates.next(), candidates.next()) {
            (Some(call), None) => {
                format!(
                    "<computed path at {template}:{}:{}>",
                    call.line, call.column
                )
            }
            _ => format!("<computed path in {template}>"),
        };
        Self {
            label,
            computed: true,
            parameters: has_parameters(request),
        }
    }

    /// The text shown in place of the path.
    pub fn as_str(&self) -> &str {
        &self.label
    }

    /// `err`, returned for this request, as it may be shown: a computed
    /// path replaced by this label, Vault's messages withheld when they may
    /// repeat the path or the parameters.
    pub fn request_error(&self, err: vault::Error) -> vault::Error {
        let err = if self.computed {
            err.with_path(&self.label)
        } else {
            err
        };
        if self.computed || self.parameters {
            err.without_vault_messages()
        } else {
            err
        }
    }

    /// `err`, returned when renewing or revoking this request's lease, as it
    /// may be shown. The lease id begins with the request's path, so Vault's
    /// messages, which may repeat it, are withheld for a computed path.
    pub fn lease_error(&self, err: vault::Error) -> vault::Error {
        if self.computed {
            err.without_vault_messages()
        } else {
            err
        }
    }
}

impl fmt::Display for ShownPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

fn has_parameters(request: &Request) -> bool {
    matches!(request, Request::Write { data, .. } | Request::PkiCert { data, .. } if !data.is_empty())
}

/// Whether a call of `function` can make `request`.
fn makes(function: VaultFunction, request: &Request) -> bool {
    match request {
        Request::Read { .. } => function == VaultFunction::Secret,
        Request::Write { .. } => function == VaultFunction::Secret,
        Request::PkiCert { .. } => function == VaultFunction::PkiCert,
        Request::List { .. } => function == VaultFunction::Secrets,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hyper::{Method, StatusCode};

    use super::*;
    use crate::template::Template;

    fn read(path: &str) -> Request {
        Request::Read {
            path: path.to_owned(),
        }
    }

    fn write(path: &str, data: &[(&str, &str)]) -> Request {
        Request::Write {
            path: path.to_owned(),
            data: data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn computed_calls(text: &str) -> Vec<VaultCall> {
        Template::parse("t", text, "", "")
            .expect("parses")
            .vault_calls()
            .into_iter()
            .filter(|call| call.path.is_none())
            .collect()
    }

    /// A 400 as OpenBao's PKI engine answers a bad parameter, repeating it.
    fn echoing_error(path: &str) -> vault::Error {
        vault::Error::Status {
            method: Method::PUT,
            path: path.to_owned(),
            status: StatusCode::BAD_REQUEST,
            errors: vec!["common name hunter2.example not allowed by this role".to_owned()],
            withheld: false,
        }
    }

    #[test]
    fn literal_paths_are_shown_without_arguments() {
        assert_eq!(
            ShownPath::literal(&read("/secret/data/app/")).as_str(),
            "secret/data/app"
        );
        assert_eq!(
            ShownPath::literal(&read("pki/issue/web?common_name=internal.example.com")).as_str(),
            "pki/issue/web"
        );
        assert_eq!(
            ShownPath::literal(&read("aws/sts/deploy ttl=15m")).as_str(),
            "aws/sts/deploy"
        );
    }

    #[test]
    fn computed_paths_are_shown_as_the_place_that_computed_them() {
        let calls = computed_calls(
            "{{ with secret \"kv/app\" }}\n  {{ with secret .Data.path }}{{ end }}{{ end }}\
             {{ range secrets (env \"LIST\") }}{{ end }}",
        );
        let request = read("kv/hunter2");
        assert_eq!(
            ShownPath::computed(&request, "/vault/secrets/db", &calls).to_string(),
            "<computed path at /vault/secrets/db:2:11>"
        );
        let both = computed_calls("{{ secret .A }}{{ secret .B }}");
        assert_eq!(
            ShownPath::computed(&request, "/vault/secrets/db", &both).to_string(),
            "<computed path in /vault/secrets/db>"
        );
    }

    #[test]
    fn errors_for_computed_paths_show_neither_path_nor_vaults_messages() {
        let shown = ShownPath::computed(&read("kv/hunter2"), "/vault/secrets/db", &[]);
        let err = shown.request_error(vault::Error::Status {
            method: Method::GET,
            path: "kv/data/hunter2".to_owned(),
            status: StatusCode::NOT_FOUND,
            errors: vec!["no handler for route \"kv/data/hunter2\"".to_owned()],
            withheld: false,
        });
        assert_eq!(
            err.to_string(),
            "GET <computed path in /vault/secrets/db>: no secret at this path, \
             Vault's message withheld (HTTP 404)"
        );
    }

    #[test]
    fn errors_for_writes_with_parameters_withhold_vaults_messages() {
        let request = write("pki/issue/web", &[("common_name", "hunter2.example")]);
        let err = ShownPath::literal(&request).request_error(echoing_error("pki/issue/web"));
        assert_eq!(
            err.to_string(),
            "PUT pki/issue/web: Bad Request, Vault's message withheld (HTTP 400)"
        );
        let plain = ShownPath::literal(&read("pki/issue/web"));
        assert!(
            plain
                .request_error(echoing_error("pki/issue/web"))
                .to_string()
                .contains("not allowed by this role"),
            "a request without parameters keeps Vault's message"
        );
    }

    #[test]
    fn lease_errors_withhold_vaults_messages_for_computed_paths() {
        let computed = ShownPath::computed(&read("kv/hunter2"), "/d", &[]);
        let literal = ShownPath::literal(&read("database/creds/app"));
        let renewal = || vault::Error::Status {
            method: Method::PUT,
            path: "sys/leases/renew".to_owned(),
            status: StatusCode::BAD_REQUEST,
            errors: vec!["lease kv/hunter2/abc not found".to_owned()],
            withheld: false,
        };
        assert_eq!(
            computed.lease_error(renewal()).to_string(),
            "PUT sys/leases/renew: Bad Request, Vault's message withheld (HTTP 400)"
        );
        assert!(
            literal
                .lease_error(renewal())
                .to_string()
                .contains("not found")
        );
    }
}
