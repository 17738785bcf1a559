// The territory as SVG, drawn from the regions' GeoJSON: sub-districts, communities or
// grids (finer as you zoom), shaded by a count per region, with case markers; optional
// point picking. No tiles, no library: an equirectangular projection at Xuhui's latitude.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const REGION_CACHE = {};

async function regions(level) {
  if (!REGION_CACHE[level]) {
    REGION_CACHE[level] = fetch("/api/v1/regions?level=" + level).then((r) => r.json());
  }
  return REGION_CACHE[level];
}

const PRIORITY_COLOUR = { urgent: "#c1121f", high: "#e85d04", normal: "#1f6feb", low: "#6e7781" };

/// The stage of a case for its marker's shape.
function markerStage(state) {
  if (["reported", "filed", "returned", "suspended"].includes(state)) return "waiting";
  if (["handled", "verified"].includes(state)) return "checking";
  return "working";
}

class CityMap {
  /// `svg`: the element; `opts.onPick(lon, lat)` makes clicks pick a point;
  /// `opts.onLevel(level)` is told when zooming changes the level drawn.
  constructor(svg, opts) {
    this.svg = svg;
    this.opts = opts || {};
    this.level = null;
    this.scale = 1;
    this.counts = {};
    this.gRegions = document.createElementNS(SVGNS, "g");
    this.gMarkers = document.createElementNS(SVGNS, "g");
    this.gPick = document.createElementNS(SVGNS, "g");
    svg.append(this.gRegions, this.gMarkers, this.gPick);
    svg.addEventListener("wheel", (e) => { e.preventDefault(); this.zoom(e.deltaY < 0 ? 1.5 : 1 / 1.5); }, { passive: false });
    let drag = null;
    svg.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; });
    svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (drag.moved) {
        const k = this.vb[2] / svg.clientWidth;
        this.vb[0] -= dx * k; this.vb[1] -= dy * k;
        drag.x = e.clientX; drag.y = e.clientY;
        this.apply();
      }
    });
    svg.addEventListener("pointerup", (e) => {
      const d = drag; drag = null;
      if (d && !d.moved && this.opts.onPick) {
        const p = this.toLonLat(e.clientX, e.clientY);
        this.pin(p[0], p[1]);
        this.opts.onPick(p[0], p[1]);
      }
    });
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
    this.apply();
    await this.draw(level || "subdistrict");
  }

  project(lon, lat) { return [(lon - this.origin[0]) * this.k * 1000, (this.origin[1] - lat) * 1000]; }

  toLonLat(cx, cy) {
    const pt = this.svg.createSVGPoint(); pt.x = cx; pt.y = cy;
    const p = pt.matrixTransform(this.svg.getScreenCTM().inverse());
    return [p.x / (this.k * 1000) + this.origin[0], this.origin[1] - p.y / 1000];
  }

  apply() { this.svg.setAttribute("viewBox", this.vb.join(" ")); }

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
      const path = document.createElementNS(SVGNS, "path");
      path.setAttribute("d", d);
      path.setAttribute("class", "region");
      path.dataset.code = f.properties.code;
      const title = document.createElementNS(SVGNS, "title");
      title.textContent = lang() === "en" && f.properties.name_en ? f.properties.name_en : f.properties.name_zh;
      path.append(title);
      frag.append(path);
    }
    this.gRegions.textContent = "";
    this.gRegions.append(frag);
    this.shade(this.counts);
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

  markers(list, onClick) {
    this.gMarkers.textContent = "";
    const r = Math.max(this.full[2], this.full[3]) / 180;
    for (const m of list) {
      const [x, y] = this.project(m.lon, m.lat);
      // Colour: priority. Shape: the stage — a square before dispatch, a circle while
      // departments work, a hollow circle awaiting verification or closure.
      const colour = PRIORITY_COLOUR[m.priority] || PRIORITY_COLOUR.normal;
      const size = (m.overdue ? 1.5 : 1) * r;
      const stage = markerStage(m.state);
      let c;
      if (stage === "waiting") {
        c = document.createElementNS(SVGNS, "rect");
        c.setAttribute("x", (x - size).toFixed(1)); c.setAttribute("y", (y - size).toFixed(1));
        c.setAttribute("width", (2 * size).toFixed(1)); c.setAttribute("height", (2 * size).toFixed(1));
      } else {
        c = document.createElementNS(SVGNS, "circle");
        c.setAttribute("cx", x.toFixed(1)); c.setAttribute("cy", y.toFixed(1)); c.setAttribute("r", size);
      }
      c.setAttribute("fill", stage === "checking" ? "#ffffff" : colour);
      if (stage === "checking") { c.setAttribute("stroke", colour); c.setAttribute("stroke-width", 2); }
      c.setAttribute("class", "marker");
      if (m.overdue && stage !== "checking") { c.setAttribute("stroke", "#000"); }
      const title = document.createElementNS(SVGNS, "title");
      title.textContent = m.number + " " + (m.title || "") + " · " + (m.state_name || m.state);
      c.append(title);
      if (onClick) c.addEventListener("click", () => onClick(m));
      this.gMarkers.append(c);
    }
  }

  /// Points that are not cases (a scenario's hits): each `{lon, lat, colour, title,
  /// hollow}` as a diamond, so they are not mistaken for case markers; replaces the markers.
  points(list, onClick) {
    this.gMarkers.textContent = "";
    const r = Math.max(this.full[2], this.full[3]) / 60;
    for (const m of list) {
      if (typeof m.lon !== "number" || typeof m.lat !== "number") continue;
      const [x, y] = this.project(m.lon, m.lat);
      const c = document.createElementNS(SVGNS, "path");
      c.setAttribute("d", "M" + x.toFixed(1) + " " + (y - r).toFixed(1) + "L" + (x + r).toFixed(1) + " " + y.toFixed(1) +
        "L" + x.toFixed(1) + " " + (y + r).toFixed(1) + "L" + (x - r).toFixed(1) + " " + y.toFixed(1) + "Z");
      c.setAttribute("fill", m.hollow ? "#ffffff" : (m.colour || PRIORITY_COLOUR.normal));
      c.setAttribute("class", "point");
      // A property, not an attribute: the stylesheet's stroke would win over an attribute.
      if (m.hollow) c.style.stroke = m.colour || PRIORITY_COLOUR.normal;
      const title = document.createElementNS(SVGNS, "title");
      title.textContent = m.title || "";
      c.append(title);
      if (onClick) c.addEventListener("click", () => onClick(m));
      this.gMarkers.append(c);
    }
  }

  pin(lon, lat) {
    this.gPick.textContent = "";
    const [x, y] = this.project(lon, lat);
    const r = Math.max(this.full[2], this.full[3]) / 80 / Math.sqrt(this.scale);
    const c = document.createElementNS(SVGNS, "circle");
    c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", r);
    c.setAttribute("fill", "#0b57a4"); c.setAttribute("stroke", "#fff"); c.setAttribute("stroke-width", r / 3);
    this.gPick.append(c);
  }

  centreOn(lon, lat, scale) {
    this.scale = scale || 8;
    this.vb[2] = this.full[2] / this.scale; this.vb[3] = this.full[3] / this.scale;
    const [x, y] = this.project(lon, lat);
    this.vb[0] = x - this.vb[2] / 2; this.vb[1] = y - this.vb[3] / 2;
    this.apply();
  }
}
