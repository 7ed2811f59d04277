// Fulcrum console: a single page over the admin API. Everything it shows comes from /api/v1 and
// every change goes through it (with the version it was based on and a message), so the console
// is authorised and audited like any other client.
"use strict";

// ---------------------------------------------------------------- small helpers

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") node.style.cssText = value;  // through the CSSOM: the CSP allows no style attributes
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const svgNS = "http://www.w3.org/2000/svg";
// Replaces `node`'s children, skipping absent ones as `el` does (the DOM's replaceChildren writes
// a null as the text "null": the change dialog showed it under its title).
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter(child => child !== null && child !== undefined && child !== false));
}

function svg(tag, attributes, ...children) {
  const node = document.createElementNS(svgNS, tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  for (const child of children.flat()) if (child) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
const $ = (selector, root = document) => root.querySelector(selector);
function toast(message) {
  const item = el("div", {}, message);
  $("#toast").append(item);
  setTimeout(() => item.remove(), 4000);
}
function fmtMs(value) { return value === null || value === undefined ? "–" : value < 10 ? value.toFixed(2) + " ms" : value.toFixed(1) + " ms"; }
function fmtNumber(value) { return value >= 100 ? Math.round(value).toString() : value.toFixed(1); }
function ago(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return Math.round(seconds) + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
  return new Date(iso).toLocaleString();
}
function lines(text) { return text.split("\n").map(s => s.trim()).filter(Boolean); }

// ---------------------------------------------------------------- the API

const session = {
  get token() { return sessionStorage.getItem("fulcrum.token"); },
  set token(value) { if (value) sessionStorage.setItem("fulcrum.token", value); else sessionStorage.removeItem("fulcrum.token"); },
  who: null,
  active: null,   // the active version, with its configuration
  schemas: {},    // the served OpenAPI document's schemas: the enumerations the forms offer
  get canEdit() { return this.who && this.who.role === "admin"; },
};

async function call(method, path, options = {}) {
  const headers = { "Authorization": "Bearer " + session.token };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.ifMatch !== undefined) headers["If-Match"] = options.ifMatch;
  let url = "/api/v1" + path;
  if (options.message !== undefined) url += (url.includes("?") ? "&" : "?") + "message=" + encodeURIComponent(options.message);
  const response = await fetch(url, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  if (response.status === 401 && path !== "/whoami") { signOut("Your token is no longer accepted."); throw new Error("unauthorized"); }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  return { status: response.status, ok: response.ok, json, text };
}

async function refreshActive() {
  const reply = await call("GET", "/config");
  if (reply.ok) { session.active = reply.json; renderVersionBadge(); }
  return session.active;
}

function renderVersionBadge() {
  const active = session.active;
  if (!active) return;
  $("#who").textContent = `${session.who.name} (${session.who.role}) · version ${active.number} by ${active.actor}, ${ago(active.created_at)}`;
}

// ---------------------------------------------------------------- changes

// Asks for the change message; resolves to null when cancelled.
function askMessage(title, detail) {
  return new Promise(resolve => {
    const dialog = $("#dialog");
    const form = $("#dialog-form");
    const input = el("textarea", { id: "change-message", required: true, rows: 2, placeholder: "Why? (kept with the version and in the audit log)" });
    fill(form,
      el("h2", {}, title),
      detail ? el("p", { class: "muted" }, detail) : null,
      el("label", { for: "change-message" }, "Change message"), input,
      el("div", { class: "row", style: "margin-top:12px" },
        el("button", { type: "submit", class: "primary", value: "ok", id: "confirm-change" }, "Apply"),
        el("button", { type: "button", onclick: () => dialog.close("cancel") }, "Cancel")));
    // a close event still queued from the dialog this one replaces (the node dialog closes itself
    // before asking) arrives while this one is open: only a real close answers
    dialog.onclose = () => { if (!dialog.open) resolve(dialog.returnValue === "ok" && input.value.trim() ? input.value.trim() : null); };
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
}

// Shows what changed since `base` and asks whether to apply the change again on top of it.
async function askAfterConflict(base, active) {
  const diff = await call("GET", `/versions/${base}/diff?to=${active}`);
  return new Promise(resolve => {
    const dialog = $("#dialog");
    const changes = diff.ok ? diff.json.changes : [];
    $("#dialog-form").replaceChildren(
      el("h2", {}, "Someone else changed the configuration"),
      el("p", {}, `Your change was based on version ${base}; version ${active} is now active. Nothing of yours was applied. Their changes:`),
      changesList(changes),
      el("div", { class: "row", style: "margin-top:12px" },
        el("button", { type: "submit", class: "primary", value: "retry", id: "retry-change" }, `Apply my change on version ${active}`),
        el("button", { type: "button", onclick: () => dialog.close("cancel") }, "Cancel")));
    dialog.onclose = () => resolve(dialog.returnValue === "retry");
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// Runs a change: `request(active)` gives {method, path, body} for the configuration in `active`.
// Returns {ok} or {issues, error}. Conflicts offer a retry on the new version.
async function change(title, request, message) {
  message = message || await askMessage(title);
  if (!message) return { cancelled: true };
  for (;;) {
    const base = session.active.number;
    const { method, path, body } = request(session.active);
    const reply = await call(method, path, { body, ifMatch: `"${base}"`, message });
    if (reply.status === 412) {
      const active = reply.json.error.active_version;
      await refreshActive();
      if (!(await askAfterConflict(base, active))) return { error: "cancelled after a conflict" };
      continue;
    }
    if (!reply.ok) {
      const error = reply.json && reply.json.error ? reply.json.error : { message: reply.text };
      return { issues: error.issues || [], error: error.message };
    }
    await refreshActive();
    toast(reply.json.created ? `Version ${reply.json.version.number}: ${title}` : "Nothing changed");
    return { ok: true, reply: reply.json };
  }
}

function changesList(changes) {
  if (!changes.length) return el("p", { class: "muted" }, "No changes.");
  return el("ul", {}, changes.map(c => el("li", {},
    el("code", {}, c.path || "(document)"), ": ",
    c.before === null ? "" : el("del", {}, JSON.stringify(c.before)), c.before !== null && c.after !== null ? " → " : "",
    c.after === null ? "removed" : el("ins", {}, JSON.stringify(c.after)))));
}

// An edit control: disabled for viewers (the API refuses them anyway).
function editButton(label, onclick, attributes = {}) {
  const button = el("button", Object.assign({ type: "button", onclick }, attributes), label);
  if (!session.canEdit) { button.disabled = true; button.title = "A viewer token cannot change anything"; }
  return button;
}
function editable(node) {
  if (!session.canEdit) { node.disabled = true; node.title = "A viewer token cannot change anything"; }
  return node;
}

// Shows validation issues beside the fields whose `data-path` is a prefix of the issue's path
// (after `prefix`); the rest go to `fallback`.
function showIssues(form, prefix, issues, fallback) {
  for (const node of form.querySelectorAll("[data-error]")) node.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const rest = [];
  for (const issue of issues) {
    const relative = issue.path.startsWith(prefix) ? issue.path.slice(prefix.length).replace(/^\./, "") : null;
    const field = relative === null ? null : [...form.querySelectorAll("[data-path]")]
      .filter(f => relative === f.dataset.path || relative.startsWith(f.dataset.path + ".") || relative.startsWith(f.dataset.path + "["))
      .sort((a, b) => b.dataset.path.length - a.dataset.path.length)[0];
    if (field) {
      field.setAttribute("aria-invalid", "true");
      const slot = form.querySelector(`[data-error="${field.dataset.path}"]`);
      slot.textContent += (slot.textContent ? "\n" : "") + issue.message;
    } else rest.push(issue.path ? `${issue.path}: ${issue.message}` : issue.message);
  }
  fallback.textContent = rest.join("\n");
}

function field(label, path, input, hint) {
  const id = "f-" + path.replace(/[^a-z0-9]/gi, "-");
  input.id = id;
  input.dataset.path = path;
  return el("div", {}, el("label", { for: id }, label), input, hint ? el("div", { class: "hint" }, hint) : null,
    el("div", { class: "field-error", "data-error": path, role: "alert" }));
}

// ---------------------------------------------------------------- charts

// A line chart of per-second series (oldest first): `series` is [{values, label}], nulls are gaps.
function lineChart(series, { height = 120, unit = "" } = {}) {
  const width = 600;
  const values = series.flatMap(s => s.values).filter(v => v !== null && v !== undefined);
  const top = Math.max(1e-9, ...values) * 1.15 || 1;
  const count = Math.max(1, ...series.map(s => s.values.length));
  const x = i => 30 + (width - 34) * (count === 1 ? 1 : i / (count - 1));
  const y = v => height - 14 - (height - 22) * (v / top);
  const paths = series.map((s, index) => {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
    });
    return svg("path", { d: d || "M0 0", class: "s" + index });
  });
  const label = v => (v >= 100 ? Math.round(v) : v.toFixed(v >= 10 ? 0 : 1)) + unit;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img",
      "aria-label": series.map(s => `${s.label}: latest ${label(s.values[s.values.length - 1] || 0)}`).join(", ") },
    svg("line", { class: "axis", x1: 30, y1: height - 14, x2: width, y2: height - 14 }),
    svg("text", { x: 0, y: 10 }, label(top / 1.15)), svg("text", { x: 0, y: height - 14 }, "0"),
    svg("text", { x: 30, y: height - 2 }, `-${count}s`), svg("text", { x: width - 24, y: height - 2 }, "now"),
    paths);
  chart.style.height = height + "px";  // the drawing keeps its proportions (text is not stretched)
  const colors = ["var(--accent)", "var(--bad)", "var(--warn)"];
  return el("div", {}, chart, el("div", { class: "legend" },
    series.map((s, i) => el("span", {}, el("i", { style: `background:${colors[i]}` }), s.label))));
}

// ---------------------------------------------------------------- pages

const pages = {};
let pollTimer = null;
function poll(render, everyMs = 2000) {
  clearInterval(pollTimer);
  const tick = async () => { try { await render(); } catch (error) { if (error.message !== "unauthorized") console.warn(error); } };
  tick();
  pollTimer = setInterval(tick, everyMs);
}

function nodeBadge(node, stateNode) {
  if (node.drain) return el("span", { class: "badge draining" }, "draining");
  if (stateNode && !stateNode.up) return el("span", { class: "badge down" }, "down");
  if (stateNode && stateNode.ejected_for_seconds !== null) return el("span", { class: "badge ejected" }, "ejected");
  return el("span", { class: "badge up" }, "up");
}

// Live figures from a traffic entry's per-second series: the last `span` seconds.
function recent(entry, span = 5) {
  const series = entry ? entry.series : [];
  const last = series.slice(-span);
  const requests = last.reduce((a, s) => a + s.requests, 0);
  const errors = last.reduce((a, s) => a + s.errors, 0);
  const latest = [...series].reverse().find(s => s.p99_ms !== null) || { p50_ms: null, p99_ms: null };
  return { rps: requests / span, errorRatio: requests ? errors / requests : 0, p50: latest.p50_ms, p99: latest.p99_ms };
}

// The certificates TLS listeners serve, soonest to expire first, with the days they have left
// (the server says which are expiring: the period the log and `fulcrum check` warn in), and the
// ones uploaded to the store, which can be replaced (upload under the same name) or removed.
const certificateBadge = { valid: "up", expiring: "ejected", expired: "down" };
function certificatePanel(items) {
  const rows = [...items].sort((a, b) => a.days_left - b.days_left).map(c => {
    const state = certificateBadge[c.state];
    const left = c.state === "expired" ? `expired ${-c.days_left} d ago` : `${c.days_left} d`;
    const source = c.source === "stored" ? `uploaded: ${c.stored_name}` : c.file;
    return el("tr", { dataset: { certificate: c.fingerprint } },
      el("td", {}, c.names.join(", ") || c.subject), el("td", { class: "muted" }, c.listener || "no TLS listener"),
      el("td", { class: "muted" }, source), el("td", {}, c.issuer), el("td", {}, c.not_after.slice(0, 10)),
      el("td", {}, el("span", { class: `badge ${state} days-left` }, left)),
      el("td", { class: "muted", title: c.fingerprint }, c.fingerprint.slice(0, 23) + "…"),
      el("td", {}, c.source === "stored" ? editButton("Remove", () => removeCertificate(c.stored_name), { class: "remove-certificate" }) : null));
  });
  return el("section", { class: "panel", id: "certificates" },
    el("h2", {}, "Certificates", " ", editButton("Upload…", () => certificateDialog(), { id: "upload-certificate" })),
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Names", "Listener", "Source", "Issuer", "Expires", "Days left", "SHA-256", ""].map(h => el("th", {}, h)))),
      el("tbody", {}, rows))));
}

// Uploads a chain and key (pasted, or read from files) to the store; every TLS listener serves
// it from the next handshake. The key goes to the server once and is never shown again.
function certificateDialog() {
  const dialog = $("#dialog");
  const form = $("#dialog-form");
  const name = el("input", { required: true, placeholder: "e.g. api-example-com" });
  const cert = el("textarea", { rows: 5, placeholder: "-----BEGIN CERTIFICATE-----" });
  const key = el("textarea", { rows: 5, placeholder: "-----BEGIN PRIVATE KEY-----" });
  const fromFile = target => el("input", { type: "file", accept: ".pem,.crt,.key", onchange: async event => {
    const file = event.target.files[0];
    if (file) target.value = await file.text();
  } });
  const error = el("p", { class: "error", role: "alert" });
  const parts = [el("h2", {}, "Upload a certificate"),
    el("p", { class: "muted" }, "Served by every TLS listener; a name already uploaded is replaced. The key is kept in the store only."),
    field("Name", "name", name), field("Chain (PEM, leaf first)", "cert", cert), fromFile(cert),
    field("Private key (PEM)", "key", key), fromFile(key), error,
    el("div", { class: "row" }, el("button", { type: "button", class: "primary", id: "save-certificate", onclick: async () => {
      dialog.close();
      const body = { cert: cert.value, key: key.value };
      const result = await change(`upload certificate ${name.value}`, () => ({ method: "PUT", path: `/certificates/${enc(name.value)}`, body }));
      if (result.ok) { key.value = ""; render(); return; }
      if (result.cancelled) return;
      openDialog(parts);
      showIssues(form, "", result.issues, error);
      if (!error.textContent && !form.querySelector("[aria-invalid]")) error.textContent = result.error || "";
    } }, "Upload"), el("button", { type: "button", onclick: () => dialog.close() }, "Cancel"))];
  openDialog(parts);
}

async function removeCertificate(name) {
  const result = await change(`remove certificate ${name}`, () => ({ method: "DELETE", path: `/certificates/${enc(name)}` }));
  if (result.ok) render();
  else if (!result.cancelled) toast(result.error || "not removed");
}

// The instances sharing the store (one for a SQLite file): the version each serves and its state,
// as the server judges it (in sync, behind, failing with its error, gone after missed heartbeats).
const instanceBadge = { in_sync: "up", behind: "ejected", failing: "down", gone: "draining" };
function instancePanel(view) {
  const rows = view.items.map(i => el("tr", { dataset: { instance: i.id } },
    el("td", {}, i.host_name), el("td", { class: "muted", title: i.id }, i.id.slice(0, 8)), el("td", { class: "muted" }, i.listen.join(", ")),
    el("td", {}, `v${i.applied_version}`), el("td", {}, el("span", { class: `badge ${instanceBadge[i.state]} instance-state` }, i.state.replace("_", " "))),
    el("td", {}, ago(i.heartbeat_at)), el("td", { class: "error" }, i.last_error || "")));
  return el("section", { class: "panel", id: "instances" },
    el("h2", {}, "Instances", el("span", { class: "muted" }, ` · store at version ${view.active_version}`)),
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Host", "Id", "Listening", "Serves", "State", "Heartbeat", "Last error"].map(h => el("th", {}, h)))),
      el("tbody", {}, rows))));
}

pages.overview = async function (root) {
  root.replaceChildren(el("h1", {}, "Overview"), el("div", { id: "overview-body" }, el("p", { class: "muted" }, "Loading…")));
  poll(async () => {
    const [stats, state, certificates, instances] = await Promise.all([
      call("GET", "/stats?seconds=60&series=true"), call("GET", "/state"), call("GET", "/certificates"), call("GET", "/instances"),
      refreshActive()]);
    if (!stats.ok || !state.ok || !session.active) return;
    const config = session.active.config;
    const body = el("div", { id: "overview-body" });
    for (const [name, service] of Object.entries(config.services || {})) {
      const traffic = stats.json.services.find(s => s.name === name);
      const live = recent(traffic);
      const stateService = state.json.services.find(s => s.name === name) || { nodes: [] };
      const series = traffic ? traffic.series : [];
      const rows = (service.nodes || []).map(node => {
        const nodeTraffic = stats.json.nodes.find(n => n.service === name && n.name === node.name);
        const nodeLive = recent(nodeTraffic);
        const stateNode = stateService.nodes.find(n => n.name === node.name);
        return el("tr", { dataset: { node: node.name } },
          el("td", {}, node.name), el("td", { class: "muted" }, `${node.host}:${node.port}`),
          el("td", {}, node.weight === undefined ? 1 : node.weight), el("td", {}, nodeBadge(node, stateNode)),
          el("td", { class: "node-rps" }, fmtNumber(nodeLive.rps)), el("td", {}, (nodeLive.errorRatio * 100).toFixed(1) + " %"),
          el("td", {}, fmtMs(nodeLive.p50)), el("td", {}, fmtMs(nodeLive.p99)),
          el("td", {}, stateNode ? stateNode.in_flight : 0),
          el("td", { style: "min-width:160px" }, lineChart([
            { label: "req/s", values: nodeTraffic ? nodeTraffic.series.map(s => s.requests) : [] },
            { label: "5xx/s", values: nodeTraffic ? nodeTraffic.series.map(s => s.errors) : [] }], { height: 50 })),
          el("td", { style: "min-width:160px" }, lineChart([
            { label: "p50", values: nodeTraffic ? nodeTraffic.series.map(s => s.p50_ms) : [] },
            { label: "p99", values: nodeTraffic ? nodeTraffic.series.map(s => s.p99_ms) : [] }], { height: 50, unit: " ms" })));
      });
      body.append(el("section", { class: "panel", dataset: { service: name } },
        el("h2", {}, `Service ${name}`, el("span", { class: "muted" }, ` · ${service.strategy || "round_robin"}`)),
        el("div", { class: "kpis" },
          el("div", { class: "kpi" }, el("b", { class: "service-rps" }, fmtNumber(live.rps)), el("span", {}, "requests/s (5 s)")),
          el("div", { class: "kpi" }, el("b", {}, (live.errorRatio * 100).toFixed(1) + " %"), el("span", {}, "5xx")),
          el("div", { class: "kpi" }, el("b", {}, fmtMs(live.p50)), el("span", {}, "p50")),
          el("div", { class: "kpi" }, el("b", {}, fmtMs(live.p99)), el("span", {}, "p99")),
          el("div", { class: "kpi" }, el("b", {}, traffic ? traffic.total.requests : 0), el("span", {}, "requests since start"))),
        el("div", { class: "cols" },
          lineChart([{ label: "requests/s", values: series.map(s => s.requests) }, { label: "5xx/s", values: series.map(s => s.errors) }]),
          lineChart([{ label: "p50", values: series.map(s => s.p50_ms) }, { label: "p99", values: series.map(s => s.p99_ms) }], { unit: " ms" })),
        el("div", { class: "scroll" }, el("table", {},
          el("thead", {}, el("tr", {}, ["Node", "Address", "Weight", "State", "req/s", "5xx", "p50", "p99", "In flight", "Traffic, 60 s", "Latency, 60 s"].map(h => el("th", {}, h)))),
          el("tbody", {}, rows)))));
    }
    const tlsListener = (config.listen || []).some(l => l.tls);
    if (certificates.ok && (certificates.json.items.length || tlsListener)) body.append(certificatePanel(certificates.json.items));
    if (instances.ok) body.append(instancePanel(instances.json));
    else body.append(el("p", { class: "error", id: "store-unavailable", role: "alert" }, instances.json && instances.json.error ? instances.json.error.message : "the store cannot be reached"));
    const active = session.active;
    body.append(el("p", { class: "muted", id: "active-version" },
      `Active configuration: version ${active.number}, ${active.source} change by ${active.actor} ${ago(active.created_at)}`,
      active.message ? ` — “${active.message}”` : ""));
    $("#overview-body").replaceWith(body);
  });
};

pages.services = async function (root) {
  await refreshActive();
  const config = session.active.config;
  const [state, services] = [await call("GET", "/state"), Object.entries(config.services || {})];
  root.replaceChildren(el("h1", {}, "Services and nodes"));
  root.append(addServiceForm());
  for (const [name, service] of services) {
    const stateService = (state.json && state.json.services.find(s => s.name === name)) || { nodes: [] };
    const current = service.strategy || "round_robin";
    const strategy = editable(el("select", { "aria-label": `strategy of ${name}` }, (session.schemas.Strategy || { enum: [current] }).enum.map(s =>
      el("option", { value: s, selected: current === s }, s))));
    // the setting a strategy needs: the hash key, or the pinned node; latency settings are kept as they are
    const setting = editable(el("input", { value: service.hash_key || service.pinned_node || "", "aria-label": `strategy setting of ${name}` }));
    const showSetting = () => {
      setting.hidden = !["hash", "pinned"].includes(strategy.value);
      setting.placeholder = strategy.value === "hash" ? "hash key, e.g. header:X-User" : "node name";
    };
    strategy.addEventListener("change", showSetting);
    showSetting();
    const serviceError = el("p", { class: "error", role: "alert" });
    const rows = (service.nodes || []).map((node, index) => {
      const weight = editable(el("input", { type: "number", min: 0, max: 10000, value: node.weight === undefined ? 1 : node.weight, style: "width:90px", "aria-label": `weight of ${node.name}` }));
      const rowError = el("div", { class: "field-error", role: "alert" });
      const history = el("div", {});
      return el("tr", { dataset: { node: node.name } },
        el("td", {}, node.name), el("td", {}, `${node.host}:${node.port}`, node.tls ? el("span", { class: "badge tls", title: "reached over TLS" }, "TLS") : null),
        el("td", {}, el("div", { class: "row" }, weight, editButton("Set weight", async () => {
          const result = await change(`weight of ${name}/${node.name} → ${weight.value}`, () => ({
            method: "PATCH", path: `/services/${enc(name)}/nodes/${enc(node.name)}`, body: { weight: Number(weight.value) } }));
          if (result.ok) render(); else if (!result.cancelled) rowError.textContent = issueText(result);
        })), rowError),
        el("td", {}, nodeBadge(node, stateService.nodes.find(n => n.name === node.name))),
        el("td", {}, el("div", { class: "row" },
          editButton(node.drain ? "Enable" : "Drain", async () => {
            const action = node.drain ? "enable" : "drain";
            const result = await change(`${action} ${name}/${node.name}`, () => ({ method: "POST", path: `/services/${enc(name)}/nodes/${enc(node.name)}/${action}` }));
            if (result.ok) render(); else if (!result.cancelled) rowError.textContent = issueText(result);
          }, { class: node.drain ? "" : "danger", dataset: { action: node.drain ? "enable" : "drain" } }),
          editButton("Edit", () => nodeDialog(name, node, index)),
          editButton("Remove", async () => {
            const result = await change(`remove node ${name}/${node.name}`, () => ({ method: "DELETE", path: `/services/${enc(name)}/nodes/${enc(node.name)}` }));
            if (result.ok) render(); else if (!result.cancelled) rowError.textContent = issueText(result);
          }, { class: "danger" }),
          el("button", { type: "button", onclick: async () => {
            const reply = await call("GET", `/services/${enc(name)}/nodes/${enc(node.name)}/probes`);
            const items = reply.ok ? reply.json.items : [];
            history.replaceChildren(items.length ? el("ul", { class: "probes" }, items.slice().reverse().map(p =>
              el("li", {}, new Date(p.time).toLocaleTimeString(), " ", el("span", { class: "badge " + (p.success ? "up" : "down") }, p.success ? "ok" : "failed"), " ", p.detail)))
              : el("p", { class: "muted" }, "No probe results (no active health check, or none yet)."));
          } }, "Probe history")), history));
    });
    root.append(el("section", { class: "panel", dataset: { service: name } },
      el("h2", {}, `Service ${name}`),
      el("div", { class: "row" }, el("label", {}, "Strategy"), strategy, setting,
        editButton("Save strategy", async () => {
          const kind = strategy.value;
          const body = {
            strategy: kind, hash_key: kind === "hash" ? setting.value || null : null,
            pinned_node: kind === "pinned" ? setting.value || null : null, latency: kind === "latency" ? service.latency || null : null,
          };
          const result = await change(`strategy of ${name} → ${strategy.value}`, () => ({ method: "PATCH", path: `/services/${enc(name)}`, body }));
          if (result.ok) render(); else if (!result.cancelled) serviceError.textContent = issueText(result);
        }),
        editButton("Remove service", async () => {
          const result = await change(`remove service ${name}`, () => ({ method: "DELETE", path: `/services/${enc(name)}` }));
          if (result.ok) render(); else if (!result.cancelled) serviceError.textContent = issueText(result);
        }, { class: "danger" })),
      serviceError,
      el("div", { class: "scroll" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Node", "Address", "Weight", "State", "Actions"].map(h => el("th", {}, h)))), el("tbody", {}, rows))),
      editButton("Add node", () => nodeDialog(name, null, (service.nodes || []).length))));
  }
};

function enc(text) { return encodeURIComponent(text); }
function issueText(result) {
  return [result.error, ...(result.issues || []).map(i => `${i.path}: ${i.message}`)].filter(Boolean).join("\n");
}

function addServiceForm() {
  const form = el("form", { class: "panel", id: "add-service" });
  const name = el("input", { required: true });
  const node = el("input", { required: true, value: "node-1" });
  const host = el("input", { required: true, value: "127.0.0.1" });
  const port = el("input", { type: "number", required: true, min: 1, max: 65535 });
  const error = el("p", { class: "error", role: "alert" });
  form.append(el("h2", {}, "Add a service"), el("div", { class: "grid" },
    field("Name", "name", editable(name)), field("First node", "nodes[0].name", editable(node)),
    field("Host", "nodes[0].host", editable(host)), field("Port", "nodes[0].port", editable(port))),
    error, editButton("Add service", null, { type: "submit", class: "primary" }));
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const body = { name: name.value, nodes: [{ name: node.value, host: host.value, port: Number(port.value) }] };
    const result = await change(`add service ${name.value}`, () => ({ method: "POST", path: "/services", body }));
    if (result.ok) render();
    else if (!result.cancelled) showIssues(form, `services.${name.value}`, result.issues, error), error.textContent ||= result.error || "";
  });
  return form;
}

function nodeDialog(service, node, index) {
  const dialog = $("#dialog");
  const form = $("#dialog-form");
  const name = el("input", { value: node ? node.name : "", required: true, disabled: !!node });
  const host = el("input", { value: node ? node.host : "127.0.0.1", required: true });
  const port = el("input", { type: "number", value: node ? node.port : "", required: true });
  const weight = el("input", { type: "number", value: node && node.weight !== undefined ? node.weight : 1 });
  const tags = el("input", { value: node && node.tags ? node.tags.join(", ") : "" });
  const error = el("p", { class: "error", role: "alert" });
  const parts = [el("h2", {}, node ? `Edit node ${service}/${node.name}` : `Add a node to ${service}`),
    field("Name", "name", name), field("Host", "host", host), field("Port", "port", port), field("Weight", "weight", weight),
    field("Tags (comma separated)", "tags", tags), error,
    el("div", { class: "row" }, el("button", { type: "button", class: "primary", id: "save-node", onclick: async () => {
      const body = { name: name.value, host: host.value, port: Number(port.value), weight: Number(weight.value) };
      const tagList = tags.value.split(",").map(s => s.trim()).filter(Boolean);
      if (tagList.length) body.tags = tagList;
      if (node && node.drain) body.drain = true;
      if (node && node.tls) body.tls = node.tls;  // not edited here; kept as configured
      dialog.close();
      const result = await change(node ? `edit node ${service}/${node.name}` : `add node ${service}/${name.value}`, () => node
        ? { method: "PUT", path: `/services/${enc(service)}/nodes/${enc(node.name)}`, body }
        : { method: "POST", path: `/services/${enc(service)}/nodes`, body });
      if (result.ok) { render(); return; }
      if (result.cancelled) return;
      openDialog(parts);  // the change message took the dialog: the node's fields come back with the issues
      showIssues(form, `services.${service}.nodes[${index}]`, result.issues, error);
      if (!error.textContent && !form.querySelector("[aria-invalid]")) error.textContent = result.error || "";
    } }, "Save"), el("button", { type: "button", onclick: () => dialog.close() }, "Cancel"))];
  openDialog(parts);
}

// Shows `parts` in the shared dialog. The change message is asked in the same dialog, so a form
// that failed is opened again from its own (detached, still filled in) nodes.
function openDialog(parts) {
  const dialog = $("#dialog");
  $("#dialog-form").replaceChildren(...parts);
  dialog.onclose = null;
  dialog.showModal();
}

// ---------------------------------------------------------------- routes

function matchSummary(match) {
  if (!match) return "every request";
  const parts = [];
  if (match.path !== undefined) parts.push(`path = ${match.path}`);
  if (match.path_prefix !== undefined) parts.push(`prefix ${match.path_prefix}`);
  if (match.path_regex !== undefined) parts.push(`regex ${match.path_regex}`);
  if (match.host) parts.push(`host ${[].concat(match.host).join("|")}`);
  if (match.methods) parts.push([].concat(match.methods).join("|"));
  for (const kind of ["headers", "query", "cookies"]) for (const [k, v] of Object.entries(match[kind] || {})) parts.push(`${kind.replace(/s$/, "")} ${k}=${[].concat(v).join("|")}`);
  return parts.join(", ") || "every request";
}
function pathKind(match) {
  if (!match) return "prefix";
  if (match.path !== undefined) return "exact";
  if (match.path_regex !== undefined) return "regex";
  return "prefix";
}
// The order the router tries routes in: exact, then longest prefix, then regexes in declaration order.
function matchOrder(routes) {
  const rank = r => {
    const kind = pathKind(r.match);
    if (kind === "exact") return [0, 0];
    if (kind === "prefix") return [1, -((r.match && r.match.path_prefix) || "/").length];
    return [2, 0];
  };
  return routes.map((r, i) => ({ r, i, k: rank(r) })).sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1] || a.i - b.i);
}

pages.routes = async function (root) {
  await refreshActive();
  const routes = session.active.config.routes || [];
  const ordered = matchOrder(routes);
  root.replaceChildren(el("h1", {}, "Routes"),
    el("p", { class: "hint" }, "In match order: exact paths, then the longest prefix, then regular expressions in the order they are declared; the first route whose conditions all hold serves the request."),
    el("section", { class: "panel" }, el("div", { class: "scroll" }, el("table", { id: "routes-table" },
      el("thead", {}, el("tr", {}, ["#", "Name", "Match", "Target", "Limits", "Actions"].map(h => el("th", {}, h)))),
      el("tbody", {}, ordered.map(({ r, i }, position) => el("tr", { dataset: { route: r.name } },
        el("td", {}, position + 1), el("td", {}, r.name), el("td", {}, matchSummary(r.match)),
        el("td", {}, routeTarget(r)),
        el("td", { class: "muted" }, [r.rate_limit ? "rate limit" : null, r.max_in_flight ? `max ${r.max_in_flight} in flight` : null,
          r.access_rules ? "access rules" : null, r.cors ? "CORS" : null,
          ["strip_prefix", "rewrite", "host", "request_headers", "response_headers"].some(k => r[k] !== undefined) ? "shaping" : null].filter(Boolean).join(", ")),
        el("td", {}, el("div", { class: "row" },
          editButton("↑", () => moveRoute(r.name, i - 1), { "aria-label": `move ${r.name} up`, disabled: i === 0 || !session.canEdit }),
          editButton("↓", () => moveRoute(r.name, i + 1), { "aria-label": `move ${r.name} down`, disabled: i === routes.length - 1 || !session.canEdit }),
          editButton("Edit", () => showRouteForm(root, r, i)),
          editButton("Remove", async () => {
            const result = await change(`remove route ${r.name}`, () => ({ method: "DELETE", path: `/routes/${enc(r.name)}` }));
            if (result.ok) render(); else if (!result.cancelled) toast(issueText(result));
          }, { class: "danger" })))))))),
      editButton("Add route", () => showRouteForm(root, null, routes.length), { class: "primary", id: "add-route" })),
    el("div", { id: "route-form-slot" }),
    ...routes.filter(r => r.split && r.split.rollout).map(rolloutPanel),
    explainPanel());
};

function routeTarget(r) {
  if (r.split) return "split: " + r.split.targets.map(t => `${t.name || t.service} ${t.weight} %`).join(" / ");
  if (r.redirect) return `redirect ${r.redirect.status || 302} → ${r.redirect.to}`;
  if (r.respond) return `respond ${r.respond.status}`;
  if (r.static) return `files from ${r.static.root}`;
  return r.service + (r.node ? ` → ${r.node}` : "");
}

// A route's progressive rollout: weights, the controller's last verdict with the figures, and the
// operator's controls.
function rolloutPanel(route) {
  const panel = el("section", { class: "panel", dataset: { rollout: route.name } }, el("h2", {}, `Rollout on route ${route.name}`));
  const body = el("div", {}, el("p", { class: "muted" }, "Loading…"));
  panel.append(body);
  (async () => {
    const reply = await call("GET", `/routes/${enc(route.name)}/rollout`);
    if (!reply.ok) { body.replaceChildren(el("p", { class: "error" }, reply.json ? reply.json.error.message : reply.text)); return; }
    const { settings, targets, status } = reply.json;
    const figures = f => f ? `${f.requests} requests, ${(f.error_ratio * 100).toFixed(1)} % 5xx, p99 ${fmtMs(f.p99_ms)}` : "–";
    const act = action => async () => {
      const result = await change(`${action} the rollout on ${route.name}`, () => ({ method: "POST", path: `/routes/${enc(route.name)}/rollout/${action}` }));
      if (result.ok) render(); else if (!result.cancelled) toast(issueText(result));
    };
    fill(body,
      el("p", {}, targets.map(t => `${t.name || t.service}: ${t.weight} %`).join(" · "), " · steps ", (settings.steps || [1, 5, 25, 50, 100]).join(", "), " %",
        " · ", settings.paused ? el("span", { class: "badge ejected" }, "paused") : el("span", { class: "badge up" }, "running")),
      status ? el("p", { class: "rollout-verdict" }, `Last verdict: ${status.verdict}`) : null,
      status ? el("p", { class: "muted" }, `Canary: ${figures(status.canary)} · baseline: ${figures(status.baseline)}`) : null,
      el("div", { class: "row" },
        settings.paused ? editButton("Resume", act("resume"), { dataset: { action: "resume" } }) : editButton("Pause", act("pause"), { dataset: { action: "pause" } }),
        editButton("Promote now", act("promote"), { dataset: { action: "promote" } }),
        editButton("Abort", act("abort"), { class: "danger", dataset: { action: "abort" } })));
  })();
  return panel;
}

async function moveRoute(name, position) {
  const result = await change(`move route ${name} to position ${position + 1}`, () => ({ method: "POST", path: `/routes/${enc(name)}/move`, body: { position } }));
  if (result.ok) render(); else if (!result.cancelled) toast(issueText(result));
}

function pairsText(object) {
  return Object.entries(object || {}).map(([k, v]) => `${k}=${[].concat(v).join("|")}`).join("\n");
}
function parsePairs(text) {
  const result = {};
  for (const line of lines(text)) {
    const at = line.indexOf("=");
    const key = at < 0 ? line : line.slice(0, at).trim();
    const values = at < 0 ? [""] : line.slice(at + 1).split("|").map(s => s.trim());
    result[key] = values.length === 1 ? values[0] : values;
  }
  return result;
}

function showRouteForm(root, route, index) {
  const config = session.active.config;
  const match = (route && route.match) || {};
  const kind = el("select", {}, [["prefix", "prefix"], ["exact", "exact path"], ["regex", "regular expression"]].map(([v, l]) =>
    el("option", { value: v, selected: pathKind(route && route.match) === v }, l)));
  const pathPath = () => ({ prefix: "match.path_prefix", exact: "match.path", regex: "match.path_regex" })[kind.value];
  const name = el("input", { value: route ? route.name : "", required: true });
  const path = el("input", { value: match.path_prefix !== undefined ? match.path_prefix : match.path !== undefined ? match.path : match.path_regex !== undefined ? match.path_regex : "/" });
  const methods = el("input", { value: [].concat(match.methods || []).join(", "), placeholder: "any" });
  const hosts = el("input", { value: [].concat(match.host || []).join(", "), placeholder: "any" });
  const headers = el("textarea", { rows: 2, placeholder: "X-Tenant=acme|beta" }, pairsText(match.headers));
  const query = el("textarea", { rows: 2, placeholder: "lang=zh" }, pairsText(match.query));
  const cookies = el("textarea", { rows: 2, placeholder: "beta=1" }, pairsText(match.cookies));
  const service = el("select", {}, Object.keys(config.services || {}).map(s => el("option", { value: s, selected: route && route.service === s }, s)));
  const node = el("input", { value: route && route.node ? route.node : "", placeholder: "balanced (no pin)" });
  const error = el("p", { class: "error", role: "alert", id: "route-form-error" });
  const pathField = field("Path", "match.path_prefix", path);
  // what the route does: proxy to a service (or keep its split), or answer by itself; the
  // answers' forms come from their schemas in the served OpenAPI document
  const localActions = session.schemas.RouteAction.enum;
  const currentAction = !route ? "service" : route.split ? "split" : localActions.find(a => route[a] !== undefined) || "service";
  const action = el("select", {}, (route && route.split ? ["split"] : []).concat(["service"], localActions).map(a =>
    el("option", { value: a, selected: a === currentAction }, a === "split" ? "keep its traffic split" : a === "service" ? "proxy to a service" : a)));
  const answers = Object.fromEntries(localActions.map(a => [a, schemaControl(session.schemas.PolicySchemas.properties[a], route ? route[a] : undefined, a)]));
  const proxyFields = el("div", { class: "grid" }, field("Service", "service", service), field("Pinned node", "node", node));
  const answerSlots = Object.fromEntries(localActions.map(a => [a, el("div", { dataset: { action: a } }, answers[a].node)]));
  const showAction = () => {
    proxyFields.hidden = action.value !== "service";
    for (const a of localActions) answerSlots[a].hidden = action.value !== a;
  };
  action.addEventListener("change", showAction);
  showAction();
  const form = el("form", { class: "panel", id: "route-form" },
    el("h2", {}, route ? `Edit route ${route.name}` : "Add a route"),
    el("div", { class: "grid" },
      field("Name", "name", name), el("div", {}, el("label", { for: "route-kind" }, "Path match"), Object.assign(kind, { id: "route-kind" })), pathField,
      field("Methods (comma separated)", "match.methods", methods), field("Hosts (comma separated)", "match.host", hosts),
      field("Headers (one NAME=value|value per line)", "match.headers", headers), field("Query parameters", "match.query", query),
      field("Cookies", "match.cookies", cookies), field("What the route does", "action", action)),
    proxyFields, Object.values(answerSlots),
    error,
    el("div", { class: "row" }, el("button", { type: "submit", class: "primary", id: "save-route" }, route ? "Save route" : "Add route"),
      el("button", { type: "button", onclick: () => form.remove() }, "Cancel")));
  const syncPathField = () => {
    path.dataset.path = pathPath();
    const slot = pathField.querySelector("[data-error]");
    slot.setAttribute("data-error", pathPath());
  };
  kind.addEventListener("change", () => { syncPathField(); validate(); });
  syncPathField();
  const build = () => {
    const m = {};
    m[{ prefix: "path_prefix", exact: "path", regex: "path_regex" }[kind.value]] = path.value;
    const list = text => text.split(",").map(s => s.trim()).filter(Boolean);
    if (list(methods.value).length) m.methods = list(methods.value).map(s => s.toUpperCase());
    if (list(hosts.value).length) m.host = list(hosts.value);
    for (const [key, input] of [["headers", headers], ["query", query], ["cookies", cookies]]) if (lines(input.value).length) m[key] = parsePairs(input.value);
    if (match.body !== undefined) m.body = match.body;  // a body condition is kept as it is
    const body = { name: name.value, match: m };
    if (action.value === "service") {
      body.service = service.value;
      if (node.value.trim()) body.node = node.value.trim();
    } else if (action.value === "split") {
      body.split = route.split;
    } else {
      const answer = answers[action.value].read();
      body[action.value] = answer === undefined ? {} : answer;
    }
    // everything the form does not show (limits, access rules, CORS, shaping) stays as it was
    const shown = ["name", "match", "service", "node", "split"].concat(localActions);
    for (const [key, value] of Object.entries(route || {})) if (!shown.includes(key)) body[key] = value;
    return body;
  };
  const candidate = () => {
    const document = JSON.parse(JSON.stringify(session.active.config));
    document.routes = document.routes || [];
    if (route) document.routes[index] = build(); else document.routes.push(build());
    return document;
  };
  let timer = null;
  const validate = async () => {
    const reply = await call("POST", "/config/validate", { body: candidate() });
    if (reply.ok) showIssues(form, `routes[${index}]`, reply.json.issues, error);
    return reply.ok && reply.json.valid;
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(validate, 300); });
  form.addEventListener("submit", async event => {
    event.preventDefault();
    clearTimeout(timer);  // the submit runs its own dry run
    if (!(await validate())) return;
    const body = build();
    const result = await change(route ? `edit route ${route.name}` : `add route ${body.name}`, () => route
      ? { method: "PUT", path: `/routes/${enc(route.name)}`, body }
      : { method: "POST", path: "/routes", body });
    if (result.ok) { render(); return; }
    if (!result.cancelled) showIssues(form, `routes[${index}]`, result.issues, error), error.textContent ||= result.error || "";
  });
  if (!session.canEdit) for (const control of form.querySelectorAll("input, select, textarea, button[type=submit]")) editable(control);
  $("#route-form-slot", root).replaceChildren(form);
  name.focus();
}

function explainPanel() {
  const method = el("input", { value: "GET", id: "explain-method" });
  const target = el("input", { value: "/", id: "explain-path" });
  const headers = el("textarea", { rows: 2, id: "explain-headers", placeholder: "Host: example.com" });
  const cookies = el("textarea", { rows: 2, id: "explain-cookies", placeholder: "beta=1" });
  const output = el("div", { id: "explain-result" });
  const form = el("form", { class: "panel", id: "explain-form" },
    el("h2", {}, "Test a request"), el("p", { class: "hint" }, "Nothing is sent to a node: this shows which route, service and node would serve the request, and why."),
    el("div", { class: "grid" },
      el("div", {}, el("label", { for: "explain-method" }, "Method"), method),
      el("div", {}, el("label", { for: "explain-path" }, "Path and query"), target),
      el("div", {}, el("label", { for: "explain-headers" }, "Headers (Name: value per line)"), headers),
      el("div", {}, el("label", { for: "explain-cookies" }, "Cookies (name=value per line)"), cookies)),
    el("button", { type: "submit" }, "Explain"), output);
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const headerObject = {};
    for (const line of lines(headers.value)) { const at = line.indexOf(":"); if (at > 0) headerObject[line.slice(0, at).trim()] = line.slice(at + 1).trim(); }
    const cookieObject = {};
    for (const line of lines(cookies.value)) { const at = line.indexOf("="); if (at > 0) cookieObject[line.slice(0, at).trim()] = line.slice(at + 1).trim(); }
    const reply = await call("POST", "/explain", { body: { method: method.value, path: target.value, headers: headerObject, cookies: cookieObject } });
    if (!reply.ok) { output.replaceChildren(el("p", { class: "error" }, reply.json ? reply.json.error.message : reply.text)); return; }
    const r = reply.json;
    output.replaceChildren(el("h3", {}, r.request),
      el("ol", { class: "steps" }, r.steps.map(s => el("li", { class: s.matched ? "match" : "" }, `${s.route} [${s.path_kind}] ${s.verdict}`))),
      r.route ? el("p", {}, el("b", {}, `route ${r.route} → service ${r.service} (${r.strategy})`), el("br"),
        r.split ? [`split: ${r.split}`, el("br")] : null, `node: ${r.node || ""} ${r.node_reason ? "(" + r.node_reason + ")" : ""}`)
        : el("p", { class: "error" }, "404: no route matches and there is no default"));
  });
  return form;
}

// ---------------------------------------------------------------- protection

pages.protection = async function (root) {
  await refreshActive();
  const config = session.active.config;
  const state = (await call("GET", "/state")).json || { services: [], routes: [], access_rules: [], cc: [], bans: [] };
  root.replaceChildren(el("h1", {}, "Protection: access rules, limits, health checks and breakers"));
  root.append(el("section", { class: "panel", dataset: { scope: "gateway" } }, el("h2", {}, "Whole gateway"),
    el("p", { class: "muted" }, "Access rules and CC rules here see every request, before routing."),
    accessRuleHits(state.access_rules || []), bansTable(state.bans || []),
    el("div", { class: "grid" }, session.schemas.Setting.enum.map(s => policyEditor("settings", null, s, config[s], s)))));
  for (const [name, service] of Object.entries(config.services || {})) {
    const live = state.services.find(s => s.name === name) || {};
    root.append(el("section", { class: "panel", dataset: { service: name } }, el("h2", {}, `Service ${name}`),
      el("p", { class: "muted" }, liveProtection(live)),
      el("div", { class: "grid" }, session.schemas.ServicePolicy.enum.map(p => policyEditor("services", name, p, service[p], `services.${name}.${p}`)))));
  }
  (config.routes || []).forEach((route, index) => {
    const live = state.routes.find(r => r.name === route.name) || {};
    root.append(el("section", { class: "panel", dataset: { route: route.name } }, el("h2", {}, `Route ${route.name}`),
      el("p", { class: "muted" }, liveProtection(live)),
      el("div", { class: "grid" }, session.schemas.RoutePolicy.enum.map(p => policyEditor("routes", route.name, p, route[p], `routes[${index}].${p}`)))));
  });
};

function liveProtection(live) {
  const parts = [];
  if (live.breakers && live.breakers.length) parts.push(`circuit: ${live.breakers.join(" / ")} (per event loop)`);
  if (live.rate_limit) parts.push(`rate limit: ${live.rate_limit.rejected} rejected, ${live.rate_limit.tracked_keys} keys tracked`);
  if (live.limited_in_flight !== null && live.limited_in_flight !== undefined) parts.push(`${live.limited_in_flight} in flight under max_in_flight`);
  return parts.length ? "Live: " + parts.join("; ") : "Live: no breaker or limit in effect";
}

// Every access rule of every scope with its hits since the configuration was applied.
function accessRuleHits(rules) {
  if (!rules.length) return el("p", { class: "muted", id: "access-rule-hits" }, "No access rules.");
  return el("div", { class: "scroll" }, el("table", { id: "access-rule-hits" },
    el("thead", {}, el("tr", {}, ["Access rule", "Scope", "Action", "Hits"].map(h => el("th", {}, h)))),
    el("tbody", {}, rules.map(r => el("tr", { dataset: { rule: r.name } },
      el("td", {}, r.name), el("td", {}, r.scope), el("td", {}, r.action), el("td", { class: "hits" }, String(r.hits)))))));
}

// The keys CC rules ban now, each with a button that lifts its ban.
function bansTable(bans) {
  if (!bans.length) return el("p", { class: "muted", id: "bans" }, "No key is banned.");
  return el("div", { class: "scroll" }, el("table", { id: "bans" },
    el("thead", {}, el("tr", {}, ["CC rule", "Key", "Banned for", ""].map(h => el("th", {}, h)))),
    el("tbody", {}, bans.map(b => el("tr", { dataset: { rule: b.rule, key: b.key } },
      el("td", {}, b.rule), el("td", {}, b.key), el("td", {}, `${Math.ceil(b.seconds_left)} s`),
      el("td", {}, editButton("Lift", async () => {
        const reply = await call("DELETE", `/bans/${enc(b.rule)}/${enc(b.key)}`);
        if (reply.ok) { toast(`Ban of ${b.key} by ${b.rule} lifted`); render(); } else toast(reply.json ? reply.json.error.message : reply.text);
      }, { dataset: { lift: b.key } })))))));
}

// An editor for one policy (`kind` services/routes, `owner` its name) or top-level setting
// (`kind` settings), built from the policy's JSON Schema in the served OpenAPI document: a field
// per property with its type, choices and default, and the API's validation messages beside it.
function policyEditor(kind, owner, policy, value, documentPath) {
  // novalidate: the API judges every value, and its message goes beside the field
  const form = el("form", { dataset: { policy }, novalidate: true });
  const schema = session.schemas.PolicySchemas.properties[policy];
  const control = schemaControl(schema, value, "");
  const error = el("p", { class: "error", role: "alert" });
  const resource = owner === null ? `/settings/${policy}` : `/${kind}/${enc(owner)}/policies/${policy}`;
  const what = owner === null ? policy.replace(/_/g, " ") : `${policy.replace(/_/g, " ")} of ${owner}`;
  form.append(el("h3", {}, policy.replace(/_/g, " ")), schema.description ? el("div", { class: "hint" }, schema.description) : null,
    control.node, error, el("div", { class: "row" },
      editButton("Save", null, { type: "submit" }),
      editButton("Remove", async () => {
        const result = await change(`remove ${what}`, () => ({ method: "DELETE", path: resource }));
        if (result.ok) render(); else if (!result.cancelled) error.textContent = issueText(result);
      }, { disabled: value === undefined || !session.canEdit })));
  form.addEventListener("submit", async event => {
    event.preventDefault();
    let body;
    try { body = control.read(); } catch (problem) { error.textContent = problem.message; return; }
    if (body === undefined) { error.textContent = "Nothing is set: fill in a field, or remove the policy."; return; }
    const result = await change(`set ${what}`, () => ({ method: "PUT", path: resource, body }));
    if (result.ok) render();
    else if (!result.cancelled) { showIssues(form, documentPath, result.issues, error); error.textContent ||= result.error || ""; }
  });
  return form;
}

// A control for a value of `schema` (a JSON Schema from the API) holding `value`, its fields
// marked with their path below the policy (`path`) for ``showIssues``. Returns { node, read },
// where read() gives the value to send: undefined when nothing is set (the default applies).
function schemaControl(schema, value, path) {
  const described = (input, label) => field(label, path || "value", editable(input), hintOf(schema));
  if (schema["x-fulcrum-json"]) {
    const input = el("input", { type: "text", placeholder: "JSON, e.g. \"/admin\" or {\"regex\": \"...\"}", value: value === undefined ? "" : JSON.stringify(value) });
    return { node: described(input, labelOf(path)), read: () => {
      const text = input.value.trim();
      if (!text) return undefined;
      try { return JSON.parse(text); } catch (_) { return text; }  // a bare word is a string
    } };
  }
  switch (schema.type) {
    case "string": {
      const input = schema.enum
        ? el("select", {}, el("option", { value: "" }, schema.default === undefined ? "(not set)" : `(default: ${schema.default})`),
            schema.enum.map(choice => el("option", { value: choice, selected: choice === value }, choice)))
        : el("input", { type: "text", value: value === undefined ? "" : String(value), placeholder: schema.default === undefined ? "" : `default: ${schema.default}` });
      return { node: described(input, labelOf(path)), read: () => input.value.trim() === "" ? undefined : input.value.trim() };
    }
    case "integer": case "number": {
      const input = el("input", { type: "number", step: schema.type === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum,
        value: value === undefined ? "" : String(value), placeholder: schema.default === undefined ? "" : `default: ${schema.default}` });
      return { node: described(input, labelOf(path)), read: () => input.value === "" ? undefined : Number(input.value) };
    }
    case "boolean": {
      const input = el("select", {}, el("option", { value: "" }, `(default: ${schema.default})`),
        ["true", "false"].map(choice => el("option", { value: choice, selected: String(value) === choice }, choice)));
      return { node: described(input, labelOf(path)), read: () => input.value === "" ? undefined : input.value === "true" };
    }
    case "array":
      if (schema.items.type === "object") return listControl(schema, value, path);
      {
        const input = el("textarea", { rows: 2, placeholder: (schema.default ? `default:\n${schema.default.join("\n")}` : "one per line") },
          Array.isArray(value) ? value.join("\n") : "");
        return { node: described(input, labelOf(path)), read: () => {
          const items = lines(input.value);
          if (!items.length) return undefined;
          return schema.items.type === "integer" ? items.map(Number) : items;
        } };
      }
    case "object":
      if (!schema.properties) {  // a map of field names to values
        const input = el("textarea", { rows: 2, placeholder: "Name: value" },
          value ? Object.entries(value).map(([k, v]) => `${k}: ${v}`).join("\n") : "");
        return { node: described(input, labelOf(path)), read: () => {
          const pairs = lines(input.value).map(line => {
            const colon = line.indexOf(":");
            if (colon < 1) throw new Error(`'${line}' is not 'Name: value'`);
            return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
          });
          return pairs.length ? Object.fromEntries(pairs) : undefined;
        } };
      }
      {
        const parts = Object.entries(schema.properties).map(([name, property]) =>
          [name, schemaControl(property, value ? value[name] : undefined, path ? `${path}.${name}` : name)]);
        const node = el("fieldset", { class: "schema", dataset: { path: path || "value" } },
          path && !/\]$/.test(path) ? el("legend", {}, labelOf(path)) : null, parts.map(([, part]) => part.node),
          el("div", { class: "field-error", "data-error": path || "value", role: "alert" }));
        return { node, read: () => {
          const result = {};
          for (const [name, part] of parts) { const v = part.read(); if (v !== undefined) result[name] = v; }
          return Object.keys(result).length ? result : undefined;
        } };
      }
    default: {
      const input = el("input", { type: "text", value: value === undefined ? "" : JSON.stringify(value) });
      return { node: described(input, labelOf(path)), read: () => input.value.trim() ? JSON.parse(input.value) : undefined };
    }
  }
}

// A list of objects (access rules, CC rules): one sub-form per item, added and removed in place.
function listControl(schema, value, path) {
  const items = [];
  const holder = el("div", { class: "schema-list" });
  const add = itemValue => {
    const itemPath = `${path}[${items.length}]`;
    const part = schemaControl(schema.items, itemValue, itemPath);
    const entry = { part };
    entry.node = el("div", { class: "schema-item", dataset: { item: String(items.length) } }, part.node,
      editButton("Remove this one", () => { items.splice(items.indexOf(entry), 1); entry.node.remove(); }, { class: "danger" }));
    items.push(entry);
    holder.append(entry.node);
  };
  for (const item of Array.isArray(value) ? value : []) add(item);
  const node = el("div", {}, schema.description && path ? el("div", { class: "hint" }, schema.description) : null, holder,
    editButton("Add one", () => add(undefined), { dataset: { add: path || "value" } }));
  return { node, read: () => {
    const values = items.map(entry => entry.part.read()).filter(v => v !== undefined);
    return values.length ? values : undefined;
  } };
}

function labelOf(path) {
  const last = (path || "value").split(".").pop().replace(/\[\d+\]$/, "");
  return last.replace(/_/g, " ");
}
function hintOf(schema) {
  const parts = [schema.description];
  if (schema.minimum !== undefined || schema.maximum !== undefined) parts.push(`(${schema.minimum ?? "…"} to ${schema.maximum ?? "…"})`);
  return parts.filter(Boolean).join(" ");
}

// ---------------------------------------------------------------- history

pages.history = async function (root) {
  await refreshActive();
  const reply = await call("GET", "/versions?limit=100");
  const versions = reply.ok ? reply.json.items : [];
  const from = el("select", { id: "diff-from", "aria-label": "compare from" }, versions.map((v, i) => el("option", { value: v.number, selected: i === 1 }, `version ${v.number}`)));
  const to = el("select", { id: "diff-to", "aria-label": "compare to" }, versions.map((v, i) => el("option", { value: v.number, selected: i === 0 }, `version ${v.number}`)));
  const diffSlot = el("div", { id: "diff" });
  root.replaceChildren(el("h1", {}, "History"),
    el("section", { class: "panel" }, el("div", { class: "scroll" }, el("table", { id: "versions" },
      el("thead", {}, el("tr", {}, ["Version", "Time", "Actor", "Source", "Message", ""].map(h => el("th", {}, h)))),
      el("tbody", {}, versions.map(v => el("tr", { dataset: { version: v.number } },
        el("td", {}, v.number, v.active ? " " : "", v.active ? el("span", { class: "badge up" }, "active") : null),
        el("td", { title: v.created_at }, new Date(v.created_at).toLocaleString()), el("td", {}, v.actor), el("td", {}, v.source), el("td", {}, v.message),
        el("td", {}, v.active ? null : editButton("Roll back to this", () => rollback(v), { dataset: { rollback: v.number } })))))))),
    el("section", { class: "panel" }, el("h2", {}, "Compare"), el("div", { class: "row" }, from, "→", to,
      el("button", { type: "button", id: "compare", onclick: () => showDiff(from.value, to.value, diffSlot) }, "Show differences")), diffSlot));
  if (versions.length > 1) showDiff(from.value, to.value, diffSlot);
};

async function rollback(version) {
  const message = await askMessage(`Roll back to version ${version.number}?`,
    `A new version equal to version ${version.number} (${version.message || "no message"}, by ${version.actor}) will be made and applied at once.`);
  if (!message) return;
  const result = await change(`roll back to version ${version.number}`, () => ({ method: "POST", path: `/versions/${version.number}/rollback` }), message);
  if (result.ok) render(); else if (!result.cancelled) toast(issueText(result));
}

async function showDiff(from, to, slot) {
  const reply = await call("GET", `/versions/${from}/diff?to=${to}`);
  if (!reply.ok) { slot.replaceChildren(el("p", { class: "error" }, reply.json ? reply.json.error.message : reply.text)); return; }
  slot.replaceChildren(el("h3", {}, `Version ${from} → version ${to}`), changesList(reply.json.changes),
    sideBySide(reply.json.from_yaml.split("\n"), reply.json.to_yaml.split("\n")));
}

// A side-by-side line diff (longest common subsequence).
function sideBySide(a, b) {
  const n = a.length, m = b.length;
  const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
  const cells = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { cells.push(el("div", {}, a[i]), el("div", {}, b[j])); i++; j++; }
    else if (j < m && (i === n || table[i][j + 1] >= table[i + 1][j])) { cells.push(el("div", { class: "pad" }), el("div", { class: "add" }, b[j])); j++; }
    else { cells.push(el("div", { class: "del" }, a[i]), el("div", { class: "pad" })); i++; }
  }
  return el("div", { class: "diff", role: "table", "aria-label": "side-by-side differences" }, cells);
}

// ---------------------------------------------------------------- audit

pages.audit = async function (root) {
  const since = el("input", { type: "datetime-local", id: "audit-since" });
  const until = el("input", { type: "datetime-local", id: "audit-until" });
  const actor = el("input", { id: "audit-actor", placeholder: "token name" });
  const target = el("input", { id: "audit-target", placeholder: "e.g. services/web" });
  const body = el("tbody", {});
  const more = el("button", { type: "button", id: "audit-more", hidden: true }, "Older entries");
  const verdict = el("p", { id: "audit-verify" });
  let before = null;
  const load = async append => {
    const query = new URLSearchParams({ limit: "50" });
    if (since.value) query.set("since", new Date(since.value).toISOString());
    if (until.value) query.set("until", new Date(until.value).toISOString());
    if (actor.value) query.set("actor", actor.value);
    if (target.value) query.set("target", target.value);
    if (append && before) query.set("before", before);
    const reply = await call("GET", "/audit?" + query);
    if (!reply.ok) { verdict.textContent = reply.json ? reply.json.error.message : reply.text; return; }
    if (!append) body.replaceChildren();
    for (const entry of reply.json.items) {
      body.append(el("tr", { dataset: { sequence: entry.sequence } },
        el("td", {}, entry.sequence), el("td", { title: entry.time }, new Date(entry.time).toLocaleString()), el("td", {}, entry.actor),
        el("td", {}, entry.client), el("td", {}, entry.operation), el("td", {}, entry.target),
        el("td", {}, el("span", { class: "badge " + (entry.result === "ok" ? "up" : "down") }, entry.result), entry.version ? ` → v${entry.version}` : ""),
        el("td", {}, entry.detail ? el("pre", {}, entry.detail) : "")));
    }
    before = reply.json.next_before;
    more.hidden = !before;
  };
  const form = el("form", { class: "panel", id: "audit-filter" }, el("div", { class: "grid" },
    el("div", {}, el("label", { for: "audit-since" }, "Since"), since), el("div", {}, el("label", { for: "audit-until" }, "Until"), until),
    el("div", {}, el("label", { for: "audit-actor" }, "Actor"), actor), el("div", {}, el("label", { for: "audit-target" }, "Target starts with"), target)),
    el("div", { class: "row", style: "margin-top:8px" }, el("button", { type: "submit", class: "primary" }, "Filter"),
      el("button", { type: "button", onclick: async () => {
        const reply = await call("GET", "/audit/verify");
        verdict.textContent = reply.ok ? (reply.json.intact ? `Chain intact: ${reply.json.entries} entries, head ${reply.json.head_hash.slice(0, 16)}…`
          : `Chain BROKEN at entry ${reply.json.first_broken}: ${reply.json.problem}`) : reply.text;
      } }, "Verify the hash chain")), verdict);
  form.addEventListener("submit", event => { event.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  root.replaceChildren(el("h1", {}, "Audit log"), form, el("section", { class: "panel" }, el("div", { class: "scroll" }, el("table", { id: "audit" },
    el("thead", {}, el("tr", {}, ["#", "Time", "Actor", "Client", "Operation", "Target", "Result", "Detail"].map(h => el("th", {}, h)))), body)), more));
  load(false);
};

// ---------------------------------------------------------------- shell

function currentPage() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  return pages[name] ? name : "overview";
}

async function render() {
  if (!session.token || !session.who) return;
  clearInterval(pollTimer);
  const name = currentPage();
  for (const link of document.querySelectorAll("#nav a")) link.toggleAttribute("aria-current", link.dataset.page === name), link.dataset.page === name && link.setAttribute("aria-current", "page");
  const root = $("#page");
  root.dataset.page = name;
  try { await pages[name](root); } catch (error) { if (error.message !== "unauthorized") root.append(el("p", { class: "error" }, String(error))); }
}

function showSignedIn(signedIn) {
  $("#sign-in").hidden = signedIn;
  $("#page").hidden = !signedIn;
  $("#nav").hidden = !signedIn;
  $("#who").hidden = !signedIn;
  $("#sign-out").hidden = !signedIn;
}

async function signIn(token) {
  session.token = token;
  const reply = await call("GET", "/whoami");
  if (!reply.ok) {
    session.token = null;
    $("#sign-in-error").textContent = reply.status === 401 ? "This token is not accepted." : `The admin API answered ${reply.status}.`;
    return false;
  }
  session.who = reply.json;
  const openAPI = await call("GET", "/openapi.json");
  session.schemas = openAPI.ok ? openAPI.json.components.schemas : {};
  await refreshActive();
  showSignedIn(true);
  render();
  return true;
}

function signOut(reason) {
  clearInterval(pollTimer);
  session.token = null;
  session.who = null;
  session.active = null;
  $("#page").replaceChildren();
  showSignedIn(false);
  $("#sign-in-error").textContent = reason || "";
  $("#token").value = "";
  $("#token").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", event => { event.preventDefault(); signIn($("#token").value.trim()); });
  $("#sign-out").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", render);
  if (session.token) signIn(session.token); else showSignedIn(false);
});
