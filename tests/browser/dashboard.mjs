// Drives fresco's dashboard in headless Chromium: sign in with a token, submit a short job
// through the API, watch its progress bar reach 100% without a reload, open the job's page and
// wait for the before/after preview images; then, given DATASET, a dataset job's items line
// in the list and its facts on its page. Prints one JSON object with what it saw; the Rust
// test (crates/cli/tests/dashboard.rs) checks it. Screenshots go to SHOTS.
//
// Environment: BASE (server URL), TOKEN, INPUT, OUTPUT (absolute paths), SHOTS (folder),
// CHROMIUM (default /usr/bin/chromium); DATASET (a folder of images), DATASET_OUTPUT and MODEL
// (a classifier) for the dataset part, which is left out without them.
import { chromium } from "playwright-core";

const { BASE, TOKEN, INPUT, OUTPUT, SHOTS } = process.env;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const report = { pageErrors: [], consoleErrors: [], progressSeen: [] };

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Containers run as root without user namespaces.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("pageerror", (e) => report.pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") report.consoleErrors.push(m.text());
  });
  // Anything not served by fresco itself (a CDN) is a failure.
  const outside = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(BASE) && !r.url().startsWith("data:")) outside.push(r.url());
  });

  // A browser without a session is sent to the sign-in page; the token is entered once.
  await page.goto(`${BASE}/`);
  await page.waitForURL(/\/ui\/login/, { timeout: 15000 });
  await page.screenshot({ path: `${SHOTS}/login.png` });
  await page.fill("#token", TOKEN);
  await page.click("button[type=submit]");
  await page.waitForURL(`${BASE}/`, { timeout: 15000 });
  await page.waitForSelector("#conn.live", { timeout: 15000 });
  // The server sent the page to sign in (303) before any script ran; clear anything logged
  // on the way.
  report.consoleErrors = [];
  await page.evaluate(() => { window.__sameDocument = true; window.__seen = []; });

  // Submit through the API, as any client would.
  const response = await fetch(`${BASE}/v1/jobs`, {
    method: "POST",
    headers: { "authorization": `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ input: INPUT, output: OUTPUT, style: "vintage", chunk_frames: 10 }),
  });
  const job = await response.json();
  if (response.status !== 201) throw new Error(`submit: HTTP ${response.status}: ${JSON.stringify(job)}`);
  report.job = job.id;

  const bar = `[role=progressbar][data-job="${job.id}"]`;
  await page.waitForSelector(bar, { timeout: 30000 });
  await page.waitForFunction((selector) => {
    const value = document.querySelector(selector)?.getAttribute("aria-valuenow");
    if (value !== undefined && value !== null && window.__seen.at(-1) !== value) window.__seen.push(value);
    return value === "100";
  }, bar, { timeout: 240000, polling: 100 });
  report.progressSeen = await page.evaluate(() => window.__seen.map(Number));
  report.sameDocument = await page.evaluate(() => window.__sameDocument === true);
  report.stateAtEnd = await page.textContent(`tr[data-job="${job.id}"] .state`);
  await page.screenshot({ path: `${SHOTS}/overview.png`, fullPage: true });

  // The job's page: the strip, the log and the preview.
  await page.click(`tr[data-job="${job.id}"] a`);
  await page.waitForURL(`${BASE}/ui/jobs/${job.id}`, { timeout: 15000 });
  await page.waitForFunction(() => {
    const images = [document.getElementById("preview-before"), document.getElementById("preview-after")];
    return images.every((i) => i && i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  }, null, { timeout: 60000, polling: 200 });
  report.previewSizes = await page.evaluate(() =>
    ["preview-before", "preview-after"].map((id) => {
      const i = document.getElementById(id);
      return [i.naturalWidth, i.naturalHeight];
    }));
  await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "succeeded",
    null, { timeout: 30000 });
  report.strip = await page.$$eval("#strip .cell", (cells) => cells.map((c) => `${c.dataset.kind}:${c.dataset.state}`));
  report.logLines = await page.evaluate(() => document.getElementById("log").textContent.split("\n").length);
  await page.screenshot({ path: `${SHOTS}/job.png`, fullPage: true });

  // A dataset job, where the test has a classifier: its items line in the list and its facts.
  if (process.env.DATASET) {
    const submitted = await fetch(`${BASE}/v1/jobs`, {
      method: "POST",
      headers: { "authorization": `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        input: process.env.DATASET, output: process.env.DATASET_OUTPUT, model: process.env.MODEL,
        scoring: { task: "classify" }, dataset: { max_failed_fraction: 1 }, chunk_frames: 2,
      }),
    });
    const dataset = await submitted.json();
    if (submitted.status !== 201) throw new Error(`dataset: HTTP ${submitted.status}: ${JSON.stringify(dataset)}`);
    report.datasetJob = dataset.id;
    await page.goto(`${BASE}/`);
    await page.waitForFunction((id) => {
      const row = document.querySelector(`tr[data-job="${id}"]`);
      return row && row.querySelector(".state")?.textContent === "succeeded";
    }, dataset.id, { timeout: 120000, polling: 200 });
    report.datasetItemsLine = await page.textContent(`[data-items="${dataset.id}"]`);
    report.datasetRate = await page.textContent(`tr[data-job="${dataset.id}"] td:nth-child(4)`);
    await page.goto(`${BASE}/ui/jobs/${dataset.id}`);
    await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "succeeded",
      null, { timeout: 30000 });
    report.datasetPreviewShown = await page.isVisible("#preview");
    report.datasetFacts = await page.$$eval("#job-facts dt", (dts) =>
      Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
    await page.screenshot({ path: `${SHOTS}/dataset-job.png`, fullPage: true });
  }
  report.outsideRequests = outside;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
