//! A headless Chromium driven over the W3C WebDriver protocol (issue #7): `chromedriver` on a free
//! loopback port, one session, and a small async client over `reqwest`, with no WebDriver crate.
//!
//! Besides the usual commands (navigate, find, click, type, execute, pointer actions, window size,
//! screenshots), the browser keeps two logs that the tests check at the end with
//! [`Browser::assert_clean`]: the console log (`goog:loggingPrefs` browser = ALL, read with
//! chromedriver's `POST /session/{id}/se/log`), whose SEVERE entries are `console.error`, uncaught
//! exceptions and failed loads (any 4xx/5xx included), and the performance log, whose
//! `Network.requestWillBeSent` events list every URL the page asked for.
//!
//! Chromium is launched as issue #7 says (`--headless --no-sandbox --disable-gpu
//! --disable-background-networking`), plus a host resolver that answers NOTFOUND for every name,
//! so a page that tries to reach the internet fails loudly here instead of depending on the network.
//! Screenshots go to `target/browser-artifacts/`.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// W3C's key for an element reference in JSON (WebDriver §12.2).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The default for [`Browser::wait_for`] and friends: generous, since a 2-core machine that also
/// compiles and polls can stall a page for seconds; tests never assert on speed.
pub const WAIT: Duration = Duration::from_secs(30);

/// One console-log entry as chromedriver reports it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

/// An error answer from chromedriver (`{"value": {"error", "message"}}`).
#[derive(Clone, Debug)]
pub struct WdError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

/// A chromedriver process and one Chromium session. Dropping it ends the session (closing
/// Chromium) and kills chromedriver.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT` of chromedriver.
    driver_url: String,
    session: String,
    driver: Option<Child>,
    /// Chromium's download directory (`download.default_directory`).
    pub downloads: TempDir,
    /// Prefix of screenshot names: the test's name.
    name: String,
    console: Mutex<Vec<LogEntry>>,
    requested: Mutex<Vec<String>>,
    /// chromedriver's own log, shown when it fails to start.
    driver_log: PathBuf,
    _driver_dir: TempDir,
}

/// An element of the current page.
#[derive(Clone)]
pub struct Element<'a> {
    b: &'a Browser,
    pub id: String,
    /// How it was found, for error messages.
    pub selector: String,
}

/// How long [`poll_until`] sleeps between tries.
const POLL_PAUSE: Duration = Duration::from_millis(200);

/// Calls `check` until it returns `Ok`, for at most `timeout`, and returns that value; on
/// timeout, the last `Err`. Every wait in the browser tests is this loop: the deadline only
/// bounds a wait, nothing is asserted about how long it took.
pub async fn poll_until<T, E, F, Fut>(timeout: Duration, check: F) -> Result<T, E>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => tokio::time::sleep(POLL_PAUSE).await,
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Where screenshots go: `<target dir>/browser-artifacts` (the parent of `CARGO_TARGET_TMPDIR`, so
/// a custom `CARGO_TARGET_DIR` is honoured).
pub fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/browser-artifacts");
    dir
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at 1280x900. `name` prefixes the screenshots.
    /// Panics, naming what is missing, if chromium or chromedriver is not installed.
    pub async fn start(name: &str) -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} not found: install Debian's chromium and chromium-driver \
                 (scripts/test.sh does it when run as root)"
            );
        }
        let driver_dir = tempfile::Builder::new()
            .prefix("fleetpoll-chromedriver-")
            .tempdir()
            .expect("chromedriver temp dir");
        let driver_log = driver_dir.path().join("chromedriver.log");
        let downloads = tempfile::Builder::new()
            .prefix("fleetpoll-downloads-")
            .tempdir()
            .expect("downloads temp dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("reqwest client");

        // The port is picked then released, so another process may take it first; retry then.
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(CHROMEDRIVER);
            cmd.arg(format!("--port={port}"))
                .arg(format!("--log-path={}", driver_log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // Own process group, so Drop can end chromedriver and any Chromium it left behind
            // without touching anything else.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let mut child = cmd.spawn().expect("spawn chromedriver");
            let driver_url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut ready = false;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!("chromedriver exited with {status}");
                    break;
                }
                if let Ok(r) = http.get(format!("{driver_url}/status")).send().await {
                    if let Ok(v) = r.json::<Value>().await {
                        if v["value"]["ready"] == true {
                            ready = true;
                            break;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !ready {
                kill_group(&mut child);
                if last_err.is_empty() {
                    last_err = "chromedriver did not report ready within 20 s".into();
                }
                continue;
            }
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--window-size=1280,900",
                        // Every name resolves to nothing; the server is an IP literal anyway.
                        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                        "--no-first-run",
                        "--no-default-browser-check",
                        "--disable-dev-shm-usage",
                    ],
                    "prefs": {
                        "download.default_directory": downloads.path().to_string_lossy(),
                        "download.prompt_for_download": false,
                        "download.directory_upgrade": true,
                    },
                },
                "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
            }}});
            let r = http
                .post(format!("{driver_url}/session"))
                .json(&caps)
                .send()
                .await;
            let v: Value = match r {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(e) => {
                    last_err = format!("POST /session: {e}");
                    kill_group(&mut child);
                    continue;
                }
            };
            let Some(session) = v["value"]["sessionId"].as_str() else {
                kill_group(&mut child);
                panic!(
                    "WebDriver POST /session failed: {v}\nchromedriver log (tail):\n{}",
                    tail(&driver_log, 40)
                );
            };
            let b = Browser {
                http,
                driver_url,
                session: session.to_string(),
                driver: Some(child),
                downloads,
                name: name.to_string(),
                console: Mutex::new(Vec::new()),
                requested: Mutex::new(Vec::new()),
                driver_log,
                _driver_dir: driver_dir,
            };
            // Headless Chromium only downloads where told to through CDP; the prefs alone are
            // not always honoured.
            b.cdp(
                "Browser.setDownloadBehavior",
                json!({"behavior": "allow", "downloadPath": b.downloads.path().to_string_lossy()}),
            )
            .await;
            return b;
        }
        panic!(
            "could not start chromedriver: {last_err}\nlog (tail):\n{}",
            tail(&driver_log, 40)
        );
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{}", self.driver_url, self.session, path)
    }

    /// Sends one WebDriver command; `Err` carries chromedriver's error answer.
    pub async fn try_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(b) = &body {
            req = req.json(b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let r = req.send().await.unwrap_or_else(|e| {
            panic!("WebDriver {method} {path}: no answer from chromedriver: {e}")
        });
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("WebDriver {method} {path}: HTTP {status}, not JSON ({e}): {text}")
        });
        if status >= 400 || v["value"]["error"].is_string() {
            return Err(WdError {
                status,
                error: v["value"]["error"].as_str().unwrap_or("?").to_string(),
                message: v["value"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            });
        }
        Ok(v["value"].clone())
    }

    /// Like [`Browser::try_cmd`], panicking with the command and chromedriver's answer on error.
    pub async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_cmd(method.clone(), path, body.clone()).await {
            Ok(v) => v,
            Err(e) => panic!(
                "WebDriver {method} {path} {}: HTTP {} {}: {}",
                body.map(|b| b.to_string()).unwrap_or_default(),
                e.status,
                e.error,
                e.message
            ),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.cmd(reqwest::Method::GET, path, None).await
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": command, "params": params}),
        )
        .await
    }

    /// Makes the page run in the IANA time zone `tz` (CDP `Emulation.setTimezoneOverride`), for
    /// this session's page across navigations: `Date`, `Intl` and `datetime-local` inputs
    /// all follow it. Chromium otherwise takes the machine's zone, UTC in CI, where a page that
    /// confuses local time with UTC still looks right.
    pub async fn set_timezone(&self, tz: &str) {
        self.cdp("Emulation.setTimezoneOverride", json!({ "timezoneId": tz }))
            .await;
    }

    /// Navigates and waits for the load event.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .expect("current url is a string")
            .to_string()
    }

    pub async fn refresh(&self) {
        self.post("/refresh", json!({})).await;
    }

    fn element(&self, v: &Value, selector: &str) -> Element<'_> {
        Element {
            b: self,
            id: v[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("not an element reference for {selector}: {v}"))
                .to_string(),
            selector: selector.to_string(),
        }
    }

    /// The first element matching `css`, or `None`.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        match self
            .try_cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
        {
            Ok(v) => Some(self.element(&v, css)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("WebDriver find {css:?}: {} {}", e.error, e.message),
        }
    }

    /// The first element matching `css`; panics if there is none right now.
    pub async fn find(&self, css: &str) -> Element<'_> {
        match self.try_find(css).await {
            Some(e) => e,
            None => panic!("no element matches {css:?} on {}", self.current_url().await),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        v.as_array()
            .expect("elements answer is an array")
            .iter()
            .map(|e| self.element(e, css))
            .collect()
    }

    /// Waits (polling) until an element matches `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        match poll_until(timeout, || async { self.try_find(css).await.ok_or(()) }).await {
            Ok(e) => e,
            Err(()) => {
                let what = format!("an element to match {css:?}");
                panic!("{}", self.timed_out(&what, timeout, "none did").await)
            }
        }
    }

    /// Waits until the JavaScript expression `expr` is truthy; `what` names the condition in the
    /// panic message, which also shows the expression's last value.
    pub async fn wait_js(&self, what: &str, expr: &str, timeout: Duration) {
        let waited = poll_until(timeout, || async {
            let v = self.execute(&format!("return ({expr});"), json!([])).await;
            let truthy = match &v {
                Value::Bool(b) => *b,
                Value::Null => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                Ok(())
            } else {
                Err(v)
            }
        })
        .await;
        if let Err(v) = waited {
            let last = format!("expression: {expr}\n  last value: {v}");
            panic!("{}", self.timed_out(what, timeout, &last).await);
        }
    }

    /// Calls `check` until it returns `Ok`, for up to [`WAIT`], and returns that value; on
    /// timeout panics with `what` and the last `Err` (see [`Browser::timed_out`]).
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        match poll_until(WAIT, check).await {
            Ok(v) => v,
            Err(last) => panic!("{}", self.timed_out(what, WAIT, &last).await),
        }
    }

    /// Saves a `timeout` screenshot and returns the message for a wait that ran out: what it
    /// waited for, on which URL, the last thing it saw, and the console so far.
    async fn timed_out(&self, what: &str, timeout: Duration, last: &str) -> String {
        let url = self.current_url().await;
        self.screenshot("timeout").await;
        format!(
            "timed out after {timeout:?} waiting for {what} on {url}\n  {last}\n  console: {:#?}",
            self.console_snapshot().await
        )
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    /// Elements are passed as `Element::json()`.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Sets the outer window size.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// `[innerWidth, innerHeight]` of the page.
    pub async fn viewport(&self) -> (f64, f64) {
        let v = self
            .execute("return [window.innerWidth, window.innerHeight];", json!([]))
            .await;
        (
            v[0].as_f64().expect("innerWidth"),
            v[1].as_f64().expect("innerHeight"),
        )
    }

    /// Presses the mouse at `(x1, y)` and releases it at `(x2, y)`, offsets in CSS pixels from
    /// the centre of `el` (W3C pointer actions with an element origin), moving in small steps so
    /// the page sees a real drag.
    pub async fn drag(&self, el: &Element<'_>, x1: i64, x2: i64, y: i64) {
        let origin = el.json();
        let mut actions = vec![
            json!({"type": "pointerMove", "duration": 0, "origin": origin, "x": x1, "y": y}),
            json!({"type": "pointerDown", "button": 0}),
        ];
        for i in 1..=5 {
            let x = x1 + (x2 - x1) * i / 5;
            actions.push(
                json!({"type": "pointerMove", "duration": 50, "origin": origin, "x": x, "y": y}),
            );
        }
        actions.push(json!({"type": "pointerUp", "button": 0}));
        self.post(
            "/actions",
            json!({"actions": [{
                "type": "pointer", "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": actions,
            }]}),
        )
        .await;
        self.cmd(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// Moves the mouse to `(x, y)` from the centre of `el`.
    pub async fn hover(&self, el: &Element<'_>, x: i64, y: i64) {
        self.post(
            "/actions",
            json!({"actions": [{
                "type": "pointer", "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": [
                    {"type": "pointerMove", "duration": 0, "origin": el.json(), "x": x - 3, "y": y},
                    {"type": "pointerMove", "duration": 50, "origin": el.json(), "x": x, "y": y},
                ],
            }]}),
        )
        .await;
    }

    /// Saves a PNG of the viewport as `target/browser-artifacts/<test>-<step>.png` and prints
    /// the path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let path = artifacts_dir().join(format!("{}-{step}.png", self.name));
        // A failing screenshot must not hide the failure being reported.
        match self
            .try_cmd(reqwest::Method::GET, "/screenshot", None)
            .await
        {
            Ok(v) => {
                let png = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or_default())
                    .expect("screenshot is base64");
                std::fs::write(&path, png).expect("write screenshot");
                println!("screenshot: {}", path.display());
            }
            Err(e) => println!("screenshot {step} failed: {} {}", e.error, e.message),
        }
        path
    }

    /// Moves chromedriver's buffered console and performance logs into ours (chromedriver
    /// forgets entries once read).
    pub async fn drain_logs(&self) {
        let console = self.post("/se/log", json!({"type": "browser"})).await;
        let mut mine = Vec::new();
        for e in console.as_array().into_iter().flatten() {
            mine.push(LogEntry {
                level: e["level"].as_str().unwrap_or("").to_string(),
                source: e["source"].as_str().unwrap_or("").to_string(),
                message: e["message"].as_str().unwrap_or("").to_string(),
            });
        }
        self.console.lock().expect("console lock").extend(mine);
        let perf = self.post("/se/log", json!({"type": "performance"})).await;
        let mut urls = Vec::new();
        for e in perf.as_array().into_iter().flatten() {
            let Some(msg) = e["message"].as_str() else {
                continue;
            };
            let Ok(m) = serde_json::from_str::<Value>(msg) else {
                continue;
            };
            if m["message"]["method"] == "Network.requestWillBeSent" {
                if let Some(u) = m["message"]["params"]["request"]["url"].as_str() {
                    urls.push(u.to_string());
                }
            }
        }
        self.requested.lock().expect("requested lock").extend(urls);
    }

    /// Every console entry so far.
    pub async fn console_snapshot(&self) -> Vec<LogEntry> {
        self.drain_logs().await;
        self.console.lock().expect("console lock").clone()
    }

    /// Every URL the page requested so far.
    pub async fn requested(&self) -> Vec<String> {
        self.drain_logs().await;
        self.requested.lock().expect("requested lock").clone()
    }

    /// What makes the page unclean so far, one line each: every console entry at SEVERE
    /// (`console.error`, an uncaught exception, a failed or 4xx/5xx load, whether or not the
    /// page meant to make it) and every requested URL outside `origin` (`http://127.0.0.1:PORT`);
    /// `data:`, `blob:` and `about:` URLs are the page's own.
    pub async fn problems(&self, origin: &str) -> Vec<String> {
        self.drain_logs().await;
        let prefix = format!("{}/", origin.trim_end_matches('/'));
        let mut found: Vec<String> = self
            .console
            .lock()
            .expect("console lock")
            .iter()
            .filter(|e| e.level == "SEVERE")
            .map(|e| format!("console [{}] {}", e.source, e.message))
            .collect();
        let requested = self.requested.lock().expect("requested lock").clone();
        found.extend(
            requested
                .iter()
                .filter(|u| {
                    !(u.starts_with(&prefix)
                        || u.starts_with("data:")
                        || u.starts_with("blob:")
                        || u.starts_with("about:"))
                })
                .map(|u| format!("request outside {origin}: {u}")),
        );
        if !requested.iter().any(|u| u.starts_with(&prefix)) {
            // Not the page's fault, but without it the check above proves nothing.
            found.push(format!(
                "the performance log saw no request to {origin} at all (network logging off?)"
            ));
        }
        found
    }

    /// Panics, listing them, if there are any [`Browser::problems`]; saves an `unclean`
    /// screenshot first.
    pub async fn assert_clean(&self, origin: &str) {
        let found = self.problems(origin).await;
        if !found.is_empty() {
            self.screenshot("unclean").await;
            panic!(
                "the page was not clean ({} problem(s)):\n  {}",
                found.len(),
                found.join("\n  ")
            );
        }
    }

    /// Waits until a file whose name ends with `suffix` is complete in the download directory
    /// and returns its path.
    pub async fn wait_download(&self, suffix: &str, timeout: Duration) -> PathBuf {
        let found = poll_until(timeout, || async {
            let names: Vec<PathBuf> = std::fs::read_dir(self.downloads.path())
                .expect("read download dir")
                .flatten()
                .map(|e| e.path())
                .collect();
            names
                .iter()
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().ends_with(suffix))
                })
                .cloned()
                .ok_or(names)
        })
        .await;
        found.unwrap_or_else(|names| {
            panic!(
                "no download ending in {suffix:?} within {timeout:?}; download dir has {names:?}"
            )
        })
    }

    /// chromedriver's log, last lines (for failure messages).
    pub fn driver_log_tail(&self, lines: usize) -> String {
        tail(&self.driver_log, lines)
    }
}

impl Element<'_> {
    /// The W3C JSON form, for `execute` arguments and action origins.
    pub fn json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    pub async fn click(&self) {
        self.b.post(&self.path("/click"), json!({})).await;
    }

    /// Types `text` into the element (focusing it first).
    pub async fn send_keys(&self, text: &str) {
        self.b
            .post(&self.path("/value"), json!({ "text": text }))
            .await;
    }

    pub async fn clear(&self) {
        self.b.post(&self.path("/clear"), json!({})).await;
    }

    /// The rendered text (empty when hidden).
    pub async fn text(&self) -> String {
        self.b
            .get(&self.path("/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn attr(&self, name: &str) -> Option<String> {
        self.b
            .get(&self.path(&format!("/attribute/{name}")))
            .await
            .as_str()
            .map(str::to_string)
    }

    /// A DOM property, e.g. `value`.
    pub async fn prop(&self, name: &str) -> Value {
        self.b.get(&self.path(&format!("/property/{name}"))).await
    }

    /// `(x, y, width, height)` in CSS pixels, relative to the document.
    pub async fn rect(&self) -> (f64, f64, f64, f64) {
        let v = self.b.get(&self.path("/rect")).await;
        let n = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("rect of {}: {v}", self.selector))
        };
        (n("x"), n("y"), n("width"), n("height"))
    }

    pub async fn displayed(&self) -> bool {
        self.b.get(&self.path("/displayed")).await == Value::Bool(true)
    }

    pub async fn find(&self, css: &str) -> Element<'_> {
        let v = self
            .b
            .post(
                &self.path("/element"),
                json!({"using": "css selector", "value": css}),
            )
            .await;
        self.b.element(&v, &format!("{} {css}", self.selector))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self
            .b
            .post(
                &self.path("/elements"),
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v.as_array()
            .expect("elements answer is an array")
            .iter()
            .map(|e| self.b.element(e, &format!("{} {css}", self.selector)))
            .collect()
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Ends the process group that `child` leads (chromedriver and any Chromium it started).
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads one HTTP/1.1 response (headers, then `Content-Length` bytes): chromedriver keeps the
/// connection open after answering, so reading to EOF would wait for the read timeout.
fn read_one_response(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = s.read(&mut chunk) else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            return;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // `DELETE /session/{id}` closes Chromium cleanly; Drop cannot await, so a plain blocking
        // HTTP/1.1 request over std's TcpStream does it.
        let addr = self.driver_url.trim_start_matches("http://").to_string();
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
            let req = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session
            );
            if s.write_all(req.as_bytes()).is_ok() {
                read_one_response(&mut s);
            }
        }
        if let Some(mut child) = self.driver.take() {
            kill_group(&mut child);
        }
    }
}
