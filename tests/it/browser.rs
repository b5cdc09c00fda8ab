//! The web dashboard in a real headless Chromium (issue #7), against the real server (scheduler and
//! router on a port-0 listener) with a fleet it really polls: two servers on a throwaway sshd (real
//! top/free/df, the docker shim's containers) and one on a closed port, offline with a reason.
//!
//! The page is driven the way a person uses it (typing, clicking, dragging), and checked against
//! the JSON API fetched at the same moment. Every test ends with `assert_clean`: no JavaScript error,
//! no failed request, nothing requested outside the server. The DOM it relies on is
//! `dashboard-contract.md`. Screenshots land in `target/browser-artifacts/`.
//!
//! Chromium is heavy on a small CI machine, so the tests take turns (`ONE_AT_A_TIME`) and each
//! keeps one browser session for all its steps. Waits are long (a loaded 2-core machine stalls a
//! page for seconds) and nothing is asserted about speed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fleetpoll::activity::Actor;
use fleetpoll::auth::Role;
use fleetpoll::inventory::Server;
use serde_json::{json, Value};

use crate::common::{self, TestApp};
use crate::harness::browser::{Browser, WAIT};
use crate::harness::{self, Sshd};

/// One browser-and-fleet at a time: three Chromiums and three polled fleets at once would starve
/// a 2-core machine and turn generous waits into flaky ones. (tokio's Mutex is runtime-agnostic,
/// so each `#[tokio::test]` runtime can share it.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PASSWORD: &str = "correct horse battery";
const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 900);

/// The fleet every test drives.
struct Fleet {
    app: TestApp,
    sshd: Sshd,
    /// On the sshd: `alpha-web` (tags web, prod) and `beta-db` (tags db).
    online: Vec<Server>,
    /// `gamma-down` on a closed port (tags edge).
    offline: Server,
}

impl Fleet {
    /// Starts the app polling every 2 s, registers the three servers, adds an operator `olga`
    /// and a viewer `vera`, and waits until each online server has at least `samples` stored
    /// samples with a CPU value and the offline one is offline.
    async fn start(samples: i64) -> Fleet {
        let sshd = Sshd::start(common::shim());
        let app = TestApp::start_with_interval(2).await;
        let mut online = Vec::new();
        for (name, tags) in [("alpha-web", vec!["web", "prod"]), ("beta-db", vec!["db"])] {
            let mut new = common::registration(name, &sshd);
            new.tags = tags.into_iter().map(String::from).collect();
            online.push(common::add(&app.store, new).await);
        }
        let mut down = common::registration("gamma-down", &sshd);
        down.port = harness::closed_port();
        down.tags = vec!["edge".into()];
        let offline = common::add(&app.store, down).await;
        for (name, role) in [("olga", Role::Operator), ("vera", Role::Viewer)] {
            fleetpoll::ops::create_user(&app.store, name, role, PASSWORD, &Actor::system())
                .await
                .expect("create user");
        }
        let fleet = Fleet {
            app,
            sshd,
            online,
            offline,
        };
        fleet.wait_polled(samples).await;
        fleet
    }

    fn origin(&self) -> String {
        format!("http://{}", self.app.addr)
    }

    async fn wait_polled(&self, samples: i64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut least = i64::MAX;
            for s in &self.online {
                let n = common::count(
                    &self.app.store,
                    &format!(
                        "select count(*) from server_metrics where server_id = '{}' \
                         and cpu_busy_percent is not null",
                        s.id
                    ),
                )
                .await;
                least = least.min(n);
            }
            let (_, summary) = self.app.get("/api/dashboard/summary").await;
            if least >= samples && summary["online_servers"] == 2 && summary["offline_servers"] == 1
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the fleet was not polled in 90 s: {least} samples on the least polled server; \
                 summary {summary}\nsshd log:\n{}",
                self.sshd.log_text()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Logs in through the form at `/login` and waits for the overview to finish its first render.
async fn log_in(b: &Browser, fleet: &Fleet, user: &str) {
    b.goto(&fleet.app.url("/login")).await;
    b.wait_for("form#login", WAIT).await;
    b.find("input#username").await.send_keys(user).await;
    b.find("input#password").await.send_keys(PASSWORD).await;
    b.find("form#login button[type=submit]").await.click().await;
    b.wait_js(
        "landing on / after logging in",
        "location.pathname === '/'",
        WAIT,
    )
    .await;
    wait_ready(b).await;
}

/// Waits for `body[data-ready="1"]` (the page's first data render is done), then checks the
/// navigation every page but /login has and that the error banner is not showing.
async fn wait_ready(b: &Browser) {
    b.wait_js(
        "body[data-ready=1]",
        "document.body && document.body.dataset.ready === '1'",
        WAIT,
    )
    .await;
    let v = b
        .execute(
            "const q = s => document.querySelector(s);
             const banner = q('#banner');
             return {
               overview: q('nav#nav a#nav-overview') && q('a#nav-overview').getAttribute('href'),
               activity: q('nav#nav a#nav-activity') && q('a#nav-activity').getAttribute('href'),
               whoami: !!q('nav#nav span#whoami'),
               logout: !!q('nav#nav button#logout'),
               banner: banner ? (banner.hidden || banner.offsetParent === null ? '' : banner.textContent.trim()) : null,
             };",
            json!([]),
        )
        .await;
    let url = b.current_url().await;
    assert_eq!(v["overview"], "/", "a#nav-overview on {url}: {v}");
    assert_eq!(v["activity"], "/activity", "a#nav-activity on {url}: {v}");
    assert_eq!(v["whoami"], true, "span#whoami on {url}");
    assert_eq!(v["logout"], true, "button#logout on {url}");
    assert_eq!(
        v["banner"], "",
        "#banner on {url} (missing, or showing an error): {v}"
    );
}

/// The names of the server rows shown, in order.
async fn shown_rows(b: &Browser) -> Vec<String> {
    let v = b
        .execute(
            "return [...document.querySelectorAll('table#servers tbody tr.server-row')]
                .filter(r => r.offsetParent !== null).map(r => r.dataset.name);",
            json!([]),
        )
        .await;
    serde_json::from_value(v).expect("row names")
}

/// Waits until the shown rows are exactly `want` (in order when `ordered`).
async fn wait_rows(b: &Browser, what: &str, want: &[&str], ordered: bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = shown_rows(b).await;
        let ok = if ordered {
            got == want
        } else {
            got.iter().map(String::as_str).collect::<BTreeSet<_>>()
                == want.iter().copied().collect::<BTreeSet<_>>()
                && got.len() == want.len()
        };
        if ok {
            return;
        }
        if Instant::now() >= deadline {
            b.screenshot("rows-timeout").await;
            panic!("{what}: rows shown are {got:?}, want {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Chooses `value` in `select#id` by clicking its option, as a user would.
async fn choose(b: &Browser, select_id: &str, value: &str) {
    b.find(&format!("select#{select_id}")).await.click().await;
    b.find(&format!(
        "select#{select_id} option[value={}]",
        json!(value)
    ))
    .await
    .click()
    .await;
}

/// `URLSearchParams(location.search).get(key)`.
async fn query_param(b: &Browser, key: &str) -> Option<String> {
    b.execute(
        "return new URLSearchParams(location.search).get(arguments[0]);",
        json!([key]),
    )
    .await
    .as_str()
    .map(str::to_string)
}

/// At phone width, then back at desktop width: the page does not scroll sideways. Screenshots
/// of both.
async fn fits_phone_and_desktop(b: &Browser, page: &str) {
    for (label, (w, h)) in [("phone", PHONE), ("desktop", DESKTOP)] {
        b.set_window_size(w, h).await;
        b.wait_js(
            &format!("the viewport to be {w} px wide on {page}"),
            &format!("Math.abs(window.innerWidth - {w}) <= 20"),
            WAIT,
        )
        .await;
        // Let the charts' ResizeObserver redraw at the new width.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let v = b
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                json!([]),
            )
            .await;
        b.screenshot(&format!("{page}-{label}")).await;
        let (scroll, inner) = (
            v[0].as_f64().expect("scrollWidth"),
            v[1].as_f64().expect("innerWidth"),
        );
        assert!(
            scroll <= inner + 1.0,
            "{page} at {label} width scrolls sideways: scrollWidth {scroll} > innerWidth {inner}"
        );
    }
}

/// The summary counts as the cards show them, and as the API has them.
const COUNT_CARDS: [&str; 8] = [
    "total_servers",
    "online_servers",
    "offline_servers",
    "stale_servers",
    "total_containers",
    "running_containers",
    "stopped_containers",
    "error_containers",
];
const PERCENT_CARDS: [&str; 3] = ["avg_cpu_percent", "avg_memory_percent", "avg_disk_percent"];

async fn card(b: &Browser, key: &str) -> String {
    b.find(&format!("#cards .card[data-key={key}] .value"))
        .await
        .text()
        .await
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_polled_fleet_filters_it_and_adds_a_server_with_the_form() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(2).await;
    let b = Browser::start("fleet").await;
    log_in(&b, &fleet, "olga").await;
    b.screenshot("logged-in").await;
    assert_eq!(
        b.find("span#whoami").await.text().await.trim(),
        "olga (operator)"
    );

    // The cards against the API at the same moment. Counts are stable once the fleet is
    // polled; retry anyway in case a refresh and a poll cross.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, summary) = fleet.app.get("/api/dashboard/summary").await;
        let mut diffs = Vec::new();
        for key in COUNT_CARDS {
            let (shown, api) = (card(&b, key).await, summary[key].to_string());
            if shown != api {
                diffs.push(format!("{key}: card {shown:?}, API {api}"));
            }
        }
        if diffs.is_empty() {
            assert_eq!(summary["online_servers"], 2);
            assert_eq!(summary["offline_servers"], 1);
            assert!(
                summary["total_containers"].as_u64().unwrap_or(0) > 0,
                "{summary}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cards differ from the API: {diffs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for key in PERCENT_CARDS {
        let shown = card(&b, key).await;
        let ok = shown == "–"
            || shown
                .strip_suffix('%')
                .and_then(|n| n.parse::<f64>().ok())
                .is_some_and(|n| (0.0..=100.0).contains(&n));
        assert!(ok, "card {key} shows {shown:?}: want like 12.3% or –");
    }

    // Rows: one per server, with status and health from the API, a sparkline for the polled ones
    // and the reason on the offline one.
    wait_rows(
        &b,
        "all servers",
        &["alpha-web", "beta-db", "gamma-down"],
        false,
    )
    .await;
    let (_, summary) = fleet.app.get("/api/dashboard/summary").await;
    for s in summary["servers"].as_array().expect("servers") {
        let row = b
            .find(&format!(
                "tr.server-row[data-id=\"{}\"]",
                s["id"].as_str().expect("id")
            ))
            .await;
        assert_eq!(
            row.attr("data-status").await.as_deref(),
            s["status"].as_str()
        );
        // Health follows this machine's CPU from poll to poll, so only its vocabulary is stable.
        let health = row.attr("data-health").await.unwrap_or_default();
        if s["status"] == "online" {
            assert!(
                ["healthy", "warning", "critical"].contains(&health.as_str()),
                "an online server's health is {health:?}"
            );
        } else {
            assert_eq!(health, "offline", "{s}");
        }
        assert_eq!(
            row.find("a.server-link").await.text().await,
            s["name"].as_str().unwrap_or("")
        );
        if s["status"] == "online" {
            let points: u64 = row
                .find("td.spark svg.sparkline")
                .await
                .attr("data-points")
                .await
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            assert!(points >= 1, "no sparkline points for {}", s["name"]);
        }
    }
    let reason = b
        .find(&format!(
            "tr.server-row[data-id=\"{}\"] td.reason",
            fleet.offline.id
        ))
        .await
        .text()
        .await;
    assert!(
        !reason.trim().is_empty(),
        "the offline server shows no reason"
    );

    // Filters: text, status, tag; each kept in the URL and counted in #shown-count.
    let text = b.find("input#filter-text").await;
    text.send_keys("beta").await;
    wait_rows(&b, "text filter 'beta'", &["beta-db"], false).await;
    assert_eq!(
        b.find("#shown-count").await.text().await.trim(),
        "1 of 3 servers"
    );
    assert_eq!(query_param(&b, "q").await.as_deref(), Some("beta"));
    text.clear().await;
    // `clear` fires no input event in every Chromium; typing and deleting does.
    text.send_keys("x\u{E003}").await;
    wait_rows(
        &b,
        "text filter cleared",
        &["alpha-web", "beta-db", "gamma-down"],
        false,
    )
    .await;
    text.send_keys("prod").await;
    wait_rows(&b, "text filter on a tag", &["alpha-web"], false).await;
    text.clear().await;
    text.send_keys("x\u{E003}").await;

    choose(&b, "filter-status", "offline").await;
    wait_rows(&b, "status offline", &["gamma-down"], false).await;
    assert_eq!(query_param(&b, "status").await.as_deref(), Some("offline"));
    b.screenshot("filtered-offline").await;
    choose(&b, "filter-status", "online").await;
    wait_rows(&b, "status online", &["alpha-web", "beta-db"], false).await;
    choose(&b, "filter-status", "").await;
    choose(&b, "filter-tag", "db").await;
    wait_rows(&b, "tag db", &["beta-db"], false).await;
    choose(&b, "filter-tag", "").await;
    choose(&b, "filter-health", "offline").await;
    wait_rows(&b, "health offline", &["gamma-down"], false).await;
    choose(&b, "filter-health", "").await;
    wait_rows(
        &b,
        "no filter",
        &["alpha-web", "beta-db", "gamma-down"],
        false,
    )
    .await;

    // A reload keeps the filter (it lives in the URL).
    choose(&b, "filter-status", "online").await;
    b.refresh().await;
    wait_ready(&b).await;
    wait_rows(
        &b,
        "status online after a reload",
        &["alpha-web", "beta-db"],
        false,
    )
    .await;
    choose(&b, "filter-status", "").await;

    // Sorting by name: one click sorts, the next reverses.
    b.find("th[data-sort=name]").await.click().await;
    let first = shown_rows(&b).await;
    let mut asc = vec!["alpha-web", "beta-db", "gamma-down"];
    let want_first: Vec<&str> = if first.first().map(String::as_str) == Some("alpha-web") {
        asc.clone()
    } else {
        asc.reverse();
        asc.clone()
    };
    wait_rows(&b, "sorted by name", &want_first, true).await;
    assert_eq!(query_param(&b, "sort").await.as_deref(), Some("name"));
    b.find("th[data-sort=name]").await.click().await;
    let reversed: Vec<&str> = want_first.iter().rev().copied().collect();
    wait_rows(&b, "sorted by name, reversed", &reversed, true).await;

    fits_phone_and_desktop(&b, "overview").await;

    // Adding a server: a bad port shows the API's own message and adds nothing.
    let (_, before) = fleet.app.get("/api/servers").await;
    let total_before = before["total"].as_u64().expect("total");
    b.find("button#add-server").await.click().await;
    let form = b.wait_for("form#server-form", WAIT).await;
    assert!(form.displayed().await, "form#server-form is not shown");
    let key_path = fleet.sshd.client_key.to_string_lossy().into_owned();
    let field = |name: &'static str| {
        let b = &b;
        async move { b.find(&format!("form#server-form [name={name}]")).await }
    };
    field("name").await.send_keys("delta-new").await;
    field("host").await.send_keys("127.0.0.1").await;
    field("port").await.clear().await;
    field("port").await.send_keys("70000").await;
    field("user").await.clear().await;
    field("user").await.send_keys(&fleet.sshd.user).await;
    field("key_path").await.send_keys(&key_path).await;
    field("tags").await.send_keys("new, test").await;
    b.find("form#server-form button[type=submit]")
        .await
        .click()
        .await;
    b.wait_js(
        "#server-form-error to show a message",
        "(document.querySelector('#server-form-error') || {}).textContent",
        WAIT,
    )
    .await;
    let shown_error = b.find("#server-form-error").await.text().await;
    let (status, check) = fleet
        .app
        .send(
            reqwest::Method::POST,
            "/api/servers/validate",
            Some(
                &json!({"name": "delta-new", "host": "127.0.0.1", "port": 70000,
                        "user": fleet.sshd.user, "key_path": key_path, "tags": ["new", "test"]})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(status, 200, "POST /api/servers/validate: {check}");
    assert_eq!(check["valid"], false, "{check}");
    assert_eq!(check["field"], "port", "{check}");
    let api_error = check["error"].as_str().expect("error text");
    assert!(
        shown_error.contains("port") && shown_error.contains(api_error),
        "#server-form-error shows {shown_error:?}; want the API's {api_error:?} naming the port"
    );
    let port_class = field("port").await.attr("class").await.unwrap_or_default();
    assert!(
        port_class.split_whitespace().any(|c| c == "invalid"),
        "the port field's class is {port_class:?}, want `invalid`"
    );
    b.screenshot("add-server-bad-port").await;
    let (_, after) = fleet.app.get("/api/servers").await;
    assert_eq!(
        after["total"].as_u64(),
        Some(total_before),
        "a server was added despite the bad port"
    );
    assert!(b
        .try_find("tr.server-row[data-name=delta-new]")
        .await
        .is_none());

    // Fixed: the form closes and the row appears.
    field("port").await.clear().await;
    field("port")
        .await
        .send_keys(&fleet.sshd.port.to_string())
        .await;
    field("key_path").await.clear().await;
    field("key_path").await.send_keys(&key_path).await;
    b.find("form#server-form button[type=submit]")
        .await
        .click()
        .await;
    b.wait_js(
        "form#server-form to close",
        "(() => { const f = document.querySelector('form#server-form'); \
           return !f || f.hidden || f.offsetParent === null; })()",
        WAIT,
    )
    .await;
    b.wait_for("tr.server-row[data-name=delta-new]", WAIT).await;
    let (_, after) = fleet.app.get("/api/servers").await;
    let added: Vec<&Value> = after["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|s| s["name"] == "delta-new")
        .collect();
    assert_eq!(added.len(), 1, "the API lists {after}");
    assert_eq!(added[0]["port"], fleet.sshd.port);
    assert_eq!(added[0]["tags"], json!(["new", "test"]));
    b.screenshot("added").await;

    b.assert_clean(&fleet.origin()).await;
    drop(b);
    fleet.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_zooms_a_chart_exports_its_csv_and_filters_the_activity_log() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // The 1 h view puts samples in 7.2 s buckets: enough samples for a few chart points.
    let fleet = Fleet::start(6).await;
    let b = Browser::start("charts").await;
    log_in(&b, &fleet, "olga").await;
    let server = &fleet.online[0];
    b.wait_for(
        &format!("tr.server-row[data-id=\"{}\"] a.server-link", server.id),
        WAIT,
    )
    .await
    .click()
    .await;
    b.wait_js(
        "the server page",
        &format!("location.pathname === '/servers/{}'", server.id),
        WAIT,
    )
    .await;
    wait_ready(&b).await;
    assert_eq!(b.find("h1 #server-name").await.text().await, server.name);
    let host = b
        .find("dl#server-facts dd[data-fact=host]")
        .await
        .text()
        .await;
    assert!(host.contains("127.0.0.1"), "host fact is {host:?}");

    let cpu = "div.chart[data-chart=cpu]";
    let points_of = |chart: &'static str| {
        let b = &b;
        async move {
            b.execute(
                "const c = document.querySelector(arguments[0]); \
                 return c ? Number(c.dataset.points) : -1;",
                json!([chart]),
            )
            .await
            .as_i64()
            .unwrap_or(-1)
        }
    };
    // Auto-refresh every 15 s brings new buckets; reload meanwhile to be quicker about it.
    let deadline = Instant::now() + Duration::from_secs(90);
    while points_of(cpu).await < 3 {
        assert!(
            Instant::now() < deadline,
            "the CPU chart has {} points after 90 s",
            points_of(cpu).await
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        b.refresh().await;
        wait_ready(&b).await;
    }
    for chart in ["memory", "swap", "load", "disk"] {
        let sel = format!("div.chart[data-chart={chart}]");
        b.wait_for(&sel, WAIT).await;
        let n = b
            .find(&sel)
            .await
            .attr("data-points")
            .await
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0);
        assert!(n >= 1, "chart {chart} has {n} points");
    }
    // The shim's containers, in the table and each with a chart.
    let (_, containers) = fleet
        .app
        .get(&format!("/api/servers/{}/containers", server.id))
        .await;
    let names: Vec<&str> = containers["items"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        !names.is_empty(),
        "the shim gave no containers: {containers}"
    );
    for name in &names {
        b.wait_for(
            &format!(
                "table#containers tr.container-row[data-name={}]",
                json!(name)
            ),
            WAIT,
        )
        .await;
        b.wait_for(
            &format!(
                "div.chart[data-chart={}]",
                json!(format!("container:{name}"))
            ),
            WAIT,
        )
        .await;
    }
    b.screenshot("charts").await;

    // Hover shows the tooltip.
    let plot = b.find(&format!("{cpu} svg .plot")).await;
    let width = plot.rect().await.2;
    b.hover(&plot, (width / 2.0 - 3.0) as i64, 0).await;
    b.wait_js(
        "the CPU chart's tooltip",
        &format!(
            "(() => {{ const t = document.querySelector('{cpu} div.tooltip'); \
               return t && !t.hidden && t.offsetParent !== null && t.textContent.includes('%'); }})()"
        ),
        WAIT,
    )
    .await;
    b.screenshot("tooltip").await;

    // Drag across most of the plot: the URL gets the range, #reset-zoom shows, charts keep points.
    let plot = b.find(&format!("{cpu} svg .plot")).await;
    let half = (width / 2.0) as i64;
    b.drag(&plot, -half * 8 / 10, half - 2, 0).await;
    b.wait_js(
        "since and until in the URL after the drag",
        "(() => { const p = new URLSearchParams(location.search); return p.get('since') && p.get('until'); })()",
        WAIT,
    )
    .await;
    let since: DateTime<Utc> = query_param(&b, "since")
        .await
        .expect("since")
        .parse()
        .expect("since is RFC 3339");
    let until: DateTime<Utc> = query_param(&b, "until")
        .await
        .expect("until")
        .parse()
        .expect("until is RFC 3339");
    assert!(since < until, "zoomed to {since}..{until}");
    b.wait_js(
        "#reset-zoom to show",
        "(() => { const r = document.querySelector('#reset-zoom'); return r && !r.hidden && r.offsetParent !== null; })()",
        WAIT,
    )
    .await;
    // The zoomed render replaces the charts; wait for it to settle on the new range.
    b.wait_js(
        "the zoomed CPU chart to have points",
        &format!(
            "Number((document.querySelector('{cpu}') || {{dataset: {{}}}}).dataset.points) >= 1"
        ),
        WAIT,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let zoomed_points = points_of(cpu).await;
    assert!(
        zoomed_points >= 2,
        "the zoomed CPU chart has {zoomed_points} points"
    );
    b.screenshot("zoomed").await;
    println!("zoomed to {since}..{until}: the CPU chart has {zoomed_points} points");

    // CSV of the zoomed CPU chart: one row per drawn point, within the range.
    b.find(&format!("{cpu} button.export-csv"))
        .await
        .click()
        .await;
    let file = b
        .wait_download(&format!("fleetpoll-{}-cpu.csv", server.name), WAIT)
        .await;
    let csv = std::fs::read_to_string(&file).expect("read the CSV");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("time,cpu_percent"), "CSV:\n{csv}");
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(
        rows.len() as i64,
        points_of(cpu).await,
        "CSV rows vs the chart's data-points; CSV:\n{csv}"
    );
    for row in &rows {
        let (t, v) = row
            .split_once(',')
            .unwrap_or_else(|| panic!("CSV row {row:?}"));
        let t: DateTime<Utc> = t
            .parse()
            .unwrap_or_else(|e| panic!("CSV time {t:?} is not RFC 3339: {e}"));
        assert!(
            since <= t && t <= until,
            "CSV time {t} outside the zoom {since}..{until}"
        );
        let v: f64 = v
            .parse()
            .unwrap_or_else(|e| panic!("CSV value {v:?} is not a number: {e}"));
        assert!((0.0..=100.0).contains(&v), "CPU {v} outside 0..=100");
    }

    println!("{}: {} rows", file.display(), rows.len());

    // Reset zoom; periods.
    b.find("button#reset-zoom").await.click().await;
    b.wait_js(
        "the zoom to be gone from the URL",
        "!new URLSearchParams(location.search).get('since')",
        WAIT,
    )
    .await;
    b.wait_js(
        "#reset-zoom to hide",
        "document.querySelector('#reset-zoom').hidden",
        WAIT,
    )
    .await;
    b.find("#period button[data-period=\"24h\"]")
        .await
        .click()
        .await;
    b.wait_js(
        "the 24h period to be active",
        "document.querySelector('#period button[data-period=\"24h\"]').classList.contains('active')",
        WAIT,
    )
    .await;
    assert_eq!(query_param(&b, "period").await.as_deref(), Some("24h"));
    fits_phone_and_desktop(&b, "server").await;

    // Activity: filter by type, then by severity; totals match the API; the CSV link follows.
    b.find("a#nav-activity").await.click().await;
    b.wait_js(
        "the activity page",
        "location.pathname === '/activity'",
        WAIT,
    )
    .await;
    wait_ready(&b).await;
    b.screenshot("activity").await;
    choose(&b, "f-type", "server_added").await;
    b.find("form#activity-filters button[type=submit]")
        .await
        .click()
        .await;
    b.wait_js(
        "type=server_added in the URL",
        "new URLSearchParams(location.search).get('type') === 'server_added'",
        WAIT,
    )
    .await;
    let (_, api) = fleet.app.get("/api/activity?type=server_added").await;
    let total = api["total"].as_u64().expect("total");
    assert!(total >= 3, "{api}");
    wait_activity(&b, "type", "server_added", total).await;
    let href = b
        .find("a#activity-csv")
        .await
        .attr("href")
        .await
        .unwrap_or_default();
    assert!(
        href.contains("format=csv") && href.contains("type=server_added"),
        "a#activity-csv href is {href:?}"
    );

    b.find("button#f-reset").await.click().await;
    b.wait_js(
        "the filter reset",
        "!new URLSearchParams(location.search).get('type')",
        WAIT,
    )
    .await;
    // The severity with most events (the offline server made at least one warning or worse).
    let mut best = ("info", 0);
    for sev in ["info", "warning", "critical"] {
        let (_, a) = fleet
            .app
            .get(&format!("/api/activity?severity={sev}"))
            .await;
        let n = a["total"].as_u64().unwrap_or(0);
        if sev != "info" && n > 0 {
            best = (sev, n);
            break;
        }
        if sev == "info" {
            best = (sev, n);
        }
    }
    println!("severity filter: {} ({} events)", best.0, best.1);
    choose(&b, "f-severity", best.0).await;
    b.find("form#activity-filters button[type=submit]")
        .await
        .click()
        .await;
    // The fleet keeps polling; a severity's total may grow, so compare with a fresh answer.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, a) = fleet
            .app
            .get(&format!("/api/activity?severity={}", best.0))
            .await;
        let n = a["total"].as_u64().unwrap_or(0);
        match try_activity(&b, "severity", best.0, n).await {
            Ok(()) => break,
            Err(why) if Instant::now() >= deadline => panic!("severity filter {}: {why}", best.0),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let href = b
        .find("a#activity-csv")
        .await
        .attr("href")
        .await
        .unwrap_or_default();
    assert!(
        href.contains(&format!("severity={}", best.0)),
        "a#activity-csv href is {href:?}"
    );
    b.screenshot("activity-filtered").await;
    fits_phone_and_desktop(&b, "activity").await;

    b.assert_clean(&fleet.origin()).await;
    drop(b);
    fleet.app.stop().await;
}

/// `Ok` when every activity row shown has `data-<attr>` = `value` and `#page-info` ends in
/// `of <total>`.
async fn try_activity(b: &Browser, attr: &str, value: &str, total: u64) -> Result<(), String> {
    let v = b
        .execute(
            "return [[...document.querySelectorAll('table#activity tbody tr.activity-row')]
                        .map(r => r.dataset[arguments[0]]),
                     (document.querySelector('#page-info') || {}).textContent || ''];",
            json!([attr]),
        )
        .await;
    let values: Vec<String> = serde_json::from_value(v[0].clone()).unwrap_or_default();
    let info = v[1].as_str().unwrap_or("").trim().to_string();
    let want_rows = total.min(50) as usize;
    if values.len() != want_rows || values.iter().any(|x| x != value) {
        return Err(format!(
            "rows' data-{attr}: {values:?}; want {want_rows} × {value:?}"
        ));
    }
    let shown_total = info.rsplit_once(" of ").map(|(_, t)| t.trim().to_string());
    if shown_total.as_deref() != Some(&total.to_string()) {
        return Err(format!("#page-info is {info:?}; want `A–B of {total}`"));
    }
    Ok(())
}

async fn wait_activity(b: &Browser, attr: &str, value: &str, total: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        match try_activity(b, attr, value, total).await {
            Ok(()) => return,
            Err(why) if Instant::now() >= deadline => {
                b.screenshot("activity-timeout").await;
                panic!("activity filter {attr}={value}: {why}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_the_dashboard_without_admin_actions() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(1).await;
    let b = Browser::start("viewer").await;
    // Without a session a page sends the browser to /login (a 303, so no failed request), and
    // logging in returns to the page with its query.
    b.goto(&fleet.app.url("/activity?type=server_added")).await;
    b.wait_js(
        "the redirect to /login?next=",
        "location.pathname === '/login' && \
         new URLSearchParams(location.search).get('next') === '/activity?type=server_added'",
        WAIT,
    )
    .await;
    b.find("input#username").await.send_keys("vera").await;
    b.find("input#password").await.send_keys(PASSWORD).await;
    b.find("form#login button[type=submit]").await.click().await;
    b.wait_js(
        "landing back on /activity?type=server_added",
        "location.pathname === '/activity' && \
         new URLSearchParams(location.search).get('type') === 'server_added'",
        WAIT,
    )
    .await;
    wait_ready(&b).await;
    let (_, api) = fleet.app.get("/api/activity?type=server_added").await;
    wait_activity(
        &b,
        "type",
        "server_added",
        api["total"].as_u64().expect("total"),
    )
    .await;
    assert_eq!(
        b.find("span#whoami").await.text().await.trim(),
        "vera (viewer)"
    );
    b.find("a#nav-overview").await.click().await;
    b.wait_js("the overview", "location.pathname === '/'", WAIT)
        .await;
    wait_ready(&b).await;
    wait_rows(
        &b,
        "all servers",
        &["alpha-web", "beta-db", "gamma-down"],
        false,
    )
    .await;
    assert!(
        b.try_find("#add-server").await.is_none(),
        "a viewer sees #add-server"
    );
    b.screenshot("overview").await;
    b.find(&format!(
        "tr.server-row[data-id=\"{}\"] a.server-link",
        fleet.online[1].id
    ))
    .await
    .click()
    .await;
    b.wait_js(
        "the server page",
        &format!("location.pathname === '/servers/{}'", fleet.online[1].id),
        WAIT,
    )
    .await;
    wait_ready(&b).await;
    b.wait_for("div.chart[data-chart=cpu]", WAIT).await;
    for admin in [
        "#edit-server",
        "#remove-server",
        "#confirm-remove",
        "#trust-key",
    ] {
        assert!(
            b.try_find(admin).await.is_none(),
            "a viewer sees {admin} on a server page"
        );
    }
    b.screenshot("server").await;

    // Logging out lands on /login.
    b.find("button#logout").await.click().await;
    b.wait_js(
        "the login page after logout",
        "location.pathname === '/login'",
        WAIT,
    )
    .await;
    b.assert_clean(&fleet.origin()).await;
    drop(b);
    fleet.app.stop().await;
}

/// The check every test ends with must see what it claims to: a console.error, an uncaught
/// exception, a request that fails with 404 on purpose, and a request to another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_check_sees_console_errors_exceptions_failed_and_outside_requests() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start().await;
    let origin = format!("http://{}", app.addr);
    let b = Browser::start("clean-check").await;
    b.goto(&app.url("/login")).await;
    b.wait_for("form#login", WAIT).await;
    assert_eq!(
        b.problems(&origin).await,
        Vec::<String>::new(),
        "the login page alone"
    );
    b.execute(
        "console.error('planted console error');
         setTimeout(() => { throw new Error('planted uncaught'); }, 0);
         fetch('/api/no-such-thing').catch(() => {});
         const img = new Image(); img.src = 'http://example.com/planted.png';",
        json!([]),
    )
    .await;
    let wanted = [
        "planted console error",
        "planted uncaught",
        "/api/no-such-thing",
        "request outside",
    ];
    let deadline = Instant::now() + WAIT;
    loop {
        let found = b.problems(&origin).await;
        let missing: Vec<_> = wanted
            .iter()
            .filter(|w| !found.iter().any(|f| f.contains(*w)))
            .collect();
        if missing.is_empty() {
            assert!(
                found
                    .iter()
                    .any(|f| f.contains("http://example.com/planted.png")),
                "{found:#?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the clean check missed {missing:?}; it found {found:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(b);
    app.stop().await;
}
