// What the browser test and the page bench share: Chromium as this machine runs it, and
// `phiscrub serve` started on a free loopback port.
import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';

// Debian's Chromium, headless, as root, with no network of its own: the background
// services would otherwise try (and fail) to reach their hosts.
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// Starts `bin serve --listen 127.0.0.1:0 ...args` and resolves, once it listens, to the
// process and its address (host:port).
export function startServe(bin, args = [], env = {}) {
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/address=([0-9.:]+)/);
      if (m) resolve({ child, addr: m[1] });
    });
    child.on('exit', () => reject(new Error('phiscrub serve exited: ' + log)));
  });
}
