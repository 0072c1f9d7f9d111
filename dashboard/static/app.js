// hashpool dashboard: live summary over Server-Sent Events, worker table by page.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"];
  const rate = (h) => { let i = 0; while (h >= 1000 && i < units.length - 1) { h /= 1000; i++; } return h.toFixed(h < 10 ? 2 : 1) + " " + units[i]; };
  const num = (n) => Number(n).toLocaleString("en-US");
  const btc = (sat) => (sat / 1e8).toFixed(8) + " BTC";
  const ago = (t, now) => { const s = Math.max(0, Math.round(now - t)); return s < 90 ? s + " s" : s < 5400 ? Math.round(s / 60) + " min" : s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d"; };
  const text = (id, v) => { const e = $(id); if (e.textContent !== v) e.textContent = v; };
  const cell = (tr, v, cls) => { const td = document.createElement("td"); td.textContent = v; if (cls) td.className = cls; tr.appendChild(td); return td; };

  let last = null, span = "5m";

  function chart(s) {
    let pts = span === "5m" ? s.chart_5m : s.chart_1d;
    if (span === "1h") pts = pts.filter((p) => p.t >= s.now - 3600);
    const svg = $("chart");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!pts || pts.length === 0) { text("chart-min", "no data yet"); text("chart-max", ""); return; }
    const t0 = pts[0].t, t1 = Math.max(pts[pts.length - 1].t, t0 + 1);
    const top = Math.max(...pts.map((p) => p.hr)) * 1.1 || 1;
    const xy = pts.map((p) => [((p.t - t0) / (t1 - t0)) * 800, 200 - (p.hr / top) * 195]);
    const ns = "http://www.w3.org/2000/svg";
    const area = document.createElementNS(ns, "polygon");
    area.setAttribute("points", "0,200 " + xy.map((q) => q.join(",")).join(" ") + " 800,200");
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", xy.map((q) => q.join(",")).join(" "));
    svg.appendChild(area); svg.appendChild(line);
    text("chart-min", new Date(t0 * 1000).toLocaleTimeString());
    text("chart-max", "peak " + rate(top / 1.1) + " · " + new Date(t1 * 1000).toLocaleTimeString());
  }

  function render(s) {
    last = s;
    text("updated", "updated " + new Date(s.now * 1000).toLocaleTimeString());
    text("hr-5m", rate(s.hashrate_5m)); text("hr-15m", rate(s.hashrate_15m)); text("hr-1h", rate(s.hashrate_1h));
    text("accept-count", num(s.accept_count));
    text("reject-diff", num(s.reject_diff_15m)); text("stale-diff", num(s.stale_diff_15m));
    text("workers-count", num(s.workers)); text("users-count", num(s.users));
    const eng = {}; (s.engine || []).forEach((c) => { eng[c.name] = c.value; });
    text("sessions", "sessions" in eng ? num(eng.sessions) + " connections" + ("agents" in eng ? " · " + num(eng.agents) + " agents" : "") : "");
    const etb = $("engine").tBodies[0]; etb.textContent = "";
    (s.engine || []).forEach((c) => { const tr = document.createElement("tr"); cell(tr, c.name); cell(tr, num(c.value), "num"); etb.appendChild(tr); });
    if (s.job) {
      text("job-height", num(s.job.height)); text("job-prev", s.job.prevhash);
      text("job-value", btc(s.job.coinbase_value)); text("job-fees", btc(s.job.fees));
      text("job-age", ago(s.job.ntime || s.job.created, s.now));
    }
    const rtb = $("rejects").tBodies[0]; rtb.textContent = "";
    if (!s.rejects_15m || s.rejects_15m.length === 0) { const tr = document.createElement("tr"); cell(tr, "none", "dim"); rtb.appendChild(tr); }
    (s.rejects_15m || []).forEach((r) => { const tr = document.createElement("tr"); cell(tr, r.reason); cell(tr, r.code); cell(tr, num(r.diff), "num"); rtb.appendChild(tr); });
    const btb = $("blocks").tBodies[0]; btb.textContent = "";
    s.blocks.forEach((b) => {
      const tr = document.createElement("tr"); tr.dataset.hash = b.hash;
      cell(tr, num(b.height)); cell(tr, b.hash, "mono"); cell(tr, b.worker); cell(tr, btc(b.rewards));
      const st = b.orphaned ? "orphaned" : b.confirmations == null ? "submitted" : b.confirmations < 0 ? "not on best chain" : b.confirmations + " confirmations";
      cell(tr, st, b.orphaned || (b.confirmations != null && b.confirmations < 0) ? "bad" : "ok");
      cell(tr, ago(b.found, s.now) + " ago");
      btb.appendChild(tr);
    });
    if (s.blocks.length === 0) { const tr = document.createElement("tr"); cell(tr, "no block found yet", "dim"); btb.appendChild(tr); }
    chart(s);
  }

  function connect() {
    const es = new EventSource("events");
    es.onopen = () => { $("live").className = "dot on"; };
    es.onmessage = (e) => { try { render(JSON.parse(e.data)); } catch (err) { console.error(err); } };
    es.onerror = () => { $("live").className = "dot off"; }; // EventSource reconnects by itself
  }

  // Worker table: one sorted, filtered page from the server.
  const table = { q: "", sort: "hashrate", desc: true, offset: 0, limit: 100, busy: false };
  async function loadWorkers() {
    if (table.busy) return;
    table.busy = true;
    try {
      const u = "api/workers?q=" + encodeURIComponent(table.q) + "&sort=" + table.sort + "&desc=" + (table.desc ? 1 : 0) + "&offset=" + table.offset + "&limit=" + table.limit;
      const r = await fetch(u, { cache: "no-store" });
      if (!r.ok) return;
      const page = await r.json();
      const now = last ? last.now : Date.now() / 1000;
      const tb = $("workers").tBodies[0];
      const frag = document.createDocumentFragment();
      page.rows.forEach((w) => {
        const tr = document.createElement("tr");
        cell(tr, w.worker_id === 0 ? w.name + " (all workers)" : w.name); cell(tr, rate(w.hashrate), "num"); cell(tr, num(w.accept_count), "num");
        cell(tr, (w.reject_rate * 100).toFixed(2) + " %", "num"); cell(tr, w.last_share > 0 ? ago(w.last_share, now) + " ago" : "–"); cell(tr, w.last_ip);
        frag.appendChild(tr);
      });
      tb.textContent = ""; tb.appendChild(frag);
      const end = Math.min(table.offset + table.limit, page.total);
      text("page-info", page.total === 0 ? "no match" : (table.offset + 1) + "–" + end + " of " + num(page.total));
      $("prev").disabled = table.offset === 0; $("next").disabled = end >= page.total;
    } finally { table.busy = false; }
  }

  function init() {
    document.querySelectorAll("#chart-tabs button").forEach((b) => b.addEventListener("click", () => {
      span = b.dataset.span;
      document.querySelectorAll("#chart-tabs button").forEach((o) => o.classList.toggle("on", o === b));
      if (last) chart(last);
    }));
    document.querySelectorAll("#workers th[data-sort]").forEach((th) => th.addEventListener("click", () => {
      if (table.sort === th.dataset.sort) table.desc = !table.desc; else { table.sort = th.dataset.sort; table.desc = th.dataset.sort !== "name"; }
      document.querySelectorAll("#workers th").forEach((o) => o.classList.remove("sorted", "asc"));
      th.classList.add("sorted"); if (!table.desc) th.classList.add("asc");
      table.offset = 0; loadWorkers();
    }));
    let timer = null;
    $("search").addEventListener("input", (e) => { clearTimeout(timer); timer = setTimeout(() => { table.q = e.target.value; table.offset = 0; loadWorkers(); }, 200); });
    $("prev").addEventListener("click", () => { table.offset = Math.max(0, table.offset - table.limit); loadWorkers(); });
    $("next").addEventListener("click", () => { table.offset += table.limit; loadWorkers(); });
    connect();
    loadWorkers();
    setInterval(loadWorkers, 10000);
  }
  init();
})();
