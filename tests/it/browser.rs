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
    // The plot spans the whole hour while the samples are all in its last minute or so, at the
    // right edge: release past that edge (the page clamps the pointer to the plot), so the range
    // ends where the plot does and keeps every sample.
    let plot = b.find(&format!("{cpu} svg .plot")).await;
    let half = (width / 2.0) as i64;
    b.drag(&plot, -half * 8 / 10, half + 20, 0).await;
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

/// The server page's actions on a fourth server with an sshd of its own (so rotating its host
/// key leaves the fleet alone): a container chart's CSV, the edit form (a bad host first), trusting
/// the host key it presents after a "reinstall", and removing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_edits_trusts_the_new_host_key_of_and_removes_a_server() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(1).await;
    let mut own_sshd = Sshd::start(common::shim());
    let mut new = common::registration("epsilon-key", &own_sshd);
    new.tags = vec!["key".into()];
    let server = common::add(&fleet.app.store, new).await;
    let path = format!("/api/servers/{}", server.id);
    let first_key = own_sshd.host_key_fingerprint();
    wait_api(
        &fleet,
        "epsilon-key online with its host key pinned",
        || async {
            let (_, s) = fleet.app.get(&path).await;
            (s["status"] == "online" && s["host_key_fingerprint"] == first_key.as_str())
                .then_some(())
                .ok_or(s)
        },
    )
    .await;

    let b = Browser::start("server-actions").await;
    log_in(&b, &fleet, "olga").await;
    b.goto(&fleet.app.url(&format!("/servers/{}", server.id)))
        .await;
    wait_ready(&b).await;
    assert_eq!(b.find("h1 #server-name").await.text().await, "epsilon-key");

    // A container chart's CSV: the header names its two series, one row per drawn point.
    let (_, containers) = fleet.app.get(&format!("{path}/containers")).await;
    let container = containers["items"][0]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("the shim gave no containers: {containers}"))
        .to_string();
    let chart = format!(
        "div.chart[data-chart={}]",
        json!(format!("container:{container}"))
    );
    let points_of = |sel: String| {
        let b = &b;
        async move {
            b.execute(
                "const c = document.querySelector(arguments[0]); \
                 return c ? Number(c.dataset.points) : -1;",
                json!([sel]),
            )
            .await
            .as_i64()
            .unwrap_or(-1)
        }
    };
    // Container history is drawn in buckets of about 12 s in the 1 h view; reload until there
    // are two.
    let deadline = Instant::now() + Duration::from_secs(90);
    while points_of(chart.clone()).await < 2 {
        assert!(
            Instant::now() < deadline,
            "{chart} has {} points after 90 s",
            points_of(chart.clone()).await
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        b.refresh().await;
        wait_ready(&b).await;
    }
    b.screenshot("container-chart").await;
    // Auto-refresh redraws the chart (maybe with one more point): take the count next to the
    // click, and click again if a redraw came between.
    let (csv, points) = loop {
        let before = points_of(chart.clone()).await;
        let name = format!("fleetpoll-epsilon-key-container-{container}.csv");
        let old = b.downloads.path().join(&name);
        let _ = std::fs::remove_file(&old);
        b.find(&format!("{chart} button.export-csv"))
            .await
            .click()
            .await;
        let file = b.wait_download(&name, WAIT).await;
        let after = points_of(chart.clone()).await;
        if before == after {
            break (std::fs::read_to_string(&file).expect("read the CSV"), after);
        }
    };
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time,cpu_percent,mem_used_bytes"),
        "container CSV:\n{csv}"
    );
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(
        rows.len() as i64,
        points,
        "container CSV rows vs {chart}'s data-points; CSV:\n{csv}"
    );
    for row in &rows {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 3, "CSV row {row:?}");
        cells[0]
            .parse::<DateTime<Utc>>()
            .unwrap_or_else(|e| panic!("CSV time {:?} is not RFC 3339: {e}", cells[0]));
        for v in &cells[1..] {
            assert!(
                v.is_empty() || v.parse::<f64>().is_ok_and(|n| n >= 0.0),
                "CSV value {v:?} in {row:?} is not a number"
            );
        }
    }

    // Edit: the form opens filled in with the server as the API has it.
    b.find("button#edit-server").await.click().await;
    let form = b.wait_for("form#server-form", WAIT).await;
    assert!(form.displayed().await, "form#server-form is not shown");
    let values = b
        .execute(
            "const f = document.querySelector('form#server-form');
             return Object.fromEntries(['name', 'host', 'port', 'user', 'key_path', 'tags', 'key']
               .map(n => [n, f.elements.namedItem(n).value]));",
            json!([]),
        )
        .await;
    let (_, api) = fleet.app.get(&path).await;
    assert_eq!(
        values,
        json!({
            "name": "epsilon-key", "host": "127.0.0.1", "port": own_sshd.port.to_string(),
            "user": api["user"], "key_path": api["key_path"], "tags": "key", "key": "",
        }),
        "the edit form's values; the API has {api}"
    );
    b.screenshot("edit-form").await;
    let field = |name: &'static str| {
        let b = &b;
        async move { b.find(&format!("form#server-form [name={name}]")).await }
    };

    // A bad host: the API's own message, the field marked, nothing saved.
    field("host").await.clear().await;
    field("host").await.send_keys("bad host!").await;
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
            &format!("{path}/validate"),
            Some(&json!({"host": "bad host!"}).to_string()),
        )
        .await;
    assert_eq!(status, 200, "POST {path}/validate: {check}");
    assert_eq!(
        (&check["valid"], &check["field"]),
        (&json!(false), &json!("host")),
        "{check}"
    );
    let api_error = check["error"].as_str().expect("error text");
    assert!(api_error.starts_with("host: "), "{check}");
    assert_eq!(
        shown_error.trim(),
        api_error,
        "#server-form-error vs the API's message"
    );
    let host_class = field("host").await.attr("class").await.unwrap_or_default();
    assert!(
        host_class.split_whitespace().any(|c| c == "invalid"),
        "the host field's class is {host_class:?}, want `invalid`"
    );
    b.screenshot("edit-bad-host").await;
    let (_, api) = fleet.app.get(&path).await;
    assert_eq!(
        api["host"], "127.0.0.1",
        "saved despite the bad host: {api}"
    );
    let (_, updated) = fleet
        .app
        .get(&format!(
            "/api/activity?type=server_updated&server_id={}",
            server.id
        ))
        .await;
    assert_eq!(updated["total"], 0, "an edit was logged: {updated}");

    // Host back, new tags: saved, shown, and logged once with the tags as the only change.
    field("host").await.clear().await;
    field("host").await.send_keys("127.0.0.1").await;
    field("tags").await.clear().await;
    field("tags").await.send_keys("key, rotated, eu-west").await;
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
    b.wait_js(
        "the tags fact to show the new tags",
        "(document.querySelector('dl#server-facts dd[data-fact=tags]') || {}).textContent \
           === 'key, rotated, eu-west'",
        WAIT,
    )
    .await;
    let (_, api) = fleet.app.get(&path).await;
    assert_eq!(api["tags"], json!(["key", "rotated", "eu-west"]), "{api}");
    assert_eq!(api["host"], "127.0.0.1", "{api}");
    let (_, updated) = fleet
        .app
        .get(&format!(
            "/api/activity?type=server_updated&server_id={}",
            server.id
        ))
        .await;
    assert_eq!(updated["total"], 1, "{updated}");
    let entry = &updated["items"][0];
    assert_eq!(entry["actor"], "user:olga", "{entry}");
    let changed: Vec<&String> = entry["details"]["changes"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(changed, ["tags"], "{entry}");
    b.screenshot("edited").await;

    // The host is reinstalled: a new host key. fleetpoll keeps its SSH session between polls,
    // and `rotate_host_key` keeps open sessions up, so stop sshd (and its sessions) first; the
    // next poll has to connect afresh and meets the new key.
    own_sshd.stop();
    own_sshd.rotate_host_key();
    let second_key = own_sshd.host_key_fingerprint();
    assert_ne!(first_key, second_key);
    wait_api(&fleet, "epsilon-key to be host_key_changed", || async {
        let (_, s) = fleet.app.get(&path).await;
        (s["status"] == "host_key_changed"
            && s["pending_host_key_fingerprint"] == second_key.as_str())
        .then_some(())
        .ok_or(s)
    })
    .await;
    // Auto-refresh would show it within 15 s; a reload is quicker.
    b.refresh().await;
    wait_ready(&b).await;
    b.wait_for("button#trust-key", WAIT).await;
    let host_key = b
        .find("dl#server-facts dd[data-fact=host_key]")
        .await
        .text()
        .await;
    assert!(
        host_key.contains(&first_key) && host_key.contains(&second_key),
        "the host key fact names neither or one key: {host_key:?}"
    );
    b.screenshot("host-key-changed").await;
    b.find("button#trust-key").await.click().await;
    b.wait_js(
        "#trust-key to go once the key is trusted",
        "!document.querySelector('button#trust-key')",
        WAIT,
    )
    .await;
    let (_, api) = fleet.app.get(&path).await;
    assert_ne!(api["status"], "host_key_changed", "{api}");
    assert_eq!(api["pending_host_key_fingerprint"], Value::Null, "{api}");
    assert_eq!(api["host_key_fingerprint"], second_key.as_str(), "{api}");
    let (_, trusted) = fleet
        .app
        .get(&format!(
            "/api/activity?type=host_key_trusted&server_id={}",
            server.id
        ))
        .await;
    assert_eq!(trusted["total"], 1, "{trusted}");
    assert_eq!(trusted["items"][0]["actor"], "user:olga", "{trusted}");
    assert_eq!(
        trusted["items"][0]["details"]["trusted"],
        second_key.as_str(),
        "{trusted}"
    );
    // And the next poll gets through with the trusted key.
    wait_api(&fleet, "epsilon-key online again", || async {
        let (_, s) = fleet.app.get(&path).await;
        (s["status"] == "online").then_some(()).ok_or(s)
    })
    .await;
    b.screenshot("host-key-trusted").await;

    // Remove: asked in the page, then back to the overview without the server.
    b.find("button#remove-server").await.click().await;
    b.wait_js(
        "#confirm-remove to show",
        "(() => { const c = document.querySelector('button#confirm-remove'); \
           return c && c.offsetParent !== null; })()",
        WAIT,
    )
    .await;
    b.screenshot("confirm-remove").await;
    b.find("button#confirm-remove").await.click().await;
    b.wait_js(
        "landing on / after removing",
        "location.pathname === '/'",
        WAIT,
    )
    .await;
    wait_ready(&b).await;
    wait_rows(
        &b,
        "the fleet without epsilon-key",
        &["alpha-web", "beta-db", "gamma-down"],
        false,
    )
    .await;
    let (status, gone) = fleet.app.get(&path).await;
    assert_eq!(status, 404, "GET {path} after removing: {gone}");
    let (_, removed) = fleet.app.get("/api/activity?type=server_removed").await;
    let removed: Vec<&Value> = removed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["server_name"] == "epsilon-key")
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["actor"], "user:olga", "{removed:?}");
    b.screenshot("removed").await;

    b.assert_clean(&fleet.origin()).await;
    drop(b);
    fleet.app.stop().await;
    drop(own_sshd);
}

/// Polls `check` every 300 ms for up to 90 s (the fleet polls every 2 s); panics with `what`
/// and the last value it returned.
async fn wait_api<F, Fut>(fleet: &Fleet, what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match check().await {
            Ok(()) => return,
            Err(last) if Instant::now() >= deadline => panic!(
                "waited 90 s for {what}; last: {last}\nsshd log (fleet):\n{}",
                fleet.sshd.log_text()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// What the activity page should show for `query` (the API's filter parameters, `&`-joined)
/// at `offset`: the rows the API lists there, `#page-info` `A–B of TOTAL`, and the pager's
/// buttons disabled at the ends. Retries until the page and a fresh API answer agree, since the
/// fleet keeps polling and may log more. Returns the row ids shown.
async fn wait_page(b: &Browser, fleet: &Fleet, query: &str, offset: u64) -> Vec<i64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let sep = if query.is_empty() { "" } else { "&" };
        let (status, api) = fleet
            .app
            .get(&format!(
                "/api/activity?{query}{sep}limit=50&offset={offset}"
            ))
            .await;
        assert_eq!(status, 200, "GET /api/activity?{query}: {api}");
        let want_ids: Vec<i64> = api["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|a| a["id"].as_i64())
            .collect();
        let total = api["total"].as_u64().expect("total");
        let n = want_ids.len() as u64;
        let want = json!({
            "ids": want_ids,
            "info": format!("{}–{} of {total}", if total > 0 { offset + 1 } else { 0 }, offset + n),
            "prev_disabled": offset == 0,
            "next_disabled": offset + n >= total,
        });
        let shown = b
            .execute(
                "const q = s => document.querySelector(s);
                 return {
                   ids: [...document.querySelectorAll('table#activity tbody tr.activity-row')]
                          .map(r => Number(r.dataset.id)),
                   info: (q('#page-info') || {}).textContent || '',
                   prev_disabled: !!(q('button#page-prev') || {}).disabled,
                   next_disabled: !!(q('button#page-next') || {}).disabled,
                 };",
                json!([]),
            )
            .await;
        if shown == want {
            return want_ids;
        }
        if Instant::now() >= deadline {
            b.screenshot("page-timeout").await;
            panic!(
                "activity page for {query:?} at offset {offset}:\n  shown {shown}\n  want  {want}"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The text of one cell class in every activity row shown.
async fn activity_cells(b: &Browser, class: &str) -> Vec<String> {
    let v = b
        .execute(
            "return [...document.querySelectorAll('table#activity tbody tr.activity-row td.' + arguments[0])]
                .map(td => td.textContent.trim());",
            json!([class]),
        )
        .await;
    serde_json::from_value(v).expect("cell texts")
}

/// Applies the activity filters (the form's submit button) and waits for the URL to say so.
async fn apply_filters(b: &Browser, what: &str, url_check: &str) {
    b.find("form#activity-filters button[type=submit]")
        .await
        .click()
        .await;
    b.wait_js(what, url_check, WAIT).await;
}

/// Sets a `datetime-local` input the way the brief allows: its value in the input's own
/// `YYYY-MM-DDTHH:MM` form (typing depends on the locale's format), then an input event.
async fn set_datetime_local(b: &Browser, id: &str, value: &str) {
    b.execute(
        "const i = document.getElementById(arguments[0]);
         i.value = arguments[1];
         i.dispatchEvent(new Event('input', {bubbles: true}));
         i.dispatchEvent(new Event('change', {bubbles: true}));
         return i.value;",
        json!([id, value]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_pages_the_activity_log_and_filters_it_by_server_actor_and_time() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(1).await;
    // Sixty entries by `token:test-admin`: thirty tokens created and revoked through the API.
    for i in 0..30 {
        let (status, token) = fleet
            .app
            .send(
                reqwest::Method::POST,
                "/api/tokens",
                Some(&json!({"name": format!("paging-{i:02}"), "role": "viewer"}).to_string()),
            )
            .await;
        assert_eq!(status, 201, "POST /api/tokens: {token}");
        let id = token["id"].as_str().expect("token id");
        let (status, body) = fleet
            .app
            .send(reqwest::Method::DELETE, &format!("/api/tokens/{id}"), None)
            .await;
        assert_eq!(status, 204, "DELETE /api/tokens/{id}: {body}");
    }
    let b = Browser::start("activity-paging").await;
    // A zone that is neither UTC nor a whole hour away from it, so a page that mixed up local
    // time and UTC would filter the wrong half-hours.
    const ZONE: &str = "Asia/Kolkata";
    let ist = chrono::FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("+05:30");
    b.set_timezone(ZONE).await;
    log_in(&b, &fleet, "olga").await;
    // (ICU may report the zone by its old name, Asia/Calcutta: check the offset instead.)
    let offset = b
        .execute("return new Date().getTimezoneOffset();", json!([]))
        .await;
    assert_eq!(
        offset,
        json!(-330),
        "the {ZONE} override did not hold after navigating"
    );
    b.find("a#nav-activity").await.click().await;
    b.wait_js(
        "the activity page",
        "location.pathname === '/activity'",
        WAIT,
    )
    .await;
    wait_ready(&b).await;

    // Paging the whole log: 50 a page, newest first.
    let page1 = wait_page(&b, &fleet, "", 0).await;
    assert_eq!(page1.len(), 50, "page 1 has {} rows", page1.len());
    b.screenshot("page-1").await;
    b.find("button#page-next").await.click().await;
    b.wait_js(
        "offset=50 in the URL",
        "new URLSearchParams(location.search).get('offset') === '50'",
        WAIT,
    )
    .await;
    let page2 = wait_page(&b, &fleet, "", 50).await;
    assert!(!page2.is_empty(), "page 2 is empty");
    // Older than page 1 (an entry logged meanwhile shifts by one, so `<=`).
    let (oldest1, newest2) = (
        page1.iter().min().copied().unwrap_or(0),
        page2.iter().max().copied().unwrap_or(0),
    );
    assert!(
        newest2 <= oldest1 && page2 != page1,
        "page 2 {page2:?} is not older than page 1 {page1:?}"
    );
    b.screenshot("page-2").await;
    // A reload stays on the page.
    b.refresh().await;
    wait_ready(&b).await;
    assert_eq!(query_param(&b, "offset").await.as_deref(), Some("50"));
    wait_page(&b, &fleet, "", 50).await;
    // On to the last page, where #page-next is disabled (`wait_page` checks both buttons).
    let mut offset = 50;
    while !b
        .find("button#page-next")
        .await
        .prop("disabled")
        .await
        .as_bool()
        .unwrap_or(true)
    {
        assert!(offset < 1000, "no last page after {offset} rows");
        b.find("button#page-next").await.click().await;
        offset += 50;
        b.wait_js(
            &format!("offset={offset} in the URL"),
            &format!("new URLSearchParams(location.search).get('offset') === '{offset}'"),
            WAIT,
        )
        .await;
        wait_page(&b, &fleet, "", offset).await;
    }
    b.find("button#page-prev").await.click().await;
    wait_page(&b, &fleet, "", offset - 50).await;

    // Actor, exact: the sixty token entries, on two pages; applying a filter starts at page 1.
    let actor = b.find("input#f-actor").await;
    actor.send_keys("token:test-admin").await;
    apply_filters(
        &b,
        "actor=token:test-admin in the URL, no offset",
        "(() => { const p = new URLSearchParams(location.search); \
           return p.get('actor') === 'token:test-admin' && !p.get('offset'); })()",
    )
    .await;
    wait_page(&b, &fleet, "actor=token:test-admin", 0).await;
    assert_eq!(b.find("#page-info").await.text().await.trim(), "1–50 of 60");
    let actors = activity_cells(&b, "actor").await;
    assert!(
        actors.iter().all(|a| a.starts_with("token:test-admin")),
        "actor cells {actors:?}"
    );
    b.screenshot("actor-token").await;
    b.find("button#page-next").await.click().await;
    wait_page(&b, &fleet, "actor=token:test-admin", 50).await;
    assert_eq!(
        b.find("#page-info").await.text().await.trim(),
        "51–60 of 60"
    );
    // A user's actor name, and that the match is exact (no `olga` without `user:`).
    actor.clear().await;
    actor.send_keys("user:olga").await;
    apply_filters(
        &b,
        "actor=user:olga in the URL",
        "new URLSearchParams(location.search).get('actor') === 'user:olga'",
    )
    .await;
    wait_page(&b, &fleet, "actor=user:olga", 0).await;
    let actors = activity_cells(&b, "actor").await;
    assert!(
        !actors.is_empty() && actors.iter().all(|a| a.starts_with("user:olga")),
        "actor cells {actors:?} (olga logged in, so at least her login)"
    );
    actor.clear().await;
    actor.send_keys("olga").await;
    apply_filters(
        &b,
        "actor=olga in the URL",
        "new URLSearchParams(location.search).get('actor') === 'olga'",
    )
    .await;
    wait_page(&b, &fleet, "actor=olga", 0).await;
    assert_eq!(b.find("#page-info").await.text().await.trim(), "0–0 of 0");

    // Reset clears every filter and the URL.
    b.find("button#f-reset").await.click().await;
    b.wait_js(
        "an empty query after #f-reset",
        "location.search === ''",
        WAIT,
    )
    .await;
    assert_eq!(b.find("input#f-actor").await.prop("value").await, "");
    wait_page(&b, &fleet, "", 0).await;

    // Server.
    let alpha = &fleet.online[0];
    choose(&b, "f-server", &alpha.id.to_string()).await;
    apply_filters(
        &b,
        "server_id in the URL",
        &format!(
            "new URLSearchParams(location.search).get('server_id') === '{}'",
            alpha.id
        ),
    )
    .await;
    wait_page(&b, &fleet, &format!("server_id={}", alpha.id), 0).await;
    let servers = activity_cells(&b, "server").await;
    assert!(
        !servers.is_empty() && servers.iter().all(|s| s == "alpha-web"),
        "server cells {servers:?}"
    );
    b.screenshot("server-alpha").await;
    b.find("button#f-reset").await.click().await;
    b.wait_js(
        "an empty query after #f-reset",
        "location.search === ''",
        WAIT,
    )
    .await;

    // Time, in the viewer's zone: a range long before anything happened shows nothing...
    set_datetime_local(&b, "f-since", "2000-01-01T00:00").await;
    set_datetime_local(&b, "f-until", "2000-01-02T00:00").await;
    apply_filters(
        &b,
        "since and until in the URL",
        "(() => { const p = new URLSearchParams(location.search); return p.get('since') && p.get('until'); })()",
    )
    .await;
    // Midnight in Kolkata is 18:30 UTC the day before.
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
    assert_eq!(since.to_rfc3339(), "1999-12-31T18:30:00+00:00");
    // "To 00:00" includes that whole minute.
    assert_eq!(until.to_rfc3339(), "2000-01-01T18:30:59.999+00:00");
    let range = |s: DateTime<Utc>, u: DateTime<Utc>| {
        format!(
            "since={}&until={}",
            s.format("%Y-%m-%dT%H:%M:%SZ"),
            u.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    wait_page(&b, &fleet, &range(since, until), 0).await;
    assert_eq!(b.find("#page-info").await.text().await.trim(), "0–0 of 0");
    assert!(activity_cells(&b, "type").await.is_empty());
    b.screenshot("range-empty").await;
    // ...and survives a reload, shown again in local time.
    b.refresh().await;
    wait_ready(&b).await;
    let shown = b
        .execute(
            "return [document.getElementById('f-since').value, document.getElementById('f-until').value];",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!(["2000-01-01T00:00", "2000-01-02T00:00"]));
    wait_page(&b, &fleet, &range(since, until), 0).await;

    // The last half hour up to the next (local time, to the minute) holds everything logged.
    let now = Utc::now();
    let local = |t: DateTime<Utc>| t.with_timezone(&ist).format("%Y-%m-%dT%H:%M").to_string();
    set_datetime_local(&b, "f-since", &local(now - chrono::Duration::minutes(30))).await;
    set_datetime_local(&b, "f-until", &local(now + chrono::Duration::minutes(30))).await;
    apply_filters(
        &b,
        "the new since in the URL",
        "!new URLSearchParams(location.search).get('since').startsWith('1999')",
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
    let minute = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    assert_eq!(
        (minute(since), minute(until)),
        (
            minute(now - chrono::Duration::minutes(30)),
            minute(now + chrono::Duration::minutes(30))
        ),
        "the local range as UTC in the URL"
    );
    wait_page(&b, &fleet, &range(since, until), 0).await;
    let (_, all) = fleet.app.get("/api/activity?limit=1").await;
    let (_, ranged) = fleet
        .app
        .get(&format!("/api/activity?limit=1&{}", range(since, until)))
        .await;
    assert_eq!(
        ranged["total"], all["total"],
        "the last half hour should hold every entry of this fresh app"
    );
    b.screenshot("range-now").await;

    b.find("button#f-reset").await.click().await;
    b.wait_js(
        "an empty query after #f-reset",
        "location.search === ''",
        WAIT,
    )
    .await;
    let inputs = b
        .execute(
            "return ['f-type', 'f-server', 'f-actor', 'f-severity', 'f-since', 'f-until']
               .map(id => document.getElementById(id).value);",
            json!([]),
        )
        .await;
    assert_eq!(
        inputs,
        json!(["", "", "", "", "", ""]),
        "the filters after #f-reset"
    );
    wait_page(&b, &fleet, "", 0).await;

    b.assert_clean(&fleet.origin()).await;
    drop(b);
    fleet.app.stop().await;
}
