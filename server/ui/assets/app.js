// Ponder trace viewer. Plain JavaScript, no dependencies, no build step.
//
// Everything a trace holds is model output. It is only ever put into the
// page as text: textContent, Text nodes (Element.append with a string) and
// attribute values of our own choosing; never parsed as markup.
'use strict';
(() => {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const DX = 170; // layout: distance between depths (left to right)
  const DY = 24; // layout: distance between leaves (top to bottom)
  const VIRT = 1500; // above this many shown nodes, draw only those in view
  const AUTO_DEPTH_NODES = 4000; // larger runs open collapsed by depth
  const AUTO_DEPTH_SHOWN = 2500; // ... to about this many nodes
  const ROW = 20; // timeline row height
  const MIN_FIT = 0.2; // fitting never zooms out further than this
  const FIT_PAD = 24; // fitting leaves this many pixels free around the tree
  const R_MAX = 16; // the largest circle's radius (radiusOf)
  const LABEL_CHAR = 6; // a label character's width, about (10px font, in tree units)
  // A label whose node has a child straight to its right (a chain's next
  // step) sits above the edge, not on it: its baseline this far above the
  // centre keeps its descenders clear of the widest edge (the best path's
  // 4px, 2px a side, 3.6 tree units at the smallest zoom with labels, 0.55).
  const LABEL_LIFT = 8;

  const $ = (id) => document.getElementById(id);

  // el builds an HTML element. Strings among kids become Text nodes.
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v == null) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, String(v));
      }
    }
    for (const k of kids) if (k != null && k !== false) e.append(k);
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }
  const clip = (s, n) => {
    s = String(s == null ? '' : s);
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  };
  // iso isolates text set among the page's own words, so bidi controls in
  // it (U+202E RIGHT-TO-LEFT OVERRIDE...) cannot reorder what follows. The
  // text's own isolates are balanced first: a stray U+2069 would end ours
  // early, and one it leaves open would take our end for its own.
  function iso(s) {
    s = String(s);
    if (!/[\u2066-\u2069]/.test(s)) return '\u2068' + s + '\u2069';
    let open = 0, out = '';
    for (const ch of s) {
      if (ch >= '\u2066' && ch <= '\u2068') open++;
      else if (ch === '\u2069') { if (!open) continue; open--; }
      out += ch;
    }
    return '\u2068' + out + '\u2069'.repeat(open + 1);
  }
  // isoJSON is v as JSON on one line among the page's words (an event's
  // data in its timeline row): every string, keys too (a vote count keyed
  // by answer), is isolated.
  function isoJSON(v) {
    return JSON.stringify(v, (k, x) => {
      if (typeof x === 'string') return iso(x);
      if (x && typeof x === 'object' && !Array.isArray(x)) {
        const o = {};
        for (const [kk, vv] of Object.entries(x)) o[iso(kk)] = vv;
        return o;
      }
      return x;
    });
  }
  const firstLine = (s) => String(s || '').trim().split('\n', 1)[0];
  const fmtNum = (n) => (n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' : n >= 1e4 ? Math.round(n / 1e3) + 'k' : n >= 1e3 ? (n / 1e3).toFixed(1) + 'k' : String(n));
  const fmtMs = (ms) => (ms >= 60000 ? (ms / 60000).toFixed(1) + ' min' : ms >= 1000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms) + ' ms');
  const fmtScore = (v) => (typeof v === 'number' ? (v >= 0 ? '+' : '') + v.toFixed(3) : '');
  const keyOf = (scope, id) => (scope && scope.length ? scope.join('/') + '/' + id : String(id));
  function usageText(u) {
    if (!u) return '';
    const parts = [`${u.llm_calls || 0} calls`, `${fmtNum((u.prompt_tokens || 0) + (u.completion_tokens || 0))} tok`];
    if (u.tool_calls) parts.push(`${u.tool_calls} tools`);
    if (u.nodes) parts.push(`${u.nodes} nodes`);
    if (u.wall_ms) parts.push(fmtMs(u.wall_ms));
    return parts.join(' · ');
  }

  // ---- state ---------------------------------------------------------------
  const S = {
    runs: [], runId: null, follow: true, filter: '',
    trace: null, nodes: new Map(), events: [], bySeq: new Map(), nodeEvents: new Map(), lastSeq: 0,
    collapsed: new Set(), expanded: new Set(), subsOpen: new Set(), depthLimit: Infinity, maxDepth: 0,
    selected: null, selectedEvent: null, best: new Set(),
    matches: [], matchIdx: -1, matchSet: new Set(), colour: 'score',
    view: { tx: 40, ty: 40, s: 1 }, userMoved: false, shown: [], stamp: 0, dirty: true,
    es: null, runsES: null, t0: 0, firstRender: false, evFiltered: [], opFilter: '', nodeOnly: false,
  };

  // ---- model ---------------------------------------------------------------
  function resetModel() {
    S.nodes = new Map(); S.events = []; S.bySeq = new Map(); S.nodeEvents = new Map(); S.lastSeq = 0;
    S.collapsed = new Set(); S.expanded = new Set(); S.subsOpen = new Set(); S.depthLimit = Infinity;
    S.selected = null; S.selectedEvent = null; S.best = new Set(); S.matches = []; S.matchIdx = -1; S.matchSet = new Set();
    S.userMoved = false; S.dirty = true; S.evFiltered = [];
  }

  // putNode adds or updates the node d of the structure at scope.
  function putNode(scope, d, seq) {
    const key = keyOf(scope, d.id);
    const sub = d.sub;
    delete d.sub;
    delete d.children;
    let n = S.nodes.get(key);
    if (n) {
      n.d = d;
    } else {
      n = { key, scope: scope.join('/'), d, kids: [], extra: [], parent: null, sub: null, created: seq || 0, x: 0, y: 0, dd: 0, vk: [], vis: 0, total: 1 };
      S.nodes.set(key, n);
      const ps = d.parents || [];
      if (ps.length) {
        n.parent = keyOf(scope, ps[0]);
        const p = S.nodes.get(n.parent);
        if (p && !p.kids.includes(key)) p.kids.push(key);
        for (const q of ps.slice(1)) n.extra.push(keyOf(scope, q));
      } else if (scope.length) {
        // The root of a nested search hangs off the node that owns it.
        n.parent = scope.join('/');
        const owner = S.nodes.get(n.parent);
        if (owner) owner.sub = key;
      }
      S.dirty = true;
    }
    if (seq && !n.created) n.created = seq;
    if (sub && sub.nodes) {
      const inner = scope.concat([d.id]);
      for (const c of sub.nodes) putNode(inner, c, 0);
    }
    return n;
  }

  // putStats applies a stats event: new Q (value) and N (visits) of nodes.
  // The node's state is copied, not changed, because it may be an earlier
  // event's.
  function putStats(e) {
    const scope = e.scope || [];
    for (const st of e.stats || []) {
      const n = S.nodes.get(keyOf(scope, st.id));
      if (n) n.d = Object.assign({}, n.d, { value: st.value, visits: st.visits });
    }
    S.dirty = true;
  }

  // putScore applies an evaluate event: it carries the node's new score
  // (no update event repeats it).
  function putScore(e) {
    const d = e.data || {};
    if (typeof d.kind !== 'string' || typeof d.score !== 'number' || !(e.nodes || []).length) return;
    const n = S.nodes.get(keyOf(e.scope || [], e.nodes[0]));
    if (!n) return;
    const change = { scores: Object.assign({}, n.d.scores, { [d.kind]: d.score }) };
    if (d.detail) change.meta = Object.assign({}, n.d.meta, { eval_detail: d.detail });
    n.d = Object.assign({}, n.d, change);
    S.dirty = true;
  }

  // putPruned applies a prune event: it lists the nodes pruned (no update
  // event repeats it).
  function putPruned(e) {
    const scope = e.scope || [];
    for (const id of e.nodes || []) {
      const n = S.nodes.get(keyOf(scope, id));
      if (n && !n.d.pruned) n.d = Object.assign({}, n.d, { pruned: true });
    }
    S.dirty = true;
  }

  function indexEvent(e) {
    if (e.seq <= S.lastSeq) return false;
    S.lastSeq = e.seq;
    S.events.push(e);
    S.bySeq.set(e.seq, e);
    const scope = e.scope || [];
    for (const id of e.nodes || []) {
      const k = keyOf(scope, id);
      let list = S.nodeEvents.get(k);
      if (!list) S.nodeEvents.set(k, (list = []));
      if (list[list.length - 1] !== e) list.push(e);
    }
    return true;
  }

  // applyEvent applies a streamed event; false for one already applied.
  function applyEvent(e) {
    if (!indexEvent(e)) return false;
    if ((e.op === 'node' || e.op === 'update') && e.node) {
      const n = putNode(e.scope || [], e.node, e.op === 'node' ? e.seq : 0);
      if (e.op === 'update') S.dirty = true;
      void n;
    }
    if (e.op === 'stats') putStats(e);
    if (e.op === 'evaluate') putScore(e);
    if (e.op === 'prune') putPruned(e);
    if (S.opFilter === '' || S.opFilter === e.op) {
      if (!S.nodeOnly || eventTouches(e, S.selected)) S.evFiltered.push(e);
    }
    return true;
  }

  function loadTrace(t) {
    const keep = S.runId === t.id && S.trace ? { sel: S.selected, col: S.collapsed, exp: S.expanded, subs: S.subsOpen, depth: S.depthLimit, view: S.view, moved: S.userMoved } : null;
    resetModel();
    S.trace = t;
    for (const e of t.events || []) indexEvent(e);
    const created = new Map();
    for (const e of S.events) if (e.op === 'node' && e.node) created.set(keyOf(e.scope || [], e.node.id), e.seq);
    if (t.structure && t.structure.nodes) {
      for (const d of t.structure.nodes) putNode([], d, 0);
    } else {
      for (const e of S.events) {
        if ((e.op === 'node' || e.op === 'update') && e.node) putNode(e.scope || [], e.node, e.op === 'node' ? e.seq : 0);
        else if (e.op === 'stats') putStats(e);
        else if (e.op === 'evaluate') putScore(e);
        else if (e.op === 'prune') putPruned(e);
      }
    }
    for (const [k, seq] of created) { const n = S.nodes.get(k); if (n) n.created = seq; }
    S.best = new Set((t.best_path || []).map(String));
    if (keep) {
      S.selected = keep.sel; S.collapsed = keep.col; S.expanded = keep.exp; S.subsOpen = keep.subs;
      S.depthLimit = keep.depth; S.view = keep.view; S.userMoved = keep.moved;
    } else {
      S.fitWhole = hashParams().get('fit') === 'all';
      const want = hashParams().get('depth');
      if (want === 'all') S.depthLimit = Infinity;
      else if (want && +want > 0) S.depthLimit = +want;
      else if (S.nodes.size > AUTO_DEPTH_NODES) S.depthLimit = autoDepth();
    }
    refilterEvents();
  }

  // autoDepth picks the deepest cut that keeps about AUTO_DEPTH_SHOWN nodes.
  function autoDepth() {
    const per = [];
    for (const n of S.nodes.values()) if (n.scope === '') per[n.d.depth || 0] = (per[n.d.depth || 0] || 0) + 1;
    let sum = 0;
    for (let d = 0; d < per.length; d++) {
      sum += per[d] || 0;
      if (sum > AUTO_DEPTH_SHOWN) return Math.max(1, d - 1);
    }
    return Infinity;
  }

  // ---- layout --------------------------------------------------------------
  function visibleKids(n) {
    if (S.collapsed.has(n.key)) return [];
    if (n.dd >= S.depthLimit && !S.expanded.has(n.key)) return [];
    const out = [];
    if (n.sub && S.subsOpen.has(n.key) && S.nodes.has(n.sub)) out.push(n.sub);
    for (const k of n.kids) if (S.nodes.has(k)) out.push(k);
    return out;
  }

  function layout() {
    const root = S.nodes.get('0');
    S.stamp++;
    S.shown = [];
    if (!root) return;
    // Subtree sizes (nested searches included), children before parents.
    const all = Array.from(S.nodes.values());
    for (const n of all) n.total = 1;
    for (let i = all.length - 1; i >= 0; i--) {
      const n = all[i];
      if (n.parent) { const p = S.nodes.get(n.parent); if (p) p.total += n.total; }
    }
    root.dd = 0;
    const stack = [root];
    let maxDepth = 0;
    while (stack.length) {
      const n = stack.pop();
      n.vis = S.stamp;
      S.shown.push(n);
      const kids = visibleKids(n);
      n.vk = kids;
      for (let i = kids.length - 1; i >= 0; i--) {
        const c = S.nodes.get(kids[i]);
        c.dd = n.dd + 1;
        stack.push(c);
      }
      if (n.dd > maxDepth) maxDepth = n.dd;
    }
    let leaf = 0;
    for (const n of S.shown) if (!n.vk.length) n.y = leaf++ * DY;
    for (let i = S.shown.length - 1; i >= 0; i--) {
      const n = S.shown[i];
      if (n.vk.length) n.y = (S.nodes.get(n.vk[0]).y + S.nodes.get(n.vk[n.vk.length - 1]).y) / 2;
      n.x = n.dd * DX;
    }
    let deepest = 0;
    for (const n of S.nodes.values()) if (n.scope === '' && (n.d.depth || 0) > deepest) deepest = n.d.depth || 0;
    S.maxDepth = Math.max(deepest, maxDepth);
    S.dirty = false;
  }

  // ---- drawing -------------------------------------------------------------
  function scoreOf(d) {
    const s = d.scores || {};
    for (const k of ['verifier', 'orm', 'prm', 'value']) if (typeof s[k] === 'number') return s[k];
    return null;
  }
  function colourOf(n) {
    let v = null;
    if (S.colour === 'value') v = n.d.visits > 0 || n.d.value ? n.d.value : null;
    else v = scoreOf(n.d);
    if (v == null || !isFinite(v)) return '#a7b0b8';
    v = Math.max(-1, Math.min(1, v));
    const h = ((v + 1) / 2) * 120;
    return `hsl(${h.toFixed(0)},${h > 90 ? 60 : 70}%,${h > 90 ? 38 : 48}%)`;
  }
  function radiusOf(n) {
    return Math.min(R_MAX, 5 + 2 * Math.log2(1 + (n.d.visits || 0)));
  }

  const svg = () => $('tree');
  function setTransform() {
    const { tx, ty, s } = S.view;
    $('viewport').setAttribute('transform', `translate(${tx.toFixed(2)},${ty.toFixed(2)}) scale(${s})`);
  }

  function render() {
    if (!S.trace) return;
    if (S.dirty) layout();
    setTransform();
    const W = svg().clientWidth || 800, H = svg().clientHeight || 400;
    const { tx, ty, s } = S.view;
    const m = 150 / s;
    const x0 = -tx / s - m, x1 = (W - tx) / s + m, y0 = -ty / s - m, y1 = (H - ty) / s + m;
    const virt = S.shown.length > VIRT;
    const inView = (x, y) => !virt || (x >= x0 && x <= x1 && y >= y0 && y <= y1);
    const edgeInView = (a, b) => !virt || !(Math.max(a.x, b.x) < x0 || Math.min(a.x, b.x) > x1 || Math.max(a.y, b.y) < y0 || Math.min(a.y, b.y) > y1);
    const curve = (a, b) => { const mx = (a.x + b.x) / 2; return `M${a.x},${a.y}C${mx},${a.y} ${mx},${b.y} ${b.x},${b.y}`; };
    let dn = '', dx = '', ds = '', db = '';
    const nodes = document.createDocumentFragment();
    const labels = document.createDocumentFragment();
    const minR = 2.5 / s;
    let inside = 0;
    for (const n of S.shown) if (inView(n.x, n.y)) inside++;
    const labelled = s >= 0.55 && inside <= 1500;
    for (const n of S.shown) {
      for (const ck of n.vk) {
        const c = S.nodes.get(ck);
        if (!edgeInView(n, c)) continue;
        const p = curve(n, c);
        if (c.scope !== n.scope) ds += p;
        else if (c.scope === '' && S.best.has(n.key) && S.best.has(c.key)) db += p;
        else dn += p;
      }
      for (const pk of n.extra) {
        const p = S.nodes.get(pk);
        if (p && p.vis === S.stamp && edgeInView(p, n)) dx += curve(p, n);
      }
      if (!inView(n.x, n.y)) continue;
      const hidden = !n.vk.length && (n.kids.length || n.sub);
      let cls = 'node';
      if (n.key === '0') cls += ' root';
      if (n.d.pruned) cls += ' pruned';
      if (n.d.terminal) cls += ' terminal';
      const ver = n.d.scores && n.d.scores.verifier;
      if (ver === 1) cls += ' correct'; else if (ver === -1) cls += ' wrong';
      if (n.sub && !S.subsOpen.has(n.key)) cls += ' hassub';
      if (hidden) cls += ' collapsed';
      if (n.scope === '' && S.best.has(n.key)) cls += ' best';
      if (S.matchSet.has(n.key)) cls += ' match';
      if (S.selected === n.key) cls += ' selected';
      nodes.append(svgEl('circle', { class: cls, 'data-key': n.key, cx: n.x, cy: n.y, r: Math.max(radiusOf(n), minR).toFixed(2), fill: colourOf(n) }));
      if (labelled) {
        // A label ends before the next depth's circles: both scale with
        // the zoom, so how many characters fit does not depend on it.
        const r = radiusOf(n);
        const chars = Math.floor((DX - r - 8 - R_MAX) / LABEL_CHAR);
        const straight = n.vk.some((k) => Math.abs(S.nodes.get(k).y - n.y) < 0.5);
        const lbl = svgEl('text', { class: 'lbl', x: n.x + r + 4, y: straight ? n.y - LABEL_LIFT : n.y + 3.5 });
        const v = n.d.visits ? `n=${n.d.visits} ` : '';
        lbl.textContent = v + clip(firstLine(n.d.answer && n.d.terminal ? '⇒ ' + n.d.answer : n.d.content), Math.max(4, chars - v.length));
        labels.append(lbl);
        if (hidden) {
          const more = svgEl('text', { class: 'lbl more', x: n.x - 4, y: n.y + radiusOf(n) + 11 });
          more.textContent = `+${n.total - 1}`;
          labels.append(more);
        }
      }
    }
    const edges = $('edges');
    edges.replaceChildren(
      svgEl('path', { class: 'edges', d: dn || 'M0,0' }),
      svgEl('path', { class: 'edges extra', d: dx || 'M0,0' }),
      svgEl('path', { class: 'edges sub', d: ds || 'M0,0' }),
      svgEl('path', { class: 'edges best', d: db || 'M0,0' }),
    );
    // Far out, strokes are invisible but cost as much to paint as the fills.
    $('nodes').setAttribute('class', s * 5 < 2.5 ? 'lod' : '');
    $('nodes').replaceChildren(nodes);
    $('labels').replaceChildren(labels);
    const tree = svg();
    tree.dataset.nodes = String(S.nodes.size);
    tree.dataset.shown = String(S.shown.length);
    tree.dataset.events = String(S.events.length);
    tree.dataset.run = S.runId || '';
    tree.dataset.status = S.trace.status || '';
    tree.dataset.source = S.trace.fromStream ? 'stream' : 'trace'; // "trace": as stored, nothing streamed since
    const hiddenNote = S.shown.length < S.nodes.size ? ` · ${fmtNum(S.shown.length)} shown` : '';
    $('counts').textContent = `${fmtNum(S.nodes.size)} nodes${hiddenNote} · ${fmtNum(S.events.length)} events`;
    updateDepthSelect();
  }

  // Live updates redraw at most once a frame, and big trees at most three
  // times a second, so a fast search never starves the page.
  let renderQueued = false, lastLive = 0;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    const wait = S.nodes.size > 2000 ? Math.max(0, 330 - (performance.now() - lastLive)) : 0;
    setTimeout(() => requestAnimationFrame(() => {
      renderQueued = false;
      lastLive = performance.now();
      if (!S.trace) return;
      if (S.dirty) layout();
      if (!S.userMoved) fit(false);
      render();
      afterRender();
    }), wait);
  }
  let reRenderTimer = 0;
  function scheduleViewRender() {
    clearTimeout(reRenderTimer);
    reRenderTimer = setTimeout(() => render(), 120);
  }

  function afterRender() {
    if (S.firstRender) return;
    S.firstRender = true;
    // Measure up to the next frame, after the browser has painted.
    requestAnimationFrame(() => setTimeout(() => {
      svg().dataset.renderMs = (performance.now() - S.t0).toFixed(1);
      document.body.dataset.state = 'ready';
    }, 0));
  }

  function bounds() {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const n of S.shown) {
      if (n.x < x0) x0 = n.x; if (n.x > x1) x1 = n.x;
      if (n.y < y0) y0 = n.y; if (n.y > y1) y1 = n.y;
    }
    return { x0, x1, y0, y1 };
  }
  // fit sets the view to show every shown node, and draws unless told not.
  function fit(draw = true, whole = false) {
    if (S.dirty) layout();
    if (!S.shown.length) return;
    const b = bounds();
    const W = svg().clientWidth || 800, H = svg().clientHeight || 400;
    // The tree's extent in its own units (the nodes' centres, room for
    // the largest circles and the last labels), which zooming scales,
    // inside a margin of FIT_PAD screen pixels on every side, which it
    // does not.
    const w = b.x1 - b.x0 + 2 * R_MAX + DX, h = b.y1 - b.y0 + 2 * R_MAX;
    const s = Math.min(1.4, Math.max(1e-3, W - 2 * FIT_PAD) / w, Math.max(1e-3, H - 2 * FIT_PAD) / h);
    if (s >= MIN_FIT || whole || S.fitWhole) {
      S.view = { s, tx: FIT_PAD + (R_MAX - b.x0) * s + Math.max(0, (W - 2 * FIT_PAD - w * s) / 2), ty: FIT_PAD + (R_MAX - b.y0) * s + Math.max(0, (H - 2 * FIT_PAD - h * s) / 2) };
    } else {
      // Too tall to show whole and still tell nodes apart: show the
      // part around the root, readable, and let the user scroll.
      const root = S.nodes.get('0');
      const fs = Math.min(MIN_FIT, Math.max(1e-3, W - 2 * FIT_PAD) / w);
      S.view = { s: fs, tx: FIT_PAD + (R_MAX - b.x0) * fs, ty: H / 2 - (root ? root.y : b.y0) * fs };
    }
    if (draw) render();
  }
  function centre(key) {
    const n = S.nodes.get(key);
    if (!n || n.vis !== S.stamp) return;
    const W = svg().clientWidth || 800, H = svg().clientHeight || 400;
    const s = Math.max(S.view.s, 0.6);
    S.view = { s, tx: W / 2 - n.x * s, ty: H / 2 - n.y * s };
    S.userMoved = true;
    render();
  }

  // ---- interaction on the tree ---------------------------------------------
  function initTree() {
    const t = svg();
    let drag = null;
    t.addEventListener('mousedown', (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, tx: S.view.tx, ty: S.view.ty, moved: false };
    });
    window.addEventListener('mousemove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      drag.moved = true;
      t.classList.add('dragging');
      S.view.tx = drag.tx + dx; S.view.ty = drag.ty + dy; S.userMoved = true;
      setTransform();
    });
    window.addEventListener('mouseup', () => {
      if (!drag) return;
      const moved = drag.moved;
      drag = null;
      t.classList.remove('dragging');
      if (moved && S.shown.length > VIRT) scheduleViewRender();
    });
    t.addEventListener('click', (e) => {
      const k = e.target.getAttribute && e.target.getAttribute('data-key');
      if (k) selectNode(k, false);
    });
    t.addEventListener('dblclick', (e) => {
      const k = e.target.getAttribute && e.target.getAttribute('data-key');
      if (k) toggleCollapse(k);
    });
    // The wheel scrolls (trees are tall); Ctrl+wheel, and a trackpad's
    // pinch, zoom at the pointer.
    t.addEventListener('wheel', (e) => {
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      if (e.ctrlKey || e.metaKey) {
        const r = t.getBoundingClientRect();
        zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * unit * 0.0025));
        return;
      }
      S.view.tx -= (e.shiftKey ? e.deltaY : e.deltaX) * unit;
      S.view.ty -= (e.shiftKey ? 0 : e.deltaY) * unit;
      S.userMoved = true;
      setTransform();
      if (S.shown.length > VIRT) scheduleViewRender();
    }, { passive: false });
    const tip = $('tip');
    t.addEventListener('mousemove', (e) => {
      const k = e.target.getAttribute && e.target.getAttribute('data-key');
      const n = k && S.nodes.get(k);
      if (!n) { tip.hidden = true; return; }
      const sc = scoreOf(n.d);
      tip.textContent = `#${k} ${n.d.kind}` + (n.d.visits ? ` · n=${n.d.visits}` : '') + (sc != null ? ` · ${fmtScore(sc)}` : '') +
        (n.d.answer ? ` · answer ${iso(clip(n.d.answer, 40))}` : '') + '\n' + clip(n.d.content, 280);
      const r = $('graph-wrap').getBoundingClientRect();
      tip.style.left = Math.min(e.clientX - r.left + 14, r.width - 370) + 'px';
      tip.style.top = (e.clientY - r.top + 14) + 'px';
      tip.hidden = false;
    });
    t.addEventListener('mouseleave', () => { tip.hidden = true; });
    // The drawing area changes size with the window, and with the page
    // around it (the problem opened in full, an error line, the toolbar
    // wrapping): a view the user has not moved fits the tree again, so it
    // never sits outside a smaller area.
    let size = '';
    new ResizeObserver(() => {
      const now = t.clientWidth + 'x' + t.clientHeight;
      if (now === size) return;
      size = now;
      if (!S.trace) return;
      if (S.userMoved) { scheduleViewRender(); return; }
      // Fit without drawing, and draw with the next scheduled render
      // only if the view moved: the area settles as a trace loads (its
      // header fills), and an immediate fit drew a 10,000-node tree twice.
      const was = S.view && [S.view.s, S.view.tx, S.view.ty].join();
      fit(false);
      if ([S.view.s, S.view.tx, S.view.ty].join() !== was) scheduleViewRender();
    }).observe(t);
  }

  function zoomAt(px, py, f) {
    const s = Math.max(0.002, Math.min(8, S.view.s * f));
    const k = s / S.view.s;
    S.view = { s, tx: px - (px - S.view.tx) * k, ty: py - (py - S.view.ty) * k };
    S.userMoved = true;
    setTransform();
    scheduleViewRender();
  }
  function zoomCentre(f) {
    const t = svg();
    zoomAt((t.clientWidth || 800) / 2, (t.clientHeight || 400) / 2, f);
  }

  function toggleCollapse(key) {
    const n = S.nodes.get(key);
    if (!n) return;
    if (n.vk.length) {
      S.collapsed.add(key); S.expanded.delete(key); S.subsOpen.delete(key);
    } else {
      S.collapsed.delete(key); S.expanded.add(key);
      if (n.sub) S.subsOpen.add(key);
    }
    S.dirty = true;
    render();
    if (S.selected === key) showNode(key);
  }

  function toggleSub(key) {
    if (S.subsOpen.has(key)) S.subsOpen.delete(key);
    else { S.subsOpen.add(key); S.collapsed.delete(key); S.expanded.add(key); }
    S.dirty = true;
    render();
    if (S.selected === key) showNode(key);
  }

  // reveal makes key visible: its ancestors expand, nested searches open.
  function reveal(key) {
    let n = S.nodes.get(key);
    let changed = false;
    while (n && n.parent) {
      const p = S.nodes.get(n.parent);
      if (!p) break;
      if (S.collapsed.delete(p.key)) changed = true;
      if (!S.expanded.has(p.key)) { S.expanded.add(p.key); changed = true; }
      if (p.sub === n.key && !S.subsOpen.has(p.key)) { S.subsOpen.add(p.key); changed = true; }
      n = p;
    }
    if (changed) S.dirty = true;
  }

  function selectNode(key, andCentre) {
    if (!S.nodes.has(key)) return;
    S.selected = key;
    if (andCentre) { reveal(key); if (S.dirty) layout(); centre(key); } else render();
    showNode(key);
    setHash();
    if (S.nodeOnly) refilterEvents();
  }

  // clearSelection leaves no node selected, and the address naming none.
  function clearSelection() {
    S.selected = null;
    render();
    showPlaceholder();
    setHash();
    if (S.nodeOnly) refilterEvents();
  }

  function keyNav(e) {
    // Keys belong to the tree only when nothing else has the focus
    // (inputs, buttons, the runs list, links in the details keep theirs).
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tgt = e.target;
    if (tgt && tgt !== document.body && !(tgt.closest && tgt.closest('#graph-wrap'))) return;
    if (e.key === '/') { e.preventDefault(); $('search').focus(); return; }
    if (e.key === 'f' || e.key === 'F') { S.userMoved = true; fit(true, true); return; }
    if (e.key === '+' || e.key === '=') { zoomCentre(1.25); return; }
    if (e.key === '-' || e.key === '_') { zoomCentre(0.8); return; }
    const n = S.selected && S.nodes.get(S.selected);
    if (!n) {
      // Nothing selected yet: the first arrow (or Enter) picks the root,
      // so the tree can be walked without a mouse.
      if (S.nodes.has('0') && /^(Arrow(Left|Right|Up|Down)|Enter)$/.test(e.key)) { e.preventDefault(); selectNode('0', true); }
      return;
    }
    let to = null;
    if (e.key === 'ArrowLeft') to = n.parent;
    else if (e.key === 'ArrowRight') to = n.vk[0] || null;
    else if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
      const p = n.parent && S.nodes.get(n.parent);
      if (p) { const i = p.vk.indexOf(n.key); to = p.vk[i + (e.key === 'ArrowUp' ? -1 : 1)] || null; }
    } else if (e.key === 'c' || e.key === 'Enter') { toggleCollapse(n.key); return; }
    else if (e.key === 'Escape') { clearSelection(); return; }
    if (to) { e.preventDefault(); selectNode(to, true); }
  }

  // ---- search --------------------------------------------------------------
  let searchTimer = 0;
  function runSearch() {
    const q = $('search').value.trim().toLowerCase();
    S.matches = [];
    if (q) {
      for (const n of S.nodes.values()) {
        const d = n.d;
        if ((d.content && d.content.toLowerCase().includes(q)) || (d.answer && d.answer.toLowerCase().includes(q))) S.matches.push(n.key);
      }
    }
    S.matchSet = new Set(S.matches);
    S.matchIdx = -1;
    $('search-count').textContent = q ? `${S.matches.length} match${S.matches.length === 1 ? '' : 'es'}` : '';
    render();
  }
  function nextMatch(dir) {
    if (!S.matches.length) return;
    S.matchIdx = (S.matchIdx + dir + S.matches.length) % S.matches.length;
    $('search-count').textContent = `${S.matchIdx + 1} of ${S.matches.length}`;
    selectNode(S.matches[S.matchIdx], true);
  }

  function updateDepthSelect() {
    const sel = $('depth');
    const want = Number.isFinite(S.depthLimit) ? String(S.depthLimit) : 'all';
    if (sel.dataset.max !== String(S.maxDepth)) {
      const opts = [el('option', { value: 'all', text: 'all' })];
      for (let d = 1; d <= Math.max(S.maxDepth, Number.isFinite(S.depthLimit) ? S.depthLimit : 0); d++) opts.push(el('option', { value: String(d), text: String(d) }));
      sel.replaceChildren(...opts);
      sel.dataset.max = String(S.maxDepth);
    }
    if (sel.value !== want) sel.value = want;
    $('subs').textContent = S.subsOpen.size ? 'nested: shown' : 'nested: hidden';
  }

  // ---- details panel -------------------------------------------------------
  function showPlaceholder() {
    $('details').replaceChildren(el('p', { class: 'placeholder', text: 'Click a node or an event to see its text, scores, the LLM call that made it, tool calls and retrieved chunks.' }));
    $('details').dataset.node = '';
  }
  function kv(pairs) {
    const dl = el('dl', { class: 'kv' });
    for (const [k, v] of pairs) if (v !== undefined && v !== null && v !== '') dl.append(el('dt', { text: k }), el('dd', { text: String(v) }));
    return dl;
  }
  function pre(text, cls) { return el('pre', { class: cls, text: String(text == null ? '' : text) }); }
  function json(v) { try { return JSON.stringify(v, null, 2); } catch (err) { return String(v); } }
  function link(text, fn) { return el('a', { class: 'link', tabindex: '0', text, onclick: fn, onkeydown: (e) => { if (e.key === 'Enter') fn(); } }); }

  // renderCall shows one llm_call event: its prompt messages and responses.
  function renderCall(ev, title, open, highlight) {
    const d = ev.data || {};
    const toks = (d.prompt_tokens != null ? `${d.prompt_tokens}+${d.completion_tokens} tok` : '');
    const box = el('details', open ? { open: '' } : null,
      el('summary', { text: `${title} · #${ev.seq} · ${d.purpose || 'call'}${d.model ? ' · ' + iso(d.model) : ''} · n=${d.n || 1}${toks ? ' · ' + toks : ''}${d.ms != null ? ' · ' + fmtMs(d.ms) : ''}${d.error ? (d.cancelled ? ' · cancelled' : ' · failed') : ''}` }));
    // A call the search gave up (the run stopped or ran out of time, or no
    // search needed the reply) failed through no fault of the LLM's: it is
    // shown muted, so that the red stays for the LLM's own failures.
    if (d.error && d.cancelled) box.append(el('div', { class: 'muted call-cancelled', title: 'The search gave this request up: the run stopped or ran out of time, or no search needed the reply.', text: 'cancelled by the search: ' + d.error }));
    else if (d.error) box.append(el('div', { class: 'error', text: 'error: ' + d.error }));
    if (Array.isArray(d.messages)) {
      box.append(el('h3', { text: 'Prompt' }));
      for (const m of d.messages) {
        const div = el('div', { class: 'msg' }, el('span', { class: 'role', text: m.role || '?' }), pre(m.content));
        if (m.tool_calls) div.append(pre(json(m.tool_calls)));
        box.append(div);
      }
    } else {
      box.append(el('p', { class: 'muted', text: 'Prompts were not recorded: set record_prompts: true (PONDER_RECORD_PROMPTS=1), or use ponder solve --trace FILE.' }));
    }
    if (Array.isArray(d.responses)) {
      box.append(el('h3', { text: d.responses.length > 1 ? `Responses (${d.responses.length})` : 'Response' }));
      d.responses.forEach((r, i) => {
        const p = pre(r, highlight != null && r === highlight ? 'same' : null);
        if (d.responses.length > 1) box.append(el('span', { class: 'muted', text: `#${i + 1}${highlight != null && r === highlight ? ' (this node)' : ''}` }));
        box.append(p);
      });
    }
    return box;
  }

  function eventsOfNode(key) { return S.nodeEvents.get(key) || []; }
  function eventTouches(e, key) {
    if (!key) return false;
    const scope = e.scope || [];
    for (const id of e.nodes || []) if (keyOf(scope, id) === key) return true;
    return false;
  }

  // nearEvent finds the nearest event of op in the node's scope before (dir
  // -1) or after (dir +1) the node's creation, within a few dozen events.
  function nearEvent(n, op, dir) {
    if (!n.created) return null;
    let i = S.events.findIndex((e) => e.seq === n.created);
    if (i < 0) return null;
    for (let steps = 0; steps < 60; steps++) {
      i += dir;
      const e = S.events[i];
      if (!e) return null;
      if ((e.scope || []).join('/') !== n.scope) continue;
      if (e.op === op) return e;
      if (dir > 0 && e.op === 'node') return null;
    }
    return null;
  }

  function chunksOf(d) {
    const meta = d.meta || {};
    for (const k of ['chunks', 'sources', 'retrieved']) if (Array.isArray(meta[k])) return meta[k];
    return null;
  }

  function showNode(key) {
    const n = S.nodes.get(key);
    if (!n) return;
    const d = n.d;
    const box = $('details');
    const parts = [];
    const badges = el('div', { class: 'row' }, el('span', { class: 'badge', text: d.kind }));
    if (d.terminal) badges.append(el('span', { class: 'badge done', text: 'terminal' }));
    if (d.pruned) badges.append(el('span', { class: 'badge', text: 'pruned' }));
    if (n.scope === '' && S.best.has(key)) badges.append(el('span', { class: 'badge budget', text: 'best path' }));
    if (n.scope) badges.append(el('span', { class: 'badge', text: 'nested search' }));
    parts.push(el('h2', { text: `Node ${key}` }), badges);
    const actions = el('div', { class: 'actions' });
    if (n.parent) actions.append(el('button', { type: 'button', text: '← parent', onclick: () => selectNode(n.parent, true) }));
    if (n.kids.length) actions.append(el('button', { type: 'button', text: n.vk.some((k) => n.kids.includes(k)) ? 'collapse children' : `expand children (${n.kids.length})`, onclick: () => toggleCollapse(key) }));
    if (n.sub) actions.append(el('button', { type: 'button', text: S.subsOpen.has(key) ? 'hide nested search' : `show nested search (${(S.nodes.get(n.sub) || { total: 0 }).total} nodes)`, onclick: () => toggleSub(key) }));
    actions.append(el('button', { type: 'button', text: 'centre', onclick: () => selectNode(key, true) }));
    parts.push(actions);
    const pairs = [['depth', d.depth], ['visits', d.visits], ['value (Q)', typeof d.value === 'number' ? d.value.toFixed(4) : d.value]];
    for (const [k, v] of Object.entries(d.scores || {})) pairs.push([`score ${k}`, fmtScore(v)]);
    pairs.push(['created', d.created_ms != null ? (d.created_ms / 1000).toFixed(3) + ' s' : ''], ['children', n.kids.length || '']);
    if (d.usage && (d.usage.llm_calls || d.usage.tool_calls)) pairs.push(['usage', usageText(d.usage)]);
    if (d.parents && d.parents.length > 1) pairs.push(['parents', d.parents.join(', ')]);
    parts.push(kv(pairs));
    if (d.answer) parts.push(el('h3', { text: 'Answer' }), pre(d.answer));
    parts.push(el('h3', { text: d.kind === 'problem' ? 'Problem' : 'Text' }), pre(d.content));
    const meta = Object.assign({}, d.meta || {});
    const callSeq = d.llm_call || meta.llm_call; // meta: traces written before llm_call was a node field
    delete meta.llm_call;
    const chunks = chunksOf(d);
    if (chunks) {
      parts.push(el('h3', { text: `Retrieved chunks (${chunks.length})` }));
      for (const c of chunks) {
        const o = typeof c === 'object' && c ? c : { text: c };
        const src = o.source || o.doc || o.document || o.url || o.path || '';
        const head = [o.n != null ? `[${o.n}]` : '', o.title || '', src, o.page != null ? `page ${o.page}` : '',
          o.chunk != null ? `chunk ${o.chunk}` : '', typeof o.score === 'number' ? `score ${o.score.toFixed(3)}` : ''].filter(Boolean).join(' · ');
        parts.push(el('div', { class: 'chunk' }, el('div', { class: 'muted', text: head || 'chunk' }), pre(o.text || o.content || json(o))));
      }
      delete meta.chunks; delete meta.sources; delete meta.retrieved;
    }
    if (Object.keys(meta).length) parts.push(el('h3', { text: 'Meta' }), pre(json(meta)));
    // The LLM call that made the node.
    // A tool's result and retrieved passages come from no LLM: the call
    // before them is not guessed as theirs.
    const byLLM = d.kind !== 'problem' && d.kind !== 'tool-result' && d.kind !== 'retrieval';
    if (d.kind !== 'problem' && (byLLM || callSeq)) {
      parts.push(el('h3', { text: 'LLM call' }));
      const exact = callSeq && S.bySeq.get(callSeq);
      const near = !exact && byLLM && nearEvent(n, 'llm_call', -1);
      if (exact) parts.push(renderCall(exact, 'made this node', true, d.content));
      else if (near) parts.push(renderCall(near, 'nearest earlier call (not linked in this trace)', false, d.content));
      else parts.push(el('p', { class: 'muted', text: 'No LLM call made this node.' }));
    }
    // Evaluations, with the calls that scored it.
    const evs = eventsOfNode(key);
    const evals = evs.filter((e) => e.op === 'evaluate');
    if (evals.length) {
      parts.push(el('h3', { text: `Evaluations (${evals.length})` }));
      for (const e of evals) {
        const ed = e.data || {};
        const line = ed.error ? `error: ${ed.error}` : `${ed.kind || 'score'} ${fmtScore(ed.score)}${ed.correct != null ? (ed.correct ? ' · correct' : ' · wrong') : ''}`;
        parts.push(el('div', { class: ed.error ? 'error' : null, text: `#${e.seq} · ${line}` }));
        for (const s of ed.llm_calls || []) { const c = S.bySeq.get(s); if (c) parts.push(renderCall(c, 'evaluation call', false, null)); }
      }
    }
    if (d.kind === 'tool-call' || d.kind === 'tool-result') {
      const tc = toolEventFor(n);
      parts.push(el('h3', { text: 'Tool call' }));
      if (tc) parts.push(toolCall(tc)); else parts.push(el('p', { class: 'muted', text: 'No tool call event found next to this node.' }));
    }
    for (const e of evs) if (e.op === 'tool_call') parts.push(el('h3', { text: 'Tool call' }), toolCall(e));
    if (d.kind === 'retrieval') {
      const rt = nearEvent(n, 'retrieve', -1);
      if (rt) parts.push(el('h3', { text: 'Retrieval' }), kv(retrievePairs(rt)));
    }
    const sub = n.sub && S.nodes.get(n.sub);
    if (sub) {
      parts.push(el('h3', { text: 'Nested search' }), kv([['strategy', (d.meta || {}).sub_strategy], ['stopped', (d.meta || {}).sub_stopped], ['nodes', sub.total]]));
    }
    if (evs.length) {
      parts.push(el('h3', { text: `Events (${evs.length})` }));
      const ul = el('div');
      for (const e of evs.slice(0, 200)) ul.append(el('div', null, link(`#${e.seq}`, () => showEvent(e)), ` ${e.op} at ${(e.t_ms / 1000).toFixed(3)} s`));
      parts.push(ul);
    }
    box.replaceChildren(...parts);
    box.scrollTop = 0;
    box.dataset.node = key;
  }

  // toolEventFor finds the tool_call event of a tool-call node (or of the
  // call a tool-result answers): the one whose arguments the node records,
  // else the nearest one in the node's scope.
  function toolEventFor(n) {
    let call = n;
    if (n.d.kind === 'tool-result' && n.parent) {
      const p = S.nodes.get(n.parent);
      if (p && p.d.kind === 'tool-call') call = p;
    }
    const args = call.d.meta && call.d.meta.arguments;
    if (args !== undefined && call.created) {
      const want = JSON.stringify(args);
      for (const e of S.events) {
        if (e.seq <= call.created || e.op !== 'tool_call' || (e.scope || []).join('/') !== call.scope) continue;
        if (JSON.stringify((e.data || {}).args) === want) return e;
      }
    }
    return n.d.kind === 'tool-call' ? nearEvent(n, 'tool_call', 1) || nearEvent(n, 'tool_call', -1) : nearEvent(n, 'tool_call', -1);
  }

  function toolCall(e) {
    const d = e.data || {};
    const box = el('div', { class: 'chunk' }, el('div', { text: `#${e.seq} · ${iso(d.tool || 'tool')}${d.ms != null ? ' · ' + fmtMs(d.ms) : ''}` }));
    if (d.args !== undefined) box.append(el('span', { class: 'label', text: 'arguments' }), pre(typeof d.args === 'string' ? d.args : json(d.args)));
    if (d.error) box.append(el('div', { class: 'error', text: 'error: ' + d.error }));
    if (d.result !== undefined) box.append(el('span', { class: 'label', text: d.is_error ? 'result (error)' : 'result' }), pre(d.result));
    return box;
  }
  function retrievePairs(e) {
    const d = e.data || {};
    return [['query', d.query], ['collection', d.collection], ['k', d.k], ['chunks', d.chunks], ['time', d.ms != null ? fmtMs(d.ms) : ''], ['error', d.error]];
  }

  function showEvent(e) {
    S.selectedEvent = e.seq;
    const parts = [el('h2', { text: `Event #${e.seq} · ${e.op}` })];
    const scope = e.scope || [];
    parts.push(kv([['time', (e.t_ms / 1000).toFixed(3) + ' s'], ['scope', scope.length ? scope.join(' / ') : 'top']]));
    if (e.nodes && e.nodes.length) {
      const row = el('div', { class: 'row' }, el('span', { class: 'label', text: 'nodes' }));
      for (const id of e.nodes) { const k = keyOf(scope, id); row.append(link(k, () => selectNode(k, true))); }
      parts.push(row);
    }
    if (e.op === 'llm_call') parts.push(renderCall(e, 'LLM call', true, null));
    else if (e.op === 'tool_call') parts.push(toolCall(e));
    else if (e.op === 'retrieve') parts.push(kv(retrievePairs(e)));
    else if (e.node) parts.push(el('h3', { text: 'Node state' }), pre(json(e.node)));
    if (e.op !== 'llm_call' && e.data) parts.push(el('h3', { text: 'Data' }), pre(json(e.data)));
    $('details').replaceChildren(...parts);
    $('details').dataset.node = '';
    drawEvents();
  }

  // ---- timeline ------------------------------------------------------------
  function refilterEvents() {
    const op = S.opFilter, key = S.nodeOnly ? S.selected : null;
    S.evFiltered = S.events.filter((e) => (!op || e.op === op) && (!S.nodeOnly || eventTouches(e, key)));
    drawEvents();
    drawStrip();
  }
  function eventSummary(e) {
    const d = e.data || {};
    switch (e.op) {
      case 'node': return e.node ? `${e.node.kind}: ${clip(firstLine(e.node.content), 120)}` : '';
      case 'update': return e.node ? `visits ${e.node.visits} · value ${(+e.node.value || 0).toFixed(3)}${e.node.pruned ? ' · pruned' : ''}` : '';
      case 'llm_call': return `${d.purpose || ''} n=${d.n || 1} ${d.prompt_tokens != null ? d.prompt_tokens + '+' + d.completion_tokens + ' tok' : ''} ${d.ms != null ? fmtMs(d.ms) : ''}${d.error ? (d.cancelled ? ' cancelled by the search' : ' error: ' + clip(d.error, 80)) : ''}`;
      case 'evaluate': return d.error ? `error: ${clip(d.error, 80)}` : `${d.kind || ''} ${fmtScore(d.score)}`;
      case 'tool_call': return `${iso(d.tool || '')} ${d.error ? 'error' : d.is_error ? 'failed' : 'ok'}`;
      case 'retrieve': return `${iso(clip(d.query || '', 60))} → ${d.chunks != null ? d.chunks : '?'} chunks`;
      // Data such as the end event's answer is model text, followed by
      // more of the row: isolated, so that U+202E in it reorders nothing.
      default: return d && Object.keys(d).length ? clip(isoJSON(d), 140) : '';
    }
  }
  function drawEvents() {
    const sc = $('event-scroll'), sp = $('event-spacer');
    const list = S.evFiltered;
    sp.style.height = list.length * ROW + 'px';
    const first = Math.max(0, Math.floor(sc.scrollTop / ROW) - 5);
    const last = Math.min(list.length, first + Math.ceil((sc.clientHeight || 200) / ROW) + 10);
    const rows = [];
    for (let i = first; i < last; i++) {
      const e = list[i];
      const scope = e.scope && e.scope.length ? `[${e.scope.join('/')}] ` : '';
      const on = S.selectedEvent === e.seq;
      const row = el('div', { class: 'ev' + (on ? ' selected' : ''), 'data-seq': e.seq, id: 'ev-' + e.seq, role: 'option', 'aria-selected': String(on) },
        el('span', { class: 't', text: `#${e.seq} ${(e.t_ms / 1000).toFixed(3)}s` }),
        el('span', { class: 'op op-' + e.op, text: e.op }),
        `${scope}${e.nodes && e.nodes.length ? '(' + clip(e.nodes.join(','), 30) + ') ' : ''}${eventSummary(e)}`);
      row.style.top = i * ROW + 'px';
      rows.push(row);
    }
    sp.replaceChildren(...rows);
    // A screen reader follows the keyboard's event (the rows are redrawn
    // as the list scrolls, so the focus stays on the list itself).
    if (rows.some((r) => r.classList.contains('selected'))) sc.setAttribute('aria-activedescendant', 'ev-' + S.selectedEvent);
    else sc.removeAttribute('aria-activedescendant');
    $('event-count').textContent = `${list.length} of ${S.events.length}`;
    const ops = new Set(S.events.map((e) => e.op));
    const sel = $('op-filter');
    if (sel.options.length - 1 !== ops.size) {
      const cur = sel.value;
      sel.replaceChildren(el('option', { value: '', text: 'all' }), ...Array.from(ops).sort().map((o) => el('option', { value: o, text: o })));
      sel.value = cur;
    }
  }
  const lanes = { llm_call: 0, node: 1, update: 1, evaluate: 2, tool_call: 3, retrieve: 3, sub_search: 3 };
  const laneColour = ['#6a1b9a', '#1565c0', '#2e7d32', '#c62828', '#90a4ae'];
  let stripQueued = false;
  function drawStrip() {
    if (stripQueued) return;
    stripQueued = true;
    requestAnimationFrame(() => {
      stripQueued = false;
      const c = $('strip');
      const W = c.clientWidth || 600;
      if (c.width !== W) c.width = W;
      const g = c.getContext('2d');
      g.clearRect(0, 0, c.width, c.height);
      const evs = S.evFiltered;
      if (!evs.length) return;
      const tmax = Math.max(1, evs[evs.length - 1].t_ms);
      for (let l = 0; l < 5; l++) {
        g.fillStyle = laneColour[l];
        for (const e of evs) {
          if ((lanes[e.op] ?? 4) !== l) continue;
          g.fillRect(Math.floor((e.t_ms / tmax) * (W - 2)), 2 + l * 6, 1, 5);
        }
      }
    });
  }
  // openEvent shows an event and centres its node in the tree (a click on
  // its row, or Enter).
  function openEvent(e) {
    showEvent(e);
    const scope = e.scope || [];
    const ids = e.nodes || [];
    const id = e.op === 'generate' && ids.length > 1 ? ids[1] : ids[0];
    if (id != null) {
      const k = keyOf(scope, id);
      if (S.nodes.has(k)) { S.selected = k; reveal(k); if (S.dirty) layout(); centre(k); }
    }
  }
  // eventKey walks the timeline without a mouse, as the tree's arrows
  // walk the tree: the list takes the focus (Tab), the arrows, Page keys,
  // Home and End move to an event and show it, Enter opens it as a click
  // does. With no event on, the first key picks the first row in view.
  function eventKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const list = S.evFiltered;
    if (!list.length || !/^(Arrow(Up|Down)|Page(Up|Down)|Home|End|Enter)$/.test(ev.key)) return;
    ev.preventDefault();
    const sc = $('event-scroll');
    const page = Math.max(1, Math.floor(sc.clientHeight / ROW) - 1);
    const at = list.findIndex((e) => e.seq === S.selectedEvent);
    let to = Math.min(list.length - 1, Math.ceil(sc.scrollTop / ROW));
    if (ev.key === 'Home') to = 0;
    else if (ev.key === 'End') to = list.length - 1;
    else if (at >= 0) {
      const step = { ArrowUp: -1, ArrowDown: 1, PageUp: -page, PageDown: page, Enter: 0 }[ev.key];
      to = Math.max(0, Math.min(list.length - 1, at + step));
    }
    // Into view, then drawn (showEvent redraws the rows).
    const top = to * ROW;
    if (top < sc.scrollTop) sc.scrollTop = top;
    else if (top + ROW > sc.scrollTop + sc.clientHeight) sc.scrollTop = top + ROW - sc.clientHeight;
    if (ev.key === 'Enter') openEvent(list[to]);
    else showEvent(list[to]);
  }
  function initTimeline() {
    $('event-scroll').addEventListener('scroll', () => drawEvents());
    $('event-spacer').addEventListener('click', (ev) => {
      const row = ev.target.closest('.ev');
      if (!row) return;
      const e = S.bySeq.get(+row.dataset.seq);
      if (e) openEvent(e);
    });
    $('event-scroll').addEventListener('keydown', eventKey);
    $('strip').addEventListener('click', (ev) => {
      const evs = S.evFiltered;
      if (!evs.length) return;
      const r = $('strip').getBoundingClientRect();
      const t = ((ev.clientX - r.left) / r.width) * evs[evs.length - 1].t_ms;
      let i = evs.findIndex((e) => e.t_ms >= t);
      if (i < 0) i = evs.length - 1;
      $('event-scroll').scrollTop = Math.max(0, i * ROW - 40);
      showEvent(evs[i]);
    });
    $('op-filter').addEventListener('change', () => { S.opFilter = $('op-filter').value; refilterEvents(); });
    $('node-only').addEventListener('change', () => { S.nodeOnly = $('node-only').checked; refilterEvents(); });
  }

  // ---- runs ----------------------------------------------------------------
  function renderRuns() {
    const q = S.filter.toLowerCase();
    const items = [];
    for (const r of S.runs) {
      if (q && ![r.problem, r.strategy, r.answer, r.pack, r.id].some((s) => (s || '').toLowerCase().includes(q))) continue;
      const when = r.started ? new Date(r.started) : null;
      const li = el('li', { 'data-id': r.id, class: r.id === S.runId ? 'selected' : null, tabindex: '0' },
        el('span', { class: 'meta' }, el('span', { class: 'badge ' + r.status, text: r.status }), ` ${iso(r.strategy)} · ${iso(r.pack)}${when ? ' · ' + when.toLocaleString() : ''}`),
        el('span', { class: 'problem', title: clip(r.problem, 300), text: firstLine(r.problem) }),
        el('span', { class: 'meta' }, r.answer ? el('span', { class: 'answer', text: '→ ' + iso(clip(r.answer, 40)) }) : null, (r.answer ? ' · ' : '') + usageText(r.usage)));
      items.push(li);
    }
    // The list is drawn again whenever it changes (every 2 s while a run
    // is live): a run that had the keyboard's focus keeps it.
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('#run-list li');
    $('run-list').replaceChildren(...items);
    if (focused) { const li = items.find((x) => x.dataset.id === focused.dataset.id); if (li) li.focus({ preventScroll: true }); }
    $('runs-empty').hidden = S.runs.length > 0;
  }
  function initRuns() {
    $('run-list').addEventListener('click', (e) => {
      const li = e.target.closest('li');
      if (!li) return;
      S.follow = false; $('follow').checked = false;
      openRun(li.dataset.id);
    });
    $('run-list').addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      const li = e.target.closest('li');
      if (li) { S.follow = false; $('follow').checked = false; openRun(li.dataset.id); }
    });
    $('run-filter').addEventListener('input', () => { S.filter = $('run-filter').value; renderRuns(); });
    $('follow').addEventListener('change', () => { S.follow = $('follow').checked; if (S.follow) followNewest(); });
  }
  function followNewest() {
    if (!S.follow || !S.runs.length) return;
    const newest = S.runs[0];
    if (newest.id !== S.runId) openRun(newest.id);
  }
  function setRuns(list) {
    S.runs = Array.isArray(list) ? list : [];
    renderRuns();
    if (!S.runId || S.follow) followNewest();
  }
  function connectRuns() {
    const conn = $('conn');
    const es = new EventSource('api/runs/events');
    S.runsES = es;
    es.addEventListener('runs', (m) => { conn.textContent = 'live'; conn.title = 'connection to the server'; conn.className = 'conn live'; setRuns(JSON.parse(m.data)); });
    es.addEventListener('error', () => {
      conn.textContent = 'reconnecting…'; conn.className = 'conn off';
      // The browser retries by itself unless the server refused the stream
      // (restarted without this run, too many viewers): then start over.
      // EventSource does not say why: ask the list, whose error does
      // (a wrong or missing token, too many viewers).
      if (es.readyState === EventSource.CLOSED) {
        fetchJSON('api/runs').then(() => {}, (err) => {
          if (S.runsES === es) { conn.textContent = 'refused: ' + clip(err.message, 100); conn.title = err.message; }
        });
        setTimeout(() => { if (S.runsES === es) connectRuns(); }, 5000);
      }
    });
  }

  async function fetchJSON(url) {
    const r = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
    if (body === null) throw new Error(`the server's answer to ${url} is not JSON (cut short?)`);
    return body;
  }

  let loadToken = 0;
  async function openRun(id, nodeKey) {
    const mine = ++loadToken;
    if (S.es) { S.es.close(); S.es = null; }
    const same = S.runId === id;
    S.runId = id;
    if (!same) { S.trace = null; S.firstRender = false; S.t0 = performance.now(); document.body.dataset.state = 'loading'; }
    renderRuns();
    $('run-empty').hidden = true;
    $('run-view').hidden = false;
    let t;
    const tf = performance.now();
    try {
      t = await fetchJSON('api/runs/' + encodeURIComponent(id));
      if (typeof t !== 'object' || Array.isArray(t) || !t.structure) throw new Error('the answer is not a Ponder trace');
    } catch (err) {
      if (mine !== loadToken) return;
      $('run-view').hidden = true;
      $('run-empty').hidden = false;
      $('run-empty').textContent = 'Could not load the run: ' + err.message;
      document.body.dataset.state = 'error';
      return;
    }
    if (mine !== loadToken) return;
    const tl = performance.now();
    loadTrace(t);
    const tm = performance.now();
    if (!same) showPlaceholder();
    showHead();
    if (nodeKey && S.nodes.has(nodeKey)) { S.selected = nodeKey; reveal(nodeKey); }
    S.dirty = true;
    layout();
    const ty = performance.now();
    if (!S.userMoved) fit(true); else render();
    const tr = performance.now();
    svg().dataset.timing = `fetch ${(tl - tf).toFixed(0)} model ${(tm - tl).toFixed(0)} layout ${(ty - tm).toFixed(0)} draw ${(tr - ty).toFixed(0)}`;
    if (S.selected && S.nodes.has(S.selected)) showNode(S.selected);
    if (nodeKey) centre(nodeKey);
    if ($('search').value) runSearch();
    afterRender();
    setHash();
    if (t.status === 'running') followRun(id);
  }

  function followRun(id) {
    const es = new EventSource(`api/runs/${encodeURIComponent(id)}/events?after=${S.lastSeq}`);
    S.es = es;
    es.addEventListener('events', (m) => {
      if (S.runId !== id) return;
      const batch = JSON.parse(m.data);
      const u = Object.assign({}, S.trace.usage);
      for (const e of batch) if (applyEvent(e)) addUsage(u, e);
      for (const e of batch) if (e.op === 'end' && e.data && !(e.scope && e.scope.length)) { S.trace.answer = e.data.answer; S.trace.status = e.data.stopped; }
      S.trace.usage = u;
      S.trace.fromStream = true;
      showHead();
      scheduleRender();
      drawEventsSoon();
    });
    es.addEventListener('end', () => {
      es.close();
      if (S.es === es) S.es = null;
      if (S.runId === id) openRun(id);
    });
    es.addEventListener('error', () => {
      if (es.readyState !== EventSource.CLOSED) return; // the browser resumes with Last-Event-ID
      setTimeout(() => { if (S.es === es && S.runId === id) openRun(id); }, 3000);
    });
  }
  // addUsage counts a live run's event into its usage so far, as the
  // server counts a running trace's (traces.usageOf): the samples and
  // requests of LLM calls that came back or that the search gave up
  // (calls the LLM failed are refunded), their tokens, tool calls, and the
  // nodes added (not the roots: the problem's and each nested search's).
  function addUsage(u, e) {
    const d = e.data || {};
    const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
    if (e.op === 'llm_call') {
      if (d.error == null || d.cancelled === true) { u.llm_calls = num(u.llm_calls) + num(d.n); u.requests = num(u.requests) + 1; }
      u.prompt_tokens = num(u.prompt_tokens) + num(d.prompt_tokens);
      u.completion_tokens = num(u.completion_tokens) + num(d.completion_tokens);
    } else if (e.op === 'tool_call') {
      u.tool_calls = num(u.tool_calls) + 1;
    } else if (e.op === 'node' && e.node && e.node.id !== 0) {
      u.nodes = num(u.nodes) + 1;
    }
    if (num(e.t_ms) > num(u.wall_ms)) u.wall_ms = e.t_ms;
  }
  let evTimer = 0;
  function drawEventsSoon() {
    if (evTimer) return;
    evTimer = setTimeout(() => { evTimer = 0; drawEvents(); drawStrip(); }, 200);
  }

  function showHead() {
    const t = S.trace;
    const st = $('run-status');
    st.className = 'badge ' + t.status; st.textContent = t.status;
    $('run-strategy').textContent = t.strategy;
    $('run-pack').textContent = t.pack;
    $('run-started').textContent = t.started ? new Date(t.started).toLocaleString() : '';
    $('run-usage').textContent = usageText(t.usage);
    $('run-problem').textContent = firstLine(t.problem);
    $('run-problem-full').textContent = t.problem;
    const pairs = [['trace id', t.id]];
    for (const [k, v] of Object.entries(t.params || {})) pairs.push([k, typeof v === 'object' ? JSON.stringify(v) : v]);
    for (const [k, v] of Object.entries(t.limits || {})) if (v) pairs.push(['limit ' + k, k === 'wall_time' ? fmtMs(v / 1e6) : v]);
    $('run-params').replaceChildren(...kv(pairs).childNodes);
    $('run-answer').textContent = t.answer || (t.status === 'running' ? '…' : '(none)');
    $('run-error').textContent = t.error && t.status !== 'done' ? t.error : '';
  }

  // ---- URL -----------------------------------------------------------------
  function hashParams() { return new URLSearchParams(location.hash.replace(/^#/, '')); }
  function setHash() {
    const p = new URLSearchParams();
    if (S.runId) p.set('run', S.runId);
    if (S.selected) p.set('node', S.selected);
    const h = '#' + p.toString();
    if (location.hash !== h) history.replaceState(null, '', h);
  }

  function initToolbar() {
    $('search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 150); });
    $('search').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); clearTimeout(searchTimer); if (!S.matchSet.size) runSearch(); nextMatch(e.shiftKey ? -1 : 1); }
      if (e.key === 'Escape') { $('search').value = ''; runSearch(); }
    });
    $('search-next').addEventListener('click', () => nextMatch(1));
    $('search-prev').addEventListener('click', () => nextMatch(-1));
    $('depth').addEventListener('change', () => {
      const v = $('depth').value;
      S.depthLimit = v === 'all' ? Infinity : +v;
      S.expanded = new Set(); S.dirty = true; S.userMoved = false;
      fit(true);
    });
    $('colour').addEventListener('change', () => { S.colour = $('colour').value; render(); });
    $('subs').addEventListener('click', () => {
      if (S.subsOpen.size) S.subsOpen = new Set();
      else for (const n of S.nodes.values()) if (n.sub) S.subsOpen.add(n.key);
      S.dirty = true; S.userMoved = false;
      fit(true);
      if (S.selected) showNode(S.selected);
    });
    $('fit').addEventListener('click', () => { S.userMoved = true; fit(true, true); });
    $('zoom-in').addEventListener('click', () => zoomCentre(1.25));
    $('zoom-out').addEventListener('click', () => zoomCentre(0.8));
    document.addEventListener('keydown', keyNav);
  }

  // A browser keeps at most six connections to a server over HTTP/1.1, for
  // all its tabs together, and each open viewer holds one or two streams:
  // hidden and closed pages let theirs go, and catch up when shown again.
  function pauseStreams() {
    if (S.runsES) { S.runsES.close(); S.runsES = null; }
    if (S.es) { S.es.close(); S.es = null; }
    $('conn').textContent = 'paused'; $('conn').className = 'conn off';
  }
  function resumeStreams() {
    if (!S.runsES) connectRuns();
    if (S.runId && S.trace && S.trace.status === 'running' && !S.es) openRun(S.runId);
  }

  function start() {
    initTree(); initTimeline(); initRuns(); initToolbar();
    document.addEventListener('visibilitychange', () => (document.hidden ? pauseStreams() : resumeStreams()));
    window.addEventListener('pagehide', pauseStreams);
    window.addEventListener('pageshow', (e) => { if (e.persisted) resumeStreams(); });
    // A link pasted into this tab (another run, or a node) changes only the
    // fragment: open what it names. setHash's replaceState fires no event.
    window.addEventListener('hashchange', () => {
      const h = hashParams(), run = h.get('run'), node = h.get('node') || undefined;
      if (!run) return;
      if (run !== S.runId) { S.follow = false; $('follow').checked = false; openRun(run, node); }
      else if (node && node !== S.selected) selectNode(node, true);
      // Back (or a link) to the run without a node: nothing is selected.
      else if (!node && S.selected) clearSelection();
    });
    const p = hashParams();
    if (p.get('run')) { S.follow = false; $('follow').checked = false; openRun(p.get('run'), p.get('node') || undefined); }
    connectRuns();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
