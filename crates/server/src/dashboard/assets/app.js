// fresco's dashboard: vanilla JS, no dependencies. Pages are filled from server-sent events
// (/ui/events, /ui/jobs/ID/events), whose every message is the whole view as JSON; all text
// from the server is put in with textContent, never as HTML.
"use strict";

// The session's CSRF token (the session itself is an HttpOnly cookie; the API token is never
// kept by the page).
const CSRF_KEY = "fresco.csrf";
// The session's role: which buttons to show (the server checks again).
let ROLE = null;
const MAY_CANCEL = ["submitter", "operator", "admin"];
const MAY_RETRY = ["operator", "admin"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    // Through the CSSOM: the Content-Security-Policy (style-src 'self') refuses style
    // attributes, not styles set from a script it allowed.
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function goLogin() {
  const next = location.pathname + location.search;
  location.href = "/ui/login?next=" + encodeURIComponent(next);
}

// Requests carry the session cookie (same origin) and the session's CSRF token.
async function api(path, options) {
  const headers = Object.assign({}, (options && options.headers) || {});
  const csrf = sessionStorage.getItem(CSRF_KEY);
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options, { headers }));
  if (response.status === 401) {
    goLogin();
    throw new Error("not signed in");
  }
  return response;
}

// Follows a stream of whole views; on a broken stream, checks whether the session ended.
function follow(url, event, jsonUrl, render) {
  const conn = document.getElementById("conn");
  const source = new EventSource(url);
  source.addEventListener(event, (e) => {
    conn.textContent = "live";
    conn.className = "conn live";
    render(JSON.parse(e.data));
  });
  source.addEventListener("failure", (e) => {
    conn.textContent = "server error: " + e.data;
    conn.className = "conn down";
  });
  source.onerror = () => {
    conn.textContent = "reconnecting…";
    conn.className = "conn down";
    api(jsonUrl).catch(() => {});
  };
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

function fmtAgo(ms, now) {
  return fmtDuration((now - ms) / 1000) + " ago";
}

function fmtRate(fps) {
  return fps === null || fps === undefined ? "–" : fps.toFixed(fps < 10 ? 2 : 1);
}

function progressBar(job) {
  const pct = Math.round(job.progress * 100);
  const bar = el("div", {
    class: "bar" + (pct >= 100 ? " complete" : ""),
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    "aria-valuenow": String(pct),
    "data-job": job.id,
  }, el("span", { style: `width: ${pct}%` }));
  return el("span", {}, bar, el("span", { class: "pct", text: `${pct}%` }));
}

// A dataset job's items in one line: done of total, then failed and skipped.
function itemsLine(items) {
  const total = items.total === null ? "?" : items.total;
  const skipped = items.skipped === null ? "" : `, ${items.skipped} skipped`;
  return `${items.done} of ${total} items (${items.scored} scored, ${items.failed} failed${skipped})`;
}

// A job's rate: items per second for a dataset job, frames per second otherwise.
function rateText(job) {
  if (job.items) return `${fmtRate(job.items.per_second)} items/s`;
  return fmtRate(job.fps);
}

function stateBadge(state) {
  return el("span", { class: "state " + state, text: state });
}

async function act(job, verb) {
  const message = document.getElementById("action-message");
  message.textContent = "";
  try {
    const response = await api(`/v1/jobs/${encodeURIComponent(job)}/${verb}`, { method: "POST" });
    if (!response.ok) {
      let text = `${verb} failed (${response.status})`;
      try { text = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      message.textContent = text;
    }
  } catch (e) {
    message.textContent = String(e.message || e);
  }
}

// Who is signed in (and the session's CSRF token, e.g. in a new tab).
async function loadSession() {
  const response = await api("/v1/session");
  if (!response.ok) return;
  const body = await response.json();
  ROLE = body.role;
  if (body.csrf_token) sessionStorage.setItem(CSRF_KEY, body.csrf_token);
}

function actions(job) {
  const box = el("span", {});
  if ((job.state === "queued" || job.state === "running") && MAY_CANCEL.includes(ROLE)) {
    const b = el("button", { type: "button", class: "cancel", text: "Cancel" });
    b.onclick = () => act(job.id, "cancel");
    box.append(b);
  }
  if ((job.state === "failed" || job.state === "canceled") && MAY_RETRY.includes(ROLE)) {
    const b = el("button", { type: "button", class: "retry", text: "Retry" });
    b.onclick = () => act(job.id, "retry");
    box.append(b);
  }
  return box;
}

function drawChart(svg, caption, points) {
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(1 / 60, ...points.map((p) => p.frames_per_second));
  const w = 600 / Math.max(1, points.length);
  points.forEach((p, i) => {
    const h = (p.frames_per_second / max) * 96;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(i * w + 0.5));
    rect.setAttribute("y", String(100 - h));
    rect.setAttribute("width", String(Math.max(1, w - 1)));
    rect.setAttribute("height", String(h));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${new Date(p.minute_ms).toLocaleTimeString()}: ${fmtRate(p.frames_per_second)} frames/s`;
    rect.append(title);
    svg.append(rect);
  });
  const now = points.length ? points[points.length - 1].frames_per_second : 0;
  caption.replaceChildren(
    el("span", { text: "−60 min" }),
    el("span", { text: `peak ${fmtRate(max)} · this minute ${fmtRate(now)} frames/s` }),
    el("span", { text: "now" }),
  );
}

function renderOverview(view) {
  drawChart(document.getElementById("chart"), document.getElementById("chart-caption"), view.throughput);
  const totals = document.getElementById("totals");
  totals.replaceChildren();
  for (const [name, count] of Object.entries(view.jobs_by_state)) {
    totals.append(el("dt", { text: name }), el("dd", { text: count, "data-state-count": name }));
  }
  totals.append(el("dt", { text: "queue depth" }), el("dd", { text: view.queue_pending }));
  totals.append(el("dt", { text: "active workers" }), el("dd", { text: view.workers_active }));

  const rows = document.querySelector("#jobs tbody");
  rows.replaceChildren(...view.jobs.map((job) => el("tr", { "data-job": job.id },
    el("td", {}, el("a", { href: `/ui/jobs/${encodeURIComponent(job.id)}`, text: job.id.slice(0, 8) })),
    el("td", {}, stateBadge(job.state)),
    el("td", {}, progressBar(job),
      job.items ? el("div", { class: "items", "data-items": job.id, text: itemsLine(job.items) }) : null),
    el("td", { text: rateText(job) }),
    el("td", { text: job.state === "running" ? fmtDuration(job.eta_seconds) : "–" }),
    el("td", { text: job.model }),
    el("td", { class: "path", title: job.input, text: job.input }),
    el("td", { class: "path", title: job.output, text: job.output }),
    el("td", { text: job.submitted_by || "–" }),
    el("td", {}, actions(job)),
  )));
  if (!view.jobs.length) {
    rows.append(el("tr", {}, el("td", { colspan: "10", text: "No jobs." })));
  }

  const workers = document.querySelector("#workers tbody");
  workers.replaceChildren(...view.workers.map((w) => el("tr", { class: w.silent ? "silent" : "" },
    el("td", { text: w.id }),
    el("td", { text: w.host }),
    el("td", { text: w.device }),
    el("td", { text: w.silent ? "silent" : w.state }),
    el("td", { text: w.current || "–" }),
    el("td", { text: fmtRate(w.fps) }),
    el("td", { text: fmtAgo(w.last_seen_ms, view.now_ms) }),
  )));
  if (!view.workers.length) {
    workers.append(el("tr", {}, el("td", { colspan: "7", text: "No workers heard from." })));
  }
}

function overviewPage() {
  const filter = document.getElementById("state-filter");
  const params = new URLSearchParams(location.search);
  filter.value = params.get("state") || "";
  let query = filter.value ? `?state=${encodeURIComponent(filter.value)}` : "";
  follow(`/ui/events${query}`, "overview", `/ui/overview${query}`, renderOverview);
  filter.onchange = () => {
    const q = filter.value ? `?state=${encodeURIComponent(filter.value)}` : "";
    location.search = q;
  };
}

function renderJob(view) {
  const job = view.job;
  document.title = `fresco · job ${job.id.slice(0, 8)}`;
  document.getElementById("job-id").textContent = job.id;
  const badge = document.getElementById("job-state");
  badge.textContent = job.state;
  badge.className = "state " + job.state;
  document.getElementById("job-progress").replaceChildren(progressBar(job));
  const facts = document.getElementById("job-facts");
  facts.replaceChildren();
  const fact = (k, v) => facts.append(el("dt", { text: k }), el("dd", { text: v }));
  fact("model", job.model);
  fact("temporal", job.temporal ? "on: frames blended along the input's flow" : "off");
  fact("input", job.input);
  fact("output", job.output);
  fact("submitted by", job.submitted_by || "–");
  if (job.items) {
    // A dataset job: its chunks are ranges of items, each scored or an error row.
    fact("items", itemsLine(job.items));
    fact("items/s", fmtRate(job.items.per_second));
  } else {
    fact("frames", `${job.frames_done} of ${job.frames_total === null ? "?" : job.frames_total}`);
  }
  if (view.rows) {
    // A records job: one row per sampled frame, all of them in the output once it succeeded.
    const total = view.rows.total === null ? "?" : view.rows.total;
    fact("rows", job.state === "succeeded" ? `${view.rows.written}` : `${view.rows.written} of ${total}`);
  }
  fact("chunks", `${job.chunks_done} of ${job.chunks_total}`);
  if (!job.items) fact("frames/s", fmtRate(job.fps));
  fact("ETA", job.state === "running" ? fmtDuration(job.eta_seconds) : "–");
  fact("attempts / expiries", `${job.attempts} / ${job.expiries}`);
  document.getElementById("job-actions").replaceChildren(actions(job));

  const strip = document.getElementById("strip");
  strip.replaceChildren(...view.tasks.map((t) => el("span", {
    class: "cell " + t.state,
    "data-kind": t.kind,
    "data-state": t.state,
    title: `${t.kind}${t.kind === "score" ? " chunk " + t.chunk : ""}: ${t.state}` +
      (t.worker ? ` (${t.worker})` : "") + (t.attempts ? `, ${t.attempts} attempts` : ""),
  })));

  document.getElementById("errors").replaceChildren(...(view.errors.length
    ? view.errors.map((e) => el("li", { text: `${e.kind} chunk ${e.chunk}: ${e.error}` }))
    : [el("li", { text: "None." })]));
  const log = document.getElementById("log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = view.log.map((l) =>
    `${new Date(l.at_ms).toLocaleTimeString()}  ${l.worker ? "[" + l.worker + "] " : ""}${l.message}`).join("\n");
  if (atBottom) log.scrollTop = log.scrollHeight;

  if (job.items && !view.preview) {
    document.getElementById("preview-wait").textContent = "A dataset job has no preview: see its rows in the output.";
  }
  if (view.preview) {
    const before = document.getElementById("preview-before");
    const after = document.getElementById("preview-after");
    if (before.getAttribute("src") !== view.preview.before_url) before.src = view.preview.before_url;
    if (after.getAttribute("src") !== view.preview.after_url) after.src = view.preview.after_url;
    after.alt = view.rows ? "the same frame with what the model found drawn over it" : "the same frame styled";
    document.getElementById("preview").hidden = false;
    document.getElementById("preview-wait").textContent =
      `Frame ${view.preview.frame} (chunk ${view.preview.chunk}), before and after.`;
  }
}

function jobPage() {
  const id = decodeURIComponent(location.pathname.split("/")[3] || "");
  const base = `/ui/jobs/${encodeURIComponent(id)}`;
  follow(`${base}/events`, "job", `${base}/detail`, renderJob);
}

function loginPage() {
  const form = document.getElementById("login");
  const error = document.getElementById("login-error");
  form.onsubmit = async (e) => {
    e.preventDefault();
    error.textContent = "";
    const token = document.getElementById("token").value.trim();
    let response;
    try {
      response = await fetch("/v1/session", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Authorization": "Bearer " + token },
      });
    } catch (err) {
      error.textContent = "The server cannot be reached: " + err;
      return;
    }
    if (!response.ok) {
      let text = `sign-in failed (${response.status})`;
      try { text = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      error.textContent = text;
      return;
    }
    try {
      const body = await response.json();
      if (body.csrf_token) sessionStorage.setItem(CSRF_KEY, body.csrf_token);
    } catch (_) { /* no body */ }
    location.href = safeNext(new URLSearchParams(location.search).get("next"));
  };
}

// Where to go after signing in: a path on this server only (never "//host" or "/\\host", which
// a browser reads as another site), else the overview.
function safeNext(next) {
  if (!next || !/^\/(?![\/\\])/.test(next) || /[\\\u0000-\u001f]/.test(next)) return "/";
  try {
    const url = new URL(next, location.origin);
    if (url.origin !== location.origin) return "/";
    // Check what the browser will go to, after it resolved dot-segments and escapes: "/..//host"
    // resolves to "//host", another site.
    const path = url.pathname + url.search + url.hash;
    return /^\/(?![\/\\])/.test(path) && !/[\\\u0000-\u001f]/.test(path) ? path : "/";
  } catch (_) {
    return "/";
  }
}

function signOut() {
  const csrf = sessionStorage.getItem(CSRF_KEY) || "";
  sessionStorage.removeItem(CSRF_KEY);
  fetch("/v1/session", { method: "DELETE", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
    .finally(() => { location.href = "/ui/login"; });
}

document.addEventListener("DOMContentLoaded", () => {
  const logout = document.getElementById("logout");
  if (logout) logout.onclick = signOut;
  switch (document.body.dataset.page) {
    case "overview": loadSession().catch(() => {}).finally(overviewPage); break;
    case "job": loadSession().catch(() => {}).finally(jobPage); break;
    case "login": loginPage(); break;
  }
});
