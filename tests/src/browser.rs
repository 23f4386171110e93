//! A real browser for tests of web pages: headless Chromium driven over WebDriver
//! (`chromedriver`, Debian's `chromium` and `chromium-driver`) from Rust with `fantoccini`.
//!
//! [`Browser::start`] starts a `chromedriver` on a free loopback port and opens a session;
//! it returns `None` (the test skips, saying so) when the tools are missing, and fails in CI
//! ([`crate::require_tool`]), where `.ci/run` installs them. Dropping it ends the session's
//! process: chromedriver is killed, and its Chromium with it.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::{free_port, require_tool, wait_until};

/// The Chromium binary Debian installs.
const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium session. `client` drives it.
pub struct Browser {
    pub client: Client,
    /// Held for its drop.
    _driver: Driver,
}

impl Browser {
    /// A fresh session with a `width` x `height` window, or `None` when chromium or
    /// chromedriver is missing outside CI.
    pub async fn start(test: &str, width: u32, height: u32) -> Option<Browser> {
        if !require_tool("chromedriver", "chromium-driver", test)
            || !require_tool(CHROMIUM, "chromium", test)
        {
            return None;
        }
        let port = free_port();
        // Its own process group: the Chromium it starts goes with it when the group is killed.
        let driver = Driver(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let url = format!("http://127.0.0.1:{port}");
        wait_until(
            "chromedriver to listen",
            Duration::from_secs(20),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a WebDriver session in headless Chromium");
        Some(Browser {
            client,
            _driver: driver,
        })
    }

    /// The first element `css` selects, waiting for it (a page still loading) up to 10 s.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{css} on the page: {err}"))
    }

    /// The text of the first element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("its text")
    }

    /// How many elements `css` selects.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |found| found.len())
    }

    /// Clicks the first element `css` selects (a link or a submit button) and waits for the
    /// page it loads: until the old page's root element is gone, so what is read next comes
    /// from the new page, never from the one being left (a preview and its result share
    /// selectors).
    pub async fn click(&self, css: &str) {
        let old_page = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("the current page's root element");
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
        wait_until(
            &format!("the page {css} loads"),
            Duration::from_secs(10),
            || async { old_page.tag_name().await.is_err() },
        )
        .await;
    }

    /// Types `text` into the field `css` selects.
    pub async fn fill(&self, css: &str, text: &str) {
        self.find(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    /// The value of cookie `name`.
    pub async fn cookie(&self, name: &str) -> String {
        self.client
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|err| panic!("cookie {name}: {err}"))
            .value()
            .to_string()
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("a screenshot")
    }
}

/// chromedriver's process; dropping it kills its process group (chromedriver and its
/// Chromium), also when a test fails before its session starts.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}
