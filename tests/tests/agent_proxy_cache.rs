//! The API proxy's lease cache (`cache { }`) against a real OpenBao and PostgreSQL:
//! keyhole-agent keeps, serves, renews and forgets leased secrets and tokens as `bao
//! agent` does, request for request, and `/agent/v1/cache-clear` answers as `bao agent`
//! answers.

use std::time::Duration;

use keyhole_tests::{
    AgentConfig, AutoAuth, Bao, Postgres, RunningAgent, configure_database_engine, free_port,
    install_crypto_provider, spawn_bao_agent, spawn_keyhole_agent,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How long an agent may take to start listening.
const START: Duration = Duration::from_secs(20);

/// What the agent's token may do: read database credentials, create child tokens, and
/// revoke what it obtained.
const POLICY: &str = r#"
path "database/creds/app" { capabilities = ["read"] }
path "secret/data/app" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["create", "update"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"#;

struct World {
    bao: Bao,
    _pg: Postgres,
    dir: tempfile::TempDir,
}

async fn world(default_ttl: &str, max_ttl: &str) -> World {
    install_crypto_provider();
    let bao = Bao::start().await.expect("OpenBao starts");
    let pg = Postgres::start().await.expect("PostgreSQL starts");
    configure_database_engine(&bao, &pg, "app", default_ttl, max_ttl)
        .await
        .expect("database engine");
    bao.kv2_put("secret", "app", json!({"password": "hunter2"}))
        .await
        .expect("secret written");
    bao.put_policy("proxy", POLICY).await.expect("policy");
    World {
        bao,
        _pg: pg,
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

/// A config logging in with a new token of the `proxy` policy, caching, with the
/// agent's token for requests without one, listening on `port`.
async fn config(world: &World, name: &str, port: u16) -> AgentConfig {
    let token = world
        .bao
        .create_token(&["proxy"], "1h")
        .await
        .expect("token");
    let file = world.dir.path().join(name);
    std::fs::write(&file, token).expect("token file");
    AgentConfig::new(world.bao.addr())
        .auto_auth(AutoAuth::token_file(file))
        .proxy_listener(port)
        .use_auto_auth_token()
        .cache()
}

/// Waits until the agent at `port` proxies a request with its own token.
async fn ready(agent: &RunningAgent, port: u16) {
    let deadline = tokio::time::Instant::now() + START;
    loop {
        let answer = reqwest::get(format!("http://127.0.0.1:{port}/v1/secret/data/app")).await;
        if answer.is_ok_and(|a| a.status() == StatusCode::OK) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent on port {port} never proxied; log:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the app sees of an answer.
struct Seen {
    status: StatusCode,
    cache: Option<String>,
    age: Option<String>,
    body: Value,
}

async fn send(
    port: u16,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Seen {
    let mut request =
        reqwest::Client::new().request(method, format!("http://127.0.0.1:{port}{path}"));
    if let Some(token) = token {
        request = request.header("X-Vault-Token", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.expect("an answer");
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .map(|value| value.to_str().expect("text").to_owned())
    };
    let (cache, age) = (header("x-cache"), header("age"));
    let status = answer.status();
    let text = answer.text().await.expect("body");
    Seen {
        status,
        cache,
        age,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// The text at `pointer` (e.g. `/auth/accessor`) in an answer's body.
fn text(seen: &Seen, pointer: &str) -> String {
    seen.body
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {}", seen.body))
        .to_owned()
}

/// Runs the same requests against the agent on `port` and describes, per step, what the
/// app saw: status, `X-Cache`, and whether the credentials or token are those of an
/// earlier step.
async fn scenario(port: u16) -> Vec<String> {
    let mut steps = Vec::new();
    let mut seen_values: Vec<String> = Vec::new();
    let mut note = |step: &str, seen: &Seen, value: Option<&str>| {
        let which = value.map_or("-".to_owned(), |value| {
            match seen_values.iter().position(|v| v == value) {
                Some(at) => format!("#{at}"),
                None => {
                    seen_values.push(value.to_owned());
                    format!("#{} (new)", seen_values.len() - 1)
                }
            }
        });
        steps.push(format!(
            "{step}: {} {} {which}",
            seen.status.as_u16(),
            seen.cache.as_deref().unwrap_or("-")
        ));
    };
    let creds = || send(port, Method::GET, "/v1/database/creds/app", None, None);
    let create = || {
        send(
            port,
            Method::POST,
            "/v1/auth/token/create",
            None,
            Some(json!({"ttl": "10m", "policies": ["default"]})),
        )
    };
    let clear = |body: Value| async move {
        let seen = send(
            port,
            Method::POST,
            "/agent/v1/cache-clear",
            None,
            Some(body),
        )
        .await;
        assert_eq!(seen.status, StatusCode::OK, "cache-clear: {:?}", seen.body);
    };
    let username = |seen: &Seen| seen.body["data"]["username"].as_str().map(str::to_owned);
    let token = |seen: &Seen| {
        seen.body["auth"]["client_token"]
            .as_str()
            .map(str::to_owned)
    };

    let first = creds().await;
    note("creds", &first, username(&first).as_deref());
    let again = creds().await;
    note("creds again", &again, username(&again).as_deref());
    assert!(
        again
            .age
            .as_deref()
            .is_some_and(|age| age.parse::<u64>().is_ok()),
        "a hit carries its Age in seconds: {:?}",
        again.age
    );
    let kv = send(port, Method::GET, "/v1/secret/data/app", None, None).await;
    note("kv read", &kv, None);
    let kv = send(port, Method::GET, "/v1/secret/data/app", None, None).await;
    note("kv read again", &kv, None);

    let lease = text(&again, "/lease_id");
    let revoked = send(
        port,
        Method::PUT,
        "/v1/sys/leases/revoke",
        None,
        Some(json!({"lease_id": lease})),
    )
    .await;
    note("revoke the lease", &revoked, None);
    let after = creds().await;
    note("creds after revoke", &after, username(&after).as_deref());
    let again = creds().await;
    note("creds again", &again, username(&again).as_deref());

    let lease = text(&again, "/lease_id");
    clear(json!({"type": "lease", "value": lease})).await;
    let after = creds().await;
    note(
        "creds after clearing the lease",
        &after,
        username(&after).as_deref(),
    );
    clear(json!({"type": "request_path", "value": "/v1/database/creds"})).await;
    let after = creds().await;
    note(
        "creds after clearing the path",
        &after,
        username(&after).as_deref(),
    );
    clear(json!({"type": "request_path", "value": "/v1/database", "namespace": "team-a/"})).await;
    let after = creds().await;
    note(
        "creds after clearing another namespace",
        &after,
        username(&after).as_deref(),
    );

    let child = create().await;
    note("create a token", &child, token(&child).as_deref());
    let again = create().await;
    note("create it again", &again, token(&again).as_deref());
    let child_token = token(&again).expect("a token");
    let revoked = send(
        port,
        Method::POST,
        "/v1/auth/token/revoke-self",
        Some(&child_token),
        None,
    )
    .await;
    note("the token revokes itself", &revoked, None);
    let after = create().await;
    note("create after revoke-self", &after, token(&after).as_deref());
    let accessor = text(&after, "/auth/accessor");
    clear(json!({"type": "token_accessor", "value": accessor})).await;
    let after = create().await;
    note(
        "create after clearing the accessor",
        &after,
        token(&after).as_deref(),
    );
    let accessor = text(&after, "/auth/accessor");
    let revoked = send(
        port,
        Method::POST,
        "/v1/auth/token/revoke-accessor",
        None,
        Some(json!({"accessor": accessor})),
    )
    .await;
    note("revoke by accessor", &revoked, None);
    let after = create().await;
    note(
        "create after revoke-accessor",
        &after,
        token(&after).as_deref(),
    );

    clear(json!({"type": "all"})).await;
    let after = creds().await;
    note(
        "creds after clearing all",
        &after,
        username(&after).as_deref(),
    );
    let after = creds().await;
    note("creds again", &after, username(&after).as_deref());
    steps
}

/// The answers `/agent/v1/cache-clear` gives to requests it refuses.
async fn refusals(port: u16) -> Vec<(u16, Value)> {
    let mut answers = Vec::new();
    for body in [
        json!({"type": "token"}),
        json!({"type": "lease"}),
        json!({"type": "request_path"}),
        json!({"type": "token_accessor"}),
        json!({"type": "everything"}),
        json!({}),
    ] {
        let seen = send(
            port,
            Method::POST,
            "/agent/v1/cache-clear",
            None,
            Some(body),
        )
        .await;
        answers.push((seen.status.as_u16(), seen.body));
    }
    let empty = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/agent/v1/cache-clear"))
        .send()
        .await
        .expect("an answer");
    answers.push((
        empty.status().as_u16(),
        serde_json::from_str(&empty.text().await.expect("body")).expect("JSON"),
    ));
    answers
}

#[tokio::test]
async fn the_cache_answers_request_for_request_as_bao_agent_does() {
    let world = world("1h", "2h").await;
    let bao_port = free_port().expect("port");
    let bao_agent = spawn_bao_agent(config(&world, "bao-token", bao_port).await)
        .await
        .expect("bao agent starts");
    ready(&bao_agent, bao_port).await;
    let keyhole_port = free_port().expect("port");
    let keyhole = spawn_keyhole_agent(config(&world, "keyhole-token", keyhole_port).await, &[])
        .await
        .expect("keyhole-agent starts");
    ready(&keyhole, keyhole_port).await;

    let by_bao = scenario(bao_port).await;
    let by_keyhole = scenario(keyhole_port).await;
    assert_eq!(
        by_keyhole,
        by_bao,
        "keyhole-agent's log:\n{}",
        keyhole.log()
    );
    // Pinned as well, so that a change in both shows.
    assert_eq!(
        by_keyhole,
        [
            "creds: 200 MISS #0 (new)",
            "creds again: 200 HIT #0",
            "kv read: 200 MISS -",
            "kv read again: 200 MISS -",
            "revoke the lease: 204 MISS -",
            "creds after revoke: 200 MISS #1 (new)",
            "creds again: 200 HIT #1",
            "creds after clearing the lease: 200 MISS #2 (new)",
            "creds after clearing the path: 200 MISS #3 (new)",
            "creds after clearing another namespace: 200 HIT #3",
            "create a token: 200 MISS #4 (new)",
            "create it again: 200 HIT #4",
            "the token revokes itself: 204 MISS -",
            "create after revoke-self: 200 MISS #5 (new)",
            "create after clearing the accessor: 200 MISS #6 (new)",
            "revoke by accessor: 204 MISS -",
            "create after revoke-accessor: 200 MISS #7 (new)",
            "creds after clearing all: 200 MISS #8 (new)",
            // bao agent manages its own token again only from its next login.
            "creds again: 200 MISS #9 (new)",
        ]
    );
    assert_eq!(refusals(keyhole_port).await, refusals(bao_port).await);
}

#[tokio::test]
async fn the_cache_obtains_a_lease_once_renews_it_and_forgets_it_near_its_max_ttl() {
    // A 6 s lease renewed at two thirds of its TTL lives past 6 s; its max TTL of 12 s
    // ends it, and the cache lets go of it before that.
    let world = world("6s", "12s").await;
    let port = free_port().expect("port");
    let agent = spawn_keyhole_agent(config(&world, "token", port).await, &[])
        .await
        .expect("keyhole-agent starts");
    ready(&agent, port).await;

    // Sent at once, the same request reaches Vault once: one new lease, one hit.
    let (first, twin) = tokio::join!(
        send(port, Method::GET, "/v1/database/creds/app", None, None),
        send(port, Method::GET, "/v1/database/creds/app", None, None),
    );
    let mut results = [first.cache.clone(), twin.cache.clone()];
    results.sort();
    assert_eq!(results, [Some("HIT".to_owned()), Some("MISS".to_owned())]);
    assert_eq!(first.body["data"], twin.body["data"]);
    let lease = text(&first, "/lease_id");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let lookup = world
        .bao
        .write("sys/leases/lookup", json!({"lease_id": lease}))
        .await
        .expect("the lease outlived its first 6 s: the cache renewed it");
    assert!(lookup["data"]["last_renewal"].is_string(), "{lookup}");
    let kept = send(port, Method::GET, "/v1/database/creds/app", None, None).await;
    assert_eq!(kept.cache.as_deref(), Some("HIT"));
    assert_eq!(kept.body["data"], first.body["data"]);

    // The last renewal, at about 8 s, is granted what is left of the 12 s: the
    // cache forgets the answer while 15 % of the lease's 6 s is left, near 11 s.
    // Asking after the max TTL, rather than just before it, leaves the agent a
    // second or two of a loaded machine's delays; a cache that kept the answer
    // would give back credentials that no longer exist.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let renewed = send(port, Method::GET, "/v1/database/creds/app", None, None).await;
    assert_eq!(
        renewed.cache.as_deref(),
        Some("MISS"),
        "the lease near its max TTL is forgotten; log:\n{}",
        agent.log()
    );
    assert_ne!(
        renewed.body["data"]["username"],
        first.body["data"]["username"]
    );
}
