//! Opening a page in headless Chromium (Debian's `chromium` package, which
//! `scripts/setup.sh chromium` installs and `scripts/test.sh` prepares): what it wrote to
//! its console, and a screenshot of what it showed.

use std::path::Path;
use std::process::Command;

use super::images::{decode_png, Image};

/// Where Debian installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A page as headless Chromium opened it.
pub struct Opened {
    /// The page's console messages (errors, warnings, logs, CSP violations), one each.
    pub console: Vec<String>,
    /// A screenshot of the window.
    pub screenshot: Image,
}

/// Opens the file `page` in headless Chromium in a `width` × `height` window, with a
/// profile of its own and at most 90 seconds. Panics if Chromium is missing or fails.
pub fn open(page: &Path, width: u32, height: u32) -> Opened {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `scripts/setup.sh chromium` (Debian's chromium package)"
    );
    let dir = tempfile::tempdir().expect("a profile directory");
    let shot = dir.path().join("screenshot.png");
    let output = Command::new("timeout")
        .arg("90")
        .arg(CHROMIUM)
        .args([
            "--headless",
            // Tests run as root in CI, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed:\n{stderr}");
    let console = stderr
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let bytes = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{stderr}"));
    Opened {
        console,
        screenshot: decode_png(&bytes),
    }
}
