use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;
use crate::patch::{Outcome, mutate_pod};
use crate::settings::Settings;

const VAULT: &str = "https://vault.vault.svc:8200";

fn settings() -> Settings {
    Settings {
        vault_addr: Some(VAULT.to_owned()),
        ..Settings::default()
    }
}

fn strict() -> Settings {
    Settings {
        policy_mode: Mode::Strict,
        ..settings()
    }
}

fn with_policy(yaml: &str) -> Settings {
    Settings {
        path_policy: Some(PathPolicy::from_yaml(yaml).expect("valid policy")),
        ..settings()
    }
}

const TEAM_A: &str =
    "namespaces:\n  team-a: [secret/data/team-a/, secret/team-a/, pki/issue/team-a]\n";

/// The denial `mutate_pod` gives a pod in `namespace` with `extra`
/// annotations besides the ones every injected pod has, as the API server
/// shows it; `Ok(())` when the pod is patched.
fn admit(namespace: &str, extra: &[(&str, &str)], settings: &Settings) -> Result<(), String> {
    review(namespace, extra, settings).map(drop)
}

/// [`admit`], with the admission warnings of a patched pod.
fn review(
    namespace: &str,
    extra: &[(&str, &str)],
    settings: &Settings,
) -> Result<Vec<String>, String> {
    let mut annotations = serde_json::Map::new();
    annotations.insert("vault.hashicorp.com/agent-inject".into(), "true".into());
    annotations.insert("vault.hashicorp.com/role".into(), "app".into());
    for (k, v) in extra {
        annotations.insert((*k).to_owned(), (*v).into());
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }))
    .expect("pod");
    match mutate_pod(&pod, namespace, settings) {
        Ok(Outcome::Patch { warnings, .. }) => Ok(warnings),
        Ok(Outcome::Skip(reason)) => panic!("skipped: {reason}"),
        Err(denial) => Err(denial.to_string()),
    }
}

fn secret(path: &str) -> [(&str, &str); 1] {
    [("vault.hashicorp.com/agent-inject-secret-db", path)]
}

#[test]
fn addresses_compare_in_one_spelling() {
    for same in [
        "https://vault.vault.svc:8200",
        "HTTPS://Vault.Vault.SVC:8200/",
        " https://vault.vault.svc:8200//",
    ] {
        assert_eq!(
            normalize_address(same).as_deref(),
            Some("https://vault.vault.svc:8200"),
            "{same}"
        );
    }
    assert_eq!(
        normalize_address("https://vault.example").as_deref(),
        Some("https://vault.example:443")
    );
    assert_eq!(
        normalize_address("http://vault.example:80/prefix/").as_deref(),
        Some("http://vault.example:80/prefix")
    );
    for odd in [
        "vault:8200",
        "ftp://vault",
        "https://user:pw@vault",
        "https://vault?x=1",
        "https://vault#frag",
        "",
    ] {
        assert_eq!(normalize_address(odd), None, "{odd}");
    }
}

#[test]
fn service_may_name_the_injectors_own_address_in_any_spelling() {
    let settings = settings();
    assert_eq!(admit("apps", &[], &settings), Ok(()));
    assert_eq!(
        admit(
            "apps",
            &[(
                "vault.hashicorp.com/service",
                "https://VAULT.vault.svc:8200/"
            )],
            &settings
        ),
        Ok(())
    );
}

const METADATA_SERVICE: [(&str, &str); 1] =
    [("vault.hashicorp.com/service", "http://169.254.169.254")];

#[test]
fn permissive_admits_another_service_with_a_warning_naming_it() {
    assert_eq!(
        review("apps", &METADATA_SERVICE, &settings()),
        Ok(vec![
            "vault.hashicorp.com/service: Vault address \"http://169.254.169.254\" is not the \
             injector's --vault-addr (https://vault.vault.svc:8200), and the agent sends its \
             login credentials there; the operator can limit addresses with \
             --allowed-vault-addrs or --policy=strict"
                .to_owned()
        ])
    );
    assert_eq!(review("apps", &[], &settings()), Ok(Vec::new()));
}

#[test]
fn strict_denies_another_service_with_the_flags_to_set() {
    assert_eq!(
        admit("apps", &METADATA_SERVICE, &strict()),
        Err(
            "vault.hashicorp.com/service: Vault address \"http://169.254.169.254\" is not \
             allowed: use the injector's --vault-addr (https://vault.vault.svc:8200) or ask \
             the operator to add it to --allowed-vault-addrs"
                .to_owned()
        )
    );
}

#[test]
fn an_explicit_allowlist_is_enforced_in_permissive_mode() {
    let settings = Settings {
        allowed_vault_addrs: vec!["https://vault.other.svc".to_owned()],
        ..settings()
    };
    assert_eq!(settings.policy_mode, Mode::Permissive);
    assert_eq!(
        admit("apps", &METADATA_SERVICE, &settings),
        Err(
            "vault.hashicorp.com/service: Vault address \"http://169.254.169.254\" is not \
             allowed: use the injector's --vault-addr (https://vault.vault.svc:8200) or ask \
             the operator to add it to --allowed-vault-addrs"
                .to_owned()
        )
    );
}

#[test]
fn service_on_the_allowlist_is_allowed() {
    let settings = Settings {
        allowed_vault_addrs: vec!["https://vault.other.svc".to_owned()],
        ..settings()
    };
    let service = |addr| [("vault.hashicorp.com/service", addr)];
    assert_eq!(
        admit("apps", &service("https://vault.other.svc:443"), &settings),
        Ok(())
    );
    assert!(admit("apps", &service("https://vault.other.svc:8200"), &settings).is_err());
}

#[test]
fn star_allows_any_service_address() {
    let settings = Settings {
        allowed_vault_addrs: vec![ANY_ADDRESS.to_owned()],
        ..settings()
    };
    assert_eq!(
        admit(
            "apps",
            &[("vault.hashicorp.com/service", "http://10.0.0.1:8200")],
            &settings
        ),
        Ok(())
    );
}

const SKIP_VERIFY: [(&str, &str); 1] = [("vault.hashicorp.com/tls-skip-verify", "true")];

const SKIP_VERIFY_DENIED: &str = "vault.hashicorp.com/tls-skip-verify: skipping verification \
     of Vault's certificate is not allowed by this injector; give the agent Vault's CA with \
     vault.hashicorp.com/ca-cert or tls-secret, or have the operator set \
     --allow-tls-skip-verify";

const SKIP_VERIFY_WARNING: &str = "vault.hashicorp.com/tls-skip-verify: Vault's certificate is \
     not verified, so whoever can intercept the connection can pose as Vault, take the pod's \
     login token and serve it false secrets; give the agent Vault's CA with \
     vault.hashicorp.com/ca-cert or tls-secret instead";

#[test]
fn tls_skip_verify_is_admitted_with_a_warning_unless_strict() {
    assert_eq!(
        review("apps", &SKIP_VERIFY, &settings()),
        Ok(vec![SKIP_VERIFY_WARNING.to_owned()])
    );
    assert_eq!(
        admit("apps", &SKIP_VERIFY, &strict()),
        Err(SKIP_VERIFY_DENIED.to_owned())
    );
    for settings in [settings(), strict()] {
        assert_eq!(
            review(
                "apps",
                &[("vault.hashicorp.com/tls-skip-verify", "false")],
                &settings
            ),
            Ok(Vec::new())
        );
    }
}

#[test]
fn the_operators_tls_skip_verify_flag_wins_in_either_mode() {
    for mode in [Mode::Permissive, Mode::Strict] {
        let refusing = Settings {
            policy_mode: mode,
            allow_tls_skip_verify: Some(false),
            ..settings()
        };
        assert_eq!(
            admit("apps", &SKIP_VERIFY, &refusing),
            Err(SKIP_VERIFY_DENIED.to_owned()),
            "{mode:?}"
        );
        let consenting = Settings {
            policy_mode: mode,
            allow_tls_skip_verify: Some(true),
            ..settings()
        };
        assert_eq!(
            review("apps", &SKIP_VERIFY, &consenting),
            Ok(vec![SKIP_VERIFY_WARNING.to_owned()]),
            "{mode:?}"
        );
    }
}

#[test]
fn configmap_is_admitted_with_a_warning_unless_strict() {
    let configmap = [("vault.hashicorp.com/agent-configmap", "agent-config")];
    let warnings = review("apps", &configmap, &settings()).expect("admitted");
    assert!(
        warnings.contains(
            &"vault.hashicorp.com/agent-configmap: the injector does not check the Vault \
              address, TLS settings or paths in ConfigMap \"agent-config\""
                .to_owned()
        ),
        "{warnings:?}"
    );
    assert_eq!(
        admit("apps", &configmap, &strict()),
        Err(
            "vault.hashicorp.com/agent-configmap: the agent config in ConfigMap \
             \"agent-config\" is not visible at admission, so its Vault address, TLS settings \
             and paths cannot be checked, which the injector's --policy=strict requires; use \
             the annotations instead"
                .to_owned()
        )
    );
}

#[test]
fn malformed_values_are_denied_in_either_mode() {
    for settings in [settings(), strict()] {
        assert_eq!(
            admit(
                "apps",
                &[("vault.hashicorp.com/service", "vault:8200")],
                &settings
            ),
            Err(
                "vault.hashicorp.com/service: \"vault:8200\" is not an http or https URL \
                 such as https://vault.example:8200"
                    .to_owned()
            )
        );
        assert_eq!(
            admit(
                "apps",
                &[("vault.hashicorp.com/tls-skip-verify", "yes please")],
                &settings
            ),
            Err(
                "vault.hashicorp.com/tls-skip-verify: \"yes please\" is not a boolean \
                 (true or false)"
                    .to_owned()
            )
        );
    }
}

#[test]
fn policy_applies_to_listed_namespaces_then_star_then_none() {
    let policy = PathPolicy::from_yaml(
        "namespaces:\n  team-a: [secret/team-a/]\n  \"*\": [secret/shared/]\n",
    )
    .expect("valid");
    assert_eq!(
        policy.prefixes("team-a"),
        Some(&["secret/team-a/".to_owned()][..])
    );
    assert_eq!(
        policy.prefixes("team-b"),
        Some(&["secret/shared/".to_owned()][..])
    );
    let without_star =
        PathPolicy::from_yaml("namespaces:\n  team-a: [secret/team-a/]\n").expect("valid");
    assert_eq!(without_star.prefixes("team-b"), None);
}

#[test]
fn policy_file_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "namespaces:\n  team-a: [\"secret/team-a/*\"]\n",
            "namespaces.team-a: prefix \"secret/team-a/*\" has a glob; prefixes match by their \
             start, write secret/team-a/ rather than secret/team-a/*",
        ),
        (
            "namespaces:\n  team-a: [\"\"]\n",
            "namespaces.team-a: prefix \"\" is empty; list no namespace to leave it unrestricted",
        ),
        (
            "namespaces:\n  team-a: [secret/../sys/]\n",
            "namespaces.team-a: prefix \"secret/../sys/\" has a \".\" or \"..\" segment",
        ),
    ];
    for (yaml, message) in cases {
        let file = dir.path().join("policy.yaml");
        std::fs::write(&file, yaml).expect("write");
        let file = file.to_str().expect("utf-8 path");
        assert_eq!(
            PathPolicy::from_file(file).map_err(|e| e.to_string()),
            Err(format!("{file}: {message}"))
        );
    }
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, "namespace:\n  team-a: [secret/]\n").expect("write");
    let err = PathPolicy::from_file(file.to_str().expect("utf-8")).expect_err("unknown key");
    assert!(err.message.contains("namespace"), "{err}");
    let missing = dir.path().join("missing.yaml");
    let err = PathPolicy::from_file(missing.to_str().expect("utf-8")).expect_err("no file");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read: ", missing.display())),
        "{err}"
    );
}

#[test]
fn secret_paths_must_be_under_an_allowed_prefix() {
    let settings = with_policy(TEAM_A);
    assert_eq!(
        admit("team-a", &secret("secret/data/team-a/db"), &settings),
        Ok(())
    );
    assert_eq!(
        admit("team-a", &secret("/secret/team-a/db?version=2"), &settings),
        Ok(())
    );
    assert_eq!(
        admit("team-a", &secret("secret/data/team-b/db"), &settings),
        Err(
            "vault.hashicorp.com/agent-inject-secret-db: Vault path \"secret/data/team-b/db\" \
             is outside the paths allowed in namespace \"team-a\" (secret/data/team-a/, \
             secret/team-a/, pki/issue/team-a); the injector's --path-policy-file sets them"
                .to_owned()
        )
    );
    assert_eq!(
        admit("team-a", &secret("secret/team-a/../team-b/db"), &settings),
        Err("vault.hashicorp.com/agent-inject-secret-db: Vault path \
             \"secret/team-a/../team-b/db\" has a \".\" or \"..\" segment, which the path \
             policy of namespace \"team-a\" does not allow"
            .to_owned())
    );
}

#[test]
fn namespaces_the_policy_does_not_cover_are_unrestricted() {
    let settings = with_policy(TEAM_A);
    assert_eq!(
        admit("team-b", &secret("secret/data/anything"), &settings),
        Ok(())
    );
}

#[test]
fn template_paths_are_checked_call_by_call() {
    let settings = with_policy(TEAM_A);
    let template = |text| {
        [
            (
                "vault.hashicorp.com/agent-inject-secret-db",
                "ignored/by/templates",
            ),
            ("vault.hashicorp.com/agent-inject-template-db", text),
        ]
    };
    let allowed = "{{ with secret \"secret/data/team-a/db\" }}{{ .Data.data.user }}{{ end }}\n\
                   {{ range secrets \"secret/team-a\" }}{{ . }}{{ end }}\n\
                   {{ with pkiCert \"pki/issue/team-a\" \"common_name=a\" }}{{ .Cert }}{{ end }}";
    assert_eq!(admit("team-a", &template(allowed), &settings), Ok(()));
    assert_eq!(
        admit(
            "team-a",
            &template(
                "{{ with secret \"secret/data/team-a/db\" }}{{ end }}\n  {{ with secret \"sys/config\" }}{{ end }}"
            ),
            &settings
        ),
        Err(
            "vault.hashicorp.com/agent-inject-template-db: 2:11: secret: Vault path \
             \"sys/config\" is outside the paths allowed in namespace \"team-a\" \
             (secret/data/team-a/, secret/team-a/, pki/issue/team-a); the injector's \
             --path-policy-file sets them"
                .to_owned()
        )
    );
    assert_eq!(
        admit(
            "team-a",
            &template(
                "{{ range secrets \"secret/team-a/\" }}{{ with secret (printf \"secret/team-a/%s\" .) }}{{ end }}{{ end }}"
            ),
            &settings
        ),
        Err(
            "vault.hashicorp.com/agent-inject-template-db: 1:45: the path of this secret call \
             is computed while rendering, so it cannot be checked against the path policy of \
             namespace \"team-a\"; write the path as a string constant"
                .to_owned()
        )
    );
}

#[test]
fn a_list_must_stay_inside_a_prefix_directory() {
    let settings = with_policy(TEAM_A);
    let list = |path: &str| format!("{{{{ range secrets \"{path}\" }}}}{{{{ . }}}}{{{{ end }}}}");
    for (path, allowed) in [
        ("secret/team-a", true),
        ("secret/team-ab", false),
        ("secret", false),
    ] {
        let text = list(path);
        let result = admit(
            "team-a",
            &[(
                "vault.hashicorp.com/agent-inject-template-db",
                text.as_str(),
            )],
            &settings,
        );
        assert_eq!(result.is_ok(), allowed, "{path}: {result:?}");
    }
}

#[test]
fn configmap_and_template_files_are_denied_under_a_path_policy() {
    let settings = with_policy(TEAM_A);
    assert_eq!(
        admit(
            "team-a",
            &[("vault.hashicorp.com/agent-configmap", "agent-config")],
            &settings
        ),
        Err(
            "vault.hashicorp.com/agent-configmap: the agent config in ConfigMap \
             \"agent-config\" is not visible at admission, so its Vault paths cannot be checked \
             against the path policy of namespace \"team-a\"; use agent-inject-secret-* and \
             agent-inject-template-* annotations instead"
                .to_owned()
        )
    );
    assert_eq!(
        admit(
            "team-a",
            &[
                (
                    "vault.hashicorp.com/agent-inject-secret-db",
                    "secret/team-a/db"
                ),
                (
                    "vault.hashicorp.com/agent-inject-template-file-db",
                    "/vault/custom/db.tmpl"
                ),
            ],
            &settings
        ),
        Err(
            "vault.hashicorp.com/agent-inject-template-file-db: template file \
             \"/vault/custom/db.tmpl\" is read inside the agent, so the Vault paths it reads \
             cannot be checked against the path policy of namespace \"team-a\" at admission; \
             put the template in agent-inject-template-db instead"
                .to_owned()
        )
    );
    assert_eq!(
        admit(
            "team-b",
            &[("vault.hashicorp.com/agent-configmap", "agent-config")],
            &settings
        ),
        Ok(())
    );
}
