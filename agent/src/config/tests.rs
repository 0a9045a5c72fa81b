//! Tests of the whole parser: fixtures under `tests/data/config/` (each also
//! accepted by the real `bao agent`), error messages, defaults, the
//! `VAULT_ADDR` override and the JSON round trip.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/config")
        .join(name)
}

fn fixture(name: &str) -> AgentConfig {
    AgentConfig::from_file(&fixture_path(name)).expect("fixture parses")
}

fn hcl_error(text: &str) -> String {
    AgentConfig::from_hcl(text)
        .expect_err("config is rejected")
        .to_string()
}

fn json_error(text: &str) -> String {
    AgentConfig::from_json(text)
        .expect_err("config is rejected")
        .to_string()
}

/// A valid config around `rest`, so each error test shows only what matters.
fn with_auth(rest: &str) -> String {
    format!(
        r#"
        auto_auth {{
          method "token_file" {{
            config = {{ token_file_path = "/t" }}
          }}
          sink "file" {{
            config = {{ path = "/s" }}
          }}
        }}
        {rest}
        "#
    )
}

fn template(destination: &str, contents: &str) -> Template {
    Template::new(
        PathBuf::from(destination),
        TemplateSource::Contents(contents.to_owned()),
    )
}

fn method(kind: MethodKind, mount_path: &str) -> Method {
    Method {
        kind,
        mount_path: mount_path.to_owned(),
        namespace: None,
        min_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(300),
        exit_on_err: false,
        wrap_ttl: None,
    }
}

fn argv(args: &[&str]) -> Option<Vec<String>> {
    Some(args.iter().map(|a| (*a).to_owned()).collect())
}

const DEFAULT_TEMPLATE_CONFIG: TemplateConfig = TemplateConfig {
    exit_on_retry_failure: false,
    static_secret_render_interval: Duration::from_secs(300),
};

fn local_vault(num_retries: u32) -> Vault {
    Vault {
        address: Some("http://127.0.0.1:8200".to_owned()),
        num_retries,
        ..Vault::default()
    }
}

#[test]
fn reads_kubernetes_fixture() {
    let expected = AgentConfig {
        supervisor: None,
        vault: local_vault(5),
        auto_auth: Some(AutoAuth {
            method: method(
                MethodKind::Kubernetes {
                    role: "app".to_owned(),
                    token_path: PathBuf::from(
                        "/var/run/secrets/kubernetes.io/serviceaccount/token",
                    ),
                },
                "auth/k8s-prod",
            ),
            sinks: vec![Sink {
                path: PathBuf::from("/vault/run/token"),
                mode: 0o600,
                wrap_ttl: None,
                encryption: None,
            }],
        }),
        templates: vec![Template {
            perms: 0o600,
            ..template(
                "/vault/secrets/db",
                "{{ with secret \"secret/data/db\" }}{{ .Data.data.password }}{{ end }}\n",
            )
        }],
        template_config: DEFAULT_TEMPLATE_CONFIG,
        exit_after_auth: true,
        pid_file: Some(PathBuf::from("/vault/run/agent.pid")),
        keyhole: Keyhole::default(),
        listen: Listen::default(),
        log: Logging::default(),
        connections: Connections::default(),
        telemetry: Telemetry::default(),
    };
    assert_eq!(fixture("kubernetes.hcl"), expected);
    assert_eq!(fixture("kubernetes.json"), expected);
}

#[test]
fn reads_jwt_fixture() {
    let expected = AgentConfig {
        supervisor: None,
        vault: local_vault(12),
        auto_auth: Some(AutoAuth {
            method: Method {
                min_backoff: Duration::from_millis(250),
                max_backoff: Duration::from_secs(60),
                exit_on_err: true,
                ..method(
                    MethodKind::Jwt {
                        role: "app".to_owned(),
                        path: PathBuf::from("/vault/run/jwt"),
                        remove_jwt_after_reading: false,
                    },
                    "auth/jwt",
                )
            },
            sinks: vec![],
        }),
        templates: vec![Template {
            source: TemplateSource::File(PathBuf::from("/vault/templates/config.json.tmpl")),
            error_on_missing_key: true,
            create_dest_dirs: false,
            ..template("/vault/secrets/config.json", "")
        }],
        template_config: TemplateConfig {
            exit_on_retry_failure: true,
            static_secret_render_interval: Duration::from_secs(5400),
        },
        exit_after_auth: false,
        pid_file: None,
        keyhole: Keyhole::default(),
        listen: Listen::default(),
        log: Logging::default(),
        connections: Connections::default(),
        telemetry: Telemetry::default(),
    };
    assert_eq!(fixture("jwt.hcl"), expected);
    assert_eq!(fixture("jwt.json"), expected);
}

#[test]
fn reads_approle_fixture_with_type_form_and_commands() {
    let expected = AgentConfig {
        supervisor: None,
        vault: local_vault(12),
        auto_auth: Some(AutoAuth {
            method: method(
                MethodKind::AppRole {
                    role_id_file_path: PathBuf::from("/vault/run/role-id"),
                    secret_id_file_path: Some(PathBuf::from("/vault/run/secret-id")),
                    remove_secret_id_file_after_reading: false,
                    secret_id_response_wrapping_path: Some(
                        "auth/approle/role/app/secret-id".to_owned(),
                    ),
                },
                "auth/approle",
            ),
            sinks: vec![Sink {
                path: PathBuf::from("/vault/run/token"),
                mode: 0o640,
                wrap_ttl: None,
                encryption: None,
            }],
        }),
        templates: vec![
            Template {
                command: argv(&["/bin/sh", "-c", "touch /vault/run/a-changed"]),
                ..template(
                    "/vault/secrets/a",
                    "{{ with secret \"secret/data/app\" }}{{ .Data.data.user }}{{ end }}",
                )
            },
            Template {
                perms: 0o640,
                command: argv(&["touch", "/vault/run/b-changed"]),
                command_timeout: Duration::from_secs(10),
                ..template(
                    "/vault/secrets/b",
                    "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}",
                )
            },
        ],
        template_config: DEFAULT_TEMPLATE_CONFIG,
        exit_after_auth: true,
        pid_file: None,
        keyhole: Keyhole::default(),
        listen: Listen::default(),
        log: Logging::default(),
        connections: Connections::default(),
        telemetry: Telemetry::default(),
    };
    assert_eq!(fixture("approle.hcl"), expected);
    assert_eq!(fixture("approle.json"), expected);
}

#[test]
fn reads_token_file_fixture_with_keyhole_stanza() {
    let expected = AgentConfig {
        supervisor: None,
        vault: Vault {
            tls_skip_verify: true,
            ..local_vault(12)
        },
        auto_auth: Some(AutoAuth {
            method: method(
                MethodKind::TokenFile {
                    token_file_path: PathBuf::from("/vault/run/dev-token"),
                },
                "auth/token_file",
            ),
            sinks: vec![],
        }),
        templates: vec![Template {
            left_delimiter: "[[".to_owned(),
            right_delimiter: "]]".to_owned(),
            ..template(
                "/vault/secrets/nginx.conf",
                "[[ with secret \"secret/data/app\" ]]password [[ .Data.data.password ]];[[ end ]]\n",
            )
        }],
        template_config: DEFAULT_TEMPLATE_CONFIG,
        exit_after_auth: true,
        pid_file: Some(PathBuf::from("/vault/run/agent.pid")),
        keyhole: Keyhole {
            revoke_on_shutdown: true,
            revoke_grace: Duration::from_secs(5),
            metrics_listen: Some(([127, 0, 0, 1], 9102).into()),
            ready_file: Some(PathBuf::from("/vault/run/ready")),
            heartbeat_file: Some(PathBuf::from("/vault/run/heartbeat")),
            reload: vec![Reload {
                destination: PathBuf::from("/vault/secrets/nginx.conf"),
                signal: crate::reload::Signal::SIGHUP,
                process: "nginx".to_owned(),
            }],
        },
        listen: Listen::default(),
        log: Logging::default(),
        connections: Connections::default(),
        telemetry: Telemetry::default(),
    };
    assert_eq!(fixture("token_file.hcl"), expected);
    assert_eq!(fixture("token_file.json"), expected);
}

#[test]
fn reads_cert_fixture() {
    let expected = AgentConfig {
        supervisor: None,
        vault: Vault {
            address: Some("https://127.0.0.1:8200".to_owned()),
            ca_cert: Some(PathBuf::from("/vault/tls/ca.pem")),
            num_retries: 12,
            ..Vault::default()
        },
        auto_auth: Some(AutoAuth {
            method: method(
                MethodKind::Cert {
                    name: Some("web".to_owned()),
                    ca_cert: Some(PathBuf::from("/vault/tls/login-ca.pem")),
                    client_cert: Some(PathBuf::from("/vault/tls/client.pem")),
                    client_key: Some(PathBuf::from("/vault/tls/client-key.pem")),
                    reload: true,
                },
                "auth/certs",
            ),
            sinks: vec![Sink {
                path: PathBuf::from("/vault/run/token"),
                mode: 0o640,
                wrap_ttl: None,
                encryption: None,
            }],
        }),
        templates: vec![],
        template_config: DEFAULT_TEMPLATE_CONFIG,
        exit_after_auth: false,
        pid_file: None,
        keyhole: Keyhole::default(),
        listen: Listen::default(),
        log: Logging::default(),
        connections: Connections::default(),
        telemetry: Telemetry::default(),
    };
    assert_eq!(fixture("cert.hcl"), expected);
}

#[test]
fn reads_cert_method_without_config_as_the_vault_stanza_certificate() {
    let config = AgentConfig::from_hcl(
        "auto_auth {\n method \"cert\" {}\n sink \"file\" { config { path = \"/s\" } }\n}",
    )
    .expect("parses");
    assert_eq!(
        config.auto_auth.expect("auto_auth").method,
        method(
            MethodKind::Cert {
                name: None,
                ca_cert: None,
                client_cert: None,
                client_key: None,
                reload: false,
            },
            "auth/cert",
        )
    );
}

#[test]
fn cert_method_ignores_empty_settings_and_a_certificate_without_its_key() {
    let (config, logged) = with_warnings(
        r#"
        auto_auth {
          method "cert" {
            config = { name = "", ca_cert = "", client_cert = "/c.pem", color = "red" }
          }
          sink "file" { config { path = "/s" } }
        }
        "#,
    );
    assert_eq!(
        config.auto_auth.expect("auto_auth").method.kind,
        MethodKind::Cert {
            name: None,
            ca_cert: None,
            client_cert: Some(PathBuf::from("/c.pem")),
            client_key: None,
            reload: false,
        }
    );
    assert_eq!(
        logged,
        [
            " WARN auto_auth.method \"cert\".config.client_cert is ignored: bao agent uses it only together with client_key\n",
            " WARN auto_auth.method \"cert\".config.color is ignored, as bao agent ignores keys it does not know\n",
        ]
        .concat()
    );
}

#[test]
fn reads_json_as_vault_k8s_writes_it() {
    let expected = AgentConfig {
        supervisor: None,
        vault: Vault {
            address: Some("https://vault.vault.svc:8200".to_owned()),
            ca_cert: Some(PathBuf::from("/vault/tls/ca.crt")),
            tls_server_name: Some("vault.vault.svc".to_owned()),
            num_retries: 12,
            ..Vault::default()
        },
        auto_auth: Some(AutoAuth {
            method: Method {
                namespace: Some("team-a".to_owned()),
                min_backoff: Duration::from_secs(5),
                exit_on_err: true,
                ..method(
                    MethodKind::Kubernetes {
                        role: "app".to_owned(),
                        token_path: PathBuf::from("/var/run/secrets/vault/token"),
                    },
                    "auth/kubernetes",
                )
            },
            sinks: vec![Sink {
                path: PathBuf::from("/home/vault/.vault-token"),
                mode: 0o640,
                wrap_ttl: None,
                encryption: None,
            }],
        }),
        templates: vec![
            template(
                "/vault/secrets/db",
                "{{ with secret \"database/creds/app\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}",
            ),
            Template {
                perms: 0o400,
                command: argv(&["/bin/sh", "-c", "pkill -HUP app"]),
                error_on_missing_key: true,
                ..template(
                    "/vault/secrets/app.env",
                    "{{ with secret \"secret/data/app\" }}{{ .Data.data | toJSON }}\n{{ end }}",
                )
            },
        ],
        template_config: TemplateConfig {
            exit_on_retry_failure: true,
            static_secret_render_interval: Duration::from_secs(30),
        },
        exit_after_auth: false,
        pid_file: Some(PathBuf::from("/home/vault/.pid")),
        keyhole: Keyhole::default(),
        listen: Listen::default(),
        log: Logging::default(),
        connections: Connections::default(),
        telemetry: Telemetry::default(),
    };
    assert_eq!(fixture("vault-k8s.json"), expected);
}

#[test]
fn reads_listeners_and_the_legacy_cache_form_of_api_proxy() {
    let config = fixture("listeners.hcl");
    let expected = Listen {
        listeners: vec![
            Listener {
                address: ListenAddress::Tcp("127.0.0.1:8100".to_owned()),
                tls: None,
                role: ListenerRole::Default,
                enable_quit: true,
                require_request_header: false,
            },
            Listener {
                address: ListenAddress::Unix {
                    path: PathBuf::from("/vault/run/agent.sock"),
                    owner: Some(SocketOwner {
                        mode: 0o660,
                        user: "100".to_owned(),
                        group: "1000".to_owned(),
                    }),
                },
                tls: None,
                role: ListenerRole::Default,
                enable_quit: false,
                require_request_header: true,
            },
            Listener {
                address: ListenAddress::Tcp("0.0.0.0:9102".to_owned()),
                tls: Some(ListenerTls::new(
                    PathBuf::from("/vault/tls/tls.crt"),
                    PathBuf::from("/vault/tls/tls.key"),
                )),
                role: ListenerRole::MetricsOnly,
                enable_quit: false,
                require_request_header: false,
            },
        ],
        api_proxy: Some(ApiProxy::ForceAutoAuth),
        cache: Some(Cache {
            persist: Some(Persist {
                path: PathBuf::from("/vault/agent-cache"),
                keep_after_import: true,
                exit_on_err: true,
                service_account_token_file: Some(PathBuf::from("/var/run/secrets/vault/token")),
            }),
        }),
    };
    assert_eq!(config.listen, expected);
    assert!(config.templates.is_empty());
    assert!(config.auto_auth.expect("auto_auth is set").sinks.is_empty());
}

#[test]
fn reads_a_listeners_tls_versions_and_client_certificates() {
    let listener = |settings: &str| {
        let text = format!(
            "listener \"tcp\" {{\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n {settings}\n}}"
        );
        let config = AgentConfig::from_hcl(&text).expect("config parses");
        config.listen.listeners[0].tls.clone().expect("TLS")
    };
    let defaults = ListenerTls::new(PathBuf::from("/c"), PathBuf::from("/k"));
    assert_eq!(listener(""), defaults);
    assert_eq!(
        listener(
            "tls_min_version = \"tls13\"\n tls_require_and_verify_client_cert = true\n tls_client_ca_file = \"/ca\""
        ),
        ListenerTls {
            min_version: TlsVersion::Tls13,
            client_certs: ClientCerts::Required {
                ca_file: Some(PathBuf::from("/ca")),
            },
            ..defaults.clone()
        }
    );
    // TLS 1.0 and 1.1 are not served: a minimum below 1.2 serves from 1.2.
    assert_eq!(
        listener("tls_min_version = \"tls10\"\n tls_max_version = \"tls12\""),
        ListenerTls {
            max_version: TlsVersion::Tls12,
            ..defaults.clone()
        }
    );
    // bao agent reads the CA file only when it requires client certificates.
    assert_eq!(
        listener("tls_client_ca_file = \"/ca\"\n tls_disable_client_certs = true"),
        defaults
    );
    let emitted = AgentConfig::from_hcl(
        "listener \"tcp\" {\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n tls_max_version = \"tls12\"\n tls_require_and_verify_client_cert = true\n}",
    )
    .expect("config parses");
    let json = emitted.to_vault_agent_json();
    assert_eq!(
        AgentConfig::from_json(&json).expect("reads back").listen,
        emitted.listen
    );
}

#[test]
fn listener_alone_needs_no_auto_auth() {
    let config =
        AgentConfig::from_hcl("listener \"tcp\" {\n tls_disable = true\n}").expect("config parses");
    assert_eq!(config.auto_auth, None);
    assert_eq!(
        config.listen.listeners[0].address,
        ListenAddress::Tcp(DEFAULT_TCP_ADDRESS.to_owned())
    );
    assert_eq!(config.listen.api_proxy, None);
}

#[test]
fn api_proxy_without_the_key_takes_only_force_from_cache() {
    let text = |cache: &str| {
        with_auth(&format!(
            "listener \"tcp\" {{\n tls_disable = true\n}}\napi_proxy {{}}\ncache {{\n use_auto_auth_token = {cache}\n}}"
        ))
    };
    let config = AgentConfig::from_hcl(&text("true")).expect("config parses");
    assert_eq!(config.listen.api_proxy, Some(ApiProxy::AppToken));
    assert!(
        hcl_error(&text("\"force\"")).contains("keyhole does not support"),
        "force without use_auto_auth_token is refused by name"
    );
}

#[test]
fn fills_vault_agent_defaults() {
    let config = AgentConfig::from_hcl(
        r#"
        auto_auth {
          method "kubernetes" {
            config { role = "app" }
          }
          sink "file" {
            config { path = "/t" }
          }
        }
        template {
          destination = "/d"
          contents    = "x"
          command     = ["/bin/reload", "--all"]
        }
        "#,
    )
    .expect("config parses");
    let auto_auth = config.auto_auth.expect("auto_auth is set");
    assert_eq!(
        auto_auth.method,
        method(
            MethodKind::Kubernetes {
                role: "app".to_owned(),
                token_path: PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token"),
            },
            "auth/kubernetes",
        )
    );
    assert_eq!(auto_auth.sinks[0].mode, 0o640);
    assert_eq!(
        config.templates,
        vec![Template {
            command: argv(&["/bin/reload", "--all"]),
            ..template("/d", "x")
        }]
    );
    assert_eq!(config.vault.num_retries, 12);
    assert_eq!(config.vault.address, None);
    assert_eq!(config.template_config, DEFAULT_TEMPLATE_CONFIG);
    assert!(!config.exit_after_auth);
    assert_eq!(config.keyhole, Keyhole::default());
}

#[test]
fn reads_retry_zero_as_default_and_minus_one_as_none() {
    let retries = |n: &str| {
        let text = with_auth(&format!("vault {{\n retry {{ num_retries = {n} }}\n}}"));
        AgentConfig::from_hcl(&text)
            .expect("config parses")
            .vault
            .num_retries
    };
    assert_eq!(retries("0"), 12);
    assert_eq!(retries("-1"), 0);
    assert_eq!(retries("3"), 3);
}

/// The argv of the one template of a config whose `template` stanza has `command = <value>`.
fn command_of(value: &str) -> Option<Vec<String>> {
    let text = with_auth(&format!(
        "template {{\n destination = \"/d\"\n contents = \"x\"\n command = {value}\n}}"
    ));
    let config = AgentConfig::from_hcl(&text).expect("config parses");
    config.templates[0].command.clone()
}

#[test]
fn runs_command_string_of_several_words_through_the_shell() {
    let script = r#""kill -HUP $(pidof app) && echo \"done\" > /tmp/x; true""#;
    assert_eq!(
        command_of(script),
        argv(&[
            "/bin/sh",
            "-c",
            r#"kill -HUP $(pidof app) && echo "done" > /tmp/x; true"#
        ])
    );
    assert_eq!(
        command_of(r#""curl -s -X POST http://localhost:8080/actuator/refresh\n""#),
        argv(&[
            "/bin/sh",
            "-c",
            "curl -s -X POST http://localhost:8080/actuator/refresh\n"
        ])
    );
    assert_eq!(
        command_of(r#"["kill -HUP 1"]"#),
        argv(&["/bin/sh", "-c", "kill -HUP 1"])
    );
}

#[test]
fn splits_command_string_at_commas_as_vault_agent_does() {
    assert_eq!(
        command_of(r#""sh,-c,kill -HUP 1""#),
        argv(&["sh", "-c", "kill -HUP 1"])
    );
    assert_eq!(command_of(r#""a, b""#), argv(&["a", " b"]));
    assert_eq!(command_of(r#"["a, b"]"#), argv(&["/bin/sh", "-c", "a, b"]));
}

#[test]
fn runs_one_word_command_and_lists_as_argv() {
    assert_eq!(command_of(r#""/bin/reload""#), argv(&["/bin/reload"]));
    assert_eq!(
        command_of(r#"["kill", "-HUP", "1"]"#),
        argv(&["kill", "-HUP", "1"])
    );
}

#[test]
fn exec_timeout_falls_back_to_command_timeout() {
    let text = with_auth(
        "template {\n destination = \"/d\"\n contents = \"x\"\n command_timeout = \"1m\"\n exec { command = [\"a\", \"b\"] }\n}",
    );
    let config = AgentConfig::from_hcl(&text).expect("config parses");
    assert_eq!(config.templates[0].command, argv(&["a", "b"]));
    assert_eq!(config.templates[0].command_timeout, Duration::from_secs(60));
}

#[test]
fn reports_errors_naming_stanza_and_key() {
    let tmpl = |body: &str| with_auth(&format!("template {{\n{body}\n}}"));
    let ok_tmpl = "template {\n destination = \"/a\"\n contents = \"x\"\n}\n";
    let cases: Vec<(String, &str)> = vec![
        (
            with_auth(&format!("{ok_tmpl}{ok_tmpl}template {{\n destnation = \"/a\"\n}}")),
            r#"template[2]: unknown key "destnation" (did you mean "destination"?)"#,
        ),
        (
            with_auth(&format!(
                "{ok_tmpl}{ok_tmpl}template {{\n destination = \"/a\"\n contents = \"x\"\n destnation = \"/b\"\n}}"
            )),
            r#"template[2]: unknown key "destnation""#,
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n config = { token_path = \"/t\" }\n }\n}".to_owned(),
            r#"auto_auth.method "kubernetes".config: missing required key "role""#,
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n config = { rol = \"app\" }\n }\n}".to_owned(),
            r#"auto_auth.method "kubernetes".config: unknown key "rol" (did you mean "role"?)"#,
        ),
        (
            "auto_auth {\n method \"jwt\" {\n config = { role = \"app\" }\n }\n}".to_owned(),
            r#"auto_auth.method "jwt".config: missing required key "path""#,
        ),
        (
            "auto_auth {\n method \"cert\" {\n config = { reload = \"true\" }\n }\n}".to_owned(),
            r#"auto_auth.method "cert".config.reload: expected a boolean, found a string"#,
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n perms = \"0999\""),
            r#"template[0].perms: "0999" is not an octal file mode"#,
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n perms = 0999"),
            "invalid HCL: line 13, column 10: 0999 is not a valid octal number",
        ),
        (
            tmpl("destination = \"/a\""),
            r#"template[0]: needs one of "contents" or "source""#,
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n source = \"/s\""),
            r#"template[0]: takes only one of "contents" and "source""#,
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n command = \"a\"\n exec { command = \"b\" }"),
            r#"template[0]: takes only one of "command" and "exec""#,
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n exec { timeout = \"1s\" }"),
            r#"template[0].exec: missing required key "command""#,
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n command = \" \\n\""),
            "template[0].command: is empty",
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n command = [\"\", \"b\"]"),
            "template[0].command: is empty",
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n command = []"),
            "template[0].command: is empty",
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n command = 1"),
            "template[0].command: expected a string or a list of strings, found a number",
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n wait {\n minimum = \"1s\"\n }"),
            "template[0].wait: unknown key \"minimum\"",
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n exec {\n command = \"a\"\n splay = \"1s\"\n }"),
            "template[0].exec.splay: keyhole does not support this Vault Agent setting",
        ),
        (
            tmpl("destination = \"/a\"\n contents = \"x\"\n create_dest_dirs = \"yes\""),
            "template[0].create_dest_dirs: expected a boolean, found a string",
        ),
        (
            with_auth("cache {\n use_auto_auth_token = true\n}"),
            "cache: enabling the cache requires at least one template or one listener",
        ),
        (
            with_auth("listener \"tcp\" {\n tls_disable = true\n}\ncache {\n persist \"file\" {\n path = \"/p\"\n }\n}"),
            r#"cache.persist "file": persistent cache type "file" is not supported (expected "kubernetes")"#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_disable = true\n}\ncache {\n persist \"kubernetes\" {\n keep_after_import = true\n }\n}"),
            r#"cache.persist "kubernetes": missing required key "path""#,
        ),

        (
            with_auth("listener \"tcp\" {\n address = \"127.0.0.1:8100\"\n}"),
            r#"listener[0] "tcp": keyhole does not support TLS without tls_cert_file and tls_key_file: give both, or set tls_disable = true"#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n tls_min_version = \"tls1.3\"\n}"),
            r#"listener[0] "tcp".tls_min_version: "tls1.3" is not supported: expected one of tls10, tls11, tls12, tls13"#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n tls_max_version = \"tls11\"\n}"),
            r#"listener[0] "tcp".tls_max_version: keyhole serves TLS 1.2 and 1.3 only, so it cannot serve up to "tls11""#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n tls_min_version = \"tls13\"\n tls_max_version = \"tls12\"\n}"),
            r#"listener[0] "tcp".tls_min_version: "tls13" is above tls_max_version "tls12": no client could connect"#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n tls_require_and_verify_client_cert = true\n tls_disable_client_certs = true\n}"),
            r#"listener[0] "tcp".tls_require_and_verify_client_cert: tls_disable_client_certs and tls_require_and_verify_client_cert are mutually exclusive"#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_cert_file = \"/c\"\n tls_key_file = \"/k\"\n tls_cipher_suites = \"TLS_AES_128_GCM_SHA256\"\n}"),
            r#"listener[0] "tcp".tls_cipher_suites: keyhole does not support this Vault Agent setting"#,
        ),
        (
            with_auth("listener \"udp\" {\n tls_disable = true\n}"),
            r#"listener[0] "udp": unsupported listener type "udp" (expected "tcp" or "unix")"#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_disable = true\n role = \"admin\"\n}"),
            r#"listener[0] "tcp".role: unsupported listener role "admin" (expected "default" or "metrics_only")"#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_disable = true\n address = \"8200\"\n}"),
            r#"listener[0] "tcp".address: "8200" is not a host and port such as "127.0.0.1:8200""#,
        ),
        (
            with_auth("api_proxy {\n use_auto_auth_token = true\n}"),
            "api_proxy: configuring the api_proxy requires at least one listener",
        ),
        (
            with_auth("listener \"tcp\" {\n tls_disable = true\n}\napi_proxy {\n use_auto_auth_token = \"always\"\n}"),
            r#"api_proxy.use_auto_auth_token: can be true, false or "force"; "always" is none of them"#,
        ),
        (
            with_auth("listener \"tcp\" {\n tls_disable = true\n}\napi_proxy {\n use_auto_auth_token = true\n}\ncache {\n use_auto_auth_token = true\n}"),
            "cache.use_auto_auth_token: use_auto_auth_token is given in both api_proxy and cache; remove it from cache",
        ),
        (
            "listener \"tcp\" {\n tls_disable = true\n}\napi_proxy {\n use_auto_auth_token = true\n}".to_owned(),
            "api_proxy.use_auto_auth_token: is true but there is no auto_auth stanza",
        ),
        (
            with_auth("vault {\n retry {\n num_retries = -2\n }\n}"),
            "vault.retry.num_retries: -2 is not a number of retries (or -1 for none)",
        ),
        (
            with_auth("vault {}\nvault {}"),
            "vault: given 2 times; only one is allowed",
        ),
        (
            with_auth("exit_after_auth = \"true\""),
            "exit_after_auth: expected a boolean, found a string",
        ),
        (
            with_auth("template_config {\n static_secret_render_interval = \"soon\"\n}"),
            r#"template_config.static_secret_render_interval: "soon" is not a duration"#,
        ),
        (
            "auto_auth {\n method \"aws\" {\n config = { role = \"app\" }\n }\n}".to_owned(),
            r#"auto_auth.method: keyhole does not support auth method "aws" (supported: kubernetes, jwt, approle, token_file, cert)"#,
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n config = { role = \"a\" }\n }\n method \"jwt\" {}\n}".to_owned(),
            r#"auto_auth: takes exactly one "method", found 2"#,
        ),
        (
            "auto_auth {\n sink \"file\" {\n config { path = \"/t\" }\n }\n}".to_owned(),
            r#"auto_auth: missing required key "method""#,
        ),
        (
            "auto_auth {\n method {\n config = { role = \"a\" }\n }\n}".to_owned(),
            r#"auto_auth.method[0]: missing required key "type""#,
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n wrap_ttl = \"5m\"\n config = { role = \"a\" }\n }\n}\ntemplate {\n contents = \"x\"\n destination = \"/x\"\n}".to_owned(),
            "auto_auth: the method's wrap_ttl needs exactly one sink to write the wrapped token to, found 0",
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n wrap_ttl = \"5m\"\n config = { role = \"a\" }\n }\n sink \"file\" {\n config { path = \"/t\" }\n }\n sink \"file\" {\n config { path = \"/u\" }\n }\n}".to_owned(),
            "auto_auth: the method's wrap_ttl needs exactly one sink to write the wrapped token to, found 2",
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n wrap_ttl = \"5m\"\n config = { role = \"a\" }\n }\n sink \"file\" {\n wrap_ttl = \"1m\"\n config { path = \"/t\" }\n }\n}".to_owned(),
            "auto_auth: wrap_ttl is set on both the method and the sink; Vault Agent wraps the token once, so set it on one of them",
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n wrap_ttl = \"5m\"\n config = { role = \"a\" }\n }\n sink \"file\" {\n config { path = \"/t\" }\n }\n}\nlistener \"tcp\" {\n tls_disable = true\n}\napi_proxy {\n use_auto_auth_token = \"force\"\n}".to_owned(),
            "api_proxy.use_auto_auth_token: is true but auto_auth.method sets wrap_ttl: the agent then holds only a wrapped token, which it cannot lend",
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n wrap_ttl = \"5m\"\n config = { role = \"a\" }\n }\n sink \"file\" {\n config { path = \"/t\" }\n }\n}\nlistener \"tcp\" {\n tls_disable = true\n}\ncache {\n use_auto_auth_token = true\n}".to_owned(),
            "cache.use_auto_auth_token: is true but auto_auth.method sets wrap_ttl: the agent then holds only a wrapped token, which it cannot lend",
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n wrap_ttl = \"never\"\n config = { role = \"a\" }\n }\n sink \"file\" {\n config { path = \"/t\" }\n }\n}".to_owned(),
            r#"auto_auth.method "kubernetes".wrap_ttl: "never" is not a duration"#,
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n config = { role = \"a\" }\n }\n sink \"kafka\" {\n config { path = \"/t\" }\n }\n}".to_owned(),
            r#"auto_auth.sink[0]: keyhole does not support sink type "kafka" (only "file")"#,
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n config = { role = \"a\" }\n }\n sink \"file\" {\n config {\n path = \"/t\"\n mode = \"0600\"\n }\n }\n}".to_owned(),
            "auto_auth.sink[0].config.mode: expected an integer file mode (0600 in HCL, 384 in JSON), found a string",
        ),
        (
            "auto_auth {\n method \"kubernetes\" {\n config = { role = \"a\" }\n }\n}".to_owned(),
            "auto_auth: needs at least one sink, at least one template or api_proxy.use_auto_auth_token",
        ),
        (
            "pid_file = \"/p\"".to_owned(),
            r#"missing required stanza "auto_auth""#,
        ),
        (
            with_auth("keyhole {\n metrics_listen = \"localhost\"\n}"),
            r#"keyhole.metrics_listen: "localhost" is not an IP address and port such as "0.0.0.0:9102""#,
        ),
        (
            with_auth(&format!(
                "{ok_tmpl}keyhole {{\n reload {{\n destination = \"/a\"\n signal = \"SIGFOO\"\n process = \"app\"\n }}\n}}"
            )),
            r#"keyhole.reload[0].signal: unknown signal "SIGFOO": expected one of SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGWINCH (the SIG prefix is optional)"#,
        ),
        (
            with_auth(&format!(
                "{ok_tmpl}keyhole {{\n reload {{\n destination = \"/b\"\n signal = \"SIGHUP\"\n process = \"app\"\n }}\n}}"
            )),
            r#"keyhole.reload[0].destination: "/b" is not the destination of any template"#,
        ),
        (
            with_auth(&format!(
                "{ok_tmpl}keyhole {{\n reload {{\n destination = \"/a\"\n signal = \"SIGHUP\"\n }}\n}}"
            )),
            r#"keyhole.reload[0]: missing required key "process""#,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(hcl_error(&text), expected, "config:\n{text}");
    }
}

#[test]
fn reports_json_errors_with_the_same_paths() {
    assert_eq!(
        json_error(
            r#"{"auto_auth":{"method":{"type":"kubernetes","config":{}},"sink":[{"type":"file","config":{"path":"/t"}}]}}"#
        ),
        r#"auto_auth.method "kubernetes".config: missing required key "role""#
    );
    assert_eq!(
        json_error(
            r#"{"auto_auth":{"method":{"type":"token_file","config":{"token_file_path":"/t"}}},"template":[{"destination":"/a","contents":"x","perms":"0999"}]}"#
        ),
        r#"template[0].perms: "0999" is not an octal file mode"#
    );
    assert_eq!(json_error("[]"), "expected a block, found a list");
    assert!(json_error("{").starts_with("invalid JSON: EOF while parsing"));
}

#[test]
fn names_the_file_in_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("agent.hcl");
    std::fs::write(&path, "auto_auth {\n  methd {}\n}\n").expect("write config");
    let err = AgentConfig::from_file(&path).expect_err("config is rejected");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: auto_auth: unknown key \"methd\" (did you mean \"method\"?)",
            path.display()
        )
    );
    let missing = dir.path().join("missing.hcl");
    let err = AgentConfig::from_file(&missing).expect_err("file is missing");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read config file: ", missing.display())),
        "{err}"
    );
}

#[test]
fn merges_several_files_and_directories_as_bao_agent_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().join("base.hcl");
    std::fs::write(
        &base,
        "vault {\n  address = \"http://a:8200\"\n}\n\
         template {\n  destination = \"/s/a\"\n  contents = \"a\"\n}\n",
    )
    .expect("write config");
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).expect("mkdir");
    std::fs::write(
        conf_d.join("20-auth.hcl"),
        "auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = \"/t\"\n    }\n  }\n}\n",
    )
    .expect("write config");
    std::fs::write(
        conf_d.join("10-vault.json"),
        r#"{"vault": {"address": "http://b:8200"}, "template": {"destination": "/s/b", "contents": "b"}}"#,
    )
    .expect("write config");
    std::fs::write(conf_d.join("10-vault.json~"), "not a config").expect("write backup");
    std::fs::write(conf_d.join("notes.txt"), "not a config").expect("write notes");

    let config = AgentConfig::from_paths(&[base.clone(), conf_d.clone()]).expect("configs merge");
    assert_eq!(config.vault.address.as_deref(), Some("http://b:8200"));
    let destinations: Vec<_> = config
        .templates
        .iter()
        .map(|t| t.destination.display().to_string())
        .collect();
    assert_eq!(destinations, ["/s/a", "/s/b"]);
    assert!(config.auto_auth.is_some());

    let err = AgentConfig::from_paths(&[base.clone(), base.clone()]).expect_err("no auto_auth");
    assert_eq!(
        err.to_string(),
        format!(
            "{0} + {0}: missing required stanza \"auto_auth\"",
            base.display()
        )
    );
}

#[test]
fn reads_json_by_extension_or_leading_brace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = std::fs::read_to_string(fixture_path("approle.json")).expect("read fixture");
    let path = dir.path().join("agent.conf");
    std::fs::write(&path, &json).expect("write config");
    assert_eq!(
        AgentConfig::from_file(&path).expect("config parses"),
        fixture("approle.hcl")
    );
    let path = dir.path().join("agent.json");
    std::fs::write(&path, "\n").expect("write config");
    let err = AgentConfig::from_file(&path).expect_err("config is rejected");
    assert!(err.to_string().contains("invalid JSON"), "{err}");
}

/// An environment of the given variables only.
fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    move |name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

#[test]
fn vault_addr_overrides_the_config_address() {
    let json = std::fs::read_to_string(fixture_path("kubernetes.json")).expect("read fixture");
    let env = env_of(&[(CONFIG_ENV, &json), ("VAULT_ADDR", "https://vault:8200")]);
    let config = load_with(&[], &env).expect("config loads");
    assert_eq!(config.vault.address.as_deref(), Some("https://vault:8200"));

    let env = env_of(&[(CONFIG_ENV, &json), ("VAULT_ADDR", "")]);
    let config = load_with(&[], &env).expect("config loads");
    assert_eq!(
        config.vault.address.as_deref(),
        Some("http://127.0.0.1:8200")
    );
}

#[test]
fn vault_env_variables_fill_a_config_without_vault_stanza() {
    let env = env_of(&[
        ("VAULT_ADDR", "https://vault.vault.svc:8200"),
        ("VAULT_CACERT", "/vault/tls/ca.crt"),
        ("VAULT_CAPATH", "/vault/tls"),
        ("VAULT_CLIENT_CERT", "/vault/tls/client.crt"),
        ("VAULT_CLIENT_KEY", "/vault/tls/client.key"),
        ("VAULT_SKIP_VERIFY", "true"),
        ("VAULT_TLS_SERVER_NAME", "vault.example"),
        ("VAULT_NAMESPACE", "team-a"),
        ("VAULT_MAX_RETRIES", "0"),
    ]);
    let config = AgentConfig::from_hcl(&with_auth(""))
        .expect("config parses")
        .with_env(&env)
        .expect("env applies");
    assert_eq!(
        config.vault,
        Vault {
            address: Some("https://vault.vault.svc:8200".to_owned()),
            ca_cert: Some(PathBuf::from("/vault/tls/ca.crt")),
            ca_path: Some(PathBuf::from("/vault/tls")),
            client_cert: Some(PathBuf::from("/vault/tls/client.crt")),
            client_key: Some(PathBuf::from("/vault/tls/client.key")),
            tls_skip_verify: true,
            tls_server_name: Some("vault.example".to_owned()),
            namespace: Some("team-a".to_owned()),
            num_retries: 0,
        }
    );
}

#[test]
fn vault_skip_verify_false_keeps_verification_on() {
    let config = AgentConfig::from_hcl(&with_auth("vault {\n tls_skip_verify = true\n}"))
        .expect("config parses");
    let env = env_of(&[("VAULT_SKIP_VERIFY", "false")]);
    assert!(
        !config
            .with_env(&env)
            .expect("env applies")
            .vault
            .tls_skip_verify
    );
}

#[test]
fn bad_vault_env_values_are_errors_naming_the_variable() {
    let config = AgentConfig::from_hcl(&with_auth("")).expect("config parses");
    let cases = [
        (
            ("VAULT_SKIP_VERIFY", "yes"),
            r#"VAULT_SKIP_VERIFY: "yes" is not a boolean (true or false)"#,
        ),
        (
            ("VAULT_MAX_RETRIES", "-1"),
            r#"VAULT_MAX_RETRIES: "-1" is not a number of retries"#,
        ),
    ];
    for (var, message) in cases {
        let err = config
            .clone()
            .with_env(&env_of(&[var]))
            .expect_err("bad value");
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn template_owner_sandbox_and_denied_functions_are_read_and_emitted() {
    let config = AgentConfig::from_hcl(&with_auth(
        r#"
        template {
          destination       = "/out/a"
          contents          = "x"
          user              = "app"
          gid               = 1000
          sandbox_path      = "/vault/files"
          function_denylist = ["env", "file"]
          function_blacklist = "writeToFile"
        }
        template {
          destination = "/out/b"
          contents    = "x"
          uid         = 0
          user        = ""
        }
        "#,
    ))
    .expect("config parses");
    let [a, b] = &config.templates[..] else {
        panic!("two templates");
    };
    assert_eq!(a.user.as_deref(), Some("app"));
    assert_eq!(a.group.as_deref(), Some("1000"));
    assert_eq!(a.sandbox_path.as_deref(), Some(Path::new("/vault/files")));
    assert_eq!(a.function_denylist, ["env", "file", "writeToFile"]);
    // An empty `user` is unset, so `uid` counts, as in consul-template.
    assert_eq!((b.user.as_deref(), b.group.as_deref()), (Some("0"), None));
    assert!(b.sandbox_path.is_none() && b.function_denylist.is_empty());
    assert_eq!(
        AgentConfig::from_json(&config.to_vault_agent_json()).expect("round trip"),
        config
    );
}

#[test]
fn template_wait_is_read_in_both_of_consul_templates_forms() {
    let wait_of = |wait: &str| {
        AgentConfig::from_hcl(&with_auth(&format!(
            "template {{\n destination = \"/out\"\n contents = \"x\"\n {wait}\n}}"
        )))
        .map(|config| config.templates[0].wait)
        .map_err(|err| err.to_string())
    };
    let wait = |min: u64, max: u64| {
        Ok(Some(Wait {
            min: Duration::from_millis(min),
            max: Duration::from_millis(max),
        }))
    };
    assert_eq!(
        wait_of("wait {\n min = \"1s\"\n max = \"3s\"\n}"),
        wait(1000, 3000)
    );
    assert_eq!(wait_of("wait {\n min = \"500ms\"\n}"), wait(500, 2000));
    // consul-template checks min against max only in the string form.
    assert_eq!(
        wait_of("wait {\n min = \"3s\"\n max = \"1s\"\n}"),
        wait(3000, 1000)
    );
    assert_eq!(wait_of("wait = \"1s:2s\""), wait(1000, 2000));
    assert_eq!(wait_of("wait = \"2s\""), wait(2000, 8000));
    // A bare number is a Go duration: nanoseconds.
    assert_eq!(
        wait_of("wait {\n min = 5\n}").map(|w| w.map(|w| w.min)),
        Ok(Some(Duration::from_nanos(5)))
    );
    assert_eq!(wait_of("wait {\n bool = false\n min = \"1s\"\n}"), Ok(None));
    assert_eq!(wait_of("wait {\n bool = true\n}"), wait(0, 0));
    assert_eq!(wait_of("wait {}"), Ok(None));
    for (wait, message) in [
        (
            "wait = \"3s:1s\"",
            "template[0].wait: \"3s:1s\": min must be less than max",
        ),
        (
            "wait = \"5\"",
            "template[0].wait: \"5\" is not a duration such as \"5s\"",
        ),
        (
            "wait {\n min = \"soon\"\n}",
            "template[0].wait.min: \"soon\" is not a duration such as \"5s\"",
        ),
    ] {
        let err = wait_of(wait).expect_err(wait);
        assert!(err.ends_with(message), "{wait}: {err}");
    }
}

#[test]
fn template_wait_and_error_fatal_survive_the_injectors_json() {
    let config = AgentConfig::from_hcl(&with_auth(
        "template {\n destination = \"/a\"\n contents = \"x\"\n wait = \"1s:3s\"\n error_fatal = false\n}\n\
         template {\n destination = \"/b\"\n contents = \"x\"\n wait {\n bool = true\n }\n}",
    ))
    .expect("config parses");
    assert!(!config.templates[0].error_fatal && config.templates[1].error_fatal);
    let json = config.to_vault_agent_json();
    assert!(
        json.contains(r#""wait":{"min":"1s","max":"3s"},"error_fatal":false"#),
        "{json}"
    );
    assert_eq!(AgentConfig::from_json(&json).expect("round trip"), config);
}

#[test]
fn disable_idle_connections_and_keep_alives_name_the_parts_they_apply_to() {
    let config = AgentConfig::from_hcl(&with_auth(
        "disable_idle_connections = [\"auto-auth\", \"caching\"]\ndisable_keep_alives = [\"templating\", \"\"]",
    ))
    .expect("config parses");
    assert_eq!(config.connections.auto_auth(), Reuse::NoIdle);
    assert_eq!(config.connections.templating(), Reuse::Close);
    assert_eq!(config.connections.api_proxy(), Reuse::NoIdle);
    // The injector's form: `caching` comes back as its other name, `proxying`.
    let json = config.to_vault_agent_json();
    assert!(
        json.contains(r#""disable_idle_connections":["auto-auth","proxying"],"disable_keep_alives":["templating"]"#),
        "{json}"
    );
    assert_eq!(AgentConfig::from_json(&json).expect("round trip"), config);

    let plain = AgentConfig::from_hcl(&with_auth("")).expect("config parses");
    assert_eq!(plain.connections.auto_auth(), Reuse::Keep);
    assert!(!plain.to_vault_agent_json().contains("disable_"));
}

#[test]
fn an_unknown_part_or_a_value_that_is_not_a_list_is_refused_naming_the_key() {
    assert_eq!(
        hcl_error(&with_auth("disable_keep_alives = [\"auto_auth\"]")),
        r#"disable_keep_alives: unknown value "auto_auth": the parts are "auto-auth", "caching", "proxying" and "templating""#
    );
    assert_eq!(
        hcl_error(&with_auth("disable_idle_connections = true")),
        "disable_idle_connections: expected a list of strings, found a boolean"
    );
}

#[test]
fn connection_env_variables_replace_the_lists() {
    let config = AgentConfig::from_hcl(&with_auth("disable_idle_connections = [\"templating\"]"))
        .expect("config parses");
    let env = env_of(&[
        (
            "VAULT_AGENT_DISABLE_IDLE_CONNECTIONS",
            "Auto-Auth, proxying",
        ),
        ("VAULT_AGENT_DISABLE_KEEP_ALIVES", ""),
    ]);
    let config = config.with_env(&env).expect("env applies");
    assert_eq!(config.connections.auto_auth(), Reuse::NoIdle);
    assert_eq!(config.connections.api_proxy(), Reuse::NoIdle);
    assert_eq!(config.connections.templating(), Reuse::Keep);

    let err = config
        .with_env(&env_of(&[("VAULT_AGENT_DISABLE_KEEP_ALIVES", "auth")]))
        .expect_err("unknown part");
    assert_eq!(
        err.to_string(),
        r#"VAULT_AGENT_DISABLE_KEEP_ALIVES: "auth" is not a part of the agent (auto-auth, caching, proxying, templating)"#
    );
}

#[test]
fn load_prefers_the_config_file_and_needs_one_source() {
    let config = load_with(
        &[fixture_path("jwt.hcl")],
        &env_of(&[(CONFIG_ENV, "not json")]),
    )
    .expect("config loads");
    assert_eq!(config, fixture("jwt.hcl"));

    let err = load_with(&[], &env_of(&[])).expect_err("no config");
    assert_eq!(
        err.to_string(),
        "no configuration: pass --config FILE or set KEYHOLE_AGENT_CONFIG"
    );
    let err = load_with(&[], &env_of(&[(CONFIG_ENV, "{}")])).expect_err("config is rejected");
    assert_eq!(
        err.to_string(),
        r#"KEYHOLE_AGENT_CONFIG: missing required stanza "auto_auth""#
    );
}

#[test]
fn reads_env_templates_and_exec() {
    let config = fixture("supervisor.hcl");
    let expected = Supervisor {
        env_templates: vec![
            EnvTemplate {
                name: "DB_PASSWORD".to_owned(),
                source: TemplateSource::Contents(
                    r#"{{ with secret "secret/data/db" }}{{ .Data.data.password }}{{ end }}"#
                        .to_owned(),
                ),
                error_on_missing_key: true,
                left_delimiter: "{{".to_owned(),
                right_delimiter: "}}".to_owned(),
                function_denylist: Vec::new(),
                error_fatal: true,
            },
            EnvTemplate {
                name: "API_KEY".to_owned(),
                source: TemplateSource::File(PathBuf::from("/etc/app/api-key.tmpl")),
                error_on_missing_key: false,
                left_delimiter: "[[".to_owned(),
                right_delimiter: "]]".to_owned(),
                function_denylist: vec!["env".into(), "file".into(), "writeToFile".into()],
                error_fatal: false,
            },
        ],
        exec: Exec {
            command: vec!["/usr/bin/app".into(), "--port".into(), "8080".into()],
            restart_on_secret_changes: Restart::Never,
            restart_stop_signal: crate::reload::Signal::SIGINT,
        },
    };
    assert_eq!(config.supervisor, Some(expected));
    assert!(config.templates.is_empty());
}

#[test]
fn exec_defaults_to_restarting_with_sigterm_and_runs_one_line_through_the_shell() {
    let config = AgentConfig::from_hcl(&with_auth(
        "env_template \"A\" {\n contents = \"x\"\n}\nexec {\n command = [\"app --port 1\"]\n}",
    ))
    .expect("config parses");
    let exec = config.supervisor.expect("supervisor mode").exec;
    assert_eq!(exec.restart_on_secret_changes, Restart::Always);
    assert_eq!(exec.restart_stop_signal, crate::reload::Signal::SIGTERM);
    assert_eq!(
        exec.argv(),
        (
            vec!["/bin/sh".into(), "-c".into(), "app --port 1".into()],
            true
        )
    );
}

#[test]
fn reads_env_templates_in_json_keyed_by_name() {
    let config = AgentConfig::from_json(
        r#"{
          "auto_auth": {"method": [{"token_file": {"config": {"token_file_path": "/t"}}}]},
          "env_template": {"A": {"contents": "a"}, "B": [{"contents": "b"}]},
          "exec": {"command": ["env"]}
        }"#,
    )
    .expect("config parses");
    let names: Vec<String> = config
        .supervisor
        .expect("supervisor mode")
        .env_templates
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["A", "B"]);
}

#[test]
fn refuses_env_templates_and_exec_as_bao_agent_does() {
    let env = |name: &str, body: &str| format!("env_template \"{name}\" {{\n{body}\n}}\n");
    let ok_env = env("A", "contents = \"x\"");
    let ok_exec = "exec {\n command = [\"app\"]\n}\n";
    let cases: Vec<(String, &str)> = vec![
        (
            with_auth(&ok_env),
            r#"env_template: needs a top-level "exec" stanza to run with these variables"#,
        ),
        (
            with_auth(ok_exec),
            r#"exec: needs at least one "env_template" stanza"#,
        ),
        (
            with_auth(&format!(
                "{ok_env}{ok_exec}template {{\n destination = \"/a\"\n contents = \"x\"\n}}"
            )),
            r#"template: cannot be given together with "env_template" stanzas"#,
        ),
        (
            with_auth(&format!(
                "{ok_env}{ok_exec}api_proxy {{\n use_auto_auth_token = true\n}}\nlistener \"tcp\" {{\n address = \"127.0.0.1:8100\"\n tls_disable = true\n}}"
            )),
            r#"api_proxy: cannot be given together with "env_template" stanzas"#,
        ),
        (
            with_auth(&format!("{ok_env}{ok_env}{ok_exec}")),
            r#"env_template "A": is given twice: each environment variable may have only one"#,
        ),
        (
            with_auth(&format!(
                "{}{ok_exec}",
                env("A", "contents = \"x\"\n destination = \"/a\"")
            )),
            r#"env_template "A".destination: is not allowed in an env_template"#,
        ),
        (
            with_auth(&format!("{}{ok_exec}", env("A", "perms = \"0600\""))),
            r#"env_template "A".perms: is not allowed in an env_template"#,
        ),
        (
            with_auth(&format!(
                "{}{ok_exec}",
                env("A", "error_on_missing_key = true")
            )),
            r#"env_template "A": needs one of "contents" or "source""#,
        ),
        (
            with_auth(&format!(
                "{}{ok_exec}",
                env("A", "contents = \"x\"\n source = \"/s\"")
            )),
            r#"env_template "A": takes only one of "contents" and "source""#,
        ),
        (
            with_auth(&format!(
                "{}{ok_exec}",
                env("A", "contents = \"x\"\n contnts = 1")
            )),
            r#"env_template "A": unknown key "contnts""#,
        ),
        (
            with_auth(&format!(
                "env_template {{\n contents = \"x\"\n}}\n{ok_exec}"
            )),
            r#"env_template[0]: needs the environment variable's name as its label: env_template "NAME" { ... }"#,
        ),
        (
            with_auth(&format!(
                "{ok_env}exec {{\n restart_on_secret_changes = \"never\"\n}}"
            )),
            "exec.command: must not be empty",
        ),
        (
            with_auth(&format!("{ok_env}exec {{\n command = [\" \", \"b\"]\n}}")),
            "exec.command: names no program: its first entry is blank",
        ),
        (
            with_auth(&format!("{ok_env}exec {{\n command = \"app\"\n}}")),
            "exec.command: expected a list of strings, found a string",
        ),
        (
            with_auth(&format!(
                "{ok_env}exec {{\n command = [\"app\"]\n restart_on_secret_changes = \"sometimes\"\n}}"
            )),
            r#"exec.restart_on_secret_changes: "sometimes" is neither "always" nor "never""#,
        ),
        (
            with_auth(&format!(
                "{ok_env}exec {{\n command = [\"app\"]\n restart_stop_signal = \"TERM\"\n}}"
            )),
            r#"exec.restart_stop_signal: expected a signal name such as "SIGTERM""#,
        ),
        (
            with_auth(&format!(
                "{ok_env}exec {{\n command = [\"app\"]\n child_logs {{}}\n}}"
            )),
            r#"exec: unknown key "child_logs""#,
        ),
        (
            with_auth(&format!("{ok_env}{ok_exec}{ok_exec}")),
            "exec: given 2 times; only one is allowed",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(hcl_error(&text), expected, "config:\n{text}");
    }
}

#[test]
fn round_trips_every_fixture_through_vault_agent_json() {
    for name in [
        "kubernetes.hcl",
        "jwt.hcl",
        "approle.hcl",
        "token_file.hcl",
        "cert.hcl",
        "vault-k8s.json",
        "listeners.hcl",
        "supervisor.hcl",
    ] {
        let config = fixture(name);
        let json = config.to_vault_agent_json();
        assert_eq!(
            AgentConfig::from_json(&json).expect("emitted JSON parses"),
            config,
            "{name}"
        );
    }
}

#[test]
fn round_trips_zero_retries_and_sub_second_durations() {
    let mut config = fixture("jwt.hcl");
    config.vault.num_retries = 0;
    let json = config.to_vault_agent_json();
    let tree: serde_json::Value = serde_json::from_str(&json).expect("emitted JSON is JSON");
    assert_eq!(tree["vault"]["retry"]["num_retries"], -1);
    assert_eq!(tree["auto_auth"]["method"][0]["min_backoff"], "250ms");
    let parsed = AgentConfig::from_json(&json).expect("emitted JSON parses");
    assert_eq!(parsed, config);
}

#[test]
fn emits_vault_agent_json() {
    let json: serde_json::Value =
        serde_json::from_str(&fixture("approle.hcl").to_vault_agent_json()).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({
            "vault": {
                "address": "http://127.0.0.1:8200",
                "tls_skip_verify": false,
                "retry": { "num_retries": 12 },
            },
            "auto_auth": {
                "method": [{
                    "type": "approle",
                    "mount_path": "auth/approle",
                    "min_backoff": "1s",
                    "max_backoff": "300s",
                    "exit_on_err": false,
                    "config": {
                        "role_id_file_path": "/vault/run/role-id",
                        "secret_id_file_path": "/vault/run/secret-id",
                        "secret_id_response_wrapping_path": "auth/approle/role/app/secret-id",
                        "remove_secret_id_file_after_reading": false,
                    },
                }],
                "sink": [{ "type": "file", "config": { "path": "/vault/run/token", "mode": 416 } }],
            },
            "template": [
                {
                    "destination": "/vault/secrets/a",
                    "contents": "{{ with secret \"secret/data/app\" }}{{ .Data.data.user }}{{ end }}",
                    "perms": "0644",
                    "error_on_missing_key": false,
                    "left_delimiter": "{{",
                    "right_delimiter": "}}",
                    "create_dest_dirs": true,
                    "exec": { "command": ["/bin/sh", "-c", "touch /vault/run/a-changed"], "timeout": "30s" },
                },
                {
                    "destination": "/vault/secrets/b",
                    "contents": "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}",
                    "perms": "0640",
                    "error_on_missing_key": false,
                    "left_delimiter": "{{",
                    "right_delimiter": "}}",
                    "create_dest_dirs": true,
                    "exec": { "command": ["touch", "/vault/run/b-changed"], "timeout": "10s" },
                },
            ],
            "template_config": {
                "exit_on_retry_failure": false,
                "static_secret_render_interval": "300s",
            },
            "exit_after_auth": true,
        })
    );
}

/// Parses `text` and returns the config with the warnings logged meanwhile.
fn with_warnings(text: &str) -> (AgentConfig, String) {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    let config = tracing::subscriber::with_default(subscriber, || AgentConfig::from_hcl(text))
        .expect("config parses");
    let logged = buffer.0.lock().expect("log buffer").clone();
    (config, String::from_utf8(logged).expect("UTF-8 log"))
}

#[test]
fn accepts_keys_bao_agent_ignores_and_warns_about_each() {
    let (config, logged) = with_warnings(&with_auth(
        r#"
        vaultt { address = "x" }
        sink "file" { config { path = "/elsewhere" } }
        vault { retry { attempts = 3 } }
        template_config {
          error_on_missing_key     = true
          max_connections_per_host = 20
        }
        "#,
    ));
    assert_eq!(config.auto_auth.expect("auto_auth").sinks.len(), 1);
    assert_eq!(
        logged,
        [
            " WARN vault.retry.attempts is ignored, as bao agent ignores keys it does not know\n",
            " WARN template_config.error_on_missing_key is ignored: bao agent ignores it here; it is a setting of each template\n",
            " WARN template_config.max_connections_per_host is ignored: bao agent ignores it (only HashiCorp's Vault Agent reads it)\n",
            " WARN sink is ignored: bao agent reads sinks only inside auto_auth, and so does keyhole-agent\n",
            " WARN vaultt is ignored, as bao agent ignores keys it does not know (did you mean \"vault\"?)\n",
        ]
        .concat()
    );
}

#[test]
fn reads_hcl1_forms_vault_agent_accepts() {
    let config = AgentConfig::from_hcl(
        r#"
        "auto_auth" = {
          method "token_file" {
            config = { token_file_path = "/t" }
          }
          sinks {
            sink { type = "file", config = { path = "/s", mode = 0600 } }
          }
        }
        "template" = { destination = "/a", destination = "/b", contents = "${X}" }
        template {
          destination = "/c"
          contents    = "y"
          exec { command = ["first"] }
          exec { command = ["second"] }
        }
        "#,
    )
    .expect("config parses");
    assert_eq!(
        config.auto_auth.expect("auto_auth").sinks,
        vec![Sink {
            path: PathBuf::from("/s"),
            mode: 0o600,
            wrap_ttl: None,
            encryption: None,
        }]
    );
    assert_eq!(
        config.templates,
        vec![
            template("/b", "${X}"),
            Template {
                command: argv(&["second"]),
                ..template("/c", "y")
            },
        ]
    );
}

#[test]
fn a_sink_inside_sinks_needs_its_type_as_a_key() {
    assert_eq!(
        hcl_error(
            "auto_auth {\n method \"token_file\" {\n config = { token_file_path = \"/t\" }\n }\n sinks {\n sink \"file\" {\n config = { path = \"/s\" }\n }\n }\n}"
        ),
        r#"auto_auth.sinks[0].sink[0]: missing required key "type" (inside "sinks", a block label is not read as the sink type)"#
    );
}

#[test]
fn sinks_take_wrapping_and_encryption_as_bao_agent_checks_them() {
    let sink = |keys: &str| {
        format!(
            "auto_auth {{\n method \"token_file\" {{\n config = {{ token_file_path = \"/t\" }}\n }}\n sink \"file\" {{\n {keys}\n config = {{ path = \"/s\" }}\n }}\n}}"
        )
    };
    let config = AgentConfig::from_hcl(&sink(
        "wrap_ttl = \"10m\"\n dh_type = \"curve25519\"\n dh_path = \"/dh.json\"\n derive_key = true\n aad = \"pod\"",
    ))
    .expect("config parses");
    assert_eq!(
        config.auto_auth.as_ref().expect("auto_auth").sinks,
        vec![Sink {
            path: PathBuf::from("/s"),
            mode: 0o640,
            wrap_ttl: Some(Duration::from_secs(600)),
            encryption: Some(SinkEncryption {
                dh_path: PathBuf::from("/dh.json"),
                derive_key: true,
                aad: "pod".to_owned(),
            }),
        }]
    );
    assert_eq!(
        AgentConfig::from_json(&config.to_vault_agent_json()).expect("emitted config parses"),
        config
    );

    // `aad_env_var` is read with the config and wins over `aad`.
    let config = AgentConfig::from_hcl(&sink(
        "aad = \"x\"\n aad_env_var = \"PATH\"\n dh_type = \"curve25519\"\n dh_path = \"/d\"",
    ))
    .expect("config parses");
    let sinks = config.auto_auth.expect("auto_auth").sinks;
    let aad = sinks[0].encryption.as_ref().map(|e| e.aad.clone());
    assert_eq!(aad, std::env::var("PATH").ok());

    for (keys, message) in [
        (
            "dh_type = \"p256\"\n dh_path = \"/d\"",
            "auto_auth.sink[0].dh_type: \"p256\" is not a dh_type; the one Vault Agent takes is \"curve25519\"",
        ),
        (
            "dh_type = \"curve25519\"",
            "auto_auth.sink[0]: dh_type and dh_path must be given together",
        ),
        (
            "aad = \"pod\"",
            "auto_auth.sink[0]: aad (or aad_env_var) needs dh_type and dh_path: it is only used to encrypt the token",
        ),
        (
            "derive_key = true",
            "auto_auth.sink[0]: derive_key needs dh_type and dh_path: it is only used to encrypt the token",
        ),
        (
            "wrap_ttl = \"soon\"",
            "auto_auth.sink[0].wrap_ttl: \"soon\" is not a duration",
        ),
    ] {
        assert_eq!(hcl_error(&sink(keys)), message, "{keys}");
    }
}

#[test]
fn the_method_takes_wrap_ttl_with_one_sink_as_bao_agent_does() {
    let config = AgentConfig::from_hcl(
        "auto_auth {\n method \"approle\" {\n wrap_ttl = 300\n config = { role_id_file_path = \"/r\" }\n }\n sink \"file\" {\n config = { path = \"/s\" }\n }\n}",
    )
    .expect("config parses");
    let auto_auth = config.auto_auth.as_ref().expect("auto_auth");
    assert_eq!(auto_auth.method.wrap_ttl, Some(Duration::from_secs(300)));
    assert_eq!(auto_auth.sinks[0].wrap_ttl, None);
    assert_eq!(
        AgentConfig::from_json(&config.to_vault_agent_json()).expect("emitted config parses"),
        config
    );
    // Zero, as in bao agent, is no wrapping; a sink may then wrap.
    let config = AgentConfig::from_hcl(
        "auto_auth {\n method \"approle\" {\n wrap_ttl = \"0s\"\n config = { role_id_file_path = \"/r\" }\n }\n sink \"file\" {\n wrap_ttl = \"1m\"\n config = { path = \"/s\" }\n }\n}",
    )
    .expect("config parses");
    assert_eq!(config.auto_auth.expect("auto_auth").method.wrap_ttl, None);
}

#[test]
fn log_keys_are_read_as_bao_agent_reads_them() {
    const AUTH: &str = "auto_auth {\n method \"token_file\" {\n config = { token_file_path = \"/t\" }\n }\n sink \"file\" {\n config = { path = \"/s\" }\n }\n}\n";
    let config = AgentConfig::from_hcl(&format!(
        "{AUTH}log_level = \" Warning \"\nlog_format = \"JSON\"\nlog_file = \"/var/log/\"\nlog_rotate_bytes = 1024\nlog_rotate_max_files = -1"
    ))
    .expect("config parses");
    assert_eq!(
        config.log,
        Logging {
            level: Some(LogLevel::Warn),
            format: Some(LogFormat::Json),
            file: Some(LogFile {
                path: PathBuf::from("/var/log/bao.log"),
                rotate_bytes: 1024,
                rotate_duration: DEFAULT_LOG_ROTATE_DURATION,
                rotate_max_files: -1,
            }),
        }
    );
    assert_eq!(
        AgentConfig::from_json(&config.to_vault_agent_json()).expect("emitted config parses"),
        config
    );
    assert_eq!(
        AgentConfig::from_hcl(&format!("{AUTH}log_level = \"\""))
            .expect("parses")
            .log,
        Logging::default()
    );
    for (text, message) in [
        (
            "log_level = \"loud\"",
            "log_level: \"loud\" is not a log level: trace, debug, info, warn, warning, error, err",
        ),
        (
            "log_format = \"xml\"",
            "log_format: \"xml\" is not a log format: standard, json",
        ),
        (
            "log_file = \"/var/log/agent-*.log\"",
            "log_file: \"/var/log/agent-*.log\" has a glob character (*, ? or [)",
        ),
    ] {
        assert_eq!(hcl_error(&format!("{AUTH}{text}")), message, "{text}");
    }
}

#[test]
fn telemetry_is_checked_and_reads_its_statsd_servers() {
    const AUTH: &str = "auto_auth {\n method \"token_file\" {\n config = { token_file_path = \"/t\" }\n }\n sink \"file\" {\n config = { path = \"/s\" }\n }\n}\n";
    AgentConfig::from_hcl(&format!(
        "{AUTH}telemetry {{\n prometheus_retention_time = \"24h\"\n disable_hostname = true\n usage_gauge_period = \"5m\"\n}}"
    ))
    .expect("Prometheus settings are accepted");
    let config = AgentConfig::from_hcl(&format!(
        "{AUTH}telemetry {{\n dogstatsd_addr = \"127.0.0.1:8125\"\n dogstatsd_tags = [\"env:test\"]\n \
         statsd_address = 8125\n enable_hostname_label = true\n}}"
    ))
    .expect("StatsD servers are accepted");
    assert_eq!(
        config.telemetry,
        Telemetry {
            statsd: Some("8125".to_owned()),
            dogstatsd: Some("127.0.0.1:8125".to_owned()),
            dogstatsd_tags: vec!["env:test".to_owned()],
            hostname_label: true,
        }
    );
    assert_eq!(
        AgentConfig::from_json(&config.to_vault_agent_json()).expect("round trip"),
        config
    );
    assert_eq!(
        hcl_error(&format!(
            "{AUTH}telemetry {{\n statsite_address = \"127.0.0.1:8125\"\n}}"
        )),
        "telemetry.statsite_address: keyhole does not support this Vault Agent setting"
    );
    assert_eq!(
        hcl_error(&format!(
            "{AUTH}telemetry {{\n prometheus_retention_time = \"a day\"\n}}"
        )),
        "telemetry.prometheus_retention_time: \"a day\" is not a duration"
    );
}
