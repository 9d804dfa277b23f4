//! `aib report`'s page in a real browser: headless Chromium opens it from `file://` with the
//! network blocked, and the page must log nothing to the console, send no request, hold every
//! section after scripts ran, and draw a screenshot that is not blank. A deliberately leaky page
//! shows the checks can fail.
//!
//! Ignored in a plain `cargo test` (it needs a browser); `.ci/run` runs it with the browser that
//! `.ci/chromium` installs:
//!   AIB_TEST_CHROMIUM=$(.ci/chromium) cargo test --test report_browser -- --ignored
//! Run without `AIB_TEST_CHROMIUM`, it fails rather than passing unchecked.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{aib, assert_exit, fixtures};
use serde_json::Value;

/// The browser under test, from `AIB_TEST_CHROMIUM`.
fn chromium() -> PathBuf {
    match std::env::var_os("AIB_TEST_CHROMIUM") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "AIB_TEST_CHROMIUM is unset: install a browser with .ci/chromium and set it to the path that prints"
        ),
    }
}

/// What one headless visit of a page saw.
struct Visit {
    /// The DOM after load and scripts (`--dump-dom`).
    dom: String,
    /// The browser's console lines (`:CONSOLE` in its log).
    console: Vec<String>,
    /// URLs the page itself asked the network for (the net log's jobs with a page initiator).
    page_requests: Vec<String>,
    /// Wall time of the visit, browser start to exit.
    seconds: f64,
}

/// Flags of every visit: headless, no sandbox (CI runs as root), the network blocked (every host
/// unresolvable, every proxy connection refused), the browser's own background traffic off.
fn browser(profile: &Path) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

fn file_url(page: &Path) -> String {
    format!(
        "file://{}",
        page.canonicalize().expect("page exists").display()
    )
}

/// Opens `page` once with `--dump-dom` and a net log.
fn visit(page: &Path, work: &Path) -> Visit {
    let net_log = work.join("net-log.json");
    let started = Instant::now();
    let output = browser(&work.join("profile"))
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg("--dump-dom")
        .arg(file_url(page))
        .output()
        .expect("run chromium");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = String::from_utf8_lossy(&output.stderr);
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let net: Value =
        serde_json::from_str(&std::fs::read_to_string(&net_log).expect("net log written"))
            .expect("net log is JSON");
    Visit {
        dom: String::from_utf8(output.stdout).expect("DOM is UTF-8"),
        console,
        page_requests: page_requests(&net),
        seconds,
    }
}

/// URLs of the net log's request jobs that a page started: the browser's own requests (updates,
/// accounts) have the initiator "not an origin", a `file://` page's the opaque origin "null".
fn page_requests(net: &Value) -> Vec<String> {
    let start_job = &net["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
    assert!(
        start_job.is_number(),
        "the net log names no URL_REQUEST_START_JOB events"
    );
    net["events"]
        .as_array()
        .expect("net log events")
        .iter()
        .filter(|event| &event["type"] == start_job)
        .filter(|event| event["params"]["initiator"] != "not an origin")
        .filter_map(|event| event["params"]["url"].as_str())
        .filter(|url| {
            !["file:", "data:", "about:"]
                .iter()
                .any(|s| url.starts_with(s))
        })
        .map(str::to_string)
        .collect()
}

/// A screenshot of `page`: (width, height, distinct colours, share of non-white pixels).
fn screenshot(page: &Path, work: &Path) -> (u32, u32, usize, f64) {
    let png_path = work.join("shot.png");
    let output = browser(&work.join("profile-shot"))
        .arg("--window-size=1280,2400")
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(file_url(page))
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).expect("screenshot written"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("PNG decodes");
    let channels = info.color_type.samples();
    let pixels = &pixels[..info.buffer_size()];
    let mut colours = std::collections::HashSet::new();
    let mut coloured = 0usize;
    for pixel in pixels.chunks_exact(channels) {
        let rgb = [
            pixel[0],
            pixel[1.min(channels - 1)],
            pixel[2.min(channels - 1)],
        ];
        colours.insert(rgb);
        if rgb != [255, 255, 255] {
            coloured += 1;
        }
    }
    let total = (info.width * info.height) as f64;
    (
        info.width,
        info.height,
        colours.len(),
        coloured as f64 / total,
    )
}

/// The page of `model`, with the comparison section when `compare` names a B.
fn write_report(model: &Path, compare: Option<&Path>, out: &Path) {
    let mut command = aib();
    command.args([
        "report",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--quiet",
        "--k-max",
        "8",
    ]);
    if let Some(b) = compare {
        command.args(["--compare", b.to_str().unwrap()]);
    }
    let output = command.output().expect("run aib");
    assert_exit(&output, 0);
}

#[test]
#[ignore = "needs headless Chromium: AIB_TEST_CHROMIUM=$(.ci/chromium)"]
fn the_page_opens_offline_without_errors_or_requests_and_draws() {
    let _ = chromium();
    for (model, compare) in [
        ("llama-tiny", None),
        ("mixtral-tiny", None),
        ("diff/base", Some("diff/tuned")),
    ] {
        let work = tempfile::tempdir().unwrap();
        let page = work.path().join("page.html");
        let compare = compare.map(|b| fixtures().join(b));
        write_report(&fixtures().join(model), compare.as_deref(), &page);
        let seen = visit(&page, work.path());
        eprintln!(
            "{model}: page {} bytes, opened in {:.2} s",
            std::fs::metadata(&page).unwrap().len(),
            seen.seconds
        );
        assert_eq!(
            seen.console,
            Vec::<String>::new(),
            "{model}: console messages"
        );
        assert_eq!(
            seen.page_requests,
            Vec::<String>::new(),
            "{model}: requests left the page"
        );
        let mut sections = vec!["overview", "stats", "layers", "embed"];
        if compare.is_some() {
            sections.push("compare");
        }
        for section in sections {
            assert!(
                seen.dom.contains(&format!("<section id=\"{section}\"")),
                "{model}: no section {section}"
            );
        }
        let page_text = std::fs::read_to_string(&page).unwrap();
        assert_eq!(
            seen.dom.matches("<svg").count(),
            page_text.matches("<svg").count(),
            "{model}: every chart is in the DOM"
        );
        assert!(
            page_text.matches("<svg").count() >= 17,
            "{model}: charts missing"
        );
        let (width, height, colours, coloured) = screenshot(&page, work.path());
        eprintln!(
            "{model}: screenshot {width} × {height}, {colours} colours, {:.1}% not white",
            100.0 * coloured
        );
        assert_eq!((width, height), (1280, 2400));
        assert!(
            colours > 16,
            "{model}: the screenshot is nearly blank ({colours} colours)"
        );
        assert!(
            coloured > 0.02,
            "{model}: the screenshot is nearly all white"
        );
    }
}

#[test]
#[ignore = "needs headless Chromium: AIB_TEST_CHROMIUM=$(.ci/chromium)"]
fn the_checks_catch_a_leaky_page() {
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("leaky.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>leaky</p><img src=\"http://example.invalid/x.png\"/>\
         <script>console.error('boom'); undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let seen = visit(&page, work.path());
    assert_eq!(seen.page_requests, ["http://example.invalid/x.png"]);
    assert!(
        seen.console.iter().any(|l| l.contains("boom")),
        "{:?}",
        seen.console
    );
    assert!(
        seen.console.iter().any(|l| l.contains("Uncaught")),
        "{:?}",
        seen.console
    );
    assert!(!seen.dom.contains("<section"));
}
