// How long the same photos take through the review page, through POST /v1/scrub two at a
// time (as the page sends them), and through the command line: scripts/bench-page runs it
// against the release binary. Prints one line per way.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium, startServe } from './harness.mjs';

const [bin, ...files] = process.argv.slice(2);
const secs = (t) => ((performance.now() - t) / 1000).toFixed(2);

const { child: service, addr } = await startServe(bin, ['--no-auth', '--jobs', '2']);
const url = `http://${addr}/`;
try {
  // The API, two requests at a time.
  let t = performance.now();
  const queue = [...files];
  const worker = async () => {
    for (let f; (f = queue.shift());) {
      const res = await fetch(url + 'v1/scrub', { method: 'POST', body: fs.readFileSync(f), headers: { Accept: 'application/json' } });
      await res.arrayBuffer();
    }
  };
  await Promise.all([worker(), worker()]);
  console.log(`api   ${files.length} photos ${secs(t)} s`);

  // The page: from choosing the photos to every card settled.
  const browser = await launchChromium();
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  await page.goto(url);
  t = performance.now();
  await page.setInputFiles('[data-testid="files"]', files);
  await page.waitForFunction((n) => {
    const cards = [...document.querySelectorAll('[data-testid="result"]')];
    return cards.length === n && cards.every((c) => c.dataset.state !== 'pending');
  }, files.length, { timeout: 600_000, polling: 50 });
  console.log(`page  ${files.length} photos ${secs(t)} s`);
  await browser.close();
} finally {
  service.kill('SIGTERM');
}

// The command line, same photos, same two threads.
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'phiscrub-bench-'));
const t = performance.now();
execFileSync(bin, ['-q', '-j', '2', '-o', out, ...files]);
console.log(`cli   ${files.length} photos ${secs(t)} s (engine load included)`);
fs.rmSync(out, { recursive: true, force: true });
