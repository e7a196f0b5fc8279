// d3os ui: the page. It draws what the server sends (rows, the core's graph drawn as SVG, Events, history)
// and orders nothing itself. Live by server-sent events; operations are POSTs with the token header.
"use strict";
(() => {
  const TOKEN = document.querySelector('meta[name="d3os-token"]').content;
  const $ = (id) => document.getElementById(id);
  const MARKS = { Pending: "·", Waiting: "…", Progressing: "↻", Ready: "✓", Failed: "✗", Conflict: "⚠", Suspended: "‖" };
  window.d3os = { marks: {}, rendered: 0 };
  const mark = (name) => { window.d3os.marks[name] = performance.now(); };

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }
  function age(ts) {
    if (!ts) return "";
    const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
    if (s < 120) return s + "s";
    if (s < 7200) return Math.floor(s / 60) + "m";
    if (s < 172800) return Math.floor(s / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }
  function setLive(on, text) { const l = $("live"); l.classList.toggle("on", on); l.textContent = text; }
  function condText(c) { return `${c.type}=${c.status}` + (c.reason ? ` (${c.reason})` : ""); }

  // ---- overview -------------------------------------------------------------------------------------------
  const rows = new Map();   // key -> row
  const trs = new Map();    // key -> <tr>
  let overviewSource = null;
  const notices = new Map();

  function rowCells(r) {
    return [r.namespace, r.kind, null, r.phase, r.message, r.ready,
            r.conditions.map(condText).join(", "), age(r.created)];
  }
  function fillRow(tr, r) {
    const cells = rowCells(r);
    if (!tr.firstChild) {
      cells.forEach((text, i) => {
        const td = el("td", i === 4 ? { class: "msg" } : {});
        if (i === 2) td.append(el("a", { href: `#/i/${encodeURIComponent(r.kind)}/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`, text: r.name }));
        tr.append(td);
      });
    }
    cells.forEach((text, i) => { if (i !== 2 && tr.children[i].textContent !== text) tr.children[i].textContent = text; });
    tr.dataset.state = r.state; tr.dataset.ns = r.namespace; tr.dataset.kind = r.kind; tr.dataset.name = r.name;
  }
  function sortKey(r) { return `${r.namespace}\u0000${r.kind}\u0000${r.name}`; }
  function upsertRows(list) {
    const body = document.querySelector("#instances tbody");
    let added = false;
    for (const r of list) {
      rows.set(r.key, r);
      let tr = trs.get(r.key);
      if (!tr) { tr = el("tr", { "data-key": r.key }); trs.set(r.key, tr); added = true; }
      fillRow(tr, r);
    }
    if (added) {
      const frag = document.createDocumentFragment();
      [...rows.values()].sort((a, b) => sortKey(a) < sortKey(b) ? -1 : 1).forEach((r) => frag.append(trs.get(r.key)));
      body.append(frag);
    }
    refreshChoices(); applyFilter();
  }
  function removeRow(key) { rows.delete(key); const tr = trs.get(key); if (tr) tr.remove(); trs.delete(key); refreshChoices(); applyFilter(); }
  function refreshChoices() {
    for (const [id, field] of [["f-ns", "namespace"], ["f-kind", "kind"]]) {
      const sel = $(id);
      const values = [...new Set([...rows.values()].map((r) => r[field]))].sort();
      const have = [...sel.options].slice(1).map((o) => o.value);
      if (have.join("\u0000") === values.join("\u0000")) continue;
      const keep = sel.value;
      sel.replaceChildren(el("option", { value: "", text: "all" }), ...values.map((v) => el("option", { value: v, text: v })));
      sel.value = values.includes(keep) ? keep : "";
    }
  }
  function applyFilter() {
    const ns = $("f-ns").value, kind = $("f-kind").value, st = $("f-state").value, text = $("f-text").value.trim().toLowerCase();
    let shown = 0;
    for (const [key, tr] of trs) {
      const r = rows.get(key);
      const ok = (!ns || r.namespace === ns) && (!kind || r.kind === kind) && (!st || r.state === st) && (!text || r.name.toLowerCase().includes(text));
      tr.classList.toggle("hidden", !ok);
      if (ok) shown++;
    }
    $("count").textContent = `${shown} of ${rows.size} instances`;
    window.d3os.rendered = rows.size;
  }
  function showNotices() {
    const n = $("notices");
    n.hidden = notices.size === 0;
    n.textContent = [...notices.values()].join("\n");
  }
  function openOverview() {
    if (overviewSource) return;
    overviewSource = new EventSource("/api/overview");
    overviewSource.onopen = () => setLive(true, "live");
    overviewSource.onerror = () => setLive(false, "reconnecting…");
    overviewSource.addEventListener("reset", (e) => {
      const kind = JSON.parse(e.data);
      for (const [key, r] of [...rows]) if (r.kind === kind) removeRow(key);
      notices.delete(kind); showNotices();
    });
    overviewSource.addEventListener("rows", (e) => { upsertRows(JSON.parse(e.data)); mark("overview-rows"); });
    overviewSource.addEventListener("remove", (e) => removeRow(JSON.parse(e.data)));
    for (const t of ["refused", "trouble"]) overviewSource.addEventListener(t, (e) => {
      const text = JSON.parse(e.data); notices.set(text.split(":")[0], text); showNotices();
    });
  }
  for (const id of ["f-ns", "f-kind", "f-state"]) $(id).addEventListener("change", applyFilter);
  $("f-text").addEventListener("input", applyFilter);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  setInterval(() => { for (const [key, tr] of trs) tr.children[7].textContent = age(rows.get(key).created); }, 10000);

  // ---- one instance ---------------------------------------------------------------------------------------
  let current = null;   // {kind, namespace, name}
  let instanceSource = null;
  let last = null;      // last instance payload
  let lastSvg = "";
  let selected = null;
  let historyFor = null;

  function api(path) { const c = current; return `/api/i/${encodeURIComponent(c.kind)}/${encodeURIComponent(c.namespace)}/${encodeURIComponent(c.name)}${path}`; }
  async function getJSON(path) {
    const res = await fetch(api(path), { headers: { "X-D3os-Token": TOKEN } });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || res.statusText);
    return data;
  }
  async function post(path, body) {
    const res = await fetch(api(path), { method: "POST", headers: { "Content-Type": "application/json", "X-D3os-Token": TOKEN }, body: JSON.stringify(body) });
    const data = await res.json().catch(() => ({ error: res.statusText }));
    if (!res.ok) throw new Error(data.error || res.statusText);
    return data.message;
  }
  function result(text, error) { const r = $("result"); r.hidden = false; r.textContent = text; r.classList.toggle("error", !!error); }

  function renderInstance(d) {
    last = d;
    $("i-title").textContent = `${d.kind} ${d.namespace}/${d.name}`;
    $("i-name").textContent = d.name; $("i-phase").textContent = d.phase; $("i-message").textContent = d.message;
    $("i-ready").textContent = d.ready; $("i-age").textContent = age(d.created);
    const g = d.graph;
    $("i-state").textContent = `State: ${d.state}` + (d.suspend ? " (spec.suspend is true)" : "") +
      (d.deleting ? " — being deleted" : "") + ` · generation ${d.generation ?? "-"}, observed ${d.observedGeneration ?? "-"}` +
      (g.specProblem ? ` · the spec cannot be read: ${g.specProblem}` : "");
    const byKey = Object.fromEntries(g.nodes.map((n) => [n.key, n]));
    const blocker = $("i-blocker");
    if (g.current.length) {
      blocker.textContent = g.current.map((k) => `The rollout is at ${k} (${byKey[k].state}): ${byKey[k].message}`).join(" · ");
      blocker.classList.toggle("failed", g.current.some((k) => ["Failed", "Conflict"].includes(byKey[k].state)));
    } else {
      const prog = d.conditions.find((c) => c.type === "Progressing");
      blocker.textContent = d.state === "Ready" ? "All components are ready." : (prog ? `${prog.reason}: ${prog.message}` : "");
      blocker.classList.remove("failed");
    }
    if (d.svg !== lastSvg) {
      const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
      const t0 = performance.now();
      $("graph").innerHTML = d.svg;  // drawn by the server from the core's layers, every text escaped there
      lastSvg = d.svg;
      $("graph").getBoundingClientRect();
      window.d3os.lastGraphMs = performance.now() - t0;
      requestAnimationFrame(() => requestAnimationFrame(() => mark("graph-painted")));
      mark("graph-inserted");
      if (focused) { const n = $("graph").querySelector(`g.node[data-key="${CSS.escape(focused)}"]`); if (n) n.focus(); }
      if (selected) { const n = $("graph").querySelector(`g.node[data-key="${CSS.escape(selected)}"]`); if (n) n.classList.add("selected"); }
    }
    if (selected) showNode(selected);
    const tb = document.querySelector("#components tbody");
    tb.replaceChildren(...g.nodes.map((n) => el("tr", { "data-key": n.key },
      el("td", { text: String(n.layer + 1) }), el("td", { text: n.key }), el("td", { text: n.kind }),
      el("td", { text: n.replicas }), el("td", { text: n.object }),
      el("td", { class: "state" }, el("span", { class: `st-${n.state}`, text: `${MARKS[n.state] || "?"} ${n.state}${n.current ? " ◀ now" : ""}` })),
      el("td", { class: "msg", text: n.message }))));
    const cb = document.querySelector("#conditions tbody");
    cb.replaceChildren(...d.conditions.map((c) => el("tr", {}, el("td", { text: c.type }), el("td", { text: c.status }),
      el("td", { text: c.reason }), el("td", { text: c.lastTransitionTime }), el("td", { class: "msg", text: c.message }))));
    $("act-suspend").textContent = d.suspend ? "Resume…" : "Suspend…";
    for (const f of ["svg", "dot", "mermaid"]) $(`exp-${f}`).href = api(`/export/${f}`);
    if (historyFor !== d.currentRevision + "/" + d.generation) { historyFor = d.currentRevision + "/" + d.generation; loadHistory(); }
  }
  function showNode(key) {
    const n = last && last.graph.nodes.find((x) => x.key === key);
    const box = $("node-detail");
    if (!n) { box.hidden = true; return; }
    box.hidden = false;
    box.replaceChildren(el("strong", { text: n.key }), ` — ${n.kind}${n.replicas ? " ×" + n.replicas : ""} — ${MARKS[n.state]} ${n.state}`,
      el("br"), n.object ? `object: ${n.object}` : "", n.object ? el("br") : "",
      n.dependsOn.length ? `waits for: ${n.dependsOn.join(", ")}` : "needs nothing before it", el("br"),
      el("span", { class: "msg", text: n.message || "" }));
  }
  function select(key) {
    selected = key;
    for (const g of $("graph").querySelectorAll("g.node")) g.classList.toggle("selected", g.dataset.key === key);
    showNode(key);
  }
  $("graph").addEventListener("click", (e) => { const g = e.target.closest("g.node"); if (g) select(g.dataset.key); });
  $("graph").addEventListener("keydown", (e) => {
    const g = e.target.closest && e.target.closest("g.node");
    if (!g) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(g.dataset.key); return; }
    const nodes = [...$("graph").querySelectorAll("g.node")];
    const i = nodes.indexOf(g);
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
    if (step && nodes[i + step]) { e.preventDefault(); nodes[i + step].focus(); }
  });
  function renderEvents(list) {
    const tb = document.querySelector("#events tbody");
    tb.replaceChildren(...list.map((e) => el("tr", {}, el("td", { text: e.last }), el("td", { text: e.type }), el("td", { text: e.reason }),
      el("td", { text: e.object }), el("td", { text: String(e.count) }), el("td", { class: "msg", text: e.message }))));
  }
  async function loadHistory() {
    try {
      const h = await getJSON("/history");
      const tb = document.querySelector("#history tbody");
      tb.replaceChildren(...h.revisions.map((r) => el("tr", { "data-revision": String(r.number) }, el("td", { text: String(r.number) }),
        el("td", { text: r.current ? "*" : "" }), el("td", { text: r.readyAt || "-" }), el("td", { text: String(r.generation || "-") }),
        el("td", { text: r.change }))));
      const opts = () => h.revisions.map((r) => el("option", { value: String(r.number), text: `${r.number}${r.current ? " (current)" : ""}` }));
      const keepA = $("diff-a").value, keepB = $("diff-b").value, keepR = $("rb-revision").value;
      $("rb-revision").replaceChildren(...opts()); $("diff-a").replaceChildren(...opts()); $("diff-b").replaceChildren(...opts());
      const nums = h.revisions.map((r) => String(r.number));
      const cur = h.revisions.find((r) => r.current);
      const before = h.revisions.filter((r) => !cur || r.number < cur.number).pop();
      $("rb-revision").value = nums.includes(keepR) ? keepR : before ? String(before.number) : (nums[0] || "");
      $("diff-a").value = nums.includes(keepA) ? keepA : (before ? String(before.number) : nums[0] || "");
      $("diff-b").value = nums.includes(keepB) ? keepB : (cur ? String(cur.number) : nums[nums.length - 1] || "");
      $("act-rollback").disabled = nums.length === 0;
    } catch (err) { result(`history: ${err.message}`, true); }
  }
  $("diff-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const d = await getJSON(`/diff?a=${encodeURIComponent($("diff-a").value)}&b=${encodeURIComponent($("diff-b").value)}`);
      $("diff").hidden = false; $("diff").textContent = d.diff || `revisions ${d.a} and ${d.b} have the same spec`;
    } catch (err) { result(`diff: ${err.message}`, true); }
  });

  function confirmThen(title, text, okLabel, action) {
    const dlg = $("confirm");
    $("confirm-title").textContent = title; $("confirm-text").textContent = text; $("confirm-ok").textContent = okLabel;
    dlg.returnValue = "";
    $("result").hidden = true;
    dlg.onclose = async () => {
      if (dlg.returnValue !== "ok") { result("Cancelled: nothing was changed.", false); return; }
      try { result(await action(), false); } catch (err) { result(err.message, true); }
    };
    dlg.showModal();
    $("confirm-cancel").focus();
  }
  $("act-suspend").addEventListener("click", () => {
    const c = current, on = !(last && last.suspend);
    confirmThen(on ? "Suspend?" : "Resume?",
      on ? `Suspend ${c.kind} ${c.namespace}/${c.name}? The operator will write nothing to its objects until it is resumed (spec.suspend: true).`
         : `Resume ${c.kind} ${c.namespace}/${c.name}? The rollout continues from what is observed (spec.suspend: false).`,
      on ? "Suspend" : "Resume", () => post("/suspend", { suspend: on }));
  });
  $("act-rollback").addEventListener("click", () => {
    const c = current, n = Number($("rb-revision").value);
    confirmThen("Roll back?", `Roll back ${c.kind} ${c.namespace}/${c.name} to revision ${n}? Its spec is rewritten from that revision (as d3os rollback --to-revision ${n}); the operator then rolls it out in order.`,
      `Roll back to ${n}`, () => post("/rollback", { revision: n }));
  });

  function openInstance(kind, namespace, name) {
    if (instanceSource) instanceSource.close();
    current = { kind, namespace, name }; last = null; lastSvg = ""; selected = null; historyFor = null;
    $("graph").replaceChildren(); $("node-detail").hidden = true; $("result").hidden = true; $("diff").hidden = true;
    $("i-gone").hidden = true; renderEvents([]);
    $("i-title").textContent = `${kind} ${namespace}/${name}`;
    instanceSource = new EventSource(api(""));
    instanceSource.onopen = () => setLive(true, "live");
    instanceSource.onerror = () => setLive(false, "reconnecting…");
    instanceSource.addEventListener("instance", (e) => { $("i-gone").hidden = true; renderInstance(JSON.parse(e.data)); });
    instanceSource.addEventListener("events", (e) => renderEvents(JSON.parse(e.data)));
    instanceSource.addEventListener("gone", () => { const g = $("i-gone"); g.hidden = false; g.textContent = "This instance does not exist (any more)."; });
    for (const t of ["refused", "trouble"]) instanceSource.addEventListener(t, (e) => { const g = $("i-gone"); g.hidden = false; g.textContent = JSON.parse(e.data); });
  }

  // ---- routing --------------------------------------------------------------------------------------------
  function route() {
    const m = location.hash.match(/^#\/i\/([^/]+)\/([^/]+)\/([^/]+)$/);
    $("overview-view").hidden = !!m; $("instance-view").hidden = !m;
    if (m) {
      const [k, ns, n] = m.slice(1).map(decodeURIComponent);
      if (!current || current.kind !== k || current.namespace !== ns || current.name !== n) openInstance(k, ns, n);
    } else {
      if (instanceSource) { instanceSource.close(); instanceSource = null; current = null; }
      openOverview();
    }
  }
  window.addEventListener("hashchange", () => { route(); $("main").focus(); });
  route();
})();
