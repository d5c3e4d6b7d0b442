//! Plain HTTP calls for tests: every status is an answer (a 4xx is what many tests want to
//! see), read whole into an [`Answer`]; only a failure to exchange at all is an error.

use std::time::Duration;

/// A status, the headers and the body of one answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("HTTP {}: not JSON ({e}): {}", self.status, self.text()))
    }

    /// A header's value (the first of that name, any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The answer if its status is `status`; panics with the body otherwise.
    pub fn expect(self, status: u16) -> Answer {
        assert_eq!(self.status, status, "HTTP {}: {}", self.status, self.text());
        self
    }

    /// The answer if its status is 2xx; panics with the body otherwise.
    pub fn ok(self) -> Answer {
        assert!(
            (200..300).contains(&self.status),
            "HTTP {}: {}",
            self.status,
            self.text()
        );
        self
    }
}

/// One request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

pub fn request(method: &str, url: &str) -> Request {
    Request {
        method: method.into(),
        url: url.into(),
        headers: Vec::new(),
        timeout: Duration::from_secs(120),
    }
}

pub fn get(url: &str) -> Request {
    request("GET", url)
}

pub fn post(url: &str) -> Request {
    request("POST", url)
}

pub fn put(url: &str) -> Request {
    request("PUT", url)
}

pub fn delete(url: &str) -> Request {
    request("DELETE", url)
}

impl Request {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `Authorization: Bearer TOKEN`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends no body.
    pub fn call(self) -> Answer {
        self.try_send(None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends `body` as JSON.
    pub fn send_json(self, body: &serde_json::Value) -> Answer {
        self.header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
    }

    /// Sends `body` as it is.
    pub fn send(self, body: &[u8]) -> Answer {
        self.try_send(Some(body)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The answer, or why there was none (`METHOD URL: error`).
    pub fn try_send(self, body: Option<&[u8]>) -> Result<Answer, String> {
        let fail = |e: &dyn std::fmt::Display| format!("{} {}: {e}", self.method, self.url);
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let mut builder = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&self.url);
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        let result = match body {
            Some(body) => builder.body(body.to_vec()).map(|r| agent.run(r)),
            None => builder.body(()).map(|r| agent.run(r)),
        }
        .map_err(|e| fail(&e))?;
        let mut response = result.map_err(|e| fail(&e))?;
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| fail(&e))?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers,
            body,
        })
    }
}
