// The territory as SVG, drawn from the regions' GeoJSON: sub-districts, communities or
// grids (finer as you zoom), shaded by a count per region, with case markers; optional
// point picking. No library: an equirectangular projection at Xuhui's latitude. When the
// deployment configures its own tile server (`serve --tile-url`), its raster tiles (Web
// Mercator) are drawn under the regions, each placed by its corners' longitude and
// latitude (over a tile the two projections differ by far less than a pixel); otherwise
// nothing is fetched from anywhere but this server.
// For orientation: region names as labels, landmarks (metro stations, named places from
// OpenStreetMap, credited on the map), a scale bar, zoom buttons, pinch-zoom and keyboard
// (arrows pan, + and − zoom, Enter picks the cross-hair's point on a picking map).
// Markers keep a fixed size on screen and cluster with their count; each marker or
// cluster is a keyboard stop (Enter opens the case, or zooms into the cluster).
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const REGION_CACHE = {};

async function regions(level) {
  if (!REGION_CACHE[level]) {
    REGION_CACHE[level] = fetch("/api/v1/regions?level=" + level).then((r) => r.json()).then((g) => {
      for (const f of g.features) {
        if (f.properties.name_en) REGION_EN[f.properties.code] = f.properties.name_en;
        REGION_ZH[f.properties.code] = f.properties.name_zh;
      }
      return g;
    });
  }
  return REGION_CACHE[level];
}

/// The named places (regions' representative points, landmarks, roads) and the optional
/// tile base layer: public, loaded once.
let PLACES_JSON = null;
function placesJson() {
  if (!PLACES_JSON) PLACES_JSON = fetch("/ui/places.json").then((r) => r.json()).catch(() => ({}));
  return PLACES_JSON;
}
function places() { return placesJson().then((v) => v.places || []); }
function baseTiles() { return placesJson().then((v) => v.tiles || null); }
function placeName(p) { return lang() === "en" && p.name_en ? p.name_en : p.name; }

const PRIORITY_COLOUR = { urgent: "#c1121f", high: "#e85d04", normal: "#1f6feb", low: "#6e7781" };
const PRIORITY_RANK = { urgent: 3, high: 2, normal: 1, low: 0 };

/// The stage of a case for its marker's shape.
function markerStage(state) {
  if (["reported", "filed", "returned", "suspended"].includes(state)) return "waiting";
  if (["handled", "verified"].includes(state)) return "checking";
  return "working";
}

/// Metres per map unit: the projection's unit is a thousandth of a degree of latitude.
const METRES_PER_UNIT = 111.32;

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

class CityMap {
  /// `svg`: the element; `opts.onPick(lon, lat)` makes clicks (and Enter on the
  /// cross-hair) pick a point; `opts.onLevel(level)` is told when zooming changes the
  /// level drawn; `opts.controls` adds zoom buttons on the map; `opts.landmarks` (default
  /// on) draws region names and landmarks.
  constructor(svg, opts) {
    this.svg = svg;
    this.opts = opts || {};
    this.level = null;
    this.scale = 1;
    this.counts = {};
    this.list = null; // case markers, laid out (clustered) at every view change
    this.pinAt = null;
    this.gRegions = svgEl("g");
    this.gTiles = svgEl("g", { class: "basemap", "aria-hidden": "true" });
    this.gLabels = svgEl("g", { class: "labels", "aria-hidden": "true" });
    this.gLandmarks = svgEl("g", { class: "landmarks", "aria-hidden": "true" });
    this.gMarkers = svgEl("g", { class: "markers" });
    this.gPick = svgEl("g", { "aria-hidden": "true" });
    this.gCross = svgEl("g", { class: "cross", "aria-hidden": "true" });
    // Names above the markers (with a halo), so that a busy map still says where it is.
    svg.append(this.gTiles, this.gRegions, this.gMarkers, this.gLandmarks, this.gLabels, this.gPick, this.gCross);
    // A group, not an image: it holds keyboard stops (markers, clusters).
    svg.setAttribute("role", "group");
    svg.setAttribute("tabindex", "0");
    if (this.opts.onPick) svg.setAttribute("aria-describedby", this.hintId());
    const wrap = svg.parentElement;
    if (wrap && !wrap.classList.contains("map-wrap")) {
      const w = el("div", { class: "map-wrap" });
      svg.replaceWith(w); w.append(svg);
    }
    this.wrap = svg.parentElement;
    this.scaleBar = el("div", { class: "scalebar", "aria-hidden": "true" }, el("span", { class: "bar" }), el("span", { class: "len" }));
    this.credit = el("div", { class: "credit", hidden: true, text: "© OpenStreetMap contributors" });
    this.wrap.append(this.scaleBar, this.credit);
    if (this.opts.controls) {
      const z = (f, key) => el("button", { type: "button", class: "secondary", "aria-label": t(key), text: f > 1 ? "+" : "−", onclick: () => this.zoom(f) });
      this.wrap.append(el("div", { class: "map-zoom" }, z(2, "zoom_in"), z(0.5, "zoom_out")));
    }
    svg.addEventListener("wheel", (e) => { e.preventDefault(); this.zoom(e.deltaY < 0 ? 1.5 : 1 / 1.5); }, { passive: false });
    // Pointers: one drags the map, two pinch it; a tap without a drag picks.
    const ptrs = new Map();
    let drag = null, pinch = null;
    svg.addEventListener("pointerdown", (e) => {
      ptrs.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (ptrs.size === 2) {
        const [a, b] = [...ptrs.values()];
        pinch = { d: Math.hypot(a.x - b.x, a.y - b.y), scale: this.scale };
        drag = null;
      } else drag = { x: e.clientX, y: e.clientY, moved: false };
    });
    svg.addEventListener("pointermove", (e) => {
      if (!ptrs.has(e.pointerId)) return;
      ptrs.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (pinch && ptrs.size === 2) {
        const [a, b] = [...ptrs.values()];
        const d = Math.hypot(a.x - b.x, a.y - b.y);
        if (pinch.d > 0) this.zoom((pinch.scale * d / pinch.d) / this.scale, true);
        return;
      }
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (drag.moved) {
        const k = this.unitsPerPx() / this.rem();
        this.vb[0] -= dx * k; this.vb[1] -= dy * k;
        drag.x = e.clientX; drag.y = e.clientY;
        this.apply();
      }
    });
    const up = (e) => {
      ptrs.delete(e.pointerId);
      if (pinch) { if (ptrs.size < 2) pinch = null; drag = null; return; }
      const d = drag; drag = null;
      if (e.type === "pointerup" && d && !d.moved && this.opts.onPick && !e.target.closest(".marker")) {
        const p = this.toLonLat(e.clientX, e.clientY);
        this.pick(p[0], p[1]);
      }
    };
    svg.addEventListener("pointerup", up);
    svg.addEventListener("pointercancel", up);
    // Keyboard: arrows pan a tenth of the view, + / − zoom, Enter picks the centre.
    svg.addEventListener("keydown", (e) => {
      if (e.target !== svg) return;
      const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
      if (step) {
        e.preventDefault();
        this.vb[0] += step[0] * this.vb[2] / 10; this.vb[1] += step[1] * this.vb[3] / 10;
        this.apply();
      } else if (e.key === "+" || e.key === "=") { e.preventDefault(); this.zoom(2); }
      else if (e.key === "-" || e.key === "_") { e.preventDefault(); this.zoom(0.5); }
      else if (e.key === "Enter" && this.opts.onPick) {
        e.preventDefault();
        const c = this.centre();
        this.pick(c[0], c[1]);
      }
    });
    if (this.opts.onPick) svg.classList.add("picking");
  }

  hintId() {
    if (!this.hint) {
      this.hint = el("p", { class: "hint", id: (this.svg.id || "map") + "-keys", text: t("map_keys") });
      this.svg.parentElement.after(this.hint);
    }
    return this.hint.id;
  }

  async init(level) {
    const subs = await regions("subdistrict");
    let minX = 180, minY = 90, maxX = -180, maxY = -90;
    for (const f of subs.features) {
      for (const poly of f.geometry.coordinates) for (const ring of poly) for (const [x, y] of ring) {
        minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
      }
    }
    this.k = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
    this.origin = [minX, maxY];
    const w = (maxX - minX) * this.k * 1000, h = (maxY - minY) * 1000;
    this.full = [-w * 0.02, -h * 0.02, w * 1.04, h * 1.04];
    this.vb = this.full.slice();
    if (this.opts.landmarks !== false) this.places = await places();
    this.tiles = await baseTiles();
    this.apply();
    await this.draw(level || "subdistrict");
    if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => this.layout()).observe(this.svg);
  }

  project(lon, lat) { return [(lon - this.origin[0]) * this.k * 1000, (this.origin[1] - lat) * 1000]; }
  unproject(x, y) { return [x / (this.k * 1000) + this.origin[0], this.origin[1] - y / 1000]; }

  toLonLat(cx, cy) {
    const pt = this.svg.createSVGPoint(); pt.x = cx; pt.y = cy;
    const p = pt.matrixTransform(this.svg.getScreenCTM().inverse());
    return this.unproject(p.x, p.y);
  }

  /// The centre of the view (lon, lat): where the keyboard's cross-hair is.
  centre() { return this.unproject(this.vb[0] + this.vb[2] / 2, this.vb[1] + this.vb[3] / 2); }

  /// Map units per screen pixel (the view is fitted into the element, aspect kept).
  /// Scaled by the root font size, so marks and names grow with the text (the wall's
  /// larger type, a phone's 200 %).
  unitsPerPx() {
    const w = this.svg.clientWidth || 600, h = this.svg.clientHeight || 600;
    return Math.max(this.vb[2] / w, this.vb[3] / h) * this.rem();
  }

  rem() { return parseFloat(getComputedStyle(document.documentElement).fontSize) / 16 || 1; }

  apply() { this.svg.setAttribute("viewBox", this.vb.join(" ")); this.layout(); }

  zoom(f) {
    const cx = this.vb[0] + this.vb[2] / 2, cy = this.vb[1] + this.vb[3] / 2;
    this.scale = Math.min(40, Math.max(1, this.scale * f));
    this.vb[2] = this.full[2] / this.scale; this.vb[3] = this.full[3] / this.scale;
    this.vb[0] = cx - this.vb[2] / 2; this.vb[1] = cy - this.vb[3] / 2;
    this.apply();
    const want = this.scale >= 6 ? "grid" : this.scale >= 2 ? "community" : "subdistrict";
    if (want !== this.level) this.draw(want);
  }

  reset() { this.scale = 1; this.vb = this.full.slice(); this.apply(); if (this.level !== "subdistrict") this.draw("subdistrict"); }

  async draw(level) {
    this.level = level;
    const g = await regions(level);
    if (this.level !== level) return;
    const frag = document.createDocumentFragment();
    for (const f of g.features) {
      let d = "";
      for (const poly of f.geometry.coordinates) for (const ring of poly) {
        ring.forEach(([x, y], i) => { const p = this.project(x, y); d += (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1); });
        d += "Z";
      }
      const path = svgEl("path", { d, class: "region" });
      path.dataset.code = f.properties.code;
      const title = svgEl("title");
      title.textContent = regionName(f.properties);
      path.append(title);
      frag.append(path);
    }
    this.gRegions.textContent = "";
    this.gRegions.append(frag);
    this.shade(this.counts);
    this.layout();
    if (this.opts.onLevel) this.opts.onLevel(level);
  }

  /// Density: the share of the busiest region's count, as the fill's opacity.
  shade(counts) {
    this.counts = counts || {};
    const max = Math.max(1, ...Object.values(this.counts));
    for (const p of this.gRegions.children) {
      const n = this.counts[p.dataset.code] || 0;
      p.setAttribute("fill", "#d1495b");
      p.setAttribute("fill-opacity", (0.05 + 0.75 * (n / max)).toFixed(2));
      const title = p.querySelector("title");
      if (title) title.textContent = title.textContent.replace(/（\d+）$/, "") + "（" + n + "）";
    }
  }

  /// Everything drawn at a fixed size on screen, for the current view: labels,
  /// landmarks, the scale bar, the clustered markers, the pin and the cross-hair.
  layout() {
    if (!this.vb || !this.full) return;
    const u = this.unitsPerPx();
    this.layoutTiles();
    this.layoutLabels(u);
    this.layoutMarkers(u);
    this.gPick.textContent = "";
    if (this.pinAt) {
      const [x, y] = this.project(this.pinAt[0], this.pinAt[1]);
      this.gPick.append(svgEl("circle", { cx: x, cy: y, r: 8 * u, fill: "#0b57a4", stroke: "#fff", "stroke-width": 3 * u }));
    }
    this.gCross.textContent = "";
    if (this.opts.onPick) {
      const cx = this.vb[0] + this.vb[2] / 2, cy = this.vb[1] + this.vb[3] / 2, r = 14 * u;
      for (const [w, c] of [[5, "#ffffff"], [2.5, "#0b3d91"]]) {
        this.gCross.append(svgEl("path", { d: `M${cx - r} ${cy}H${cx + r}M${cx} ${cy - r}V${cy + r}`, stroke: c, "stroke-width": w * u, fill: "none" }),
          svgEl("circle", { cx, cy, r: r * 0.55, stroke: c, "stroke-width": w * u, fill: "none" }));
      }
    }
    // The scale bar: the longest round distance that fits in about 100 px.
    const perPx = (u / this.rem()) * METRES_PER_UNIT;
    const nice = [50, 100, 200, 500, 1000, 2000, 5000, 10000];
    const m = nice.filter((x) => x / perPx <= 110).pop() || nice[0];
    this.scaleBar.querySelector(".bar").style.width = Math.round(m / perPx) + "px";
    this.scaleBar.querySelector(".len").textContent = m >= 1000 ? (m / 1000) + " km" : m + " m";
  }

  /// The tile base layer for the current view: the Web Mercator zoom whose tiles show
  /// at about their own size, the tiles covering the visible area (at most 64).
  layoutTiles() {
    if (!this.tiles) return;
    const w = this.svg.clientWidth || 600, h = this.svg.clientHeight || 600;
    const s = Math.max(this.vb[2] / w, this.vb[3] / h); // map units per screen pixel
    const cx = this.vb[0] + this.vb[2] / 2, cy = this.vb[1] + this.vb[3] / 2;
    const [lonW, latN] = this.unproject(cx - w * s / 2, cy - h * s / 2);
    const [lonE, latS] = this.unproject(cx + w * s / 2, cy + h * s / 2);
    const pxPerDeg = this.k * 1000 / s;
    const z = Math.max(0, Math.min(19, Math.round(Math.log2(pxPerDeg * 360 / 256))));
    const n = 2 ** z;
    const tx = (lon) => Math.floor((lon + 180) / 360 * n);
    const ty = (lat) => { const r = lat * Math.PI / 180; return Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * n); };
    const lonOf = (x) => x / n * 360 - 180;
    const latOf = (y) => Math.atan(Math.sinh(Math.PI * (1 - 2 * y / n))) * 180 / Math.PI;
    const x0 = tx(lonW), x1 = tx(lonE), y0 = Math.max(0, ty(latN)), y1 = Math.min(n - 1, ty(latS));
    const key = [z, x0, x1, y0, y1].join(",");
    if (key === this.tileKey) return;
    this.tileKey = key;
    this.gTiles.textContent = "";
    if ((x1 - x0 + 1) * (y1 - y0 + 1) > 64) return;
    for (let x = x0; x <= x1; x++) for (let y = y0; y <= y1; y++) {
      const [ax, ay] = this.project(lonOf(x), latOf(y)), [bx, by] = this.project(lonOf(x + 1), latOf(y + 1));
      const href = this.tiles.url.replace("{z}", z).replace("{x}", ((x % n) + n) % n).replace("{y}", y);
      this.gTiles.append(svgEl("image", { href, x: ax, y: ay, width: bx - ax, height: by - ay, preserveAspectRatio: "none" }));
    }
  }

  /// Credits: OpenStreetMap for the landmarks shown, and the tiles' own attribution.
  setCredit(osm) {
    const credits = [osm ? "© OpenStreetMap contributors" : "", this.tiles ? this.tiles.attribution : ""].filter(Boolean);
    this.credit.textContent = credits.join(" · ");
    this.credit.hidden = !credits.length;
  }

  layoutLabels(u) {
    this.gLabels.textContent = "";
    this.gLandmarks.textContent = "";
    if (!this.places) { this.setCredit(false); return; }
    const [x0, y0, w, h] = this.vb;
    const inView = (x, y) => x >= x0 && x <= x0 + w && y >= y0 && y <= y0 + h;
    let shown = 0;
    const text = (g, x, y, s, cls, size) => {
      const e = svgEl("text", { x, y, class: cls, "font-size": size * u, "stroke-width": 3 * u });
      e.textContent = s;
      g.append(e);
    };
    for (const p of this.places) {
      const [x, y] = this.project(p.lon, p.lat);
      if (!inView(x, y)) continue;
      if (p.kind === "subdistrict" && this.scale < 4) text(this.gLabels, x, y, placeName(p), "label sub", 14);
      else if (p.kind === "community" && this.scale >= 4) text(this.gLabels, x, y, placeName(p), "label com", 11);
      else if (p.kind === "landmark" && p.metro) {
        // A metro station: a white disc with an M, named once zoomed in.
        this.gLandmarks.append(svgEl("circle", { cx: x, cy: y, r: 7 * u, class: "metro", "stroke-width": 2 * u }));
        text(this.gLandmarks, x, y + 4 * u, "M", "metro-m", 10);
        if (this.scale >= 2) text(this.gLandmarks, x + 10 * u, y + 4 * u, placeName(p).replace(/地铁站$/, "站"), "label lm", 11);
        shown++;
      } else if (p.kind === "landmark" && this.scale >= 3) {
        this.gLandmarks.append(svgEl("rect", { x: x - 4 * u, y: y - 4 * u, width: 8 * u, height: 8 * u, class: "poi", "stroke-width": 1.5 * u }));
        text(this.gLandmarks, x + 7 * u, y + 4 * u, placeName(p), "label lm", 11);
        shown++;
      }
    }
    this.setCredit(shown > 0);
  }

  markers(list, onClick) {
    this.list = list;
    this.onMarker = onClick;
    this.layout();
  }

  /// Markers at a fixed size, clustered on a 56-px grid: a cluster is a disc with its
  /// count (coloured by its most urgent case); Enter or a click zooms into it.
  layoutMarkers(u) {
    if (!this.list) return;
    const active = document.activeElement;
    const keep = active && this.gMarkers.contains(active) ? active.dataset.key : null;
    this.gMarkers.textContent = "";
    const cell = 56 * u;
    const cells = new Map();
    const [x0, y0, w, h] = this.vb;
    for (const m of this.list) {
      if (typeof m.lon !== "number" || typeof m.lat !== "number") continue;
      const [x, y] = this.project(m.lon, m.lat);
      if (x < x0 || x > x0 + w || y < y0 || y > y0 + h) continue;
      const key = Math.floor(x / cell) + ":" + Math.floor(y / cell);
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push([x, y, m]);
    }
    const interactive = !!this.onMarker;
    for (const group of cells.values()) {
      let g;
      if (group.length === 1) g = this.marker(group[0][0], group[0][1], group[0][2], u);
      else {
        const x = group.reduce((s, v) => s + v[0], 0) / group.length, y = group.reduce((s, v) => s + v[1], 0) / group.length;
        const top = group.reduce((a, v) => (PRIORITY_RANK[v[2].priority] > PRIORITY_RANK[a.priority] ? v[2] : a), group[0][2]);
        g = svgEl("g", { class: "marker cluster" });
        g.dataset.key = "c" + group.map((v) => v[2].id || v[2].number).sort().join(",");
        const r = (group.length >= 100 ? 16 : 13) * u;
        g.append(svgEl("circle", { cx: x, cy: y, r, fill: PRIORITY_COLOUR[top.priority] || PRIORITY_COLOUR.normal, stroke: "#ffffff", "stroke-width": 2 * u }));
        const tx = svgEl("text", { x, y: y + 4 * u, "font-size": 11 * u, class: "count" });
        tx.textContent = String(group.length);
        g.append(tx);
        const label = tf("map_cluster", { n: group.length });
        if (interactive) { g.setAttribute("aria-label", label); g.setAttribute("role", "button"); }
        const title = svgEl("title"); title.textContent = label; g.append(title);
        g.addEventListener("click", () => this.zoomTo(x, y, 2));
        g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.zoomTo(x, y, 2); this.refocus(g.dataset.key); } });
      }
      if (interactive) g.setAttribute("tabindex", "0");
      this.gMarkers.append(g);
    }
    if (keep) this.refocus(keep);
  }

  /// After a redraw: the focus back on the marker it was on, or on the map itself.
  refocus(key) {
    const again = [...this.gMarkers.children].find((c) => c.dataset.key === key);
    (again || this.svg).focus({ preventScroll: true });
  }

  marker(x, y, m, u) {
    // Colour: priority. Shape: the stage — a square before dispatch, a circle while
    // departments work, a hollow circle awaiting verification or closure; black edge: overdue.
    const colour = PRIORITY_COLOUR[m.priority] || PRIORITY_COLOUR.normal;
    const size = (m.overdue ? 8 : 6.5) * u;
    const stage = markerStage(m.state);
    const g = svgEl("g", { class: "marker" });
    g.dataset.key = "m" + (m.id || m.number);
    // A 26-px target around the visible mark (WCAG 2.5.8: at least 24 px).
    g.append(svgEl("circle", { cx: x, cy: y, r: 13 * u, class: "hit" }));
    const c = stage === "waiting"
      ? svgEl("rect", { x: x - size, y: y - size, width: 2 * size, height: 2 * size })
      : svgEl("circle", { cx: x, cy: y, r: size });
    c.setAttribute("fill", stage === "checking" ? "#ffffff" : colour);
    c.setAttribute("stroke", stage === "checking" ? colour : (m.overdue ? "#000000" : "#ffffff"));
    c.setAttribute("stroke-width", (stage === "checking" || m.overdue ? 2.5 : 1.5) * u);
    g.append(c);
    // On the wall (a public-ish screen) a marker names its category, not the case's title.
    const label = m.number + " " + ((document.body.classList.contains("wall") ? m.category_name : m.title) || "") + " · " + stateName(m.state) + (m.priority ? " · " + priorityName(m.priority) : "");
    const title = svgEl("title"); title.textContent = label; g.append(title);
    if (this.onMarker) {
      g.setAttribute("role", "link");
      g.setAttribute("aria-label", label);
      g.addEventListener("click", () => this.onMarker(m));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); this.onMarker(m); } });
    }
    return g;
  }

  zoomTo(x, y, f) {
    this.vb[0] = x - this.vb[2] / 2; this.vb[1] = y - this.vb[3] / 2;
    this.zoom(f);
  }

  /// Points that are not cases (a scenario's hits): each `{lon, lat, colour, title,
  /// hollow}` as a diamond, so they are not mistaken for case markers; replaces the markers.
  points(list, onClick) {
    this.list = null;
    this.gMarkers.textContent = "";
    const r = Math.max(this.full[2], this.full[3]) / 60;
    for (const m of list) {
      if (typeof m.lon !== "number" || typeof m.lat !== "number") continue;
      const [x, y] = this.project(m.lon, m.lat);
      const c = svgEl("path", { d: "M" + x.toFixed(1) + " " + (y - r).toFixed(1) + "L" + (x + r).toFixed(1) + " " + y.toFixed(1) +
        "L" + x.toFixed(1) + " " + (y + r).toFixed(1) + "L" + (x - r).toFixed(1) + " " + y.toFixed(1) + "Z" });
      c.setAttribute("fill", m.hollow ? "#ffffff" : (m.colour || PRIORITY_COLOUR.normal));
      c.setAttribute("class", "point");
      // A property, not an attribute: the stylesheet's stroke would win over an attribute.
      if (m.hollow) c.style.stroke = m.colour || PRIORITY_COLOUR.normal;
      const title = svgEl("title");
      title.textContent = m.title || "";
      c.append(title);
      if (onClick) c.addEventListener("click", () => onClick(m));
      this.gMarkers.append(c);
    }
  }

  pin(lon, lat) { this.pinAt = [lon, lat]; this.layout(); }

  /// A point chosen (tap, Enter on the cross-hair, a place found by name): pinned and told.
  pick(lon, lat) {
    this.pin(lon, lat);
    if (this.opts.onPick) this.opts.onPick(lon, lat);
  }

  centreOn(lon, lat, scale) {
    this.scale = scale || 8;
    this.vb[2] = this.full[2] / this.scale; this.vb[3] = this.full[3] / this.scale;
    const [x, y] = this.project(lon, lat);
    this.vb[0] = x - this.vb[2] / 2; this.vb[1] = y - this.vb[3] / 2;
    this.apply();
    const want = this.scale >= 6 ? "grid" : this.scale >= 2 ? "community" : "subdistrict";
    if (want !== this.level && this.level) this.draw(want);
  }
}

/// A search over the territory's names and landmarks for a picking map: type a name
/// (徐家汇, a metro station, a park, a road), choose it, and the map centres there and
/// picks it. `input` is an <input list=…>; the datalist is filled here.
async function placeSearch(input, map) {
  const list = await places();
  const dl = document.getElementById(input.getAttribute("list"));
  const seen = new Set();
  for (const p of list) {
    const n = placeName(p);
    if (seen.has(n)) continue;
    seen.add(n);
    dl.append(el("option", { value: n }));
  }
  const choose = () => {
    const v = input.value.trim();
    if (!v) return false;
    const p = list.find((x) => placeName(x) === v) || list.find((x) => placeName(x).includes(v));
    if (!p) return false;
    map.centreOn(p.lon, p.lat, p.kind === "subdistrict" ? 3 : 8);
    map.pick(p.lon, p.lat);
    return true;
  };
  input.addEventListener("change", choose);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); choose(); } });
  return choose;
}

/// The nearest named place to a point (a landmark, community or sub-district within
/// 600 m), for saying where a picked point is in words.
async function nearestPlace(lon, lat) {
  const list = await places();
  const k = Math.cos(lat * Math.PI / 180);
  let best = null, bestD = Infinity;
  for (const p of list) {
    if (p.kind === "road") continue;
    const d = Math.hypot((p.lon - lon) * k, p.lat - lat) * 111320;
    // Landmarks win over regions at the same distance: they are what people recognise.
    const w = p.kind === "landmark" ? d : d * 1.5;
    if (w < bestD) { bestD = w; best = p; }
  }
  return best && bestD <= 600 ? best : null;
}

/// Writes a point into `out`: its coordinates, then the nearest place by name.
async function showPlace(out, lon, lat) {
  out.textContent = lon.toFixed(5) + ", " + lat.toFixed(5);
  const p = await nearestPlace(lon, lat);
  if (p) out.textContent = lon.toFixed(5) + ", " + lat.toFixed(5) + " · " + tf("near_place", { name: placeName(p) });
}

/// The phone's position, or why not in the page's language (refused, unavailable, too
/// slow, no GPS) with the ways that remain: the map and the name search.
function locateMe(out, onPos) {
  if (!navigator.geolocation) { out.textContent = t("gps_none"); return; }
  navigator.geolocation.getCurrentPosition(
    (p) => onPos(p.coords.longitude, p.coords.latitude),
    (e) => { out.textContent = t({ 1: "gps_denied", 2: "gps_unavailable", 3: "gps_timeout" }[e.code] || "gps_unavailable"); },
    { enableHighAccuracy: true, timeout: 10000 });
}
