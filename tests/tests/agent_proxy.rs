//! keyhole-agent's listeners against a real OpenBao: the API proxy answers as Vault
//! does, with the agent's token where `api_proxy` says; the quit endpoint stops the
//! agent with exit status 0; metrics-only listeners serve only metrics; and what an app
//! can send is bounded.

use std::path::Path;
use std::time::Duration;

use keyhole_tests::{Bao, RunningAgent, free_port, install_crypto_provider, spawn_keyhole_agent};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the agent may take to start listening or to log in.
const START: Duration = Duration::from_secs(20);

/// A started OpenBao with `secret/app` readable by the `app` policy and `kv/other`
/// readable by no one but root, and tokens for the agent (`app`) and for an app
/// (`other`, which may read nothing).
struct World {
    bao: Bao,
    agent_token: String,
    app_token: String,
    dir: tempfile::TempDir,
}

async fn world() -> World {
    install_crypto_provider();
    let bao = Bao::start().await.expect("OpenBao starts");
    bao.kv2_put(
        "secret",
        "app",
        json!({"password": "hunter2", "user": "app"}),
    )
    .await
    .expect("secret written");
    bao.kv2_put("secret", "other", json!({"password": "not-yours"}))
        .await
        .expect("secret written");
    bao.put_policy(
        "app",
        r#"path "secret/data/app" { capabilities = ["read", "update", "create"] }
path "secret/metadata/*" { capabilities = ["list"] }"#,
    )
    .await
    .expect("policy written");
    bao.put_policy(
        "nothing",
        r#"path "sys/nothing" { capabilities = ["read"] }"#,
    )
    .await
    .expect("policy written");
    let agent_token = bao.create_token(&["app"], "1h").await.expect("token");
    let app_token = bao.create_token(&["nothing"], "1h").await.expect("token");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("token"), &agent_token).expect("token file");
    World {
        bao,
        agent_token,
        app_token,
        dir,
    }
}

/// A config logging in with the agent's token, with `rest` appended.
fn config(world: &World, rest: &str) -> String {
    format!(
        r#"
vault {{
  address = "{}"
}}
auto_auth {{
  method "token_file" {{
    config = {{ token_file_path = "{}" }}
  }}
}}
{rest}
"#,
        world.bao.addr(),
        world.dir.path().join("token").display()
    )
}

/// A plain TCP listener on `port`, with `extra` settings.
fn tcp_listener(port: u16, extra: &str) -> String {
    format!(
        "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n  {extra}\n}}\n"
    )
}

async fn start(config: &str) -> RunningAgent {
    let mut agent = spawn_keyhole_agent(config, &[])
        .await
        .expect("agent starts");
    agent
        .wait_for_log("logged in to Vault", START)
        .await
        .expect("agent logs in");
    agent
}

/// An agent with one TCP listener and `api_proxy { use_auto_auth_token = true }`, and
/// the listener's port.
async fn start_with_auto_auth_token(world: &World) -> (RunningAgent, u16) {
    let port = free_port().expect("port");
    let rest = format!(
        "{}api_proxy {{\n  use_auto_auth_token = true\n}}",
        tcp_listener(port, "")
    );
    (start(&config(world, &rest)).await, port)
}

/// What the app sees of a response: status, the headers Vault sets, and the body.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    content_type: Option<String>,
    cache_control: Option<String>,
    body: String,
}

/// Sends `method path` to `base` with `token` and `body`, and keeps what the app sees,
/// with Vault's per-request `request_id` replaced so that two answers compare.
async fn send(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Seen {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("X-Vault-Token", token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("an answer");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("text").to_owned())
    };
    let content_type = header("content-type");
    let cache_control = header("cache-control");
    let status = response.status();
    let body = response.text().await.expect("body");
    Seen {
        status,
        content_type,
        cache_control,
        body: without_request_id(&body),
    }
}

fn without_request_id(body: &str) -> String {
    match body.find("\"request_id\":\"") {
        Some(start) => {
            let value = start + "\"request_id\":\"".len();
            let end = value + body[value..].find('"').expect("closing quote");
            format!("{}<id>{}", &body[..value], &body[end..])
        }
        None => body.to_owned(),
    }
}

#[tokio::test]
async fn proxied_answers_are_vaults_byte_for_byte() {
    let world = world().await;
    let port = free_port().expect("port");
    // Without api_proxy the app's token goes through as it is.
    let template = format!(
        "template {{\n  destination = \"{}\"\n  contents = \"x\"\n}}",
        world.dir.path().join("out").display()
    );
    let agent = start(&config(&world, &(tcp_listener(port, "") + &template))).await;
    let proxy = format!("http://127.0.0.1:{port}");
    let vault = world.bao.addr().to_owned();
    let token = Some(world.agent_token.as_str());
    let list = Method::from_bytes(b"LIST").expect("method");
    let write = json!({"data": {"password": "rotated", "user": "app"}});
    let requests: [(Method, &str, Option<&Value>); 6] = [
        (Method::GET, "/v1/secret/data/app", None),
        (Method::GET, "/v1/secret/data/app?version=1", None),
        (list, "/v1/secret/metadata/", None),
        (Method::GET, "/v1/secret/data/missing", None),
        (Method::GET, "/v1/sys/health", None),
        (Method::POST, "/v1/secret/data/app", Some(&write)),
    ];
    for (method, path, body) in requests {
        let direct = send(&vault, method.clone(), path, token, body).await;
        let proxied = send(&proxy, method.clone(), path, token, body).await;
        let proxied = if method == Method::POST {
            // Each write makes a new version: compare everything but its timestamp.
            Seen {
                body: direct.body.clone(),
                ..proxied
            }
        } else {
            proxied
        };
        assert_eq!(proxied, direct, "{method} {path}");
    }
    let (_, read) = world
        .bao
        .call(
            Method::GET,
            "secret/data/app",
            Some(&world.agent_token),
            None,
        )
        .await
        .expect("read");
    assert_eq!(read["data"]["data"]["password"], "rotated");
    assert_eq!(read["data"]["metadata"]["version"], 3);
    drop(agent);
}

#[tokio::test]
async fn a_path_the_token_cannot_read_gives_vaults_403_unchanged() {
    let world = world().await;
    let (agent, port) = start_with_auto_auth_token(&world).await;
    let direct = send(
        world.bao.addr(),
        Method::GET,
        "/v1/secret/data/other",
        Some(&world.agent_token),
        None,
    )
    .await;
    let proxied = send(
        &format!("http://127.0.0.1:{port}"),
        Method::GET,
        "/v1/secret/data/other",
        None,
        None,
    )
    .await;
    assert_eq!(proxied.status, StatusCode::FORBIDDEN);
    assert_eq!(proxied, direct);
    drop(agent);
}

#[tokio::test]
async fn auto_auth_token_is_added_when_missing_and_forced_over_the_apps() {
    let world = world().await;
    let read = |port: u16, token: Option<String>| async move {
        send(
            &format!("http://127.0.0.1:{port}"),
            Method::GET,
            "/v1/secret/data/app",
            token.as_deref(),
            None,
        )
        .await
        .status
    };
    let app = Some(world.app_token.clone());

    let port = free_port().expect("port");
    let missing = start(&config(
        &world,
        &format!(
            "{}api_proxy {{\n  use_auto_auth_token = true\n}}",
            tcp_listener(port, "")
        ),
    ))
    .await;
    assert_eq!(
        read(port, None).await,
        StatusCode::OK,
        "no token: the agent's"
    );
    assert_eq!(
        read(port, app.clone()).await,
        StatusCode::FORBIDDEN,
        "the app's own token"
    );
    drop(missing);

    let port = free_port().expect("port");
    let forced = start(&config(
        &world,
        &format!(
            "{}cache {{\n  use_auto_auth_token = \"force\"\n}}",
            tcp_listener(port, "")
        ),
    ))
    .await;
    assert_eq!(read(port, None).await, StatusCode::OK);
    assert_eq!(
        read(port, app).await,
        StatusCode::OK,
        "forced over the app's token"
    );
    drop(forced);

    let port = free_port().expect("port");
    let plain = start(&config(
        &world,
        &format!(
            "{}template {{\n  destination = \"{}\"\n  contents = \"x\"\n}}",
            tcp_listener(port, ""),
            world.dir.path().join("out").display()
        ),
    ))
    .await;
    assert_eq!(
        read(port, None).await,
        StatusCode::FORBIDDEN,
        "no api_proxy: no token added"
    );
    drop(plain);
}

#[tokio::test]
async fn token_lookups_never_show_the_agents_token() {
    let world = world().await;
    let (agent, port) = start_with_auto_auth_token(&world).await;
    let proxy = format!("http://127.0.0.1:{port}");
    let seen = send(
        &proxy,
        Method::GET,
        "/v1/auth/token/lookup-self",
        None,
        None,
    )
    .await;
    assert_eq!(seen.status, StatusCode::OK);
    let lookup: Value = serde_json::from_str(&seen.body).expect("JSON");
    assert_eq!(lookup["data"]["policies"], json!(["app", "default"]));
    assert_eq!(lookup["data"].get("id"), None, "{lookup}");
    assert_eq!(lookup["data"].get("accessor"), None, "{lookup}");
    assert!(!seen.body.contains(&world.agent_token));

    let own = send(
        &proxy,
        Method::GET,
        "/v1/auth/token/lookup-self",
        Some(&world.app_token),
        None,
    )
    .await;
    let own: Value = serde_json::from_str(&own.body).expect("JSON");
    assert_eq!(
        own["data"]["id"],
        world.app_token.as_str(),
        "the app's own token is its own"
    );
    drop(agent);
}

#[tokio::test]
async fn quit_endpoint_stops_the_agent_with_status_zero_after_revoking() {
    let world = world().await;
    let port = free_port().expect("port");
    let mut agent = start(&config(
        &world,
        &format!(
            "{}api_proxy {{\n  use_auto_auth_token = true\n}}\nkeyhole {{\n  revoke_on_shutdown = true\n}}",
            tcp_listener(port, "agent_api {\n    enable_quit = true\n  }")
        ),
    ))
    .await;
    let http = reqwest::Client::new();
    let quit = format!("http://127.0.0.1:{port}/agent/v1/quit");
    let get = http.get(&quit).send().await.expect("answer");
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        agent.exit_status().expect("status"),
        None,
        "GET does not quit"
    );

    let post = http.post(&quit).send().await.expect("answer");
    assert_eq!(post.status(), StatusCode::OK);
    let status = wait_for_exit(&mut agent).await;
    assert_eq!(status.code(), Some(0), "log:\n{}", agent.log());
    let (status, _) = world
        .bao
        .call(
            Method::GET,
            "auth/token/lookup-self",
            Some(&world.agent_token),
            None,
        )
        .await
        .expect("lookup");
    assert_eq!(status, StatusCode::FORBIDDEN, "the agent revoked its token");
}

#[tokio::test]
async fn a_wrapped_login_lends_the_proxy_no_token_and_revokes_nothing() {
    let world = world().await;
    let port = free_port().expect("port");
    let sink = world.dir.path().join("wrapped");
    let config = format!(
        r#"
vault {{
  address = "{}"
}}
auto_auth {{
  method "token_file" {{
    wrap_ttl = "5m"
    config = {{ token_file_path = "{}" }}
  }}
  sink "file" {{
    config = {{ path = "{}" }}
  }}
}}
keyhole {{
  revoke_on_shutdown = true
}}
{}"#,
        world.bao.addr(),
        world.dir.path().join("token").display(),
        sink.display(),
        tcp_listener(port, "agent_api {\n    enable_quit = true\n  }"),
    );
    let mut agent = start(&config).await;
    let wrapped = agent
        .wait_for_file(&sink, START, |text| text.ends_with("}\n"))
        .await
        .expect("the sink is written");
    let info: Value = serde_json::from_str(&wrapped).expect("wrap_info JSON");
    // A token file's login is its lookup-self, so that is what is wrapped.
    assert_eq!(info["creation_path"], json!("auth/token/lookup-self"));
    let (status, unwrapped) = world
        .bao
        .call(
            Method::POST,
            "sys/wrapping/unwrap",
            info["token"].as_str(),
            None,
        )
        .await
        .expect("unwrap");
    assert_eq!(status, StatusCode::OK, "{unwrapped}");
    assert_eq!(unwrapped["data"]["id"], json!(world.agent_token));

    // Without a token of the agent's, the app's request reaches Vault as it was sent.
    let proxy = format!("http://127.0.0.1:{port}");
    for token in [None, Some(world.app_token.as_str())] {
        let direct = send(
            world.bao.addr(),
            Method::GET,
            "/v1/secret/data/app",
            token,
            None,
        )
        .await;
        let proxied = send(&proxy, Method::GET, "/v1/secret/data/app", token, None).await;
        assert_eq!(proxied.status, StatusCode::FORBIDDEN, "{proxied:?}");
        assert_eq!(proxied, direct);
    }

    let quit = reqwest::Client::new()
        .post(format!("{proxy}/agent/v1/quit"))
        .send()
        .await
        .expect("answer");
    assert_eq!(quit.status(), StatusCode::OK);
    let status = wait_for_exit(&mut agent).await;
    assert_eq!(status.code(), Some(0), "log:\n{}", agent.log());
    let (status, _) = world
        .bao
        .call(
            Method::GET,
            "auth/token/lookup-self",
            Some(&world.agent_token),
            None,
        )
        .await
        .expect("lookup");
    assert_eq!(status, StatusCode::OK, "the agent held no token to revoke");
    assert!(
        !agent.log().contains("revoked"),
        "nothing is revoked:\n{}",
        agent.log()
    );
}

#[tokio::test]
async fn quit_is_not_found_unless_enabled() {
    let world = world().await;
    let (mut agent, port) = start_with_auto_auth_token(&world).await;
    let post = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/agent/v1/quit"))
        .send()
        .await
        .expect("answer");
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(agent.exit_status().expect("status"), None);
}

#[tokio::test]
async fn metrics_only_listener_serves_only_metrics() {
    let world = world().await;
    let (default, metrics) = (free_port().expect("port"), free_port().expect("port"));
    let agent = start(&config(
        &world,
        &format!(
            "{}{}api_proxy {{\n  use_auto_auth_token = true\n}}",
            tcp_listener(default, ""),
            tcp_listener(metrics, "role = \"metrics_only\"")
        ),
    ))
    .await;
    let proxied = send(
        &format!("http://127.0.0.1:{default}"),
        Method::GET,
        "/v1/secret/data/app",
        None,
        None,
    )
    .await;
    assert_eq!(proxied.status, StatusCode::OK);

    let http = reqwest::Client::new();
    let scrape = http
        .get(format!("http://127.0.0.1:{metrics}/agent/v1/metrics"))
        .send()
        .await
        .expect("answer");
    assert_eq!(scrape.status(), StatusCode::OK);
    let text = scrape.text().await.expect("body");
    assert!(
        text.lines()
            .any(|l| l == r#"keyhole_agent_proxy_requests_total{outcome="success"} 1"#),
        "{text}"
    );
    let other = http
        .get(format!("http://127.0.0.1:{metrics}/v1/secret/data/app"))
        .send()
        .await
        .expect("answer");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(other.text().await.expect("body"), "404 page not found\n");
    let post = http
        .post(format!("http://127.0.0.1:{default}/agent/v1/metrics"))
        .send()
        .await
        .expect("answer");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.text().await.expect("body"), "{\"errors\":[]}\n");
    drop(agent);
}

#[tokio::test]
async fn bounds_what_an_app_can_send() {
    let world = world().await;
    let (agent, port) = start_with_auto_auth_token(&world).await;
    let url = format!("http://127.0.0.1:{port}/v1/secret/data/app");
    let http = reqwest::Client::new();
    let mut many = http.get(&url);
    for i in 0..120 {
        many = many.header(format!("x-filler-{i}"), "1");
    }
    let response = many.send().await.expect("answer");
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );

    // Over the limit as declared, and as sent in chunks without a length.
    let declared = raw_tcp(port, "Content-Length: 40000000\r\n", Vec::new()).await;
    let chunk = format!("100000\r\n{}\r\n", "a".repeat(0x10_0000));
    let chunked = raw_tcp(
        port,
        "Transfer-Encoding: chunked\r\n",
        chunk.repeat(33).into_bytes(),
    )
    .await;
    for response in [declared, chunked] {
        assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
        assert!(
            response.ends_with("{\"errors\":[\"http: request body too large\"]}\n"),
            "{response}"
        );
    }

    let fine = send(
        &format!("http://127.0.0.1:{port}"),
        Method::GET,
        "/v1/secret/data/app",
        None,
        None,
    )
    .await;
    assert_eq!(fine.status, StatusCode::OK, "the agent still serves");
    drop(agent);
}

#[tokio::test]
async fn unix_listener_requires_the_request_header_when_told() {
    let world = world().await;
    let socket = world.dir.path().join("agent.sock");
    let agent = start(&config(
        &world,
        &format!(
            "listener \"unix\" {{\n  address = \"{}\"\n  tls_disable = true\n  require_request_header = true\n}}\napi_proxy {{\n  use_auto_auth_token = true\n}}",
            socket.display()
        ),
    ))
    .await;
    let without = raw_get(&socket, "").await;
    assert!(without.starts_with("HTTP/1.1 412 "), "{without}");
    assert!(
        without.ends_with("{\"errors\":[\"missing \\\"X-Vault-Request\\\" header\"]}\n"),
        "{without}"
    );
    let with = raw_get(&socket, "X-Vault-Request: true\r\n").await;
    assert!(with.starts_with("HTTP/1.1 200 "), "{with}");
    assert!(with.contains("\"password\":\"hunter2\""), "{with}");
    drop(agent);
}

/// `GET /v1/secret/data/app` over the Unix socket at `path`, with `headers`; the whole
/// response as text.
async fn raw_get(path: &Path, headers: &str) -> String {
    let mut stream = tokio::net::UnixStream::connect(path)
        .await
        .expect("connect");
    let request = format!(
        "GET /v1/secret/data/app HTTP/1.1\r\nHost: agent\r\n{headers}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

/// `POST /v1/secret/data/app` to the agent on `port` with `headers`, writing `body` in
/// the background (the agent may answer before reading it all); the whole response.
async fn raw_tcp(port: u16, headers: &str, body: Vec<u8>) -> String {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /v1/secret/data/app HTTP/1.1\r\nHost: agent\r\n{headers}Connection: close\r\n\r\n"
    );
    tokio::spawn(async move {
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await;
    });
    let mut response = Vec::new();
    let _ = reader.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

async fn wait_for_exit(agent: &mut RunningAgent) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = agent.exit_status().expect("status") {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent did not exit; log:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
