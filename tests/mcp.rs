//! `nerdcabal mcp` driven by rmcp's own client against `nerdcabal dev`: over stdio (a child process) and over
//! streamable HTTP. Tools are listed with schemas and annotations; `quote` shows the price; `x402_fetch` pays
//! (balances on chain) and the payment appears in `spending_report`; an over-budget call is a tool error and
//! nothing is signed; an above-threshold call waits for a person — approved through the CLI, or through MCP
//! elicitation — and then pays once.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use common::dev::Dev;
use common::{KillOnDrop, free_port};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, Implementation,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};

async fn call<S: rmcp::service::Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let params =
        CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments.as_object().cloned().unwrap_or_default());
    client
        .call_tool(params)
        .await
        .expect("a tool result, not a protocol error")
}

fn structured(result: &CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or(Value::Null)
}

#[tokio::test]
async fn stdio_tools_quote_pay_report_refuse_and_wait_for_approval() {
    let dev = Dev::start().await;
    let ledger = dev.ledger("mcp");
    let (buyer, seller, price) = (dev.address("buyer"), dev.address("seller"), dev.price());
    let paid_url = dev.state["paid_url"].as_str().unwrap().to_owned();
    let dear_url = dev.state["dear_url"].as_str().unwrap().to_owned();
    let dear: U256 = dev.state["dear_price"].as_str().unwrap().parse().unwrap();
    let client = dev
        .mcp_stdio(&ledger, &["--daily-budget", "$0.10", "--approval-threshold", "$0.01"])
        .await;

    let info = client.peer_info().unwrap();
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("nerdcabal-agents")
    );
    assert!(info.instructions.as_deref().unwrap_or("").contains("approval_required"));
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for want in [
        "quote",
        "x402_fetch",
        "send_payment",
        "balance",
        "spending_report",
        "budget_status",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    for tool in &tools {
        assert!(tool.output_schema.is_some(), "{} has an output schema", tool.name);
        let annotations = tool.annotations.as_ref().unwrap();
        let paying = tool.name == "x402_fetch" || tool.name == "send_payment";
        assert_eq!(annotations.read_only_hint, Some(!paying), "{}", tool.name);
        assert_eq!(annotations.destructive_hint, Some(paying), "{}", tool.name);
    }
    let fetch = tools.iter().find(|t| t.name == "x402_fetch").unwrap();
    assert!(
        fetch.input_schema["properties"]["max_price"].is_object(),
        "{:?}",
        fetch.input_schema
    );

    // quote: the price, without paying.
    let quote = call(&client, "quote", json!({"url": paid_url})).await;
    assert_eq!(quote.is_error, Some(false));
    let quote = structured(&quote);
    assert_eq!(quote["priced"], true);
    assert_eq!(quote["offers"][0]["amount"], price.to_string());
    assert_eq!(quote["offers"][0]["price"], "$0.001");
    assert_eq!(quote["offers"][0]["payable"], true);

    // x402_fetch pays; the chain and the report agree.
    let seller_before = dev.balance(seller).await;
    let fetched = call(&client, "x402_fetch", json!({"url": paid_url})).await;
    assert_eq!(fetched.is_error, Some(false), "{fetched:?}");
    let fetched = structured(&fetched);
    assert_eq!(fetched["status"], 200);
    assert_eq!(fetched["body"]["city"], "paris");
    let tx = fetched["receipt"]["transaction"].as_str().unwrap().to_owned();
    assert_eq!(dev.balance(seller).await, seller_before + price);
    let report = structured(
        &call(
            &client,
            "spending_report",
            json!({"period": "today", "group_by": "host"}),
        )
        .await,
    );
    assert_eq!(report["rows"][0]["payments"], 1);
    assert_eq!(report["rows"][0]["total"], price.to_string());
    let balance = structured(&call(&client, "balance", json!({})).await);
    assert_eq!(balance["address"], buyer.to_checksum(None));
    assert_eq!(balance["balance"], dev.balance(buyer).await.to_string());

    // Above the threshold: approval required, nothing signed until a person approves through the CLI.
    let waiting = call(&client, "x402_fetch", json!({"url": dear_url})).await;
    assert_eq!(waiting.is_error, Some(true));
    let waiting = structured(&waiting);
    assert_eq!(waiting["error"], "approval_required", "{waiting}");
    let id = waiting["approval_id"].as_str().unwrap().to_owned();
    let early = structured(&call(&client, "x402_fetch", json!({"url": dear_url, "approval_id": id})).await);
    assert_eq!(early["error"], "approval_required", "still pending: {early}");
    assert_eq!(
        dev.balance(seller).await,
        seller_before + price,
        "nothing paid while waiting"
    );
    let approve = tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
        .args(["approve", &id, "--ledger", &ledger])
        .output()
        .await
        .unwrap();
    assert!(approve.status.success(), "{}", String::from_utf8_lossy(&approve.stderr));
    let approved = call(&client, "x402_fetch", json!({"url": dear_url, "approval_id": id})).await;
    assert_eq!(approved.is_error, Some(false), "{approved:?}");
    assert_eq!(dev.balance(seller).await, seller_before + price + dear);
    let reused = structured(&call(&client, "x402_fetch", json!({"url": dear_url, "approval_id": id})).await);
    assert_eq!(reused["error"], "approval_denied", "an approval pays once: {reused}");
    assert_eq!(dev.balance(seller).await, seller_before + price + dear);

    // Over budget: $0.051 spent of $0.10; a $0.05 transfer fits, the next does not, and nothing is signed.
    let status = structured(&call(&client, "budget_status", json!({})).await);
    assert_eq!(status["daily"]["spent"], "$0.051");
    let rows_before = agents::buyer::spend_ledger::SpendLedger::open(&ledger)
        .await
        .unwrap()
        .recent(100)
        .await
        .unwrap()
        .len();
    let over = call(
        &client,
        "send_payment",
        json!({"to": seller.to_checksum(None), "amount": "$0.0095"}),
    )
    .await;
    assert_eq!(over.is_error, Some(false), "{over:?}");
    let over = call(&client, "x402_fetch", json!({"url": dear_url, "max_price": "$0.10"})).await;
    assert_eq!(over.is_error, Some(true));
    let over = structured(&over);
    assert_eq!(
        over["error"], "approval_required",
        "the threshold is checked before budgets: {over}"
    );
    let limited = dev.mcp_stdio(&ledger, &["--daily-budget", "$0.061"]).await;
    let refused = call(&limited, "x402_fetch", json!({"url": paid_url})).await;
    assert_eq!(refused.is_error, Some(true));
    let refused = structured(&refused);
    assert_eq!(refused["error"], "over_budget", "{refused}");
    assert_eq!(refused["scope"], "daily");
    assert_eq!(refused["spent"], "$0.0605");
    assert_eq!(refused["limit"], "$0.061");
    let rows_after = agents::buyer::spend_ledger::SpendLedger::open(&ledger)
        .await
        .unwrap()
        .recent(100)
        .await
        .unwrap()
        .len();
    assert_eq!(
        rows_after,
        rows_before + 1,
        "only the transfer was recorded; the refused call signed nothing"
    );
    let _ = tx;
    let _ = limited.cancel().await;
    let _ = client.cancel().await;
}

const TOKEN: &str = "test-token-0123456789abcdef";

/// rmcp's streamable HTTP client transport, with a bearer token and an `Origin` if given.
fn http_transport(
    url: &str,
    token: Option<&str>,
    origin: Option<&str>,
) -> StreamableHttpClientTransport<reqwest::Client> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    if let Some(origin) = origin {
        let headers = [(reqwest::header::ORIGIN, origin.parse().unwrap())]
            .into_iter()
            .collect();
        config = config.custom_headers(headers);
    }
    StreamableHttpClientTransport::from_config(config)
}

/// The error of a connection attempt that must fail.
fn refusal_of<T, E>(result: Result<T, E>) -> E {
    match result {
        Ok(_) => panic!("the server accepted a client it should have refused"),
        Err(e) => e,
    }
}

/// Waits until something listens on the port (or the child exits, which fails the test).
async fn wait_listening(port: u16, child: &mut KillOnDrop) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(child.try_wait().unwrap().is_none(), "nerdcabal mcp --http exited");
        assert!(Instant::now() < deadline, "nerdcabal mcp --http did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An MCP client that answers elicitation requests.
#[derive(Clone)]
struct Approver {
    approve: bool,
}

impl ClientHandler for Approver {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("approver", "0.0.1"),
        )
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": self.approve})))
    }
}

#[tokio::test]
async fn http_transport_pays_and_asks_a_person_through_elicitation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dev = Dev::start().await;
    let ledger = dev.ledger("mcp-http");
    let port = free_port();
    let args = dev.mcp_args(
        &ledger,
        &[
            "--http",
            &format!("127.0.0.1:{port}"),
            "--http-token",
            TOKEN,
            "--approval-threshold",
            "$0.01",
        ],
    );
    let mut server = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
            .args(&args)
            .env_remove("NERDCABAL_BUYER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut server).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let (seller, price) = (dev.address("seller"), dev.price());
    let dear: U256 = dev.state["dear_price"].as_str().unwrap().parse().unwrap();
    let seller_before = dev.balance(seller).await;

    let yes = Approver { approve: true }
        .serve(http_transport(&url, Some(TOKEN), None))
        .await
        .unwrap();
    assert_eq!(yes.list_all_tools().await.unwrap().len(), 7);
    let paid = call(&yes, "x402_fetch", json!({"url": dev.state["paid_url"]})).await;
    assert_eq!(paid.is_error, Some(false), "{paid:?}");
    // Above the threshold: the client is asked, the person says yes, it pays once.
    let dear_paid = call(&yes, "x402_fetch", json!({"url": dev.state["dear_url"]})).await;
    assert_eq!(dear_paid.is_error, Some(false), "{dear_paid:?}");
    assert_eq!(dev.balance(seller).await, seller_before + price + dear);

    let no = Approver { approve: false }
        .serve(http_transport(&url, Some(TOKEN), None))
        .await
        .unwrap();
    let declined = call(&no, "x402_fetch", json!({"url": dev.state["dear_url"]})).await;
    assert_eq!(declined.is_error, Some(true));
    assert_eq!(structured(&declined)["error"], "approval_denied");
    assert_eq!(
        dev.balance(seller).await,
        seller_before + price + dear,
        "a declined payment is not made"
    );
    let report = structured(&call(&no, "spending_report", json!({"group_by": "day"})).await);
    assert_eq!(
        report["rows"][0]["payments"], 2,
        "the ledger is shared across sessions: {report}"
    );
    let _ = yes.cancel().await;
    let _ = no.cancel().await;
}

/// An internal server the buyer's configuration allows: `/echo` answers the request headers it got as JSON,
/// `/big` a gigabyte produced only as it is read (`produced` counts it), `/redirect` sends to `to`.
async fn internal_server(to: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let produced = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (counter, to) = (counter.clone(), to.clone());
        async move {
            match uri.path() {
                "/echo" => {
                    let seen: serde_json::Map<String, Value> = headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
                        .collect();
                    axum::Json(Value::Object(seen)).into_response()
                }
                "/redirect" => (StatusCode::FOUND, [("location", to)]).into_response(),
                _ => {
                    let chunks = futures_util::stream::unfold(0usize, move |sent| {
                        let counter = counter.clone();
                        async move {
                            (sent < 1 << 30).then(|| {
                                counter.fetch_add(65_536, Ordering::SeqCst);
                                let chunk = axum::body::Bytes::from(vec![b'z'; 65_536]);
                                (Ok::<_, std::io::Error>(chunk), sent + 65_536)
                            })
                        }
                    });
                    axum::body::Body::from_stream(chunks).into_response()
                }
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, produced)
}

#[tokio::test]
async fn the_fetch_policy_refuses_internal_addresses_allows_the_devnet_proxy_and_drops_agent_headers() {
    let dev = Dev::start().await;
    let admin = dev.state["admin_url"].as_str().unwrap().to_owned();
    let (internal, produced) = internal_server(format!("{admin}/metrics")).await;
    let config = dev.dir.join("buyer.toml");
    let authority = internal.trim_start_matches("http://");
    std::fs::write(&config, format!("[fetch]\nallow_hosts = [\"{authority}\"]\n")).unwrap();
    let ledger = dev.ledger("fetch-policy");
    let client = dev.mcp_stdio(&ledger, &["--config", config.to_str().unwrap()]).await;
    let refusal = |result: CallToolResult| {
        assert_eq!(result.is_error, Some(true), "{result:?}");
        let error = structured(&result);
        assert_eq!(error["error"], "fetch_refused", "{error}");
        (
            error["rule"].as_str().unwrap().to_owned(),
            error["host"].as_str().unwrap().to_owned(),
        )
    };

    // The dev stack's admin, facilitator and RPC ports share the proxy's address and are refused; so are
    // cloud metadata, a name resolving to loopback, and a redirect from an allowed host to a refused one.
    let proxy_port = dev.state["proxy_url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    for (tool, url, rule) in [
        ("quote", format!("{admin}/metrics"), "loopback"),
        (
            "x402_fetch",
            format!("{}/supported", dev.state["facilitator_url"].as_str().unwrap()),
            "loopback",
        ),
        (
            "x402_fetch",
            dev.state["rpc_url"].as_str().unwrap().to_owned(),
            "loopback",
        ),
        (
            "x402_fetch",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "metadata",
        ),
        ("x402_fetch", "http://[fd00:ec2::254]/latest/".to_owned(), "metadata"),
        ("quote", "http://10.0.0.1/".to_owned(), "private"),
        (
            "x402_fetch",
            format!("http://localhost:{proxy_port}/weather/paris"),
            "loopback",
        ),
        ("x402_fetch", format!("{internal}/redirect"), "loopback"),
    ] {
        let (got, _) = refusal(call(&client, tool, json!({"url": url})).await);
        assert_eq!(got, rule, "{tool} {url}");
    }
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("outcome=\"paid\""), "nothing was paid: {metrics}");
    assert!(
        agents::buyer::spend_ledger::SpendLedger::open(&ledger)
            .await
            .unwrap()
            .recent(10)
            .await
            .unwrap()
            .is_empty()
    );

    // The devnet proxy itself is allowed, and pays as before.
    let paid = call(&client, "x402_fetch", json!({"url": dev.state["paid_url"]})).await;
    assert_eq!(paid.is_error, Some(false), "{paid:?}");
    assert_eq!(structured(&paid)["body"]["city"], "paris");

    // An allowed internal host gets the agent's own headers, not its Host or hop-by-hop ones.
    let echoed = call(
        &client,
        "x402_fetch",
        json!({"url": format!("{internal}/echo"), "headers": {
            "Host": "169.254.169.254", "Connection": "close, X-Hop", "X-Hop": "1",
            "Proxy-Authorization": "Basic c2VjcmV0", "Upgrade": "h2c", "X-Ok": "yes"
        }}),
    )
    .await;
    assert_eq!(echoed.is_error, Some(false), "{echoed:?}");
    let seen = structured(&echoed)["body"].clone();
    assert_eq!(seen["host"], authority, "{seen}");
    assert_eq!(seen["x-ok"], "yes", "{seen}");
    for dropped in ["x-hop", "proxy-authorization", "upgrade"] {
        assert!(seen.get(dropped).is_none(), "{dropped} was dropped: {seen}");
    }

    // A gigabyte answer: the tool reads about what it returns, says it cut, and the rest is never made.
    let big = call(&client, "x402_fetch", json!({"url": format!("{internal}/big")})).await;
    assert_eq!(big.is_error, Some(false), "{big:?}");
    let big = structured(&big);
    assert_eq!(
        big["body"].as_str().unwrap().len(),
        agents::mcp::buyer_tools::MAX_BODY_CHARS
    );
    assert!(big["truncated"].as_str().unwrap().contains("longer than the"), "{big}");
    let made = produced.load(std::sync::atomic::Ordering::SeqCst);
    assert!(made < 64 << 20, "only a little of the gigabyte was produced: {made}");
    let _ = client.cancel().await;
}

#[tokio::test]
async fn http_transport_requires_its_bearer_token_and_answers_a_foreign_origin_403() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = common::temp_dir("mcp-auth");
    let (port, token_file) = (free_port(), dir.join("secret").join("mcp-token"));
    let stderr_path = dir.join("stderr");
    let key = alloy::primitives::B256::random().to_string();
    let ledger = format!("sqlite://{}", dir.join("spend.db").display());
    let mut server = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
            .args(["mcp", "--http", &format!("127.0.0.1:{port}"), "--ledger", &ledger])
            .arg("--http-token-file")
            .arg(&token_file)
            .env("NERDCABAL_BUYER_KEY", &key)
            .env_remove("NERDCABAL_MCP_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut server).await;
    let url = format!("http://127.0.0.1:{port}/mcp");

    // No token was given: one was generated, written 0600 and printed once.
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let printed = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(printed.matches(&token).count(), 1, "{printed}");

    // No token, or a wrong one: 401, through rmcp's client and on the wire.
    for presented in [None, Some("not-the-token-at-all")] {
        let refused = refusal_of(().serve(http_transport(&url, presented, None)).await);
        assert!(format!("{refused:?}").contains("Auth"), "{refused:?}");
    }
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    let post = |token: Option<&str>, origin: Option<&str>| {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let unauthorized = post(None, None).await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert!(
        unauthorized.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // The right token from a foreign Origin: 403, whatever the token.
    let foreign = ().serve(http_transport(&url, Some(&token), Some("https://evil.example"))).await;
    assert!(format!("{:?}", refusal_of(foreign)).contains("403"));
    let forbidden = post(Some(&token), Some("https://evil.example")).await.unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(post(Some(&token), Some("null")).await.unwrap().status(), 403);
    assert_eq!(post(None, Some("http://localhost:1")).await.unwrap().status(), 403);

    // The token, with no Origin or the server's own: the tools.
    for origin in [None, Some(format!("http://localhost:{port}"))] {
        let client = ().serve(http_transport(&url, Some(&token), origin.as_deref())).await.unwrap();
        assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
        let _ = client.cancel().await;
    }

    // A bind that is not loopback does not start without a token; with one, it serves it.
    let open_port = free_port();
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
        .args(["mcp", "--http", &format!("0.0.0.0:{open_port}"), "--ledger", &ledger])
        .env("NERDCABAL_BUYER_KEY", &key)
        .env_remove("NERDCABAL_MCP_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("NERDCABAL_MCP_TOKEN"),
        "{stderr}"
    );
    let mut open = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_nerdcabal"))
            .args(["mcp", "--http", &format!("0.0.0.0:{open_port}"), "--ledger", &ledger])
            .env("NERDCABAL_BUYER_KEY", &key)
            .env("NERDCABAL_MCP_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(open_port, &mut open).await;
    let open_url = format!("http://127.0.0.1:{open_port}/mcp");
    assert!(().serve(http_transport(&open_url, None, None)).await.is_err());
    let client = ().serve(http_transport(&open_url, Some(TOKEN), None)).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
    let _ = client.cancel().await;
    let _ = std::fs::remove_dir_all(&dir);
}
