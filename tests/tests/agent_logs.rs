//! What keyhole-agent's logs and metrics reveal, against a real OpenBao: the token's
//! accessor only at debug level.

use std::path::Path;

use keyhole_tests::{Bao, run_keyhole_agent};
use reqwest::Method;

fn hcl(s: impl AsRef<str>) -> String {
    serde_json::to_string(s.as_ref()).expect("a string serialises")
}

fn path_hcl(path: &Path) -> String {
    hcl(path.display().to_string())
}

/// An init-mode config talking to `vault` that logs in with the token in `token_file` and
/// renders `contents` to `<out>/out`.
fn init_config(vault: &str, token_file: &Path, out: &Path, contents: &str) -> String {
    format!(
        "vault {{\n  address = {}\n}}\nexit_after_auth = true\n\
         auto_auth {{\n  method \"token_file\" {{\n    config = {{\n      token_file_path = {}\n    }}\n  }}\n}}\n\
         template {{\n  destination = {}\n  contents = {}\n}}\n",
        hcl(vault),
        path_hcl(token_file),
        path_hcl(&out.join("out")),
        hcl(contents),
    )
}

#[tokio::test]
async fn token_accessor_is_logged_only_at_debug_level() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let token = bao.create_token(&["default"], "1h").await?;
    let (_, lookup) = bao
        .call(Method::GET, "auth/token/lookup-self", Some(&token), None)
        .await?;
    let accessor = lookup["data"]["accessor"]
        .as_str()
        .expect("lookup-self returns the accessor")
        .to_owned();
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token)?;
    let out = dir.path().join("out");
    let config = init_config(bao.addr(), &token_file, &out, "rendered\n");

    let info = run_keyhole_agent(&config, &out, &[]).await?;
    assert_eq!(info.status.code(), Some(0), "stderr:\n{}", info.stderr);
    let login = info
        .stderr
        .lines()
        .find(|line| line.contains("logged in to Vault"))
        .unwrap_or_else(|| panic!("no login line in:\n{}", info.stderr));
    assert!(login.contains("INFO"), "{login}");
    assert!(!info.stderr.contains(&accessor), "{}", info.stderr);

    let debug = run_keyhole_agent(&config, &out, &[("VAULT_LOG_LEVEL", "debug")]).await?;
    assert_eq!(debug.status.code(), Some(0), "stderr:\n{}", debug.stderr);
    assert!(
        debug
            .stderr
            .lines()
            .any(|line| line.contains("DEBUG") && line.contains(&format!("accessor={accessor}"))),
        "{}",
        debug.stderr
    );
    Ok(())
}
