//! `narvaro demo` and `narvaro serve` as a user starts them, and every report opened in a real
//! browser: Debian's headless Chromium (installed by `.ci/run`), driven over the DevTools
//! protocol. Screenshots go to `target/browser-screenshots/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;

use crate::common::Server;
use serde_json::{Value, json};

/// A plain HTTP/1.1 GET: (status, body).
fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

#[test]
fn demo_serves_the_county_and_every_report_renders_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // The README's first command, on a free port.
    let demo = Server::start(
        &["demo", "--dir", d, "--addr", "127.0.0.1:0"],
        Duration::from_secs(1800),
    );
    for want in [
        "129 skolenheter",
        "35978 elever",
        "Örebro",
        "Ljusnarsberg",
        "attendance",
    ] {
        assert!(
            demo.output.contains(want),
            "{want} missing:\n{}",
            demo.output
        );
    }
    assert!(!demo.output.contains("avvisades"), "{}", demo.output);
    let (status, index) = get(&format!("{}/", demo.url));
    assert_eq!(status, 200);
    assert!(index.contains("Örebro län (18)"));
    assert!(index.contains("href=\"/reports/committee/1880/VT2026\""));
    drop(demo);

    // The county's figures and the whole lake's (here: the county) follow their releases,
    // term by term.
    let lake = dir.path().join("lake");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (county, whole) = rt.block_on(async {
        let lake = narvaro::lake::Lake::open(&lake).await.unwrap();
        crate::disclosure::county_report_follows_its_releases(&lake, "18", &["18"]).await
    });
    assert!(county >= 4, "{county} of the county's figures shown");
    assert_eq!(whole, county, "the whole lake is the county here");

    // The same lake served by `narvaro serve`, opened in Chromium.
    let lake = dir.path().join("lake");
    let server = Server::start(
        &[
            "serve",
            "--lake",
            lake.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ],
        Duration::from_secs(120),
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let axe = axe_core();
    let mut browser = Browser::launch();
    for (name, path) in [
        ("index", "/"),
        ("committee-1880-VT2026", "/reports/committee/1880/VT2026"),
        ("county-18-VT2026", "/reports/county/18/VT2026"),
        ("school-18800101-VT2026", "/reports/school/18800101/VT2026"),
    ] {
        let page = browser.open(&format!("{}{path}", server.url), &axe);
        assert!(
            page.errors.is_empty(),
            "{path}: console errors {:?}",
            page.errors
        );
        let c = &page.check;
        assert_eq!(c["lang"], "sv", "{path}");
        assert_eq!(c["h1"], 1, "{path}");
        assert!(c["min_contrast"].as_f64().unwrap() >= 4.5, "{path}: {c}");
        if path != "/" {
            let charts = c["charts"].as_u64().unwrap();
            assert!(charts >= 8, "{path}: {charts} charts");
            assert_eq!(
                c["rendered"], charts,
                "{path}: every chart and its table render: {c}"
            );
        }
        // axe-core finds no WCAG 2.1 A or AA violation.
        let violations = page.axe.as_array().expect("axe-core ran");
        assert!(
            violations.is_empty(),
            "{path}: WCAG violations {}",
            serde_json::to_string_pretty(violations).unwrap()
        );
        let png = shots.join(format!("{name}.png"));
        std::fs::write(&png, &page.screenshot).unwrap();
        assert!(page.screenshot.starts_with(b"\x89PNG"), "{name}");
    }
}

/// axe-core's browser script, from npm's `axe-core` package unpacked under `target/axe-core/`
/// (`.ci/run` puts it there) or where `NARVARO_AXE` points.
fn axe_core() -> String {
    let path = std::env::var_os("NARVARO_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/axe-core/package/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is needed for the accessibility check ({}: {e}); .ci/run installs it: \
             mkdir -p target/axe-core && curl -fsSL {AXE_CORE} | tar -xz -C target/axe-core",
            path.display()
        )
    })
}

/// The axe-core release the browser test checks with (as `.ci/run` fetches it).
const AXE_CORE: &str = "https://registry.npmjs.org/axe-core/-/axe-core-4.14.1.tgz";

/// Runs axe-core's WCAG 2.0/2.1 A and AA rules on the page: the violations, as JSON.
const AXE_RUN_JS: &str = "axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] })\
    .then(r => r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, \
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')) })))";

/// What the browser saw on a page.
struct Page {
    errors: Vec<String>,
    check: Value,
    /// axe-core's violations.
    axe: Value,
    screenshot: Vec<u8>,
}

/// Headless Chromium over the DevTools protocol (one websocket, flattened sessions).
struct Browser {
    child: Child,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("Chromium is not installed: run .ci/run (apt-get install -y chromium)");
}

/// Text contrast, lang and every chart beside its rendered table, measured in the page.
const CHECK_JS: &str = r#"(() => {
  const lum = (c) => { const m = c.match(/[\d.]+/g).map(Number);
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return [0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]), m.length > 3 ? m[3] : 1]; };
  const bg = (el) => { for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor; const [l, a] = lum(c); if (a > 0.5) return l; }
    return 1; };
  let min = 21;
  for (const el of document.querySelectorAll('body *:not(svg):not(svg *)')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.getClientRects().length === 0) continue;
    const [fg] = lum(getComputedStyle(el).color); const b = bg(el);
    const ratio = (Math.max(fg, b) + 0.05) / (Math.min(fg, b) + 0.05);
    if (ratio < min) min = ratio;
  }
  const figs = [...document.querySelectorAll('figure.chart')];
  const rendered = figs.filter(f => {
    const svg = f.querySelector('svg'); if (!svg) return false;
    const r = svg.getBoundingClientRect();
    const shapes = svg.querySelectorAll('rect, polyline, path, circle, polygon, line').length;
    const table = f.closest('article').querySelector('table');
    return r.width > 200 && r.height > 100 && shapes > 3 && svg.querySelector('title')
      && table && table.getBoundingClientRect().height > 0 && table.querySelectorAll('tbody tr').length > 0;
  }).length;
  return { lang: document.documentElement.lang, h1: document.querySelectorAll('h1').length,
           charts: figs.length, rendered, min_contrast: min };
})()"#;

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("ws://") {
                    let _ = tx.send(line[i..].trim().to_string());
                }
            }
        });
        let ws_url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("Chromium printed no DevTools address");
        let (ws, _) = tungstenite::connect(ws_url.as_str()).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        }
        Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        }
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> u64 {
        self.next_id += 1;
        let mut msg = json!({ "id": self.next_id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        self.next_id
    }

    /// Reads messages until `done` accepts one, noting console errors and exceptions.
    fn until(&mut self, errors: &mut Vec<String>, done: impl Fn(&Value) -> bool) -> Value {
        loop {
            let msg = self.ws.read().unwrap();
            let tungstenite::Message::Text(text) = msg else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            match v["method"].as_str() {
                Some("Runtime.exceptionThrown") => errors.push(v["params"].to_string()),
                Some("Runtime.consoleAPICalled")
                    if matches!(v["params"]["type"].as_str(), Some("error" | "assert")) =>
                {
                    errors.push(v["params"].to_string())
                }
                Some("Log.entryAdded") if v["params"]["entry"]["level"] == "error" => {
                    errors.push(v["params"]["entry"].to_string())
                }
                _ => {}
            }
            if let Some(e) = v.get("error") {
                panic!("DevTools error: {e}");
            }
            if done(&v) {
                return v;
            }
        }
    }

    fn call(
        &mut self,
        errors: &mut Vec<String>,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Value {
        let id = self.send(method, params, session);
        self.until(errors, |v| v["id"] == id)["result"].clone()
    }

    fn open(&mut self, url: &str, axe: &str) -> Page {
        let mut errors = Vec::new();
        let e = &mut errors;
        let target = self.call(
            e,
            "Target.createTarget",
            json!({ "url": "about:blank" }),
            None,
        );
        let attached = self.call(
            e,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
            None,
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        let s = Some(session.as_str());
        for m in ["Runtime.enable", "Log.enable", "Page.enable"] {
            self.call(e, m, json!({}), s);
        }
        self.call(
            e,
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
            s,
        );
        self.send("Page.navigate", json!({ "url": url }), s);
        self.until(e, |v| v["method"] == "Page.loadEventFired");
        let check = self.call(
            e,
            "Runtime.evaluate",
            json!({ "expression": CHECK_JS, "returnByValue": true }),
            s,
        )["result"]["value"]
            .clone();
        self.call(
            e,
            "Runtime.evaluate",
            json!({ "expression": axe, "returnByValue": true }),
            s,
        );
        let axe = self.call(
            e,
            "Runtime.evaluate",
            json!({ "expression": AXE_RUN_JS, "awaitPromise": true, "returnByValue": true }),
            s,
        )["result"]["value"]
            .clone();
        let shot = self.call(
            e,
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
            s,
        );
        let screenshot = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        self.call(
            e,
            "Target.closeTarget",
            json!({ "targetId": target["targetId"] }),
            None,
        );
        Page {
            errors,
            check,
            axe,
            screenshot,
        }
    }
}
