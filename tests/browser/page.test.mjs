// The review page in a real browser (Debian's Chromium driven by playwright-core), against
// the real binary started as a double-click starts it: no arguments, so it serves on
// loopback without a token and opens $BROWSER at the page.
//
// Run by scripts/browser-test after the binary is built. PHISCRUB_BIN names the binary
// (default target/debug/phiscrub); PHISCRUB_BLESS=1 also copies the screenshots into docs/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, startServe } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const bin = process.env.PHISCRUB_BIN || path.join(root, 'target/debug/phiscrub');
const shots = path.join(root, 'target/browser');
const fixtures = path.join(root, 'fixtures');
const sharedData = path.resolve(root, '../shared/data');
const STRUCTURE = fs
  .readFileSync(path.join(root, 'crates/phiscrub-cli/tests/common/exiftool-structure.txt'), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'));
const WAIT = 240_000;

let service;
let serviceLog = '';
let url;
let browser;
let desktop;
let page;
let decoder;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'phiscrub-browser-'));
// Every host any page asked for, to show the page works with this service alone.
const hosts = new Set();

const FIXTURES = [
  'faces/astronaut_eileen_collins.png',
  'clinical/wristband.jpg',
  'clinical/monitor.jpg',
  'photos/ward_round_gps_xmp_trailer.jpg',
  'photos/bedside_orientation_6.jpg',
].map((f) => path.join(fixtures, f));

// A sample of the evaluation photos beside the project, when they are there.
function sharedSample() {
  if (!fs.existsSync(sharedData)) {
    console.log(`skipped the shared photos: ${sharedData} is absent (evaluation data lives beside the project)`);
    return [];
  }
  const first = (dir, n, ext = /\.(jpe?g|heic|png)$/i) =>
    fs
      .readdirSync(path.join(sharedData, dir))
      .filter((f) => ext.test(f))
      .sort()
      .slice(0, n)
      .map((f) => path.join(sharedData, dir, f));
  return [...first('faces', 2), ...first('metadata/gps', 1), ...first('metadata/heic', 1), ...first('text', 1)];
}

// Script errors and anything the Content-Security-Policy blocked, from every page.
const problems = [];

function watch(context) {
  context.on('page', (p) => {
    p.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
    p.on('console', (m) => {
      if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(m.text());
    });
  });
  context.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'ws:' || u.protocol === 'wss:') hosts.add(u.host);
  });
}

before(async () => {
  fs.mkdirSync(shots, { recursive: true });
  // $BROWSER is what a double-click opens; here it only writes the address down.
  const opener = path.join(scratch, 'open-browser');
  fs.writeFileSync(opener, `#!/bin/sh\nprintf '%s' "$1" > '${scratch}/opened'\n`, { mode: 0o755 });
  service = spawn(bin, [], {
    env: { ...process.env, BROWSER: opener },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  service.stderr.on('data', (d) => {
    serviceLog += d;
  });
  const deadline = Date.now() + 60_000;
  while (!fs.existsSync(path.join(scratch, 'opened'))) {
    if (service.exitCode !== null) throw new Error('phiscrub with no arguments exited: ' + serviceLog);
    if (Date.now() > deadline) throw new Error('phiscrub opened no browser: ' + serviceLog);
    await new Promise((r) => setTimeout(r, 100));
  }
  url = fs.readFileSync(path.join(scratch, 'opened'), 'utf8');
  browser = await launchChromium();
  desktop = await browser.newContext({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
  watch(desktop);
  page = await desktop.newPage();
  decoder = await (await browser.newContext()).newPage();
});

after(async () => {
  if (browser) await browser.close();
  if (service) service.kill('SIGTERM');
  fs.rmSync(scratch, { recursive: true, force: true });
});

// ---- helpers --------------------------------------------------------------------------

const card = (name) => page.locator('[data-testid="result"]', { has: page.locator('h3', { hasText: name }) });

async function settled(p = page) {
  await p.waitForFunction(
    () => {
      const cards = [...document.querySelectorAll('[data-testid="result"]')];
      return cards.length > 0 && cards.every((c) => c.dataset.state !== 'pending');
    },
    null,
    { timeout: WAIT },
  );
}

// Waits until the card of `name` is done with `n` covered regions, after a correction.
async function cardDone(name, n) {
  await page.waitForFunction(([name, n]) => {
    const el = [...document.querySelectorAll('[data-testid="result"]')].find((e) => e.querySelector('h3').textContent === name);
    return el.dataset.state === 'done' && Number(el.dataset.regions) === n;
  }, [name, n], { timeout: 60_000 });
}

async function api(file, query = '') {
  const res = await fetch(new URL('v1/scrub' + query, url), {
    method: 'POST',
    body: fs.readFileSync(file),
    headers: { Accept: 'application/json' },
  });
  assert.equal(res.status, 200, `${file}: the API answered ${res.status}`);
  return (await res.json()).report;
}

async function save(p, locator) {
  const [download] = await Promise.all([p.waitForEvent('download'), locator.click()]);
  const to = path.join(scratch, download.suggestedFilename());
  await download.saveAs(to);
  return to;
}

// Decodes `bytes` in the browser and returns the RGB of the box [x, y, w, h], row by row,
// and the whole picture's size.
async function pixels(bytes, box) {
  return decoder.evaluate(
    async ([b64, box]) => {
      const raw = atob(b64);
      const u = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i += 1) u[i] = raw.charCodeAt(i);
      const bmp = await createImageBitmap(new Blob([u]), { imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const g = c.getContext('2d');
      g.drawImage(bmp, 0, 0);
      const [x, y, w, h] = box || [0, 0, 1, 1];
      const d = g.getImageData(x, y, w, h).data;
      const rgb = [];
      for (let i = 0; i < d.length; i += 4) rgb.push(d[i], d[i + 1], d[i + 2]);
      return { width: bmp.width, height: bmp.height, rgb };
    },
    [Buffer.from(bytes).toString('base64'), box],
  );
}

const meanDiff = (a, b) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;
const shrink = ([x, y, w, h], by) => [x + by, y + by, w - 2 * by, h - 2 * by];

async function regionsOf(c) {
  return c.locator('[data-testid="region"]').evaluateAll((els) =>
    els.map((e) => ({ id: e.dataset.id, category: e.dataset.category })).sort((a, b) => a.id.localeCompare(b.id)));
}

// What the user sees on one screen, scrolled to the photos.
async function screenshot(p, name) {
  const to = path.join(shots, name);
  await p.locator('#check-title').evaluate((e) => e.scrollIntoView());
  await p.screenshot({ path: to });
  if (process.env.PHISCRUB_BLESS === '1') fs.copyFileSync(to, path.join(root, 'docs', name));
}

// ---- tests ------------------------------------------------------------------------------

test('no arguments starts the page on loopback and opens the browser there', async () => {
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const policy = res.headers.get('content-security-policy');
  assert.match(policy, /default-src 'none'/);
  assert.match(policy, /connect-src 'self'/);
  await page.goto(url);
  await assert.doesNotReject(page.locator('h1', { hasText: 'phiscrub' }).waitFor());
});

test('dropped photos are scrubbed, shown side by side, with the regions the API reports', async () => {
  await page.setInputFiles('[data-testid="files"]', FIXTURES);
  // One more the way a drop brings it: a File in a DataTransfer.
  const dropped = path.join(fixtures, 'clinical/chart.jpg');
  const transfer = await page.evaluateHandle(([b64, name]) => {
    const raw = atob(b64);
    const u = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) u[i] = raw.charCodeAt(i);
    const t = new DataTransfer();
    t.items.add(new File([u], name, { type: 'image/jpeg' }));
    return t;
  }, [fs.readFileSync(dropped).toString('base64'), 'chart.jpg']);
  await page.dispatchEvent('body', 'drop', { dataTransfer: transfer });
  await settled();
  await screenshot(page, 'page-desktop.png');

  const shared = sharedSample();
  const bad = path.join(fixtures, 'bad/truncated.jpg');
  await page.setInputFiles('[data-testid="files"]', [...shared, bad]);
  await settled();

  for (const file of [...FIXTURES, dropped, ...shared]) {
    const name = path.basename(file);
    const c = card(name);
    assert.equal(await c.getAttribute('data-state'), 'done', `${name} was scrubbed`);
    const report = await api(file);
    assert.equal(Number(await c.getAttribute('data-regions')), report.regions.length, `${name}: regions as the API reports`);
    const shown = await regionsOf(c);
    const expected = report.regions.map((r) => ({ id: r.id, category: r.category })).sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(shown, expected, `${name}: one outline per region, by category`);
    assert.ok(await c.locator('img.original').getAttribute('src'), `${name}: the original is shown`);
    assert.ok(await c.locator('img.scrubbed').getAttribute('src'), `${name}: the scrubbed copy is shown`);
    assert.ok(await c.locator('[data-testid="download"]').getAttribute('href'), `${name}: can be downloaded`);
  }
  const wristband = card('wristband.jpg');
  assert.ok(Number(await wristband.getAttribute('data-regions')) >= 3, 'the wristband has its text and codes covered');
  for (const kind of ['text', 'barcode']) {
    assert.ok(await wristband.locator(`[data-testid="region"][data-category="${kind}"]`).count() > 0, `a ${kind} outline`);
  }
  const failed = card('truncated.jpg');
  assert.equal(await failed.getAttribute('data-state'), 'failed');
  assert.match(await failed.locator('.reason').innerText(), /Not scrubbed.*\([a-z_]+\)/s);
  assert.equal(await failed.locator('[data-testid="download"]').getAttribute('href'), null, 'nothing to download');
  assert.equal(await failed.getAttribute('data-regions'), '0');
  assert.match(await page.locator('#status').innerText(), /failed/);
});

const ASTRONAUT = path.join(fixtures, 'faces/astronaut_eileen_collins.png');
const DRAWN = [40, 380, 100, 80];

test('a box drawn on the original is painted in the downloaded copy', async () => {
  const c = card('astronaut_eileen_collins.png');
  const before = Number(await c.getAttribute('data-regions'));
  const overlay = c.locator('svg.overlay');
  await overlay.scrollIntoViewIfNeeded();
  const b = await overlay.boundingBox();
  const at = (x, y) => [b.x + (x / 512) * b.width, b.y + (y / 512) * b.height];
  const [x0, y0] = at(DRAWN[0], DRAWN[1]);
  const [x1, y1] = at(DRAWN[0] + DRAWN[2], DRAWN[1] + DRAWN[3]);
  await page.mouse.move(x0, y0);
  await page.mouse.down();
  await page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, { steps: 4 });
  await page.mouse.move(x1, y1, { steps: 4 });
  await page.mouse.up();
  await cardDone('astronaut_eileen_collins.png', before + 1);
  const manual = c.locator('[data-testid="region"][data-category="manual"]');
  assert.equal(await manual.count(), 1);
  const box = ['x', 'y', 'width', 'height'];
  const drawn = await Promise.all(box.map((k) => manual.getAttribute(k).then(Number)));
  // Drawn by a mouse on a scaled picture: within a few pixels of where it was aimed.
  drawn.forEach((v, i) => assert.ok(Math.abs(v - DRAWN[i]) <= 4, `manual box ${drawn} near ${DRAWN}`));

  const out = fs.readFileSync(await save(page, c.locator('[data-testid="download"]')));
  const inside = await pixels(out, shrink(drawn, 2));
  assert.ok(inside.rgb.every((v) => v === 0), 'the drawn box is solid black in the download');
  const orig = await pixels(fs.readFileSync(ASTRONAUT), shrink(drawn, 2));
  assert.ok(meanDiff(orig.rgb, inside.rgb) > 30, 'and it was not black before');
});

test('on a photo turned by its orientation tag, a box lands where it was drawn', async () => {
  // Stored 320x240 with orientation 6: shown, and scrubbed, as 240x320.
  const c = card('bedside_orientation_6.jpg');
  const overlay = c.locator('svg.overlay');
  await overlay.scrollIntoViewIfNeeded();
  const b = await overlay.boundingBox();
  assert.ok(b.height > b.width, `the original is shown upright (${b.width}x${b.height})`);
  const aim = [20, 200, 100, 60];
  const at = (x, y) => [b.x + (x / 240) * b.width, b.y + (y / 320) * b.height];
  await page.mouse.move(...at(aim[0], aim[1]));
  await page.mouse.down();
  await page.mouse.move(...at(aim[0] + aim[2], aim[1] + aim[3]), { steps: 6 });
  await page.mouse.up();
  await page.waitForFunction(() => {
    const el = [...document.querySelectorAll('[data-testid="result"]')].find((e) => e.querySelector('h3').textContent === 'bedside_orientation_6.jpg');
    return el.dataset.state === 'done' && el.querySelector('[data-category="manual"]');
  }, null, { timeout: 60_000 });
  const out = fs.readFileSync(await save(page, c.locator('[data-testid="download"]')));
  const inside = await pixels(out, shrink(aim, 6));
  assert.deepEqual([inside.width, inside.height], [240, 320], 'the copy is upright');
  assert.ok(Math.max(...inside.rgb) <= 24, 'the box is black where it was drawn (up to JPEG error)');
  const elsewhere = await pixels(out, [20, 20, 100, 60]);
  assert.ok(Math.max(...elsewhere.rgb) > 60, 'and not at the same place in the stored, unturned picture');
});

test('a region removed after confirming comes back as it was, and the report says so', async () => {
  const c = card('astronaut_eileen_collins.png');
  const face = c.locator('[data-testid="region"][data-category="face"]').first();
  const id = await face.getAttribute('data-id');
  const faceBox = await Promise.all(['x', 'y', 'width', 'height'].map((k) => face.getAttribute(k).then(Number)));
  const before = Number(await c.getAttribute('data-regions'));
  const covered = fs.readFileSync(await save(page, c.locator('[data-testid="download"]')));

  // Saying no leaves it covered.
  page.once('dialog', (d) => d.dismiss());
  await face.click();
  assert.equal(await c.getAttribute('data-state'), 'done');
  assert.equal(Number(await c.getAttribute('data-regions')), before);

  let question = '';
  page.once('dialog', (d) => {
    question = d.message();
    d.accept();
  });
  // By keyboard, as a screen-reader user would: focus the outline, press Enter.
  await face.focus();
  await page.keyboard.press('Enter');
  assert.match(question, /Uncover this face\?/);
  await cardDone('astronaut_eileen_collins.png', before - 1);
  assert.equal(await c.locator(`[data-testid="kept"][data-id="${id}"]`).count(), 1, 'shown as uncovered by the user');
  const report = JSON.parse(await c.locator('[data-testid="report"]').textContent());
  assert.deepEqual(report.kept_by_user.map((r) => r.id), [id], 'the report records who uncovered it');
  assert.ok(report.regions.every((r) => r.id !== id));
  assert.match(await c.locator('.summary').innerText(), /Left uncovered by you: 1 face/);

  const restored = fs.readFileSync(await save(page, c.locator('[data-testid="download"]')));
  const area = shrink(faceBox, 1);
  const orig = await pixels(fs.readFileSync(ASTRONAUT), area);
  const now = await pixels(restored, area);
  const then = await pixels(covered, area);
  assert.ok(meanDiff(orig.rgb, now.rgb) <= 1, `the face's pixels are the original's again (mean difference ${meanDiff(orig.rgb, now.rgb)})`);
  assert.ok(meanDiff(orig.rgb, then.rgb) > 30, 'they were covered before');
  // The box drawn earlier is still painted.
  assert.ok((await pixels(restored, shrink(DRAWN, 6))).rgb.every((v) => v === 0));
});

test('download all gives one zip of every scrubbed photo, named as asked, with no metadata', async () => {
  await page.selectOption('#rename', 'index');
  const zipPath = await save(page, page.locator('[data-testid="download-all"]'));
  const into = path.join(scratch, 'unzipped');
  // Python's zipfile is the independent reader: it checks every entry's CRC.
  execFileSync('python3', ['-c', `import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip()
assert bad is None, bad
z.extractall(sys.argv[2])`, zipPath, into]);
  const names = fs.readdirSync(into).sort();
  const done = await page.locator('[data-testid="result"][data-state="done"]').count();
  const images = names.filter((n) => n !== 'phiscrub-report.json');
  assert.equal(images.length, done, 'one file per scrubbed photo, none for the failed one');
  assert.ok(names.includes('phiscrub-report.json'));
  for (const n of images) assert.match(n, /^\d{4}\.(jpg|jpeg|png|webp|gif|tif)$/, `${n} is numbered, as --rename index names it`);
  const reports = JSON.parse(fs.readFileSync(path.join(into, 'phiscrub-report.json'), 'utf8'));
  assert.deepEqual(reports.map((r) => r.file).sort(), images);
  // The card's own download link names the file the same way.
  const first = page.locator('[data-testid="result"][data-state="done"] [data-testid="download"]').first();
  assert.match(await first.getAttribute('download'), /^\d{4}\./);
  const cardNames = await page.locator('[data-testid="result"][data-state="done"] [data-testid="download"]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('download')).sort());
  assert.deepEqual(cardNames, images, 'each card offers its copy under the name it has in the zip');

  const tags = JSON.parse(execFileSync('exiftool', ['-j', '-a', '-G1', '-u', '-ee3', '-api', 'RequestAll=3', ...images.map((n) => path.join(into, n))], { maxBuffer: 1 << 26 }));
  for (const t of tags) {
    const name = path.basename(t.SourceFile);
    const report = reports.find((r) => r.file === name).report;
    const left = Object.keys(t).filter((k) => {
      const group = k.split(':')[0];
      const bookkeeping = ['System', 'File', 'Composite'].includes(group) || (group === 'ExifTool' && !/:(Warning|Error)$/.test(k));
      const orientation = k === 'IFD0:Orientation' && report.path === 'lossless';
      return k !== 'SourceFile' && !bookkeeping && !orientation && !STRUCTURE.includes(k);
    });
    assert.deepEqual(left, [], `${name}: exiftool finds only the file's structure`);
    const decoded = await pixels(fs.readFileSync(path.join(into, name)));
    const [w, h] = report.path === 'lossless' && report.orientation >= 5 ? [report.height, report.width] : [report.width, report.height];
    assert.deepEqual([decoded.width, decoded.height], [w, h], `${name} decodes at its reported size`);
  }
});

test('a chosen folder brings its images and skips the rest, as the command line does', async () => {
  const before = await page.locator('[data-testid="result"]').count();
  const folder = path.join(fixtures, 'clinical');
  const images = fs.readdirSync(folder).filter((f) => f.endsWith('.jpg'));
  const others = fs.readdirSync(folder).length - images.length;
  assert.ok(others > 0, 'the folder holds more than images');
  await page.setInputFiles('[data-testid="folder"]', folder);
  await settled();
  assert.equal(await page.locator('[data-testid="result"]').count(), before + images.length);
  assert.match(await page.locator('#status').innerText(), new RegExp(`${others} files in folders skipped \\(not images\\)`));
  const added = page.locator('[data-testid="result"]').nth(before);
  assert.equal(await added.getAttribute('data-state'), 'done');
});

test('at phone width the page fits, and every control has a name', async () => {
  const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  watch(phone);
  const p = await phone.newPage();
  await p.goto(url);
  await p.setInputFiles('[data-testid="files"]', [ASTRONAUT, path.join(fixtures, 'clinical/wristband.jpg')]);
  await settled(p);
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `no sideways scrolling (page is ${width} px wide)`);
  const overflowing = await p.evaluate(() =>
    [...document.querySelectorAll('button, a.button, input, select, img')]
      .filter((e) => e.offsetParent && e.getBoundingClientRect().right > 376)
      .map((e) => e.outerHTML.slice(0, 80)));
  assert.deepEqual(overflowing, []);
  await screenshot(p, 'page-phone.png');
  const unnamed = await p.evaluate(() => {
    const named = (e) => (e.labels && e.labels.length) || e.getAttribute('aria-label') || e.textContent.trim();
    return [...document.querySelectorAll('button, a, input, select, [role="button"], [tabindex]')]
      .filter((e) => !e.closest('template') && !named(e))
      .map((e) => e.outerHTML.slice(0, 80));
  });
  assert.deepEqual(unnamed, [], 'every control has a label or text for screen readers');
  // Keyboard: the file picker is reached with Tab.
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement.dataset.testid), 'files');
  await phone.close();
});

test('the page asks no host but the one serving it, and nothing was blocked or broke', () => {
  assert.deepEqual(problems, []);
  const own = new URL(url).host;
  assert.ok(hosts.size > 0);
  assert.deepEqual([...hosts], [own]);
  // The service logged no file names.
  for (const f of [...FIXTURES, ...sharedSample()]) assert.ok(!serviceLog.includes(path.basename(f)), `${path.basename(f)} is not in the log`);
});

test('a service that needs a token asks for it, and the page goes on with it', async () => {
  const token = 'page-test-token-0123456789';
  const { child: guarded, addr } = await startServe(bin, ['--jobs', '1'], { PHISCRUB_TOKEN: token });
  try {
    const context = await browser.newContext();
    const p = await context.newPage();
    await p.goto(`http://${addr}/`);
    assert.equal(await p.locator('#token').isVisible(), false, 'no token asked for before it is needed');
    await p.setInputFiles('[data-testid="files"]', [ASTRONAUT]);
    await settled(p);
    const c = p.locator('[data-testid="result"]');
    assert.equal(await c.getAttribute('data-state'), 'failed');
    assert.match(await c.locator('.reason').innerText(), /access token/);
    assert.ok(await p.locator('#token').isVisible());
    await p.fill('#token', token);
    await p.click('#token-retry');
    await settled(p);
    assert.equal(await c.getAttribute('data-state'), 'done');
    assert.equal(await c.getAttribute('data-regions'), '1');
    await context.close();
  } finally {
    guarded.kill('SIGTERM');
  }
});
