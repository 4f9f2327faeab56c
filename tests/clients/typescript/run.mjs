// Runs the customer journey of src/journey.ts in headless Chromium against a
// gateway: type-checks and bundles the page, serves it from 127.0.0.1 (the
// origin the gateway must allow: FOLIO__GATEWAY__CORS_ALLOWED_ORIGINS), and
// reports each step. Exits non-zero unless every step passed.
//
// Environment: FOLIO_GATEWAY_URL (http://127.0.0.1:50050, or https:// with
// FOLIO_TLS_SPKI, the base64 SHA-256 of the gateway certificate's key), PAGE_PORT (the
// page's port; the origin is http://127.0.0.1:PAGE_PORT), FOLIO_OPERATOR_EMAIL
// and FOLIO_OPERATOR_PASSWORD (default: those `make run` keeps in
// .folio/local-credentials.env), CHROMIUM (/usr/bin/chromium).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import { chromium } from "playwright-core";

const here = fileURLToPath(new URL(".", import.meta.url));
const gateway = process.env.FOLIO_GATEWAY_URL ?? "http://127.0.0.1:50050";
const port = Number(process.env.PAGE_PORT ?? 0);

function operator() {
  const { FOLIO_OPERATOR_EMAIL: email, FOLIO_OPERATOR_PASSWORD: password } = process.env;
  if (email && password) return { operatorEmail: email, operatorPassword: password };
  const file = `${here}/../../../.folio/local-credentials.env`;
  const values = existsSync(file)
    ? Object.fromEntries(readFileSync(file, "utf8").split("\n").map((line) => line.split(/=(.*)/s)))
    : {};
  return { operatorEmail: values.OPERATOR_EMAIL ?? "", operatorPassword: values.OPERATOR_PASSWORD ?? "" };
}

execFileSync("npx", ["tsc", "-p", here], { stdio: "inherit" });
const bundle = await build({
  entryPoints: [`${here}/src/journey.ts`],
  bundle: true,
  format: "esm",
  target: "es2022",
  write: false,
});
const script = bundle.outputFiles[0].contents;
const page = `<!doctype html><meta charset="utf-8"><title>Folio journey</title><script type="module" src="/journey.js"></script>`;

const server = createServer((request, response) => {
  if (request.url === "/journey.js") {
    response.writeHead(200, { "content-type": "text/javascript" }).end(script);
  } else {
    response.writeHead(200, { "content-type": "text/html" }).end(page);
  }
});
await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // Chromium's sandbox needs user namespaces, which CI containers lack.
  // FOLIO_TLS_SPKI: the gateway's https certificate is of a local CA that
  // Chromium does not know; trust exactly that key (its SPKI SHA-256), not
  // every certificate.
  args: ["--no-sandbox", ...(process.env.FOLIO_TLS_SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.FOLIO_TLS_SPKI}`] : [])],
});
let failed = true;
try {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const warnings = [];
  tab.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") warnings.push(message.text());
  });
  tab.on("pageerror", (error) => warnings.push(String(error)));
  await tab.addInitScript((config) => {
    window.folioConfig = config;
  }, { gateway, ...operator() });
  await tab.goto(origin);
  await tab.waitForFunction(() => window.folioJourney?.done === true, null, { timeout: 60_000 });
  const journey = await tab.evaluate(() => window.folioJourney);
  for (const step of journey.steps) {
    console.log(step.error ? `FAIL ${step.name}: ${step.error}` : `PASS ${step.name}`);
  }
  // A failed step shows in the page's console; CORS refusals only there.
  const errors = journey.steps.filter((step) => step.error).length;
  if (errors > 0) for (const warning of warnings) console.log(`  console: ${warning}`);
  console.log(`${journey.steps.length - errors} passed, ${errors} failed (Chromium ${browser.version()}, page ${origin})`);
  failed = errors > 0 || journey.steps.length < 7;
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
