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
//!
//! The tests come first, each a story of what a person does and sees; the helpers they share
//! follow, grouped by page.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleetpoll::activity::Actor;
use fleetpoll::auth::Role;
use fleetpoll::inventory::Server;
use serde_json::{json, Value};

use crate::common::{self, TestApp};
use crate::harness::browser::{poll_until, Browser, Element, WAIT};
use crate::harness::receiver::{Mode, Receiver};
use crate::harness::{self, Sshd};

/// One browser-and-fleet at a time: three Chromiums and three polled fleets at once would starve
/// a 2-core machine and turn generous waits into flaky ones. (tokio's Mutex is runtime-agnostic,
/// so each `#[tokio::test]` runtime can share it.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PASSWORD: &str = "correct horse battery";
const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 900);

/// The three servers of [`Fleet`], in name order.
const FLEET: [&str; 3] = ["alpha-web", "beta-db", "gamma-down"];

/// How long to wait for something that takes polls (every 2 s) rather than a page render.
const POLL_WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_polled_fleet_filters_it_and_adds_a_server_with_the_form() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(2).await;
    let b = Browser::start("fleet").await;
    log_in(&b, &fleet, "olga").await;
    b.screenshot("logged-in").await;
    assert_eq!(text_of(&b, "span#whoami").await, "olga (operator)");

    // The cards show the API's counts.
    let summary = wait_cards_match_api(&b, &fleet).await;
    assert_eq!(summary["online_servers"], 2);
    assert_eq!(summary["offline_servers"], 1);
    assert!(
        summary["total_containers"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );
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
    wait_rows(&b, "all servers", &FLEET).await;
    let (_, summary) = fleet.app.get("/api/dashboard/summary").await;
    for s in summary["servers"].as_array().expect("servers") {
        let row_css = format!(
            "tr.server-row[data-id=\"{}\"]",
            s["id"].as_str().expect("id")
        );
        let row = b.find(&row_css).await;
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
            let points = points(&b, &format!("{row_css} td.spark svg.sparkline")).await;
            assert!(points >= 1, "no sparkline points for {}", s["name"]);
        } else {
            assert_eq!(health, "offline", "{s}");
        }
        assert_eq!(
            row.find("a.server-link").await.text().await,
            s["name"].as_str().unwrap_or("")
        );
    }
    let reason = text_of(
        &b,
        &format!("tr.server-row[data-id=\"{}\"] td.reason", fleet.offline.id),
    )
    .await;
    assert!(!reason.is_empty(), "the offline server shows no reason");

    // Filters: text, status, tag; each kept in the URL and counted in #shown-count.
    let text = b.find("input#filter-text").await;
    text.send_keys("beta").await;
    wait_rows(&b, "text filter 'beta'", &["beta-db"]).await;
    assert_eq!(text_of(&b, "#shown-count").await, "1 of 3 servers");
    assert_eq!(query_param(&b, "q").await.as_deref(), Some("beta"));
    clear_filter_text(&text).await;
    wait_rows(&b, "text filter cleared", &FLEET).await;
    text.send_keys("prod").await;
    wait_rows(&b, "text filter on a tag", &["alpha-web"]).await;
    clear_filter_text(&text).await;

    choose(&b, "filter-status", "offline").await;
    wait_rows(&b, "status offline", &["gamma-down"]).await;
    assert_eq!(query_param(&b, "status").await.as_deref(), Some("offline"));
    b.screenshot("filtered-offline").await;
    choose(&b, "filter-status", "online").await;
    wait_rows(&b, "status online", &["alpha-web", "beta-db"]).await;
    choose(&b, "filter-status", "").await;
    choose(&b, "filter-tag", "db").await;
    wait_rows(&b, "tag db", &["beta-db"]).await;
    choose(&b, "filter-tag", "").await;
    choose(&b, "filter-health", "offline").await;
    wait_rows(&b, "health offline", &["gamma-down"]).await;
    choose(&b, "filter-health", "").await;
    wait_rows(&b, "no filter", &FLEET).await;

    // A reload keeps the filter (it lives in the URL).
    choose(&b, "filter-status", "online").await;
    b.refresh().await;
    wait_ready(&b).await;
    wait_rows(
        &b,
        "status online after a reload",
        &["alpha-web", "beta-db"],
    )
    .await;
    choose(&b, "filter-status", "").await;

    // Sorting by name: one click sorts, the next reverses.
    b.find("th[data-sort=name]").await.click().await;
    let ascending = FLEET.to_vec();
    let descending: Vec<&str> = FLEET.iter().rev().copied().collect();
    let (first, second) = if shown_rows(&b).await.first().map(String::as_str) == Some(FLEET[0]) {
        (ascending, descending)
    } else {
        (descending, ascending)
    };
    wait_rows_in_order(&b, "sorted by name", &first).await;
    assert_eq!(query_param(&b, "sort").await.as_deref(), Some("name"));
    b.find("th[data-sort=name]").await.click().await;
    wait_rows_in_order(&b, "sorted by name, reversed", &second).await;

    fits_phone_and_desktop(&b, "overview").await;

    // Adding a server: a bad port shows the API's own message and adds nothing.
    let (_, before) = fleet.app.get("/api/servers").await;
    let total_before = before["total"].as_u64().expect("total");
    open_server_form(&b, "button#add-server").await;
    let key_path = fleet.sshd.client_key.to_string_lossy().into_owned();
    retype(&b, "name", "delta-new").await;
    retype(&b, "host", "127.0.0.1").await;
    retype(&b, "port", "70000").await;
    retype(&b, "user", &fleet.sshd.user).await;
    retype(&b, "key_path", &key_path).await;
    retype(&b, "tags", "new, test").await;
    let shown_error = submit_refused(&b, "port").await;
    let api_error = fleet
        .refusal(
            "/api/servers/validate",
            json!({"name": "delta-new", "host": "127.0.0.1", "port": 70000,
                   "user": fleet.sshd.user, "key_path": key_path, "tags": ["new", "test"]}),
            "port",
        )
        .await;
    assert!(
        shown_error.contains("port") && shown_error.contains(&api_error),
        "#server-form-error shows {shown_error:?}; want the API's {api_error:?} naming the port"
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
    retype(&b, "port", &fleet.sshd.port.to_string()).await;
    retype(&b, "key_path", &key_path).await;
    submit_saved(&b).await;
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

    fleet.finish(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_zooms_a_chart_exports_its_csv_and_filters_the_activity_log() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // The 1 h view puts samples in 7.2 s buckets: enough samples for a few chart points.
    let fleet = Fleet::start(6).await;
    let b = Browser::start("charts").await;
    log_in(&b, &fleet, "olga").await;
    let server = &fleet.online[0];
    open_server(&b, server).await;
    assert_eq!(text_of(&b, "h1 #server-name").await, server.name);
    let host = text_of(&b, "dl#server-facts dd[data-fact=host]").await;
    assert!(host.contains("127.0.0.1"), "host fact is {host:?}");

    let cpu = "div.chart[data-chart=cpu]";
    reload_until_points(&b, cpu, 3).await;
    for chart in ["memory", "load", "disk"] {
        let sel = format!("div.chart[data-chart={chart}]");
        b.wait_for(&sel, WAIT).await;
        let n = points(&b, &sel).await;
        assert!(n >= 1, "chart {chart} has {n} points");
    }
    // Swap: a chart, or "no swap" when this machine has none (#18), as the API's history says.
    let (_, history) = fleet
        .app
        .get(&format!("/api/servers/{}/metrics?period=1h", server.id))
        .await;
    let has_swap = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|p| p["swap_total_bytes"].as_u64().unwrap_or(0) > 0);
    let swap = "div.chart[data-chart=swap]";
    b.wait_for(swap, WAIT).await;
    if has_swap {
        let n = points(&b, swap).await;
        assert!(n >= 1, "the swap chart has {n} points");
    } else {
        assert_eq!(text_of(&b, &format!("{swap} .note")).await, "no swap");
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
        let row = format!(
            "table#containers tr.container-row[data-name={}]",
            json!(name)
        );
        b.wait_for(&row, WAIT).await;
        b.wait_for(&container_chart(name), WAIT).await;
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
    let (since, until) = url_range(&b).await;
    assert!(since < until, "zoomed to {since}..{until}");
    wait_shown(&b, "#reset-zoom").await;
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
    let zoomed_points = points(&b, cpu).await;
    assert!(
        zoomed_points >= 2,
        "the zoomed CPU chart has {zoomed_points} points"
    );
    b.screenshot("zoomed").await;
    println!("zoomed to {since}..{until}: the CPU chart has {zoomed_points} points");

    // CSV of the zoomed CPU chart: one row per drawn point, within the range.
    let file = format!("fleetpoll-{}-cpu.csv", server.name);
    for (t, values) in export_csv(&b, cpu, &file, "time,cpu_percent").await {
        assert!(
            since <= t && t <= until,
            "CSV time {t} outside the zoom {since}..{until}"
        );
        let v: f64 = values[0]
            .parse()
            .unwrap_or_else(|e| panic!("CSV value {:?} is not a number: {e}", values[0]));
        assert!((0.0..=100.0).contains(&v), "CPU {v} outside 0..=100");
    }

    // Reset zoom; periods.
    b.find("button#reset-zoom").await.click().await;
    wait_params(&b, &[("since", "")]).await;
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
    follow(&b, "a#nav-activity", "/activity").await;
    b.screenshot("activity").await;
    choose(&b, "f-type", "server_added").await;
    apply_filters(&b, &[("type", "server_added")]).await;
    let total = fleet.activity_total("type=server_added").await;
    assert!(total >= 3, "{total} server_added entries");
    wait_activity(&b, &fleet, "type", "server_added").await;
    let href = activity_csv_href(&b).await;
    assert!(
        href.contains("format=csv") && href.contains("type=server_added"),
        "a#activity-csv href is {href:?}"
    );

    reset_filters(&b).await;
    // The severity with most events (the offline server made at least one warning or worse).
    let mut best = ("info", 0);
    for sev in ["info", "warning", "critical"] {
        let n = fleet.activity_total(&format!("severity={sev}")).await;
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
    apply_filters(&b, &[("severity", best.0)]).await;
    wait_activity(&b, &fleet, "severity", best.0).await;
    let href = activity_csv_href(&b).await;
    assert!(
        href.contains(&format!("severity={}", best.0)),
        "a#activity-csv href is {href:?}"
    );
    b.screenshot("activity-filtered").await;
    fits_phone_and_desktop(&b, "activity").await;

    fleet.finish(b).await;
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
    submit_login(&b, "vera").await;
    b.wait_js(
        "landing back on /activity?type=server_added",
        "location.pathname === '/activity' && \
         new URLSearchParams(location.search).get('type') === 'server_added'",
        WAIT,
    )
    .await;
    wait_ready(&b).await;
    wait_activity(&b, &fleet, "type", "server_added").await;
    assert_eq!(text_of(&b, "span#whoami").await, "vera (viewer)");
    follow(&b, "a#nav-overview", "/").await;
    wait_rows(&b, "all servers", &FLEET).await;
    assert!(
        b.try_find("#add-server").await.is_none(),
        "a viewer sees #add-server"
    );
    b.screenshot("overview").await;
    open_server(&b, &fleet.online[1]).await;
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
    wait_path(&b, "/login").await;
    fleet.finish(b).await;
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
    let found = b
        .eventually("the clean check to see every planted problem", || async {
            let found = b.problems(&origin).await;
            let missing: Vec<&str> = wanted
                .into_iter()
                .filter(|w| !found.iter().any(|f| f.contains(w)))
                .collect();
            if missing.is_empty() {
                Ok(found)
            } else {
                Err(format!(
                    "the clean check missed {missing:?}; it found {found:#?}"
                ))
            }
        })
        .await;
    assert!(
        found
            .iter()
            .any(|f| f.contains("http://example.com/planted.png")),
        "{found:#?}"
    );
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
    fleet
        .wait_server(&path, "epsilon-key online with its host key pinned", |s| {
            s["status"] == "online" && s["host_key_fingerprint"] == first_key.as_str()
        })
        .await;

    let b = Browser::start("server-actions").await;
    log_in(&b, &fleet, "olga").await;
    b.goto(&fleet.app.url(&format!("/servers/{}", server.id)))
        .await;
    wait_ready(&b).await;
    assert_eq!(text_of(&b, "h1 #server-name").await, "epsilon-key");
    // Issue #18: the platform line names top's implementation once ("top: procps-ng 4.0.2").
    let page = text_of(&b, "body").await;
    assert!(page.contains("top: procps-ng "), "{page}");
    assert!(!page.contains("procps procps"), "{page}");

    // A container chart's CSV: the header names its two series, one row per drawn point.
    let (_, containers) = fleet.app.get(&format!("{path}/containers")).await;
    let container = containers["items"][0]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("the shim gave no containers: {containers}"))
        .to_string();
    let chart = container_chart(&container);
    // Container history is drawn in buckets of about 12 s in the 1 h view.
    reload_until_points(&b, &chart, 2).await;
    b.screenshot("container-chart").await;
    let file = format!("fleetpoll-epsilon-key-container-{container}.csv");
    for (_, values) in export_csv(&b, &chart, &file, "time,cpu_percent,mem_used_bytes").await {
        for v in &values {
            assert!(
                v.is_empty() || v.parse::<f64>().is_ok_and(|n| n >= 0.0),
                "CSV value {v:?} in {values:?} is not a number"
            );
        }
    }

    // Edit: the form opens filled in with the server as the API has it.
    open_server_form(&b, "button#edit-server").await;
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

    // A bad host: the API's own message, the field marked, nothing saved.
    retype(&b, "host", "bad host!").await;
    let shown_error = submit_refused(&b, "host").await;
    let api_error = fleet
        .refusal(
            &format!("{path}/validate"),
            json!({"host": "bad host!"}),
            "host",
        )
        .await;
    assert!(api_error.starts_with("host: "), "{api_error:?}");
    assert_eq!(
        shown_error.trim(),
        api_error,
        "#server-form-error vs the API's message"
    );
    b.screenshot("edit-bad-host").await;
    let (_, api) = fleet.app.get(&path).await;
    assert_eq!(
        api["host"], "127.0.0.1",
        "saved despite the bad host: {api}"
    );
    let updates = format!("type=server_updated&server_id={}", server.id);
    let updated = fleet.activity(&updates).await;
    assert_eq!(updated["total"], 0, "an edit was logged: {updated}");

    // Host back, new tags: saved, shown, and logged once with the tags as the only change.
    retype(&b, "host", "127.0.0.1").await;
    retype(&b, "tags", "key, rotated, eu-west").await;
    submit_saved(&b).await;
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
    let updated = fleet.activity(&updates).await;
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
    fleet
        .wait_server(&path, "epsilon-key to be host_key_changed", |s| {
            s["status"] == "host_key_changed"
                && s["pending_host_key_fingerprint"] == second_key.as_str()
        })
        .await;
    // Auto-refresh would show it within 15 s; a reload is quicker.
    b.refresh().await;
    wait_ready(&b).await;
    b.wait_for("button#trust-key", WAIT).await;
    let host_key = text_of(&b, "dl#server-facts dd[data-fact=host_key]").await;
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
    let trusted = fleet
        .activity(&format!("type=host_key_trusted&server_id={}", server.id))
        .await;
    assert_eq!(trusted["total"], 1, "{trusted}");
    assert_eq!(trusted["items"][0]["actor"], "user:olga", "{trusted}");
    assert_eq!(
        trusted["items"][0]["details"]["trusted"],
        second_key.as_str(),
        "{trusted}"
    );
    // And the next poll gets through with the trusted key.
    fleet
        .wait_server(&path, "epsilon-key online again", |s| {
            s["status"] == "online"
        })
        .await;
    b.screenshot("host-key-trusted").await;

    // Remove: asked in the page, then back to the overview without the server.
    b.find("button#remove-server").await.click().await;
    wait_shown(&b, "button#confirm-remove").await;
    b.screenshot("confirm-remove").await;
    follow(&b, "button#confirm-remove", "/").await;
    wait_rows(&b, "the fleet without epsilon-key", &FLEET).await;
    let (status, gone) = fleet.app.get(&path).await;
    assert_eq!(status, 404, "GET {path} after removing: {gone}");
    let removed = fleet.activity("type=server_removed").await;
    let removed: Vec<&Value> = removed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["server_name"] == "epsilon-key")
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["actor"], "user:olga", "{removed:?}");
    b.screenshot("removed").await;

    fleet.finish(b).await;
    drop(own_sshd);
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
    follow(&b, "a#nav-activity", "/activity").await;

    // Paging the whole log: 50 a page, newest first.
    let page1 = wait_page(&b, &fleet, "", 0).await;
    assert_eq!(page1.len(), 50, "page 1 has {} rows", page1.len());
    b.screenshot("page-1").await;
    let page2 = turn_page(&b, &fleet, "next", "", 50).await;
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
        offset += 50;
        turn_page(&b, &fleet, "next", "", offset).await;
    }
    turn_page(&b, &fleet, "prev", "", offset - 50).await;

    // Actor, exact: the sixty token entries, on two pages; applying a filter starts at page 1.
    let actor = b.find("input#f-actor").await;
    actor.send_keys("token:test-admin").await;
    apply_filters(&b, &[("actor", "token:test-admin"), ("offset", "")]).await;
    wait_page(&b, &fleet, "actor=token:test-admin", 0).await;
    assert_eq!(text_of(&b, "#page-info").await, "1–50 of 60");
    let actors = activity_cells(&b, "actor").await;
    assert!(
        actors.iter().all(|a| a.starts_with("token:test-admin")),
        "actor cells {actors:?}"
    );
    b.screenshot("actor-token").await;
    turn_page(&b, &fleet, "next", "actor=token:test-admin", 50).await;
    assert_eq!(text_of(&b, "#page-info").await, "51–60 of 60");
    // A user's actor name, and that the match is exact (no `olga` without `user:`).
    actor.clear().await;
    actor.send_keys("user:olga").await;
    apply_filters(&b, &[("actor", "user:olga")]).await;
    wait_page(&b, &fleet, "actor=user:olga", 0).await;
    let actors = activity_cells(&b, "actor").await;
    assert!(
        !actors.is_empty() && actors.iter().all(|a| a.starts_with("user:olga")),
        "actor cells {actors:?} (olga logged in, so at least her login)"
    );
    actor.clear().await;
    actor.send_keys("olga").await;
    apply_filters(&b, &[("actor", "olga")]).await;
    wait_page(&b, &fleet, "actor=olga", 0).await;
    assert_eq!(text_of(&b, "#page-info").await, "0–0 of 0");

    // Reset clears every filter and the URL.
    reset_filters(&b).await;
    assert_eq!(b.find("input#f-actor").await.prop("value").await, "");
    wait_page(&b, &fleet, "", 0).await;

    // Server.
    let alpha = &fleet.online[0];
    let alpha_id = alpha.id.to_string();
    choose(&b, "f-server", &alpha_id).await;
    apply_filters(&b, &[("server_id", &alpha_id)]).await;
    wait_page(&b, &fleet, &format!("server_id={alpha_id}"), 0).await;
    let servers = activity_cells(&b, "server").await;
    assert!(
        !servers.is_empty() && servers.iter().all(|s| s == "alpha-web"),
        "server cells {servers:?}"
    );
    b.screenshot("server-alpha").await;
    reset_filters(&b).await;

    // Time, in the viewer's zone: a range long before anything happened shows nothing...
    set_datetime_local(&b, "f-since", "2000-01-01T00:00").await;
    set_datetime_local(&b, "f-until", "2000-01-02T00:00").await;
    submit_filters(&b).await;
    // Midnight in Kolkata is 18:30 UTC the day before.
    let (since, until) = url_range(&b).await;
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
    assert_eq!(text_of(&b, "#page-info").await, "0–0 of 0");
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
    submit_filters(&b).await;
    b.wait_js(
        "the new since in the URL",
        "!new URLSearchParams(location.search).get('since').startsWith('1999')",
        WAIT,
    )
    .await;
    let (since, until) = url_range(&b).await;
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
    let all = fleet.activity("limit=1").await;
    let ranged = fleet
        .activity(&format!("limit=1&{}", range(since, until)))
        .await;
    assert_eq!(
        ranged["total"], all["total"],
        "the last half hour should hold every entry of this fresh app"
    );
    b.screenshot("range-now").await;

    reset_filters(&b).await;
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

    fleet.finish(b).await;
}

/// #17, finding 3: a page on another port of the same host is the same *site*, so the
/// `SameSite=Strict` session cookie goes along with its requests. Such a page, served here on a
/// second local port, posts a new admin to `/api/users` in both ways a page can without asking
/// first: a `text/plain` form whose one field spells a JSON object, and a `no-cors` `fetch`.
/// Both are refused and no user appears; the dashboard's own write with the same session works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_port_cannot_write_with_the_dashboards_session() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start().await;
    fleetpoll::ops::create_user(&app.store, "ada", Role::Admin, PASSWORD, &Actor::system())
        .await
        .expect("create user");
    let target = app.url("/api/users");
    // A form field named `{"name":"mallory",...,"password":"pwned-pass` with the value
    // `word"}` is sent as `{"name":...,"password":"pwned-pass=word"}` under text/plain.
    let page = format!(
        r#"<!doctype html><title>cute cats</title>
<form id="f" method="POST" action="{target}" enctype="text/plain">
<input type="hidden" name='{{"name":"mallory","role":"admin","password":"pwned-pass' value='word"}}'>
</form>
<script>
fetch("{target}", {{ method: "POST", mode: "no-cors", credentials: "include",
  headers: {{ "content-type": "text/plain" }},
  body: JSON.stringify({{ name: "mallory2", role: "admin", password: "pwned-password" }}) }})
  .catch(() => {{}})
  .finally(() => document.getElementById("f").submit());
</script>"#
    );
    let evil = OtherSite::start([127, 0, 0, 1], page).await;

    let b = Browser::start("csrf").await;
    b.goto(&app.url("/login")).await;
    b.wait_for("form#login", WAIT).await;
    submit_login(&b, "ada").await;
    wait_path(&b, "/").await;
    wait_ready(&b).await;
    // The dashboard's own write, with the same session, works.
    b.execute(
        "window.ownWrite = 0;
         fetch('/api/users', { method: 'POST', credentials: 'same-origin',
           headers: { 'content-type': 'application/json' },
           body: JSON.stringify({ name: 'fromdashboard', role: 'viewer', password: 'long enough' }) })
           .then(r => { window.ownWrite = r.status; });",
        json!([]),
    )
    .await;
    b.wait_js("the dashboard's own POST", "window.ownWrite === 201", WAIT)
        .await;

    b.goto(&evil.origin()).await;
    // The form's navigation lands on this server's answer.
    let app_host = app.addr.to_string();
    b.wait_js(
        "the forged form post to land on the server's answer",
        &format!("location.host === {} && !!document.body", json!(app_host)),
        WAIT,
    )
    .await;
    let answer = b
        .execute("return document.body.innerText;", json!([]))
        .await;
    let answer = answer.as_str().unwrap_or_default();
    assert!(
        answer.contains("origin") && answer.contains("may not change anything"),
        "the forged form post was not refused for its origin: {answer}"
    );
    b.screenshot("forged-post-refused").await;
    let names: Vec<String> = app
        .store
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&"ada".to_string()) && names.contains(&"fromdashboard".to_string()),
        "{names:?}"
    );
    // Only the forged requests were refused: no other request of the dashboard failed.
    let problems = b.problems(&format!("http://{app_host}")).await;
    let unexpected: Vec<&String> = problems
        .iter()
        .filter(|p| !p.contains(&evil.origin()) && !p.contains("/api/users"))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    drop(b);
    evil.stop();
    app.stop().await;
}

/// #17, finding 4: `/login?next=` never sends the browser to another host after logging in.
/// Each of these was or could be read by a browser as `//127.0.0.2:PORT/x` (tabs and newlines
/// are dropped from URLs), where a page that looks like ours would wait; now each lands on `/`.
/// A path on this server is still followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_never_follows_next_to_another_host() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start().await;
    fleetpoll::ops::create_user(&app.store, "ned", Role::Viewer, PASSWORD, &Actor::system())
        .await
        .expect("create user");
    let evil = OtherSite::start([127, 0, 0, 2], "<title>phish</title>".into()).await;
    let port = evil.addr.port();
    let b = Browser::start("next").await;
    let app_host = app.addr.to_string();
    for next in [
        format!("/%09/127.0.0.2:{port}/x"),
        format!("/%0A/127.0.0.2:{port}/x"),
        format!("//127.0.0.2:{port}/x"),
        format!("/%5C127.0.0.2:{port}/x"),
        format!("http://127.0.0.2:{port}/x"),
    ] {
        b.goto(&app.url(&format!("/login?next={next}"))).await;
        b.wait_for("form#login", WAIT).await;
        submit_login(&b, "ned").await;
        b.wait_js(
            &format!("the overview of this server after logging in with next={next}"),
            &format!(
                "location.host === {} && location.pathname === '/'",
                json!(app_host)
            ),
            WAIT,
        )
        .await;
        wait_ready(&b).await;
    }
    b.goto(&app.url("/login?next=/activity%3Ftype%3Duser_login"))
        .await;
    b.wait_for("form#login", WAIT).await;
    submit_login(&b, "ned").await;
    b.wait_js(
        "/activity?type=user_login",
        &format!(
            "location.host === {} && location.pathname === '/activity' && \
             new URLSearchParams(location.search).get('type') === 'user_login'",
            json!(app_host)
        ),
        WAIT,
    )
    .await;
    wait_ready(&b).await;
    b.assert_clean(&format!("http://{app_host}")).await;
    drop(b);
    evil.stop();
    app.stop().await;
}

/// #17, finding 7: mount names come from the host, so a host can name a mount
/// `=HYPERLINK(...)`. The disk chart's CSV download defuses such cells as the server's
/// activity export does (a leading `'`), and keeps the numbers numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_csv_defuses_formulas_in_names_from_the_host() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start().await;
    fleetpoll::ops::create_user(&app.store, "cara", Role::Viewer, PASSWORD, &Actor::system())
        .await
        .expect("create user");
    let server = unpolled_server(&app, "formula-host").await;
    // What a host's `df` could report; stored as a poll would store it.
    let mounts = [
        "=HYPERLINK(\"http://evil.example/x\",\"open\")",
        "-1+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "+1",
        "/",
    ];
    let now = Utc::now().timestamp_millis();
    for minutes_ago in [9, 6, 3] {
        let disks = mounts
            .iter()
            .enumerate()
            .map(|(i, mount)| fleetpoll::model::DiskSample {
                filesystem: "/dev/x".into(),
                mount: (*mount).into(),
                total_bytes: Some(100),
                used_bytes: Some(10 * i as u64),
                available_bytes: Some(100 - 10 * i as u64),
                use_percent: Some(10.0 * i as f64),
            })
            .collect();
        common::record_disks(&app.store, server.id, now - minutes_ago * 60_000, disks).await;
    }

    let b = Browser::start("csv-formulas").await;
    b.goto(&app.url("/login")).await;
    b.wait_for("form#login", WAIT).await;
    submit_login(&b, "cara").await;
    wait_path(&b, "/").await;
    b.goto(&app.url(&format!("/servers/{}", server.id))).await;
    wait_ready(&b).await;
    let chart = "div.chart[data-chart=disk]";
    b.wait_js(
        "the disk chart's three points",
        &format!(
            "Number((document.querySelector('{chart}') || {{dataset: {{}}}}).dataset.points) === 3"
        ),
        WAIT,
    )
    .await;
    b.find(&format!("{chart} button.export-csv"))
        .await
        .click()
        .await;
    let path = b.wait_download("formula-host-disk.csv", WAIT).await;
    let csv = std::fs::read_to_string(&path).expect("read the CSV");
    let rows: Vec<Vec<String>> = csv.lines().map(csv_cells).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    let header = &rows[0];
    assert_eq!(header.len(), 1 + mounts.len(), "{csv}");
    for cell in rows.iter().flatten() {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a cell a spreadsheet would run: {cell:?}\n{csv}"
        );
    }
    for mount in &mounts[..4] {
        assert!(
            header.contains(&format!("'{mount}")),
            "{mount:?} is not in the header, defused: {header:?}"
        );
    }
    assert!(header.contains(&"/".to_string()), "{header:?}");
    for row in &rows[1..] {
        for value in &row[1..] {
            assert!(
                value.parse::<f64>().is_ok(),
                "{value:?} is not a number: {csv}"
            );
        }
    }
    b.assert_clean(&format!("http://{}", app.addr)).await;
    drop(b);
    app.stop().await;
}

/// Issue #18 on a host that was down for 20 minutes of the last hour and has no swap: every
/// history chart and the overview's sparkline break their lines at the hole rather than join
/// across it, the swap chart says "no swap", and the axes read at round values in the unit shown,
/// with time labels in one format that never overlap, at desktop and at phone width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_break_their_lines_at_a_gap_say_no_swap_and_tick_round_values() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // Polls a minute apart, as the samples below: an API that names the resolution (#12) gives
    // at least that, and one that does not leaves the page the median spacing, a minute too.
    let app = TestApp::start_with_interval(60).await;
    fleetpoll::ops::create_user(&app.store, "cara", Role::Viewer, PASSWORD, &Actor::system())
        .await
        .expect("create user");
    let server = unpolled_server(&app, "gappy").await;
    // A sample a minute from 55 to 35 minutes ago, then nothing for 20 minutes, then a sample a
    // minute from 15 minutes ago to now.
    for minutes_ago in (35..=55).rev().chain((0..=15).rev()) {
        record_sample(&app, &server, minutes_ago).await;
    }

    let b = Browser::start("gaps").await;
    b.goto(&app.url("/login")).await;
    b.wait_for("form#login", WAIT).await;
    submit_login(&b, "cara").await;
    wait_path(&b, "/").await;
    wait_ready(&b).await;
    // The sparkline's hour has empty slices in the hole: two pieces of line.
    let spark = format!("tr.server-row[data-id=\"{}\"] svg.sparkline", server.id);
    b.wait_js(
        "the sparkline to be drawn in two pieces",
        &format!(
            "document.querySelectorAll({}).length === 2",
            json!(format!("{spark} polyline"))
        ),
        WAIT,
    )
    .await;
    b.screenshot("sparkline").await;

    b.goto(&app.url(&format!("/servers/{}", server.id))).await;
    wait_ready(&b).await;
    // Two pieces of line per series: CPU, memory, three loads, two mounts, a container's CPU and
    // memory.
    let want = [
        ("cpu", 2),
        ("memory", 2),
        ("load", 6),
        ("disk", 4),
        ("container:web-1", 4),
    ];
    for (label, (w, h)) in [("desktop", DESKTOP), ("phone", PHONE)] {
        b.set_window_size(w, h).await;
        b.wait_js(
            &format!("the viewport to be {w} px wide"),
            &format!("Math.abs(window.innerWidth - {w}) <= 20"),
            WAIT,
        )
        .await;
        let axes = b
            .eventually(
                &format!("every chart drawn in pieces at {label} width"),
                || async {
                    let axes = chart_axes(&b).await;
                    let pieces: Vec<(String, u64)> = want
                        .iter()
                        .map(|(key, _)| (key.to_string(), axes[key]["lines"].as_u64().unwrap_or(0)))
                        .collect();
                    let wanted: Vec<(String, u64)> =
                        want.iter().map(|(k, n)| (k.to_string(), *n)).collect();
                    if pieces == wanted {
                        Ok(axes)
                    } else {
                        Err(format!(
                            "lines per chart {pieces:?}, want {wanted:?}: {axes}"
                        ))
                    }
                },
            )
            .await;
        b.screenshot(&format!("charts-{label}")).await;
        for (key, _) in want {
            let chart = &axes[key];
            assert_eq!(chart["dots"], 0, "{key}: {chart}");
            for side in ["left", "right"] {
                let labels: Vec<String> =
                    serde_json::from_value(chart[side].clone()).expect("labels");
                if side == "left" || !labels.is_empty() {
                    assert_round_ticks(&format!("{key} ({side}, {label})"), &labels);
                }
            }
            assert_time_labels_apart(&format!("{key} ({label})"), chart);
        }
        // One format for the time labels of every chart (they share the range).
        let shapes: std::collections::BTreeSet<String> = want
            .iter()
            .flat_map(|(key, _)| {
                axes[key]["x"]
                    .as_array()
                    .expect("x labels")
                    .iter()
                    .map(|l| label_shape(l["text"].as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            shapes.len(),
            1,
            "time labels in several formats: {shapes:?}"
        );
        // The container's memory, 150 to 190 MiB: ticked in whole MiB.
        assert_eq!(
            axes["container:web-1"]["right"],
            json!(["0 MiB", "50 MiB", "100 MiB", "150 MiB", "200 MiB"]),
            "{}",
            axes["container:web-1"]
        );
    }
    let swap = "div.chart[data-chart=swap]";
    assert_eq!(text_of(&b, &format!("{swap} .note")).await, "no swap");
    assert!(
        b.try_find(&format!("{swap} svg")).await.is_none(),
        "a host without swap still gets a swap plot"
    );
    let resolution = text_of(&b, "#resolution").await;
    assert!(
        resolution.starts_with("1 point"),
        "#resolution says {resolution:?}"
    );
    b.assert_clean(&format!("http://{}", app.addr)).await;
    drop(b);
    app.stop().await;
}

/// #12: the period selector offers 90 days and a year. Until the API serves them from its
/// tiers it refuses them (400); the page then says so in the banner, keeps working, and the next
/// period it can show clears the banner. Once the API serves them, the charts span the period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_period_selector_offers_90d_and_1y_and_shows_an_api_refusal_in_the_banner() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start_with_interval(60).await;
    fleetpoll::ops::create_user(&app.store, "cara", Role::Viewer, PASSWORD, &Actor::system())
        .await
        .expect("create user");
    let server = unpolled_server(&app, "long-lived").await;
    for minutes_ago in (0..=5).rev() {
        record_sample(&app, &server, minutes_ago).await;
    }
    let b = Browser::start("periods").await;
    b.goto(&app.url("/login")).await;
    b.wait_for("form#login", WAIT).await;
    submit_login(&b, "cara").await;
    wait_path(&b, "/").await;
    b.goto(&app.url(&format!("/servers/{}", server.id))).await;
    wait_ready(&b).await;
    let offered = b
        .execute(
            "return [...document.querySelectorAll('#period button')].map(b => b.dataset.period);",
            json!([]),
        )
        .await;
    assert_eq!(offered, json!(["1h", "24h", "7d", "30d", "90d", "1y"]));

    let cpu = "div.chart[data-chart=cpu]";
    let mut refused = Vec::new();
    for period in ["90d", "1y"] {
        let (status, answer) = app
            .get(&format!(
                "/api/servers/{}/metrics?period={period}",
                server.id
            ))
            .await;
        b.find(&format!("#period button[data-period=\"{period}\"]"))
            .await
            .click()
            .await;
        b.wait_js(
            &format!("the {period} button to be active"),
            &format!(
                "document.querySelector('#period button[data-period=\"{period}\"]').classList.contains('active')"
            ),
            WAIT,
        )
        .await;
        assert_eq!(query_param(&b, "period").await.as_deref(), Some(period));
        if status == 400 {
            refused.push(period);
            let error = answer["error"].as_str().expect("the refusal's error");
            b.wait_js(
                &format!("the banner to show the API's refusal of {period}"),
                &format!(
                    "(() => {{ const b = document.querySelector('#banner'); \
                       return b && !b.hidden && b.textContent.includes('Could not load') \
                         && b.textContent.includes({}); }})()",
                    json!(error)
                ),
                WAIT,
            )
            .await;
            b.screenshot(&format!("refused-{period}")).await;
            // The page did not break: the charts of the period before are still there.
            b.find(cpu).await;
        } else {
            assert_eq!(status, 200, "GET metrics?period={period}: {answer}");
            let since: DateTime<Utc> = answer["since"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("since");
            b.wait_js(
                &format!("the CPU chart to span {period}"),
                &format!(
                    "Math.abs(Date.parse(document.querySelector('{cpu}').dataset.from) - {}) < 600e3",
                    since.timestamp_millis()
                ),
                WAIT,
            )
            .await;
            wait_ready(&b).await;
            b.screenshot(&format!("period-{period}")).await;
        }
    }
    println!("periods the API refused: {refused:?}");

    // Back to an hour: the banner goes and the chart has the samples.
    b.find("#period button[data-period=\"1h\"]")
        .await
        .click()
        .await;
    b.wait_js(
        "the banner to clear on 1h",
        "document.querySelector('#banner').hidden",
        WAIT,
    )
    .await;
    b.wait_js(
        "the 1h CPU chart's samples",
        &format!("Number(document.querySelector('{cpu}').dataset.points) >= 5"),
        WAIT,
    )
    .await;
    // Clean but for the refusals themselves (a 400 is a failed load in the console).
    let origin = format!("http://{}", app.addr);
    let problems: Vec<String> = b
        .problems(&origin)
        .await
        .into_iter()
        .filter(|p| {
            !(p.contains("400") && refused.iter().any(|r| p.contains(&format!("period={r}"))))
        })
        .collect();
    assert!(problems.is_empty(), "the page was not clean: {problems:#?}");
    drop(b);
    app.stop().await;
}

/// #12: rollup points carry a min and a max; the chart draws them as a translucent band in the
/// line's colour behind the line, broken where the line is. Today's API sends no min/max, so the
/// page's own chart is given a synthetic hourly series (a 5-hour hole in it) in the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_band_spans_min_to_max_in_its_lines_colour_and_breaks_with_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start().await;
    let b = Browser::start("band").await;
    // Any page with the dashboard's script will do; the login page needs no session.
    b.goto(&app.url("/login")).await;
    b.wait_for("form#login", WAIT).await;
    b.execute(
        "const t0 = Date.parse('2024-01-01T00:00:00Z');
         const rows = [0, 1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16].map(h =>
           ({ t: t0 + h * 3600e3, v: [50 + h], lo: [30 + h], hi: [70 + h] }));
         const series = [{ name: 'cpu_percent', label: 'busy', unit: 'pct', fmt: v => v + '%' }];
         document.body.append(lineChart({ key: 'band-test', title: 'band', series, rows, yMax: 100,
           domain: [t0, t0 + 17 * 3600e3], resolution: 3600, exportName: 'band.csv' }));
         window.bandCsv = toCsv(series, rows).split('\\n')[0];",
        json!([]),
    )
    .await;
    b.wait_js(
        "the band chart to be drawn",
        "!!document.querySelector('div.chart[data-chart=\"band-test\"] svg polyline')",
        WAIT,
    )
    .await;
    b.screenshot("band").await;
    let v = b
        .execute(
            "const svg = document.querySelector('div.chart[data-chart=\"band-test\"] svg');
             const bands = [...svg.querySelectorAll('path.band')];
             const lines = [...svg.querySelectorAll('polyline.series')];
             const pairs = s => (s.match(/-?[0-9.]+,-?[0-9.]+/g) || []).map(p => p.split(',').map(Number));
             // Each line point lies between its band's top and bottom edge at the same x.
             const inside = lines.every((l, i) => pairs(l.getAttribute('points')).every(([x, y]) => {
               const ys = pairs(bands[i].getAttribute('d')).filter(p => p[0] === x).map(p => p[1]);
               return ys.length === 2 && Math.min(...ys) < y && y < Math.max(...ys);
             }));
             const order = [...svg.children];
             // The pure builder: no band without min/max, a lone banded point is a tick.
             const x = t => t / 1e5, y = v => 100 - v;
             const plain = seriesShapes({ rows: [{ t: 0, v: [1] }, { t: 1, v: [2] }], si: 0, x, y, maxGapMs: 10, color: '#123456' });
             const lone = seriesShapes({ rows: [{ t: 0, v: [1], lo: [0], hi: [2] }], si: 0, x, y, maxGapMs: 10, color: '#123456' });
             return {
               bands: bands.length, lines: lines.length, inside,
               fills: bands.map(b => b.getAttribute('fill')), strokes: lines.map(l => l.getAttribute('stroke')),
               opacity: Number(getComputedStyle(bands[0]).fillOpacity),
               behind: bands.every(b => lines.every(l => order.indexOf(b) < order.indexOf(l))),
               points: lines.map(l => pairs(l.getAttribute('points')).length),
               plain: [plain.bands.length, plain.lines.length],
               lone: [lone.bands.length, lone.bands[0] && lone.bands[0].getAttribute('class'), lone.lines[0].tagName],
               csv: window.bandCsv,
             };",
            json!([]),
        )
        .await;
    assert_eq!(v["bands"], 2, "a band per piece of line: {v}");
    assert_eq!(v["lines"], 2, "{v}");
    assert_eq!(v["points"], json!([6, 6]), "{v}");
    assert_eq!(v["inside"], true, "a line point outside its band: {v}");
    assert_eq!(
        v["fills"], v["strokes"],
        "band and line colours differ: {v}"
    );
    assert_eq!(v["behind"], true, "a band is drawn over a line: {v}");
    let opacity = v["opacity"].as_f64().expect("fill-opacity");
    assert!(
        0.0 < opacity && opacity < 0.5,
        "band fill-opacity {opacity}"
    );
    assert_eq!(v["plain"], json!([0, 1]), "{v}");
    assert_eq!(v["lone"], json!([1, "band band-tick", "circle"]), "{v}");
    assert_eq!(
        v["csv"], "time,cpu_percent,cpu_percent_min,cpu_percent_max",
        "{v}"
    );
    b.assert_clean(&format!("http://{}", app.addr)).await;
    drop(b);
    app.stop().await;
}

/// The alerts page (issue #13) against alerts a real poll raises: the overview marks the servers
/// and counts them in its cards; an operator acknowledges one with a comment, silences the other
/// server from the page and ends the silence, and adds a rule (a bad threshold first, which shows
/// the API's own message next to the field); a viewer then sees the page without a button that
/// changes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_acknowledges_and_silences_a_polled_alert_and_adds_a_rule_a_viewer_only_reads()
{
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(1).await;
    // Every real disk is more than 0% full: this fires at the next poll of each online server.
    let (status, rule) = fleet
        .app
        .send(
            reqwest::Method::POST,
            "/api/alert-rules",
            Some(
                &json!({"name": "root disk used", "metric": "disk_percent", "op": ">",
                        "threshold": 0, "mount": "/", "severity": "critical"})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let rule_id = rule["id"].as_str().expect("rule id").to_string();
    let firing = format!("/api/alerts?state=firing&rule={rule_id}");
    fleet
        .wait_server(
            &firing,
            "the disk rule to fire on both online servers",
            |a| a["total"] == 2,
        )
        .await;
    let (alpha, beta) = (&fleet.online[0], &fleet.online[1]);

    // The overview: a marker on each firing row, and the firing cards show the API's counts.
    let b = Browser::start("alerts").await;
    log_in(&b, &fleet, "olga").await;
    let marker = format!("tr.server-row[data-id=\"{}\"] a.firing-marker", alpha.id);
    b.wait_for(&marker, WAIT).await;
    b.eventually(
        "the firing marker and cards to show the API's counts",
        || async {
            let (_, summary) = fleet.app.get("/api/dashboard/summary").await;
            let row = summary["servers"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == "alpha-web").cloned())
                .unwrap_or_default();
            let want = json!([
                format!("{} firing", row["alerts_firing"]),
                summary["firing_alerts"]["critical"].to_string(),
                summary["firing_alerts"]["warning"].to_string(),
            ]);
            // Read at once, in the page: a refresh may redraw the rows between two reads.
            let shown = b
                .execute(
                    "const t = s => ((document.querySelector(s) || {}).textContent || '').trim();
                 return [t(arguments[0]), t('#cards .card[data-key=firing_critical] .value'),
                         t('#cards .card[data-key=firing_warning] .value')];",
                    json!([marker]),
                )
                .await;
            if shown == want {
                Ok(())
            } else {
                Err(format!("shown {shown}, API {want}"))
            }
        },
    )
    .await;
    b.screenshot("overview-firing").await;

    // The alerts page lists both, with the server linked and the mount.
    follow(&b, "a#nav-alerts", "/alerts").await;
    let row_of = |server: &Server| {
        format!(
            "tr.alert-row[data-rule=\"{rule_id}\"][data-server=\"{}\"]",
            server.id
        )
    };
    let (alpha_row, beta_row) = (row_of(alpha), row_of(beta));
    b.wait_for(&alpha_row, WAIT).await;
    b.wait_for(&beta_row, WAIT).await;
    assert_eq!(
        text_of(&b, &format!("{alpha_row} td.rule")).await,
        "root disk used"
    );
    assert_eq!(
        text_of(&b, &format!("{alpha_row} td.state")).await,
        "firing"
    );
    assert_eq!(text_of(&b, &format!("{alpha_row} td.subject")).await, "/");
    assert_eq!(
        text_of(&b, &format!("{alpha_row} td.server a")).await,
        "alpha-web"
    );
    assert_eq!(
        b.find(&format!("{alpha_row} td.server a"))
            .await
            .attr("href")
            .await
            .as_deref(),
        Some(format!("/servers/{}", alpha.id).as_str())
    );
    assert!(
        b.try_find("#channels-section").await.is_none(),
        "an operator sees the admins' channels"
    );

    // Acknowledge with a comment: the row and the API show who and why.
    let comment = "known: cleaning up /var/log";
    b.find(&format!("{alpha_row} button.ack-alert"))
        .await
        .click()
        .await;
    b.wait_for("form#ack-form", WAIT).await;
    b.find("form#ack-form textarea[name=comment]")
        .await
        .send_keys(comment)
        .await;
    b.find("form#ack-form button[type=submit]")
        .await
        .click()
        .await;
    wait_gone(&b, "form#ack-form").await;
    b.wait_js(
        "the acknowledgement in the row",
        &format!(
            "(e => !!e && e.textContent.includes('olga') && e.textContent.includes({}))(document.querySelector({}))",
            json!(comment),
            json!(format!("{alpha_row} td.acked"))
        ),
        WAIT,
    )
    .await;
    assert!(b
        .try_find(&format!("{alpha_row} button.ack-alert"))
        .await
        .is_none());
    let (_, alerts) = fleet
        .app
        .get(&format!("{firing}&server_id={}", alpha.id))
        .await;
    let acked = &alerts["items"][0];
    assert!(
        acked["acked_by"]
            .as_str()
            .is_some_and(|a| a.contains("olga")),
        "{acked}"
    );
    assert_eq!(acked["ack_comment"], comment, "{acked}");
    b.screenshot("acknowledged").await;

    // Silence beta-db (the whole server: the rule field emptied) from its alert's row. The
    // comment is required: without one the form says so and sends nothing.
    b.find(&format!("{beta_row} button.silence-alert"))
        .await
        .click()
        .await;
    b.wait_for("form#silence-form", WAIT).await;
    assert_eq!(
        b.find("input#sil-rule").await.prop("value").await,
        "root disk used"
    );
    assert_eq!(
        b.find("input#sil-server").await.prop("value").await,
        "beta-db"
    );
    b.find("input#sil-rule").await.clear().await;
    choose(&b, "sil-duration", "4h").await;
    b.find("form#silence-form button[type=submit]")
        .await
        .click()
        .await;
    b.wait_js(
        "#silence-form-error to ask for a comment",
        "(document.querySelector('#silence-form-error') || {}).textContent.includes('comment')",
        WAIT,
    )
    .await;
    assert_eq!(fleet.app.get("/api/silences").await.1["total"], 0);
    b.find("textarea#sil-comment")
        .await
        .send_keys("disk swap tonight")
        .await;
    b.find("form#silence-form button[type=submit]")
        .await
        .click()
        .await;
    wait_gone(&b, "form#silence-form").await;
    let silence_row = "tr.silence-row[data-server=\"beta-db\"]";
    b.wait_for(silence_row, WAIT).await;
    let (_, silences) = fleet.app.get("/api/silences").await;
    assert_eq!(silences["total"], 1, "{silences}");
    let s = &silences["items"][0];
    assert_eq!(
        (&s["server"], &s["rule"], &s["comment"]),
        (&json!("beta-db"), &Value::Null, &json!("disk swap tonight")),
        "{s}"
    );
    let ends: DateTime<Utc> = s["ends_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("ends_at");
    let hours = (ends - Utc::now()).num_minutes() as f64 / 60.0;
    assert!(
        (3.8..=4.01).contains(&hours),
        "the silence ends in {hours} h"
    );
    b.screenshot("silenced").await;

    // End it now: gone from the list of those running or ahead, kept with ?all=true.
    b.find(&format!("{silence_row} button.end-silence"))
        .await
        .click()
        .await;
    wait_gone(&b, silence_row).await;
    assert_eq!(fleet.app.get("/api/silences").await.1["total"], 0);
    let (_, all) = fleet.app.get("/api/silences?all=true").await;
    assert!(!all["items"][0]["expired_at"].is_null(), "{all}");

    // A rule: the metric decides which fields show; a bad threshold gets the API's message.
    let (_, rules) = fleet.app.get("/api/alert-rules").await;
    let rules_before = rules["total"].clone();
    b.find("button#add-rule").await.click().await;
    b.wait_for("form#rule-form", WAIT).await;
    assert!(!b.find("input#rf-mount").await.displayed().await);
    choose(&b, "rf-metric", "disk_percent").await;
    wait_shown(&b, "input#rf-mount").await;
    assert!(!b.find("input#rf-container").await.displayed().await);
    choose(&b, "rf-metric", "container_state").await;
    wait_shown(&b, "select#rf-threshold_word").await;
    wait_shown(&b, "input#rf-container").await;
    assert!(!b.find("input#rf-threshold").await.displayed().await);
    choose(&b, "rf-metric", "cpu_percent").await;
    wait_shown(&b, "input#rf-threshold").await;
    b.find("input#rf-name").await.send_keys("busy cpu").await;
    b.find("input#rf-threshold").await.send_keys("lots").await;
    b.find("form#rule-form button[type=submit]")
        .await
        .click()
        .await;
    b.wait_js(
        "#rule-form-error to show a message",
        "(document.querySelector('#rule-form-error') || {}).textContent",
        WAIT,
    )
    .await;
    let shown = text_of(&b, "#rule-form-error").await;
    let api_error = fleet
        .refusal(
            "/api/alert-rules/validate",
            json!({"name": "busy cpu", "metric": "cpu_percent", "op": ">", "threshold": "lots"}),
            "threshold",
        )
        .await;
    assert_eq!(shown, api_error, "#rule-form-error");
    let class = b
        .find("input#rf-threshold")
        .await
        .attr("class")
        .await
        .unwrap_or_default();
    assert!(
        class.contains("invalid"),
        "the threshold's class is {class:?}"
    );
    assert_eq!(
        text_of(&b, "input#rf-threshold + .field-error").await,
        api_error,
        "the message next to the threshold"
    );
    assert_eq!(
        fleet.app.get("/api/alert-rules").await.1["total"],
        rules_before
    );
    b.screenshot("rule-bad-threshold").await;
    b.find("input#rf-threshold").await.clear().await;
    b.find("input#rf-threshold").await.send_keys("95").await;
    b.find("form#rule-form button[type=submit]")
        .await
        .click()
        .await;
    wait_gone(&b, "form#rule-form").await;
    b.wait_for("tr.rule-row[data-name=\"busy cpu\"]", WAIT)
        .await;
    let (_, rules) = fleet.app.get("/api/alert-rules").await;
    let added = rules["items"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "busy cpu").cloned())
        .unwrap_or_else(|| panic!("no rule 'busy cpu' in {rules}"));
    assert_eq!(
        (&added["metric"], &added["op"], &added["threshold"]),
        (&json!("cpu_percent"), &json!(">"), &json!(95.0)),
        "{added}"
    );

    fits_phone_and_desktop(&b, "alerts").await;

    // A viewer reads the same page, with no button that changes anything.
    b.find("button#logout").await.click().await;
    wait_path(&b, "/login").await;
    submit_login(&b, "vera").await;
    wait_path(&b, "/").await;
    wait_ready(&b).await;
    follow(&b, "a#nav-alerts", "/alerts").await;
    b.wait_for(&alpha_row, WAIT).await;
    b.wait_for("tr.rule-row[data-name=\"busy cpu\"]", WAIT)
        .await;
    for write in [
        "button.ack-alert",
        "button.silence-alert",
        "#add-silence",
        "button.end-silence",
        "#add-rule",
        "button.edit-rule",
        "button.delete-rule",
        "#channels-section",
        "#add-channel",
    ] {
        assert!(
            b.try_find(write).await.is_none(),
            "a viewer sees {write} on /alerts"
        );
    }
    b.screenshot("viewer").await;
    fleet.finish(b).await;
}

/// Issue #14: an admin sees the processes sharing the database, each live, stopped (cleanly)
/// or lost; a store with none (one SQLite poller) shows no panel, and a viewer never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_the_pollers_panel_with_live_stopped_and_lost_pollers() {
    use fleetpoll::store::PollerInfo;
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start().await;
    for (name, role) in [("ada", Role::Admin), ("vera", Role::Viewer)] {
        fleetpoll::ops::create_user(&app.store, name, role, PASSWORD, &Actor::system())
            .await
            .expect("create user");
    }
    let b = Browser::start("pollers").await;
    b.goto(&app.url("/")).await;
    b.wait_for("form#login", WAIT).await;
    submit_login(&b, "ada").await;
    wait_path(&b, "/").await;
    wait_ready(&b).await;
    b.wait_for("table#servers", WAIT).await;
    if !common::on_postgres() {
        // On PostgreSQL the app itself is registered (role all), and shows.
        assert!(
            b.try_find("#pollers-section:not([hidden])").await.is_none(),
            "no pollers registered, no panel"
        );
    }

    let now = chrono::Utc::now();
    let poller = |hostname: &str, role: &str, minutes_ago: i64| PollerInfo {
        id: uuid::Uuid::new_v4(),
        hostname: hostname.into(),
        role: role.into(),
        version: "9.9.9".into(),
        started_at: now - chrono::Duration::minutes(minutes_ago),
    };
    let (live, stopped, lost) = (
        poller("poll-a", "poller", 30),
        poller("poll-b", "poller", 40),
        poller("poll-c", "poller", 50),
    );
    for p in [&live, &stopped, &lost] {
        app.store.register_poller(p).await.expect("register");
    }
    app.store
        .poller_heartbeat(live.id, now, Some(12.5))
        .await
        .expect("heartbeat");
    app.store
        .poller_stopped(stopped.id, now - chrono::Duration::minutes(5))
        .await
        .expect("stopped");
    // poll-c's last heartbeat is its start, 50 minutes ago, and it never stopped: lost.
    b.eventually("the pollers panel to show three pollers", || async {
        b.refresh().await;
        wait_ready(&b).await;
        let rows = b
            .execute(
                "return [...document.querySelectorAll('#pollers-section:not([hidden]) tr.poller-row')]
                   .map(r => [r.querySelector('.hostname').textContent, r.dataset.state,
                              r.querySelector('.rate').textContent, r.querySelector('.version').textContent])
                   .filter(r => r[0].startsWith('poll-'));",
                json!([]),
            )
            .await;
        let mut rows: Vec<Vec<String>> = serde_json::from_value(rows).unwrap_or_default();
        rows.sort();
        if rows.len() == 3 {
            Ok(rows)
        } else {
            Err(format!("rows: {rows:?}"))
        }
    })
    .await
    .into_iter()
    .zip([
        ["poll-a", "live", "12.5", "9.9.9"],
        ["poll-b", "stopped", "–", "9.9.9"],
        ["poll-c", "lost", "–", "9.9.9"],
    ])
    .for_each(|(got, want)| assert_eq!(got, want));
    b.screenshot("pollers").await;

    b.find("button#logout").await.click().await;
    wait_path(&b, "/login").await;
    submit_login(&b, "vera").await;
    wait_path(&b, "/").await;
    wait_ready(&b).await;
    b.wait_for("table#servers", WAIT).await;
    assert!(
        b.try_find("#pollers-section:not([hidden])").await.is_none(),
        "a viewer sees the pollers"
    );
    b.assert_clean(&format!("http://{}", app.addr)).await;
    app.stop().await;
}

/// An admin adds a webhook channel pointed at a real local receiver (its URL sealed: the list
/// shows only its host), presses Test, and reads the receiver's status and answer; then the
/// receiver refuses and the page says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_a_webhook_channel_and_tests_it_against_a_real_receiver() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start().await;
    fleetpoll::ops::create_user(&app.store, "ada", Role::Admin, PASSWORD, &Actor::system())
        .await
        .expect("create user");
    let receiver = Receiver::start(None);
    let b = Browser::start("channels").await;
    b.goto(&app.url("/alerts")).await;
    b.wait_for("form#login", WAIT).await;
    submit_login(&b, "ada").await;
    wait_path(&b, "/alerts").await;
    wait_ready(&b).await;

    b.wait_for("button#add-channel", WAIT).await.click().await;
    b.wait_for("form#channel-form", WAIT).await;
    // The kind decides the config fields.
    choose(&b, "cf-kind", "telegram").await;
    wait_shown(&b, "input[name=\"config.bot_token\"]").await;
    assert!(b.try_find("input[name=\"config.secret\"]").await.is_none());
    choose(&b, "cf-kind", "webhook").await;
    wait_shown(&b, "input[name=\"config.secret\"]").await;
    b.find("input#cf-name").await.send_keys("ops-hook").await;
    b.find("input[name=\"config.url\"]")
        .await
        .send_keys(&receiver.url("/hook"))
        .await;
    b.find("form#channel-form button[type=submit]")
        .await
        .click()
        .await;
    wait_gone(&b, "form#channel-form").await;
    let row = "tr.channel-row[data-name=\"ops-hook\"]";
    b.wait_for(row, WAIT).await;
    assert_eq!(text_of(&b, &format!("{row} td.kind")).await, "webhook");
    assert_eq!(text_of(&b, &format!("{row} td.has-secret")).await, "sealed");
    let config = text_of(&b, &format!("{row} td.config")).await;
    assert!(!config.contains("/hook"), "the sealed URL shows: {config}");
    let (_, channels) = app.get("/api/notification-channels").await;
    assert_eq!(channels["items"][0]["has_secret"], true, "{channels}");

    // Test: the receiver gets the test message; the row shows its status and answer.
    b.find(&format!("{row} button.test-channel"))
        .await
        .click()
        .await;
    let result = format!("{row} .test-result");
    b.wait_js(
        "the test result",
        &format!(
            "(document.querySelector({}) || {{dataset: {{}}}}).dataset.delivered === 'true'",
            json!(result)
        ),
        WAIT,
    )
    .await;
    let shown = text_of(&b, &result).await;
    assert!(
        shown.contains("HTTP 200") && shown.contains("receiver says 200"),
        "{shown}"
    );
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/hook");
    assert_eq!(got[0].json()["status"], "test", "{:?}", got[0]);

    receiver.set_mode(Mode::Answer(503));
    b.find(&format!("{row} button.test-channel"))
        .await
        .click()
        .await;
    b.wait_js(
        "the refused test's result",
        &format!(
            "(document.querySelector({}) || {{dataset: {{}}}}).dataset.delivered === 'false'",
            json!(result)
        ),
        WAIT,
    )
    .await;
    let shown = text_of(&b, &result).await;
    assert!(shown.contains("503"), "{shown}");
    b.screenshot("channel-tested").await;
    fits_phone_and_desktop(&b, "alerts-admin").await;

    b.assert_clean(&format!("http://{}", app.addr)).await;
    drop(b);
    app.stop().await;
}

/// Issue #18: the overview does not pass old values off as current. A host that is offline with a
/// sample from 7 minutes ago shows its CPU, memory and disk dimmed, their age in the title; a host
/// polled a moment ago shows its values plainly. At desktop width the filter box shows its whole
/// placeholder, which says what the filter matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_dims_values_of_an_older_poll_and_shows_the_whole_filter_placeholder() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(1).await;
    // Polled once 7 minutes ago, on a closed port since: the scheduler keeps it offline.
    let mut gone = common::registration("delta-was-up", &fleet.sshd);
    gone.port = harness::closed_port();
    let gone = common::add(&fleet.app.store, gone).await;
    record_sample(&fleet.app, &gone, 7).await;
    fleet
        .wait_server(
            &format!("/api/servers/{}", gone.id),
            "delta-was-up offline with its old sample",
            |s| s["status"] == "offline" && s["last_sample_at"].is_string(),
        )
        .await;
    let b = Browser::start("dated").await;
    log_in(&b, &fleet, "vera").await;
    b.wait_for(&format!("tr.server-row[data-id=\"{}\"]", gone.id), WAIT)
        .await;

    let dated = metric_cells(&b, &gone).await;
    b.screenshot("dated-values").await;
    for cell in dated.as_array().expect("cells") {
        assert_eq!(cell["dated"], true, "{cell}");
        assert!(
            cell["text"].as_str().is_some_and(|t| t.ends_with('%')),
            "the old value is still shown: {cell}"
        );
        let minutes = cell["title"]
            .as_str()
            .and_then(|t| t.strip_prefix("as of "))
            .and_then(|t| t.strip_suffix(" min ago"))
            .and_then(|n| n.parse::<u32>().ok());
        assert!(
            minutes.is_some_and(|m| (7..=8).contains(&m)),
            "want a title like 'as of 7 min ago': {cell}"
        );
    }

    // A fresh sample is at most a poll and a half (3 s) old when the page draws it; on a busy
    // machine a draw may come later than that, so reload until one shows the values current.
    let fresh = poll_until(POLL_WAIT, || async {
        b.refresh().await;
        wait_ready(&b).await;
        let mut cells = Vec::new();
        for server in &fleet.online {
            cells.push(metric_cells(&b, server).await);
        }
        let plain = cells.iter().all(|c| {
            c.as_array().is_some_and(|c| {
                c.iter()
                    .all(|c| c["dated"] == false && c["title"].is_null())
            })
        });
        if plain {
            Ok(cells)
        } else {
            Err(cells)
        }
    })
    .await
    .unwrap_or_else(|last| panic!("the polled hosts' values stayed dated: {last:?}"));
    // The class does dim: the old values are drawn in another colour than current ones.
    let dated = metric_cells(&b, &gone).await;
    assert_ne!(
        dated[0]["color"], fresh[0][0]["color"],
        "dated {dated}, current {fresh:?}"
    );

    // The filter box at desktop width: the placeholder's width in the box's own font fits the
    // box's content width.
    let (width, _) = b.viewport().await;
    assert!((width - f64::from(DESKTOP.0)).abs() <= 20.0, "{width}");
    let v = b
        .execute(
            "const i = document.querySelector('input#filter-text');
             const cs = getComputedStyle(i);
             const ctx = document.createElement('canvas').getContext('2d');
             ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
             return {
               value: i.value,
               placeholder: i.placeholder,
               text: ctx.measureText(i.placeholder).width,
               content: i.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight),
               scroll: i.scrollWidth,
               client: i.clientWidth,
             };",
            json!([]),
        )
        .await;
    b.screenshot("filter-placeholder").await;
    assert_eq!(
        v["value"], "",
        "the placeholder shows only in an empty box: {v}"
    );
    assert!(
        v["placeholder"]
            .as_str()
            .is_some_and(|p| p.contains("name") && p.contains("tag")),
        "{v}"
    );
    let num = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!(num("text") > 0.0, "{v}");
    assert!(
        num("text") <= num("content"),
        "the placeholder is cut off: {v}"
    );
    assert!(num("scroll") <= num("client"), "{v}");

    fleet.finish(b).await;
}

/// Issue #18: at phone width the activity log and the server page's container table fit the
/// screen: every cell and the text in it lies inside the viewport, none left to a sideways scroll
/// inside the table, and where the column headers are out of sight each cell names its column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_phone_width_every_cell_of_the_overview_the_activity_log_and_the_container_table_is_on_screen(
) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(1).await;
    let b = Browser::start("phone-tables").await;
    log_in(&b, &fleet, "vera").await;
    b.set_window_size(PHONE.0, PHONE.1).await;
    b.wait_js(
        "the viewport to be phone wide",
        &format!("Math.abs(window.innerWidth - {}) <= 20", PHONE.0),
        WAIT,
    )
    .await;

    // The overview's server table: name, health, status, the three values, age and reason.
    b.wait_for("table#servers tr.server-row", WAIT).await;
    b.screenshot("servers-phone").await;
    assert_cells_on_screen(&b, "table#servers", 1).await;

    follow(&b, "a#nav-activity", "/activity").await;
    b.wait_for("table#activity tr.activity-row", WAIT).await;
    // The offline server's entry carries a long message: the widest cell of the log.
    b.wait_for(
        "table#activity tr.activity-row[data-type=server_offline]",
        WAIT,
    )
    .await;
    b.execute(
        "document.querySelector('table#activity').scrollIntoView();",
        json!([]),
    )
    .await;
    b.screenshot("activity-phone").await;
    assert_cells_on_screen(&b, "table#activity", 3).await;

    b.goto(&fleet.app.url(&format!("/servers/{}", fleet.online[0].id)))
        .await;
    wait_ready(&b).await;
    b.wait_for("table#containers tr.container-row", WAIT).await;
    b.execute(
        "document.querySelector('table#containers').scrollIntoView();",
        json!([]),
    )
    .await;
    b.screenshot("containers-phone").await;
    assert_cells_on_screen(&b, "table#containers", 8).await;

    fleet.finish(b).await;
}

/// The cells of one CSV line (RFC 4180 quoting; no line breaks inside cells here).
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cells.last_mut().expect("cell").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => cells.last_mut().expect("cell").push(c),
        }
    }
    cells
}

/// Another web site on this machine: one page at `/`, on `ip` and a port of its own.
struct OtherSite {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl OtherSite {
    async fn start(ip: [u8; 4], page: String) -> OtherSite {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::from(ip), 0))
            .await
            .expect("bind the other site");
        let addr = listener.local_addr().expect("addr");
        let router = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                let page = page.clone();
                async move { axum::response::Html(page) }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        OtherSite { addr, task }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(self) {
        self.task.abort();
    }
}

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
        let polled = poll_until(POLL_WAIT, || async {
            let mut least = i64::MAX;
            for s in &self.online {
                let n = common::samples(&self.app.store, 0, Some(&s.id.to_string())).await;
                least = least.min(n);
            }
            let (_, summary) = self.app.get("/api/dashboard/summary").await;
            if least >= samples && summary["online_servers"] == 2 && summary["offline_servers"] == 1
            {
                Ok(())
            } else {
                Err(format!(
                    "{least} samples on the least polled server; summary {summary}"
                ))
            }
        })
        .await;
        if let Err(last) = polled {
            panic!(
                "the fleet was not polled in 90 s: {last}\nsshd log:\n{}",
                self.sshd.log_text()
            );
        }
    }

    /// Polls `GET {path}` (one server) for up to 90 s until `ready` holds for the answer;
    /// panics with `what`, the last answer and the fleet's sshd log.
    async fn wait_server(&self, path: &str, what: &str, ready: impl Fn(&Value) -> bool) {
        let waited = poll_until(POLL_WAIT, || async {
            let (_, s) = self.app.get(path).await;
            if ready(&s) {
                Ok(())
            } else {
                Err(s)
            }
        })
        .await;
        if let Err(last) = waited {
            panic!(
                "waited 90 s for {what}; last: {last}\nsshd log (fleet):\n{}",
                self.sshd.log_text()
            );
        }
    }

    /// `GET /api/activity?{query}`'s answer.
    async fn activity(&self, query: &str) -> Value {
        self.app.get(&format!("/api/activity?{query}")).await.1
    }

    /// How many activity entries match `query`, by the API.
    async fn activity_total(&self, query: &str) -> u64 {
        let a = self.activity(query).await;
        a["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("no total in GET /api/activity?{query}: {a}"))
    }

    /// Asks the API to check a server form's input (`POST {path}` with `body`, a `validate`
    /// endpoint), which it should refuse because of `field`; returns its message.
    async fn refusal(&self, path: &str, body: Value, field: &str) -> String {
        let (status, check) = self
            .app
            .send(reqwest::Method::POST, path, Some(&body.to_string()))
            .await;
        assert_eq!(status, 200, "POST {path}: {check}");
        assert_eq!(
            (&check["valid"], &check["field"]),
            (&json!(false), &json!(field)),
            "{check}"
        );
        check["error"].as_str().expect("error text").to_string()
    }

    /// How every test with a fleet ends: the page stayed clean throughout, then the browser
    /// closes and the app stops.
    async fn finish(self, b: Browser) {
        b.assert_clean(&self.origin()).await;
        drop(b);
        self.app.stop().await;
    }
}

// ---- Any page ----

/// Logs in through the form at `/login` and waits for the overview to finish its first render.
async fn log_in(b: &Browser, fleet: &Fleet, user: &str) {
    b.goto(&fleet.app.url("/login")).await;
    b.wait_for("form#login", WAIT).await;
    submit_login(b, user).await;
    wait_path(b, "/").await;
    wait_ready(b).await;
}

/// Types `user` and the password into the login form shown and submits it.
async fn submit_login(b: &Browser, user: &str) {
    b.find("input#username").await.send_keys(user).await;
    b.find("input#password").await.send_keys(PASSWORD).await;
    b.find("form#login button[type=submit]").await.click().await;
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

/// Waits until the browser is at `path` (`location.pathname`).
async fn wait_path(b: &Browser, path: &str) {
    b.wait_js(
        &format!("the page at {path}"),
        &format!("location.pathname === {}", json!(path)),
        WAIT,
    )
    .await;
}

/// Clicks `link` (a link or button that navigates) and waits for the page at `path` to be ready.
async fn follow(b: &Browser, link: &str, path: &str) {
    b.wait_for(link, WAIT).await.click().await;
    wait_path(b, path).await;
    wait_ready(b).await;
}

/// The trimmed text of the first element matching `css`.
async fn text_of(b: &Browser, css: &str) -> String {
    b.find(css).await.text().await.trim().to_string()
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

/// Waits until nothing matches `css` (a form that closed, a row that went away).
async fn wait_gone(b: &Browser, css: &str) {
    b.wait_js(
        &format!("{css} to go away"),
        &format!("!document.querySelector({})", json!(css)),
        WAIT,
    )
    .await;
}

/// Waits until an element matches `css` and is shown (not `hidden`, and laid out).
async fn wait_shown(b: &Browser, css: &str) {
    b.wait_js(
        &format!("{css} to show"),
        &format!(
            "(e => !!e && !e.hidden && e.offsetParent !== null)(document.querySelector({}))",
            json!(css)
        ),
        WAIT,
    )
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

/// Waits until the URL's query has every `(key, value)` of `params`; an empty value means the
/// key is absent.
async fn wait_params(b: &Browser, params: &[(&str, &str)]) {
    let what: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    b.wait_js(
        &format!("{} in the URL", what.join("&")),
        &format!(
            "(() => {{ const p = new URLSearchParams(location.search); \
               return {}.every(([k, v]) => (p.get(k) || '') === v); }})()",
            json!(params)
        ),
        WAIT,
    )
    .await;
}

/// The range in the URL (a chart's zoom, the activity log's time filter) once it has both
/// `since` and `until`, each as UTC.
async fn url_range(b: &Browser) -> (DateTime<Utc>, DateTime<Utc>) {
    b.wait_js(
        "since and until in the URL",
        "(() => { const p = new URLSearchParams(location.search); return p.get('since') && p.get('until'); })()",
        WAIT,
    )
    .await;
    let mut ends = Vec::new();
    for key in ["since", "until"] {
        let end: DateTime<Utc> = query_param(b, key)
            .await
            .expect(key)
            .parse()
            .unwrap_or_else(|e| panic!("{key} is not RFC 3339: {e}"));
        ends.push(end);
    }
    (ends[0], ends[1])
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

/// Checks, at the window's current width, every body cell of `table` (at least `min_rows` rows):
/// its box and its text lie within the viewport and the cell does not overflow; the table does
/// not scroll inside its wrapper; and when the header row is out of sight (a table laid out as
/// cards) each cell shows its column's name.
async fn assert_cells_on_screen(b: &Browser, table: &str, min_rows: usize) {
    let v = b
        .execute(
            "const table = document.querySelector(arguments[0]);
             const W = window.innerWidth;
             const head = table.querySelector('thead').getBoundingClientRect();
             const wrap = table.parentElement;
             const cells = [...table.querySelectorAll('tbody tr')].map(tr => [...tr.children].map(td => {
               const r = td.getBoundingClientRect();
               const range = document.createRange();
               range.selectNodeContents(td);
               const t = range.getBoundingClientRect();
               return { cls: td.className, text: td.textContent.trim().slice(0, 60), shown: getComputedStyle(td).display !== 'none',
                 left: r.left, right: r.right, textLeft: t.left, textRight: t.right, textWidth: t.width,
                 overflow: td.scrollWidth - td.clientWidth, label: getComputedStyle(td, '::before').content };
             }));
             return { width: W, headShown: head.width > 1 && head.height > 1,
               wrapOverflow: wrap.scrollWidth - wrap.clientWidth, rows: cells };",
            json!([table]),
        )
        .await;
    let width = v["width"].as_f64().expect("width");
    let rows = v["rows"].as_array().expect("rows");
    assert!(rows.len() >= min_rows, "{table}: {} rows: {v}", rows.len());
    assert!(
        v["wrapOverflow"].as_f64().is_some_and(|o| o <= 1.0),
        "{table} scrolls sideways inside its wrapper: {}",
        v["wrapOverflow"]
    );
    let num = |c: &Value, k: &str| c[k].as_f64().unwrap_or_else(|| panic!("{k} in {c}"));
    // A column left out at this width (`hide-narrow`) is not drawn at all.
    let drawn = rows
        .iter()
        .flat_map(|r| r.as_array().expect("cells"))
        .filter(|c| c["shown"] == true);
    for cell in drawn {
        assert!(
            num(cell, "left") >= -0.5 && num(cell, "right") <= width + 0.5,
            "{table}: a cell off the {width} px screen: {cell}"
        );
        assert!(
            num(cell, "overflow") <= 1.0,
            "{table}: content overflows its cell: {cell}"
        );
        if cell["text"] != "" {
            assert!(
                num(cell, "textWidth") > 0.0
                    && num(cell, "textLeft") >= -0.5
                    && num(cell, "textRight") <= width + 0.5,
                "{table}: text not on the {width} px screen: {cell}"
            );
        }
        if v["headShown"] == false {
            assert!(
                cell["label"]
                    .as_str()
                    .is_some_and(|l| l != "none" && l != "\"\"" && l != "normal"),
                "{table}: the header is out of sight and a cell does not name its column: {cell}"
            );
        }
    }
}

// ---- The overview ----

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
    text_of(b, &format!("#cards .card[data-key={key}] .value")).await
}

/// Waits until every count card shows what the API's summary, fetched at the same moment, has;
/// returns that summary. Counts are stable once the fleet is polled; this retries anyway in case
/// a refresh and a poll cross.
async fn wait_cards_match_api(b: &Browser, fleet: &Fleet) -> Value {
    b.eventually("the cards to show the API's counts", || async {
        let (_, summary) = fleet.app.get("/api/dashboard/summary").await;
        let mut diffs = Vec::new();
        for key in COUNT_CARDS {
            let (shown, api) = (card(b, key).await, summary[key].to_string());
            if shown != api {
                diffs.push(format!("{key}: card {shown:?}, API {api}"));
            }
        }
        if diffs.is_empty() {
            Ok(summary)
        } else {
            Err(format!("cards differ from the API: {diffs:#?}"))
        }
    })
    .await
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

/// Waits until the shown rows are exactly `want`, in any order.
async fn wait_rows(b: &Browser, what: &str, want: &[&str]) {
    let mut want = want.to_vec();
    want.sort_unstable();
    b.eventually(what, || async {
        let mut got = shown_rows(b).await;
        got.sort_unstable();
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "rows shown are {got:?}, want {want:?} in any order"
            ))
        }
    })
    .await;
}

/// Waits until the shown rows are exactly `want`, in that order.
async fn wait_rows_in_order(b: &Browser, what: &str, want: &[&str]) {
    b.eventually(what, || async {
        let got = shown_rows(b).await;
        if got == want {
            Ok(())
        } else {
            Err(format!("rows shown are {got:?}, want {want:?}"))
        }
    })
    .await;
}

/// Empties the overview's text filter. `clear` fires no input event in every Chromium; typing
/// and deleting does.
async fn clear_filter_text(text: &Element<'_>) {
    text.clear().await;
    text.send_keys("x\u{E003}").await;
}

/// The add/edit server form's input `name`.
async fn server_field<'a>(b: &'a Browser, name: &str) -> Element<'a> {
    b.find(&format!("form#server-form [name={name}]")).await
}

/// Opens the server form with `button` (add or edit) and checks it shows.
async fn open_server_form(b: &Browser, button: &str) {
    b.find(button).await.click().await;
    let form = b.wait_for("form#server-form", WAIT).await;
    assert!(form.displayed().await, "form#server-form is not shown");
}

/// Replaces what the server form's input `name` holds by typing `text`.
async fn retype(b: &Browser, name: &str, text: &str) {
    server_field(b, name).await.clear().await;
    server_field(b, name).await.send_keys(text).await;
}

async fn submit_server_form(b: &Browser) {
    b.find("form#server-form button[type=submit]")
        .await
        .click()
        .await;
}

/// Submits the server form, which should refuse it: waits for `#server-form-error`, checks that
/// `field` is marked `invalid`, and returns the message shown.
async fn submit_refused(b: &Browser, field: &str) -> String {
    submit_server_form(b).await;
    b.wait_js(
        "#server-form-error to show a message",
        "(document.querySelector('#server-form-error') || {}).textContent",
        WAIT,
    )
    .await;
    let shown = b.find("#server-form-error").await.text().await;
    let class = server_field(b, field)
        .await
        .attr("class")
        .await
        .unwrap_or_default();
    assert!(
        class.split_whitespace().any(|c| c == "invalid"),
        "the {field} field's class is {class:?}, want `invalid`"
    );
    shown
}

/// Submits the server form and waits for it to close, as it does once saved.
async fn submit_saved(b: &Browser) {
    submit_server_form(b).await;
    b.wait_js(
        "form#server-form to close",
        "(() => { const f = document.querySelector('form#server-form'); \
           return !f || f.hidden || f.offsetParent === null; })()",
        WAIT,
    )
    .await;
}

// ---- A server's page ----

/// The CPU, memory and disk cells of `server`'s row on the overview: `dated`, `title`, `text`
/// and computed `color` of each.
async fn metric_cells(b: &Browser, server: &Server) -> Value {
    b.execute(
        "const row = document.querySelector(`tr.server-row[data-id=\"${arguments[0]}\"]`);
         return ['cpu', 'memory', 'disk'].map(c => {
           const td = row.querySelector('td.' + c);
           return { cell: c, dated: td.classList.contains('dated'), title: td.getAttribute('title'),
             text: td.textContent, color: getComputedStyle(td).color };
         });",
        json!([server.id.to_string()]),
    )
    .await
}

/// Opens `server`'s page from its row on the overview.
async fn open_server(b: &Browser, server: &Server) {
    follow(
        b,
        &format!("tr.server-row[data-id=\"{}\"] a.server-link", server.id),
        &format!("/servers/{}", server.id),
    )
    .await;
}

/// The chart of the container `name`.
fn container_chart(name: &str) -> String {
    format!(
        "div.chart[data-chart={}]",
        json!(format!("container:{name}"))
    )
}

/// A server that is never polled (disabled, on a closed port), for tests that store its
/// samples themselves.
async fn unpolled_server(app: &TestApp, name: &str) -> Server {
    let key = app.dir.path().join(format!("key-{name}"));
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    common::add(
        &app.store,
        fleetpoll::inventory::NewServer {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: harness::closed_port(),
            user: "u".into(),
            key_path: key.to_string_lossy().into_owned(),
            key_passphrase_env: None,
            tags: vec![],
            enabled: false,
            key_material: None,
            key_stored: false,
        },
    )
    .await
}

/// Stores, as a poll would, a sample of `server` taken `minutes_ago` (and a second) ago: CPU,
/// memory, load and two mounts that move from minute to minute, no swap (total 0), and one
/// container `web-1` using 150 to 190 MiB. The server's latest sample becomes this one (its
/// container list is the latest sample's), so store them oldest first.
async fn record_sample(app: &TestApp, server: &Server, minutes_ago: i64) {
    use fleetpoll::model::{ContainerSample, DiskSample, DockerState, ServerSample, Snapshot};
    let wave = (minutes_ago % 5) as u64;
    let disk = |mount: &str, used: u64| DiskSample {
        filesystem: "/dev/vda".into(),
        mount: mount.into(),
        total_bytes: Some(100 << 30),
        used_bytes: Some(used << 30),
        available_bytes: Some((100 - used) << 30),
        use_percent: Some(used as f64),
    };
    let snapshot = Snapshot {
        taken_at: Utc::now()
            - chrono::Duration::minutes(minutes_ago)
            - chrono::Duration::seconds(1),
        server: ServerSample {
            cpu_busy_percent: Some(20.0 + 10.0 * wave as f64),
            load1: Some(0.5 + 0.1 * wave as f64),
            load5: Some(0.4),
            load15: Some(0.3),
            mem_total_bytes: Some(8 << 30),
            mem_used_bytes: Some((3 << 30) + (wave << 28)),
            mem_available_bytes: Some((5 << 30) - (wave << 28)),
            swap_total_bytes: Some(0),
            swap_used_bytes: Some(0),
            ..Default::default()
        },
        disks: vec![disk("/", 40 + wave), disk("/data", 70 - wave)],
        containers: vec![ContainerSample {
            container_id: "c0ffee".into(),
            name: "web-1".into(),
            image: Some("nginx:1.27".into()),
            state: "running".into(),
            status_text: "Up 2 hours".into(),
            exit_code: None,
            health: None,
            cpu_percent: Some(1.0 + wave as f64),
            cpu_time_seconds: None,
            mem_used_bytes: Some((150 + 10 * wave) << 20),
            mem_limit_bytes: Some(1 << 30),
            mem_percent: None,
            net_rx_bytes: None,
            net_tx_bytes: None,
            block_read_bytes: None,
            block_write_bytes: None,
            pids: Some(3),
        }],
        docker: DockerState::Available,
        problems: vec![],
    };
    app.store
        .record_poll(
            server.id,
            Some(&snapshot),
            &fleetpoll::store::ServerUpdate {
                last_sample_at: Some(snapshot.taken_at),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("record a sample");
}

/// Every chart on the page by its `data-chart`: its pieces of line (`lines`) and lone points
/// (`dots`), its y tick labels (`left`, `right`), its time labels (`x`: text and left/right
/// edge on screen) and its plot's left/right edge (`svg`).
async fn chart_axes(b: &Browser) -> Value {
    b.execute(
        "const out = {};
         for (const c of document.querySelectorAll('div.chart')) {
           const svg = c.querySelector('svg');
           if (!svg) { out[c.dataset.chart] = { note: c.textContent }; continue; }
           const texts = sel => [...svg.querySelectorAll(sel)].map(t => t.textContent);
           const r = svg.getBoundingClientRect();
           out[c.dataset.chart] = {
             lines: svg.querySelectorAll('polyline.series').length,
             dots: svg.querySelectorAll('circle.series-dot').length,
             left: texts('text.tick-y:not(.right)'),
             right: texts('text.tick-y.right'),
             x: [...svg.querySelectorAll('text.tick-x')].map(t => {
               const b = t.getBoundingClientRect();
               return { text: t.textContent, left: b.left, right: b.right };
             }),
             svg: { left: r.left, right: r.right },
           };
         }
         return out;",
        json!([]),
    )
    .await
}

/// Checks that y tick labels read at round values in one unit: `0 MiB, 50 MiB, 100 MiB`, or
/// `0%, 25%, ...`, or `0, 0.5, 1`: from 0, in equal steps of 1, 2, 2.5 or 5 times a power of 10.
fn assert_round_ticks(what: &str, labels: &[String]) {
    assert!(labels.len() >= 2, "{what}: tick labels {labels:?}");
    let parsed: Vec<(f64, &str)> = labels
        .iter()
        .map(|l| {
            let end = l
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(l.len());
            let n = l[..end]
                .parse()
                .unwrap_or_else(|e| panic!("{what}: tick {l:?} is not a number: {e}"));
            (n, l[end..].trim())
        })
        .collect();
    assert!(
        parsed.iter().all(|(_, unit)| *unit == parsed[0].1),
        "{what}: ticks in several units: {labels:?}"
    );
    assert_eq!(
        parsed[0].0, 0.0,
        "{what}: the axis does not start at 0: {labels:?}"
    );
    let step = parsed[1].0 - parsed[0].0;
    let mag = 10f64.powf(step.log10().floor());
    assert!(
        [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .any(|m| (step / mag - m).abs() < 1e-9),
        "{what}: a step of {step} is not round: {labels:?}"
    );
    for (i, (v, _)) in parsed.iter().enumerate() {
        assert!(
            (v - step * i as f64).abs() < step * 1e-9,
            "{what}: uneven ticks {labels:?}"
        );
    }
}

/// Checks that a chart (from [`chart_axes`]) has at least two time labels, all inside the plot's
/// box and none overlapping its neighbour.
fn assert_time_labels_apart(what: &str, chart: &Value) {
    let labels = chart["x"].as_array().expect("x labels");
    assert!(labels.len() >= 2, "{what}: time labels {labels:?}");
    let edge = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    for l in labels {
        assert!(
            edge(l, "left") >= edge(&chart["svg"], "left") - 0.5
                && edge(l, "right") <= edge(&chart["svg"], "right") + 0.5,
            "{what}: time label {l} sticks out of {}",
            chart["svg"]
        );
    }
    for pair in labels.windows(2) {
        assert!(
            edge(&pair[0], "right") + 2.0 <= edge(&pair[1], "left"),
            "{what}: time labels overlap: {} and {}",
            pair[0],
            pair[1]
        );
    }
}

/// A label's shape: runs of digits as `9`, of letters as `a` ("13:40" → "9:9", "Mar 4" → "a 9").
fn label_shape(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        let k = if c.is_ascii_digit() {
            '9'
        } else if c.is_alphabetic() {
            'a'
        } else {
            c
        };
        if !(out.ends_with(k) && (k == '9' || k == 'a')) {
            out.push(k);
        }
    }
    out
}

/// `data-points` of the first element matching `css` (a chart or a sparkline), or -1 if there
/// is none.
async fn points(b: &Browser, css: &str) -> i64 {
    b.execute(
        "const c = document.querySelector(arguments[0]); \
         return c ? Number(c.dataset.points) : -1;",
        json!([css]),
    )
    .await
    .as_i64()
    .unwrap_or(-1)
}

/// Waits up to 90 s until the chart `css` draws at least `min` points, reloading every 3 s: new
/// buckets fill as the fleet polls, and auto-refresh (every 15 s) would be slower.
async fn reload_until_points(b: &Browser, css: &str, min: i64) {
    let drawn = poll_until(POLL_WAIT, || async {
        let n = points(b, css).await;
        if n >= min {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        b.refresh().await;
        wait_ready(b).await;
        Err(n)
    })
    .await;
    if let Err(n) = drawn {
        panic!("{css} has {n} points after 90 s");
    }
}

/// Exports the chart `css` with its CSV button and returns the rows of the download `file`,
/// after checking them: the first line is `header`, then one row per point the chart draws,
/// each with a cell per column and an RFC 3339 time first. Returns each row's time and the rest
/// of its cells.
///
/// Auto-refresh may redraw the chart (maybe with one more point): the count is taken on both
/// sides of the click, and the export repeated if a redraw came between.
async fn export_csv(
    b: &Browser,
    css: &str,
    file: &str,
    header: &str,
) -> Vec<(DateTime<Utc>, Vec<String>)> {
    let (csv, points) = loop {
        let before = points(b, css).await;
        let _ = std::fs::remove_file(b.downloads.path().join(file));
        b.find(&format!("{css} button.export-csv"))
            .await
            .click()
            .await;
        let path = b.wait_download(file, WAIT).await;
        let after = points(b, css).await;
        if before == after {
            break (std::fs::read_to_string(&path).expect("read the CSV"), after);
        }
    };
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(header), "{file}:\n{csv}");
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(
        rows.len() as i64,
        points,
        "{file}'s rows vs {css}'s data-points; CSV:\n{csv}"
    );
    println!("{file}: {} rows", rows.len());
    let columns = header.split(',').count();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row.split(',').map(String::from).collect();
            assert_eq!(cells.len(), columns, "CSV row {row:?}");
            let t = cells[0]
                .parse()
                .unwrap_or_else(|e| panic!("CSV time {:?} is not RFC 3339: {e}", cells[0]));
            (t, cells[1..].to_vec())
        })
        .collect()
}

// ---- The activity log ----

/// Submits the activity filters form.
async fn submit_filters(b: &Browser) {
    b.find("form#activity-filters button[type=submit]")
        .await
        .click()
        .await;
}

/// Submits the activity filters and waits for the URL to carry `params` (see [`wait_params`]).
async fn apply_filters(b: &Browser, params: &[(&str, &str)]) {
    submit_filters(b).await;
    wait_params(b, params).await;
}

/// Clicks `#f-reset` and waits for the URL to lose its whole query.
async fn reset_filters(b: &Browser) {
    b.find("button#f-reset").await.click().await;
    b.wait_js(
        "an empty query after #f-reset",
        "location.search === ''",
        WAIT,
    )
    .await;
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

/// Waits until the activity page shows the API's answer for the filter `attr=value`: every row
/// with `data-<attr>` = `value`, a page's worth of them, and `#page-info` ending in `of <total>`.
/// The API is asked afresh each try, since the fleet keeps polling and may log more.
async fn wait_activity(b: &Browser, fleet: &Fleet, attr: &str, value: &str) {
    b.eventually(&format!("activity filter {attr}={value}"), || async {
        let total = fleet.activity_total(&format!("{attr}={value}")).await;
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
    })
    .await;
}

/// `a#activity-csv`'s link.
async fn activity_csv_href(b: &Browser) -> String {
    b.find("a#activity-csv")
        .await
        .attr("href")
        .await
        .unwrap_or_default()
}

/// What the activity page should show for `query` (the API's filter parameters, `&`-joined)
/// at `offset`: the rows the API lists there, `#page-info` `A–B of TOTAL`, and the pager's
/// buttons disabled at the ends. Retries until the page and a fresh API answer agree, since the
/// fleet keeps polling and may log more. Returns the row ids shown.
async fn wait_page(b: &Browser, fleet: &Fleet, query: &str, offset: u64) -> Vec<i64> {
    let what = format!("the activity page for {query:?} at offset {offset}");
    b.eventually(&what, || async {
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
            Ok(want_ids)
        } else {
            Err(format!("\n  shown {shown}\n  want  {want}"))
        }
    })
    .await
}

/// Clicks `button#page-{direction}` ("next" or "prev"), waits for the URL's `offset` to follow,
/// then for the page at `offset` (see [`wait_page`]); returns its row ids.
async fn turn_page(
    b: &Browser,
    fleet: &Fleet,
    direction: &str,
    query: &str,
    offset: u64,
) -> Vec<i64> {
    b.find(&format!("button#page-{direction}"))
        .await
        .click()
        .await;
    // The page leaves a zero offset out of the URL.
    let in_url = if offset == 0 {
        String::new()
    } else {
        offset.to_string()
    };
    wait_params(b, &[("offset", &in_url)]).await;
    wait_page(b, fleet, query, offset).await
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
