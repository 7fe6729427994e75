// The review page: sends each photo to this service's /v1/scrub, shows the original (kept
// in this tab's memory only) beside the scrubbed copy with every region outlined, sends it
// again with the person's corrections, and saves the copies one by one or as one zip.
// It talks to the host that served it and nothing else.
'use strict';

(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const AT_ONCE = 2;
  const KINDS = { jpeg: ['jpg', 'image/jpeg'], png: ['png', 'image/png'], webp: ['webp', 'image/webp'],
    gif: ['gif', 'image/gif'], tiff: ['tif', 'image/tiff'], heif: ['heic', 'image/heic'] };
  const SAME_KIND = { jpeg: ['jpg', 'jpeg', 'jpe', 'jfif'], png: ['png', 'apng'], webp: ['webp'],
    gif: ['gif'], tiff: ['tif', 'tiff'], heif: ['heic', 'heif', 'hif'] };
  const NAMES = { face: 'face', text: 'text', barcode: 'barcode', manual: 'box you drew' };

  const $ = (sel, root = document) => root.querySelector(sel);
  const results = $('#results');
  const rename = $('#rename');
  const zipLink = $('#download-all');
  const statusLine = $('#status');
  const photos = [];
  const waiting = [];
  // What a folder held besides images (sidecars, notes): skipped, as the command line does.
  const IMAGE_NAME = /\.(jpe?g|jpe|jfif|png|apng|webp|gif|tiff?|heic|heif|hif)$/i;
  let skipped = 0;
  let running = 0;
  let token = sessionStorage.getItem('phiscrub-token') || '';
  let zipUrl = null;

  // ---- adding photos ----------------------------------------------------------------

  function add(files) {
    for (const file of files) {
      const p = {
        index: photos.length + 1,
        file,
        originalUrl: URL.createObjectURL(file),
        random: randomHex(),
        cover: [],
        keep: new Set(),
        result: null,
        state: 'pending',
        drawing: false,
      };
      photos.push(p);
      p.card = makeCard(p);
      results.append(p.card);
      queue(p);
    }
    showStatus();
  }

  $('#files').addEventListener('change', (e) => {
    add([...e.target.files]);
    e.target.value = '';
  });
  $('#folder').addEventListener('change', (e) => {
    add(fromFolder([...e.target.files]));
    e.target.value = '';
  });
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) document.body.classList.remove('dragging');
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    if (!e.dataTransfer) return;
    // Entries must be taken while the event lasts; folders are read after.
    const entries = [...e.dataTransfer.items]
      .map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null))
      .filter(Boolean);
    if (entries.some((x) => x.isDirectory)) {
      dropped(entries).then(add, () => {
        statusLine.textContent = 'A dropped folder could not be read.';
      });
    } else if (e.dataTransfer.files.length) {
      add([...e.dataTransfer.files]);
    }
  });

  // Every file under the dropped entries, folders searched through; what a folder holds
  // that is not an image is skipped.
  async function dropped(entries) {
    const out = [];
    const walk = async (entry, inFolder) => {
      if (entry.isFile) {
        const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
        out.push(...(inFolder ? fromFolder([file]) : [file]));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {
          const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
          if (!batch.length) break;
          for (const child of batch) await walk(child, true);
        }
      }
    };
    for (const entry of entries) await walk(entry, false);
    return out;
  }

  function fromFolder(files) {
    const images = files.filter((f) => IMAGE_NAME.test(f.name) || f.type.startsWith('image/'));
    skipped += files.length - images.length;
    if (files.length !== images.length) showStatus();
    return images;
  }
  rename.addEventListener('change', () => {
    savesChanged();
  });
  $('#token-retry').addEventListener('click', () => {
    token = $('#token').value.trim();
    sessionStorage.setItem('phiscrub-token', token);
    for (const p of photos) if (p.state === 'failed' && p.unauthorized) queue(p);
  });

  // ---- talking to the service ---------------------------------------------------------

  function queue(p) {
    setState(p, 'pending', 'Scrubbing');
    if (!waiting.includes(p)) waiting.push(p);
    pump();
  }

  function pump() {
    while (running < AT_ONCE && waiting.length) {
      const p = waiting.shift();
      running += 1;
      setState(p, 'pending', 'Scrubbing');
      scrub(p).finally(() => {
        running -= 1;
        pump();
      });
    }
  }

  async function scrub(p) {
    const params = new URLSearchParams();
    if (p.cover.length) params.set('regions', p.cover.map((b) => b.join(',')).join(';'));
    if (p.keep.size) params.set('keep', [...p.keep].join(','));
    const query = params.toString();
    const headers = { Accept: 'application/json', 'Content-Type': 'application/octet-stream' };
    if (token) headers.Authorization = 'Bearer ' + token;
    p.unauthorized = false;
    for (let attempt = 0; ; attempt += 1) {
      let res;
      try {
        res = await fetch('v1/scrub' + (query ? '?' + query : ''), { method: 'POST', body: p.file, headers });
      } catch (e) {
        return fail(p, 'The phiscrub service could not be reached. Is it still running?');
      }
      if (res.ok) {
        const body = await res.json();
        return done(p, decode64(body.image), body.report);
      }
      let problem = {};
      try {
        problem = await res.json();
      } catch (e) {
        problem = {};
      }
      if (res.status === 503 && problem.code === 'busy' && attempt < 60) {
        await sleep(1000 * (Number(res.headers.get('Retry-After')) || 1));
        continue;
      }
      if (res.status === 401) {
        p.unauthorized = true;
        $('#token-box').hidden = false;
        $('#token').focus();
        return fail(p, 'This service needs an access token: enter it above and choose "Try again".');
      }
      const detail = problem.detail ? `${problem.detail} (${problem.code})` : `the service answered ${res.status}`;
      return fail(p, 'Not scrubbed, so there is nothing to download: ' + detail);
    }
  }

  // ---- showing a photo --------------------------------------------------------------

  function makeCard(p) {
    const card = $('#card').content.firstElementChild.cloneNode(true);
    $('.name', card).textContent = p.file.name;
    const original = $('.original', card);
    original.alt = 'Original of ' + p.file.name;
    original.src = p.originalUrl;
    original.addEventListener('error', () => {
      // Browsers cannot show every format (HEIC): outline the scrubbed copy instead.
      if (p.originalBroken) return;
      p.originalBroken = true;
      $('figcaption', card).textContent = 'Original (this browser cannot show it: the copy is shown)';
      if (p.result) original.src = p.result.url;
    });
    $('.scrubbed', card).alt = 'Scrubbed copy of ' + p.file.name;
    const svg = $('.overlay', card);
    svg.setAttribute('aria-label', 'Regions found in ' + p.file.name);
    drawing(p, svg);
    const draw = $('.draw', card);
    draw.addEventListener('click', () => {
      p.drawing = !p.drawing;
      draw.setAttribute('aria-pressed', String(p.drawing));
      card.classList.toggle('drawing', p.drawing);
    });
    $('.add-box', card).addEventListener('submit', (e) => {
      e.preventDefault();
      const f = e.target.elements;
      const box = clampBox(p, [f.x.value, f.y.value, f.w.value, f.h.value].map(Number));
      if (!box) {
        f.x.setCustomValidity('That box lies outside the photo.');
        f.x.reportValidity();
        return;
      }
      f.x.setCustomValidity('');
      p.cover.push(box);
      e.target.reset();
      queue(p);
    });
    $('.reset', card).addEventListener('click', () => {
      p.cover = [];
      p.keep.clear();
      queue(p);
    });
    return card;
  }

  function setState(p, state, badge) {
    p.state = state;
    p.card.dataset.state = state;
    $('.badge', p.card).textContent = badge;
    const busy = state === 'pending';
    for (const b of p.card.querySelectorAll('.fix button, .add-box button')) b.disabled = busy;
    p.card.setAttribute('aria-busy', String(busy));
    savesChanged();
    showStatus();
  }

  function fail(p, reason) {
    // A newer correction is already waiting: this answer is out of date.
    if (waiting.includes(p)) return;
    if (p.result) URL.revokeObjectURL(p.result.url);
    p.result = null;
    $('.scrubbed', p.card).removeAttribute('src');
    const why = $('.reason', p.card);
    why.textContent = reason;
    why.hidden = false;
    $('.summary', p.card).textContent = '';
    // No copy, so nothing covered to show.
    p.card.dataset.regions = '0';
    $('.overlay', p.card).replaceChildren();
    $('.reset', p.card).hidden = !(p.cover.length || p.keep.size);
    setState(p, 'failed', 'Failed');
  }

  function done(p, bytes, report) {
    if (waiting.includes(p)) return;
    if (p.result) URL.revokeObjectURL(p.result.url);
    const kind = KINDS[report.output_format] || ['bin', 'application/octet-stream'];
    const url = URL.createObjectURL(new Blob([bytes], { type: kind[1] }));
    p.result = { bytes, report, url, crc: crc32(bytes) };
    const card = p.card;
    $('.reason', card).hidden = true;
    $('.scrubbed', card).src = url;
    if (p.originalBroken) $('.original', card).src = url;
    card.dataset.regions = String(report.regions.length);
    card.classList.toggle('review', report.needs_review);
    $('.summary', card).textContent = summary(report);
    $('.report', card).textContent = JSON.stringify(report, null, 2);
    $('.reset', card).hidden = !(p.cover.length || p.keep.size);
    outline(p);
    setState(p, 'done', report.needs_review ? 'Scrubbed: worth a look' : 'Scrubbed');
  }

  function summary(r) {
    const count = (list) => {
      const by = {};
      for (const x of list) by[x.category] = (by[x.category] || 0) + 1;
      return Object.entries(by).map(([k, n]) => `${n} ${NAMES[k] || k}${n > 1 && k !== 'manual' ? 's' : ''}`).join(', ');
    };
    const parts = [];
    parts.push(r.regions.length ? `Covered: ${count(r.regions)}.` : 'Nothing found to cover.');
    if (r.kept_by_user.length) parts.push(`Left uncovered by you: ${count(r.kept_by_user)}.`);
    if (r.review.length) parts.push(`Worth a look: ${count(r.review)}.`);
    parts.push(r.metadata_bytes ? `Hidden details removed: ${size(r.metadata_bytes)}.` : 'No hidden details found.');
    return parts.join(' ');
  }

  // The boxes are in the pixels of the photo as it is shown (upright). A JPEG copied
  // without re-encoding keeps its stored size and its orientation tag.
  function upright(r) {
    return r.path === 'lossless' && r.orientation >= 5 ? [r.height, r.width] : [r.width, r.height];
  }

  function outline(p) {
    const r = p.result.report;
    const svg = $('.overlay', p.card);
    const [w, h] = upright(r);
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.replaceChildren();
    let manual = 0;
    for (const region of r.regions) {
      if (region.category === 'manual') {
        const i = manual;
        manual += 1;
        mark(svg, region, 'region', '', `${NAMES.manual}, covered. Select to remove it.`, () => {
          if (confirm('Remove the box you drew? What is under it will show in the copy you share.')) {
            p.cover.splice(i, 1);
            queue(p);
          }
        });
      } else {
        mark(svg, region, 'region', '', `${NAMES[region.category]}, covered. Select to uncover it.`, () => {
          if (confirm(`Uncover this ${NAMES[region.category]}? What is under it will show in the copy you share.`)) {
            p.keep.add(region.id);
            queue(p);
          }
        });
      }
    }
    for (const region of r.review) {
      mark(svg, region, 'review', 'review', `${NAMES[region.category]} worth a look, not covered. Select to cover it.`, () => {
        const box = clampBox(p, region.box);
        if (!box) return;
        p.cover.push(box);
        queue(p);
      });
    }
    for (const region of r.kept_by_user) {
      mark(svg, region, 'kept', 'kept', `${NAMES[region.category]} you uncovered. Select to cover it again.`, () => {
        p.keep.delete(region.id);
        queue(p);
      });
    }
  }

  function mark(svg, region, testid, cls, label, act) {
    // Text and codes are covered at their angle: their outline is drawn, not their bounds.
    let rect;
    if (region.outline) {
      rect = document.createElementNS(SVG, 'polygon');
      rect.setAttribute('points', region.outline.map((c) => c.join(',')).join(' '));
    } else {
      const [x, y, w, h] = region.box;
      rect = document.createElementNS(SVG, 'rect');
      for (const [k, v] of Object.entries({ x, y, width: w, height: h })) rect.setAttribute(k, v);
    }
    rect.dataset.testid = testid;
    rect.dataset.category = region.category;
    rect.dataset.id = region.id;
    if (cls) rect.classList.add(cls);
    rect.setAttribute('tabindex', '0');
    rect.setAttribute('role', 'button');
    rect.setAttribute('aria-label', label);
    const title = document.createElementNS(SVG, 'title');
    title.textContent = label;
    rect.append(title);
    rect.addEventListener('click', (e) => {
      e.stopPropagation();
      act();
    });
    rect.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        act();
      }
    });
    svg.append(rect);
  }

  // Dragging on the original draws a box to cover. With a mouse or pen it always works; on a
  // touch screen only after "Draw a box", so the page still scrolls under a finger.
  function drawing(p, svg) {
    let start = null;
    let sketch = null;
    const at = (e) => {
      const b = svg.getBoundingClientRect();
      const [w, h] = p.result ? upright(p.result.report) : [b.width, b.height];
      return [
        Math.min(Math.max((e.clientX - b.left) / b.width, 0), 1) * w,
        Math.min(Math.max((e.clientY - b.top) / b.height, 0), 1) * h,
        e.clientX,
        e.clientY,
      ];
    };
    svg.addEventListener('pointerdown', (e) => {
      if (e.target !== svg || !p.result || p.state === 'pending' || e.button !== 0) return;
      if (e.pointerType === 'touch' && !p.drawing) return;
      start = at(e);
      sketch = document.createElementNS(SVG, 'rect');
      sketch.classList.add('sketch');
      svg.append(sketch);
      svg.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    svg.addEventListener('pointermove', (e) => {
      if (!start) return;
      const now = at(e);
      const [x, y] = [Math.min(start[0], now[0]), Math.min(start[1], now[1])];
      for (const [k, v] of Object.entries({ x, y, width: Math.abs(now[0] - start[0]), height: Math.abs(now[1] - start[1]) })) sketch.setAttribute(k, v);
    });
    const finish = (e) => {
      if (!start) return;
      const now = at(e);
      const began = start;
      start = null;
      sketch.remove();
      // A few screen pixels either way is a click, not a box.
      if (Math.abs(now[2] - began[2]) < 5 || Math.abs(now[3] - began[3]) < 5) return;
      const x0 = Math.floor(Math.min(began[0], now[0]));
      const y0 = Math.floor(Math.min(began[1], now[1]));
      const x1 = Math.ceil(Math.max(began[0], now[0]));
      const y1 = Math.ceil(Math.max(began[1], now[1]));
      const box = clampBox(p, [x0, y0, x1 - x0, y1 - y0]);
      if (!box) return;
      p.cover.push(box);
      if (p.drawing) $('.draw', p.card).click();
      queue(p);
    };
    svg.addEventListener('pointerup', finish);
    svg.addEventListener('pointercancel', () => {
      start = null;
      if (sketch) sketch.remove();
    });
  }

  // Whole pixels inside the photo, or null when nothing of the box is.
  function clampBox(p, [x, y, w, h]) {
    if (![x, y, w, h].every(Number.isFinite) || !p.result) return null;
    const [W, H] = upright(p.result.report);
    const x0 = Math.max(0, Math.floor(x));
    const y0 = Math.max(0, Math.floor(y));
    const x1 = Math.min(W, Math.ceil(x + w));
    const y1 = Math.min(H, Math.ceil(y + h));
    return x1 > x0 && y1 > y0 ? [x0, y0, x1 - x0, y1 - y0] : null;
  }

  // ---- saving ---------------------------------------------------------------------------

  // Names of the copies offered now (scrubbed, no newer correction running), as the
  // command line's --rename gives them: keep (the extension made right for the copy),
  // random, or numbered in the order added; a clash gets -2, -3, ...
  function names() {
    const taken = new Set();
    const out = new Map();
    for (const p of photos) {
      if (p.state !== 'done') continue;
      const format = p.result.report.output_format;
      const dot = p.file.name.lastIndexOf('.');
      const ext = dot > 0 ? p.file.name.slice(dot + 1) : '';
      const keepExt = (SAME_KIND[format] || []).includes(ext.toLowerCase());
      const outExt = keepExt ? ext : (KINDS[format] || ['bin'])[0];
      let stem;
      if (rename.value === 'random') stem = p.random;
      else if (rename.value === 'index') stem = String(p.index).padStart(4, '0');
      else stem = (dot > 0 ? p.file.name.slice(0, dot) : p.file.name) || 'image';
      let name = `${stem}.${outExt}`;
      for (let n = 2; taken.has(name.toLowerCase()); n += 1) name = `${stem}-${n}.${outExt}`;
      taken.add(name.toLowerCase());
      out.set(p, name);
    }
    return out;
  }

  // Brings every download up to date: each card's link and name (a photo finishing can
  // move another's -2), and the zip link. The zip itself is built when it is asked for.
  function savesChanged() {
    const named = names();
    for (const p of photos) {
      const a = $('.download', p.card);
      const name = named.get(p);
      if (!name) {
        disable(a);
        continue;
      }
      a.href = p.result.url;
      a.download = name;
      a.textContent = 'Download ' + name;
      a.removeAttribute('aria-disabled');
    }
    if (zipUrl) URL.revokeObjectURL(zipUrl);
    zipUrl = null;
    if (!named.size) {
      disable(zipLink);
      zipLink.textContent = 'Download all (zip)';
      return;
    }
    zipLink.href = '#';
    zipLink.removeAttribute('aria-disabled');
    zipLink.textContent = `Download all ${named.size} (zip)`;
  }

  function disable(a) {
    a.removeAttribute('href');
    a.setAttribute('aria-disabled', 'true');
  }

  // Runs before the link's own action, which then saves the zip just made.
  zipLink.addEventListener('click', () => {
    if (zipUrl || zipLink.getAttribute('aria-disabled')) return;
    const enc = new TextEncoder();
    const entries = [];
    const reports = [];
    for (const [p, name] of names()) {
      entries.push({ name, bytes: p.result.bytes, crc: p.result.crc });
      reports.push({ file: name, report: p.result.report });
    }
    const reportBytes = enc.encode(JSON.stringify(reports, null, 2) + '\n');
    entries.push({ name: 'phiscrub-report.json', bytes: reportBytes, crc: crc32(reportBytes) });
    zipUrl = URL.createObjectURL(zip(entries));
    zipLink.href = zipUrl;
  });

  // A zip of stored (uncompressed) entries: photos do not compress, and the format is
  // simple enough to write here. Every entry is dated 1980-01-01, so nothing tells when.
  function zip(entries) {
    const enc = new TextEncoder();
    const parts = [];
    const central = [];
    let offset = 0;
    for (const e of entries) {
      const name = enc.encode(e.name);
      const size = e.bytes.length;
      const local = new DataView(new ArrayBuffer(30));
      local.setUint32(0, 0x04034b50, true);
      local.setUint16(4, 20, true);
      local.setUint16(6, 0x0800, true);
      local.setUint16(12, 0x21, true);
      local.setUint32(14, e.crc, true);
      local.setUint32(18, size, true);
      local.setUint32(22, size, true);
      local.setUint16(26, name.length, true);
      parts.push(local, name, e.bytes);
      const dir = new DataView(new ArrayBuffer(46));
      dir.setUint32(0, 0x02014b50, true);
      dir.setUint16(4, 20, true);
      dir.setUint16(6, 20, true);
      dir.setUint16(8, 0x0800, true);
      dir.setUint16(14, 0x21, true);
      dir.setUint32(16, e.crc, true);
      dir.setUint32(20, size, true);
      dir.setUint32(24, size, true);
      dir.setUint16(28, name.length, true);
      dir.setUint32(42, offset, true);
      central.push(dir, name);
      offset += 30 + name.length + size;
    }
    const dirSize = central.reduce((n, x) => n + x.byteLength, 0);
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, entries.length, true);
    end.setUint16(10, entries.length, true);
    end.setUint32(12, dirSize, true);
    end.setUint32(16, offset, true);
    return new Blob([...parts, ...central, end], { type: 'application/zip' });
  }

  const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();

  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i += 1) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  // ---- small things ---------------------------------------------------------------------

  function showStatus() {
    const n = photos.length;
    if (!n && !skipped) return;
    const count = (s) => photos.filter((p) => p.state === s).length;
    const parts = [`${count('done')} of ${n} scrubbed`];
    if (count('failed')) parts.push(`${count('failed')} failed`);
    if (count('pending')) parts.push(`${count('pending')} working`);
    if (skipped) parts.push(`${skipped} file${skipped > 1 ? 's' : ''} in folders skipped (not images)`);
    statusLine.textContent = parts.join(', ') + '.';
  }

  function decode64(text) {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
    return out;
  }

  function randomHex() {
    const b = new Uint8Array(8);
    crypto.getRandomValues(b);
    return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  }

  function size(bytes) {
    return bytes < 1024 ? `${bytes} bytes` : bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
})();
