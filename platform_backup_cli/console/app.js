// The platform database backup console: one page per resource of the console API (/v1), nothing
// else. No build step; the DOM is built with h() so the API's text is never read as HTML.
"use strict";

const WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
const DAY_NAMES = { MON: "Monday", TUE: "Tuesday", WED: "Wednesday", THU: "Thursday",
  FRI: "Friday", SAT: "Saturday", SUN: "Sunday" };
const POLL_MS = 1000;
let timer = null;

// ---- DOM and formatting -------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function size(bytes) {
  if (typeof bytes !== "number") return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function when(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function seconds(value) {
  if (typeof value !== "number") return "-";
  if (value < 60) return `${value.toFixed(value < 10 ? 1 : 0)} s`;
  const m = Math.floor(value / 60), s = Math.round(value % 60);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function status(value) {
  return h("span", { class: `status status-${value}` }, value || "-");
}

function bar(percent, label, kind) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  const fill = h("span", {});
  fill.style.width = `${value}%`;  // through the CSSOM: the page's CSP allows no inline style
  return h("div", { class: `bar ${kind || ""}`, role: "progressbar", "aria-label": label,
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(value)) }, fill);
}

function table(headers, rows, caption) {
  return h("div", { class: "table-wrap" },
    h("table", {}, caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
}

function empty(text, ...more) { return h("p", { class: "empty" }, text, ...more); }

// ---- The API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status; this.code = code; this.details = details || [];
  }
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? { Accept: "application/json" }
        : { Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "Unreachable",
      "The API cannot be reached: is the local stack (make run) or `platform-backup console` running?");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
  if (response.ok) return data;
  const error = (data && data.error) || {};
  const message = error.message || (data && (data.message || data.Message)) ||
    `${response.status} ${response.statusText}`;
  throw new ApiError(response.status, error.code || String(response.status), message, error.details);
}

const get = (path) => api("GET", path);

async function all(path) {
  const items = [];
  let token = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}limit=100${token ? `&nextToken=${encodeURIComponent(token)}` : ""}`);
    items.push(...page.items);
    token = page.nextToken;
  } while (token);
  return items;
}

let keepBanner = false;
function banner(message, kind) {
  keepBanner = kind === "info";  // news of an action survives the page change it causes
  const el = document.getElementById("banner");
  el.className = kind || "";
  el.textContent = message || "";
}

function explain(err) {
  if (!(err instanceof ApiError)) return String(err);
  if (err.status === 0) return err.message;
  if (err.status === 403) return `Not allowed (403): ${err.message}. Your credentials may not call this API.`;
  if (err.status === 409) return `Conflict (409): ${err.message}`;
  return `${err.message} (${err.status} ${err.code})`;
}

// Shows the API's field messages beside the fields they name; the rest goes to the banner.
function showErrors(form, err) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  let placed = 0;
  for (const detail of (err.details || [])) {
    const target = fieldFor(form, detail.field);
    if (!target) continue;
    target.classList.add("invalid");
    const slot = target.querySelector(".field-error");
    slot.textContent = slot.textContent ? `${slot.textContent}; ${detail.message}` : detail.message;
    placed += 1;
  }
  banner(placed ? `${placed === 1 ? "A field needs" : "Some fields need"} a change: ${err.message}`
    : explain(err));
  const first = form.querySelector(".invalid input, .invalid select");
  if (first) first.focus();
}

function fieldFor(form, path) {
  // "localStorageIds.0" -> the primary's field; "policy.startTime" -> its own; else the nearest parent.
  const parts = String(path).split(".");
  while (parts.length) {
    const el = form.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
    if (el) return el;
    parts.pop();
  }
  return null;
}

let fieldCount = 0;
function field(label, control, path, hint) {
  fieldCount += 1;
  const id = control.id || `f${fieldCount}`;
  control.id = id;
  const errorId = `${id}-error`;
  control.setAttribute("aria-describedby", `${errorId}${hint ? ` ${id}-hint` : ""}`);
  const isCheck = control.type === "checkbox";
  return h("div", { class: `field${isCheck ? " inline" : ""}`, "data-field": path },
    isCheck ? [control, h("label", { for: id }, label)] : [h("label", { for: id }, label), control],
    hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("p", { class: "field-error", id: errorId, "aria-live": "polite" }));
}

function input(name, value, attrs) {
  return h("input", { type: "text", name, value: value === undefined || value === null ? "" : value, ...attrs });
}

function select(name, options, value, attrs) {
  return h("select", { name, ...attrs }, options.map(([v, label]) =>
    h("option", { value: v, selected: String(v) === String(value ?? "") }, label)));
}

// ---- Pages ------------------------------------------------------------------------------------

const PAGES = { storages: storagesPage, plan: planPage, executions: executionsPage,
  backups: backupsPage, restores: restoresPage };

async function route() {
  clearTimeout(timer);
  const [name, ...rest] = (location.hash.replace(/^#\/?/, "") || "plan").split("/");
  const page = PAGES[name] || planPage;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = document.getElementById("main");
  const args = new URLSearchParams(rest.join("/"));
  try {
    await page(main, args);
  } catch (err) {
    main.replaceChildren(h("h2", {}, "Something went wrong"), empty(explain(err)));
    banner(explain(err));
  }
}

function render(main, title, ...content) {
  main.replaceChildren(h("h2", {}, title), ...content.filter((c) => c !== null && c !== undefined));
  document.title = `${title} · Platform database backup`;
}

function poll(fn) {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    try { await fn(); } catch (err) { banner(explain(err)); }
  }, POLL_MS);
}

// Storages ---------------------------------------------------------------------------------

async function storagesPage(main) {
  const quota = await get("/v1/quota");
  const rows = quota.storages.map((s) => {
    const usedPct = s.capacityBytes ? (100 * s.usedBytes) / s.capacityBytes : 0;
    return h("tr", {},
      h("th", { scope: "row" }, s.name), h("td", {}, s.role),
      h("td", {}, `s3://${s.bucket}/${s.prefix || ""}`, h("br"), h("span", { class: "muted" }, s.region)),
      h("td", { class: "num" }, size(s.capacityBytes)), h("td", { class: "num" }, size(s.usedBytes)),
      h("td", { class: "num" }, size(s.availableBytes)),
      h("td", {}, bar(usedPct, `${s.name}: ${usedPct.toFixed(1)}% used`, usedPct > 90 ? "full" : "ok")),
      h("td", {}, h("button", { class: "secondary", type: "button", "aria-label": `Remove storage ${s.name}`,
        onclick: () => removeStorage(s) }, "Remove")));
  });
  const totalPct = quota.capacityBytes ? (100 * quota.usedBytes) / quota.capacityBytes : 0;
  render(main, "Storages",
    section("Quota",
      h("p", { class: "summary" }, `${size(quota.availableBytes)} available of ${size(quota.capacityBytes)} ` +
        `authorized (${size(quota.usedBytes)} used)`),
      bar(totalPct, `quota: ${totalPct.toFixed(1)}% used`, totalPct > 90 ? "full" : "ok")),
    rows.length ? table(["Name", "Role", "Location", "Capacity", "Used", "Available", "Usage", ""], rows)
      : empty("No storage yet: register the bucket your backups go to below."),
    section("Register a storage", storageForm()));
}

function section(title, ...content) {
  return h("section", { class: "card", "aria-label": title }, h("h3", {}, title), ...content);
}

function storageForm() {
  const unit = select("capacityUnit", [["1073741824", "GiB"], ["1099511627776", "TiB"], ["1", "bytes"]], "1073741824",
    { "aria-label": "Capacity unit" });
  const capacity = input("capacity", "100", { inputmode: "decimal" });
  const form = h("form", { novalidate: true, "aria-label": "Register a storage" },
    h("fieldset", {}, h("legend", {}, "Storage"),
      field("Name", input("name", ""), "name"),
      field("Role", select("role", [["local", "local (primary or failover)"], ["remote", "remote (off-site)"]], "local"), "role"),
      field("Bucket", input("bucket", ""), "bucket", "an existing S3 bucket"),
      field("Region", input("region", "us-east-1"), "region"),
      field("Key prefix", input("prefix", "platform-db/"), "prefix", "empty or ending with /"),
      h("div", { class: "field", "data-field": "capacityBytes" },
        h("label", { for: "capacity" }, "Capacity (authorized quota)"),
        h("div", { class: "actions" }, Object.assign(capacity, { id: "capacity" }), unit),
        h("p", { class: "field-error", "aria-live": "polite" }))),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Register storage")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const amount = Number(data.get("capacity"));
    const body = { name: data.get("name"), role: data.get("role"), bucket: data.get("bucket"),
      region: data.get("region"), prefix: data.get("prefix"),
      capacityBytes: Number.isFinite(amount) && data.get("capacity") !== ""
        ? Math.round(amount * Number(data.get("capacityUnit"))) : null };
    try {
      const storage = await api("POST", "/v1/storages", body);
      banner(`Storage ${storage.name} registered.`, "info");
      route();
    } catch (err) { showErrors(form, err); }
  });
  return form;
}

async function removeStorage(storage) {
  if (!window.confirm(`Remove storage ${storage.name}? Its bucket and data stay.`)) return;
  try {
    await api("DELETE", `/v1/storages/${encodeURIComponent(storage.id)}`);
    banner(`Storage ${storage.name} removed.`, "info");
  } catch (err) { banner(explain(err)); }
  route();
}

// Plan -----------------------------------------------------------------------------------------

function scheduleInWords(policy) {
  const zone = policy.timezone;
  if (policy.cycle === "weekly") {
    const days = (policy.weekdays || []).map((d) => DAY_NAMES[d]);
    const list = days.length > 1 ? `${days.slice(0, -1).join(", ")} and ${days[days.length - 1]}` : days[0];
    return `every ${list} at ${policy.executionTime}, ${zone}`;
  }
  if (policy.cycle === "daily") return `every day at ${policy.executionTime}, ${zone}`;
  const minute = String(new Date(policy.startTime).getUTCMinutes()).padStart(2, "0");
  return `every hour at minute ${minute}, ${zone}`;
}

function retentionInWords(rule) {
  if (!rule) return "-";
  if (rule.mode === "permanent") return "kept permanently";
  return rule.mode === "count" ? `the newest ${rule.value} kept` : `kept ${rule.value} days`;
}

function storageLine(s) {
  const pct = s.capacityBytes ? (100 * (s.capacityBytes - s.availableBytes)) / s.capacityBytes : 0;
  return h("li", {}, h("strong", {}, s.name || s.id), ` (${s.use}) — ${size(s.availableBytes)} available of ${size(s.capacityBytes)}`,
    bar(pct, `${s.name || s.id}: ${pct.toFixed(1)}% used`, pct > 90 ? "full" : "ok"));
}

async function planPage(main, args) {
  const [plans, storages] = await Promise.all([all("/v1/plans"), all("/v1/storages")]);
  const plan = plans[0];
  if (!plan || args.get("edit") !== null) {
    const title = plan ? "Edit the plan" : "Plan";
    const intro = plan ? null : empty(storages.length
      ? "No backup plan yet: set one below. The platform database has exactly one plan."
      : "No backup plan yet. Register a local storage first, on the ", storages.length ? null : h("a", { href: "#/storages" }, "Storages page"));
    render(main, title, intro, section(plan ? "Plan settings" : "New backup plan", planForm(plan, storages)));
    return;
  }
  const runs = (await get(`/v1/plans/${encodeURIComponent(plan.id)}/next-runs?count=5`)).runs;
  const storagesOf = (uses) => (plan.storages || []).filter((s) => uses.includes(s.use));
  const state = plan.state === "enabled"
    ? h("button", { type: "button", class: "secondary", onclick: () => planAction(plan, "pause") }, "Pause")
    : h("button", { type: "button", class: "secondary", onclick: () => planAction(plan, "resume") }, "Resume");
  render(main, `Plan ${plan.name}`,
    section("Schedule",
      h("p", { class: "summary", id: "plan-summary" }, scheduleInWords(plan.policy)),
      h("dl", { class: "facts" },
        h("dt", {}, "State"), h("dd", {}, status(plan.state)),
        h("dt", {}, "From"), h("dd", {}, `${plan.policy.startTime}`),
        h("dt", {}, "Description"), h("dd", {}, plan.description || "-"),
        h("dt", {}, "Data center"), h("dd", {}, plan.dataCenter || "-"),
        h("dt", {}, "Local retention"), h("dd", {}, retentionInWords(plan.retention.local)),
        h("dt", {}, "Remote retention"), h("dd", {}, plan.remoteSync ? retentionInWords(plan.retention.remote) : "no remote sync")),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => runNow(plan) }, "Run now"), state,
        h("a", { href: "#/plan/edit", role: "button" }, "Edit"))),
    section("Storages",
      h("ul", { class: "plain", "aria-label": "Local storages" }, storagesOf(["primary", "failover"]).map(storageLine)),
      plan.remoteSync ? h("ul", { class: "plain", "aria-label": "Remote storage" }, storagesOf(["remote"]).map(storageLine)) : null),
    section("Next runs", runs.length
      ? h("ol", { class: "plain" }, runs.map((r) => h("li", {}, r.local, h("span", { class: "muted" }, ` (${r.utc})`))))
      : empty("No run is scheduled while the plan is paused.")));
}

async function planAction(plan, action) {
  try {
    await api("POST", `/v1/plans/${encodeURIComponent(plan.id)}/${action}`);
    banner(`Plan ${action === "pause" ? "paused" : "resumed"}.`, "info");
  } catch (err) { banner(explain(err)); }
  route();
}

async function runNow(plan) {
  try {
    const execution = await api("POST", `/v1/plans/${encodeURIComponent(plan.id)}/executions`);
    banner(`Backup started (execution ${execution.id}).`, "info");
    location.hash = "#/executions";
  } catch (err) { banner(explain(err)); }
}

function defaultStart() {
  const d = new Date(Date.now() + 5 * 60 * 1000);
  d.setSeconds(0, 0);
  const off = -d.getTimezoneOffset();
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const local = new Date(d.getTime() + off * 60000).toISOString().slice(0, 19);
  return `${local}${off >= 0 ? "+" : "-"}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

function planForm(plan, storages) {
  const p = plan || { policy: { cycle: "daily", executionTime: "00:30", startTime: defaultStart() },
    retention: { local: { mode: "count", value: 7 } }, localStorageIds: [], remoteSync: false };
  const label = (s) => `${s.name} — ${size(s.availableBytes)} available of ${size(s.capacityBytes)}`;
  const locals = storages.filter((s) => s.role === "local").map((s) => [s.id, label(s)]);
  const remotes = storages.filter((s) => s.role === "remote").map((s) => [s.id, label(s)]);
  const remoteSync = h("input", { type: "checkbox", name: "remoteSync", checked: p.remoteSync });
  const cycle = select("cycle", [["weekly", "weekly"], ["daily", "daily"], ["hourly", "hourly"]], p.policy.cycle);
  const days = h("fieldset", { class: "days" }, h("legend", {}, "Weekdays"),
    WEEKDAYS.map((d) => h("label", {}, h("input", { type: "checkbox", name: "weekdays", value: d,
      checked: (p.policy.weekdays || []).includes(d) }), ` ${DAY_NAMES[d]}`)));
  const weekdaysField = h("div", { class: "field", "data-field": "policy.weekdays" }, days,
    h("p", { class: "field-error", "aria-live": "polite" }));
  const timeField = field("Execution time", input("executionTime", p.policy.executionTime || "", { placeholder: "HH:MM" }),
    "policy.executionTime", "weekly and daily: HH:MM in the time zone");
  const remoteRule = p.retention.remote || { mode: "permanent" };
  const remoteBox = h("fieldset", {}, h("legend", {}, "Remote backup storage"),
    field("Remote storage", select("remoteStorageId", [["", "— none —"], ...remotes], p.remoteStorageId), "remoteStorageId",
      remotes.length ? "shown with its available capacity" : "no remote storage registered"),
    field("Remote retention", select("remoteMode", [["permanent", "permanently"], ["count", "by quantity"], ["days", "by days"]], remoteRule.mode), "retention.remote.mode"),
    field("Keep (quantity or days)", input("remoteValue", remoteRule.value ?? "", { inputmode: "numeric" }), "retention.remote.value"));
  const form = h("form", { novalidate: true, "aria-label": "Backup plan" },
    h("fieldset", {}, h("legend", {}, "Basic information"),
      field("Name", input("name", p.name), "name"),
      field("Description", input("description", p.description), "description"),
      field("Data center", input("dataCenter", p.dataCenter), "dataCenter")),
    h("fieldset", {}, h("legend", {}, "Local backup storage"),
      field("Primary", select("primary", [["", "— choose —"], ...locals], p.localStorageIds[0]), "localStorageIds.0"),
      field("Failover (optional)", select("failover", [["", "— none —"], ...locals], p.localStorageIds[1]), "localStorageIds.1"),
      h("div", { "data-field": "localStorageIds", class: "field" }, h("p", { class: "field-error", "aria-live": "polite" })),
      field("Sync to remote backup storage", remoteSync, "remoteSync")),
    remoteBox,
    h("fieldset", {}, h("legend", {}, "Backup policy"),
      field("Backup cycle", cycle, "policy.cycle"), weekdaysField, timeField,
      field("Start time", input("startTime", p.policy.startTime), "policy.startTime", "an instant with its offset, e.g. 2026-12-01T00:00:00+08:00"),
      field("Time zone", input("timezone", plan ? p.policy.timezone : "", { placeholder: "the start time's offset" }), "policy.timezone",
        "IANA name such as Asia/Shanghai; empty: the start time's own offset")),
    h("fieldset", {}, h("legend", {}, "Local retention"),
      field("Retain", select("localMode", [["count", "by quantity"], ["days", "by days"]], p.retention.local.mode), "retention.local.mode"),
      field("Keep (quantity or days)", input("localValue", p.retention.local.value, { inputmode: "numeric" }), "retention.local.value")),
    h("div", { class: "actions" }, h("button", { type: "submit" }, plan ? "Save plan" : "Create plan"),
      plan ? h("a", { href: "#/plan" }, "Cancel") : null));
  const sync = () => {
    remoteBox.hidden = !remoteSync.checked;
    weekdaysField.hidden = cycle.value !== "weekly";
    timeField.hidden = cycle.value === "hourly";
  };
  remoteSync.addEventListener("change", sync);
  cycle.addEventListener("change", sync);
  sync();
  const number = (v) => (v === "" || v === null ? null : Number.isFinite(Number(v)) ? Number(v) : v);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = new FormData(form);
    const policy = { cycle: d.get("cycle"), startTime: d.get("startTime") };
    if (policy.cycle === "weekly") policy.weekdays = d.getAll("weekdays");
    if (policy.cycle !== "hourly") policy.executionTime = d.get("executionTime");
    if (d.get("timezone")) policy.timezone = d.get("timezone");
    const body = { name: d.get("name"), description: d.get("description"), dataCenter: d.get("dataCenter") || null,
      objectType: "PlatformDatabase",
      localStorageIds: [d.get("primary"), d.get("failover")].filter(Boolean),
      remoteSync: remoteSync.checked, policy,
      retention: { local: { mode: d.get("localMode"), value: number(d.get("localValue")) } } };
    if (plan && plan.pointInTime) body.pointInTime = plan.pointInTime;  // kept as it is
    if (remoteSync.checked) {
      body.remoteStorageId = d.get("remoteStorageId") || null;
      body.retention.remote = { mode: d.get("remoteMode") };
      if (d.get("remoteMode") !== "permanent") body.retention.remote.value = number(d.get("remoteValue"));
    }
    try {
      const saved = plan ? await api("PUT", `/v1/plans/${encodeURIComponent(plan.id)}`, body)
        : await api("POST", "/v1/plans", body);
      banner(`Plan ${saved.name} saved: ${scheduleInWords(saved.policy)}.`, "info");
      if (location.hash === "#/plan") route(); else location.hash = "#/plan";
    } catch (err) { showErrors(form, err); }
  });
  return form;
}

// Executions -------------------------------------------------------------------------------------

async function storageNames() {
  const names = {};
  for (const s of await all("/v1/storages")) names[s.id] = s.name;
  return names;
}

async function executionsPage(main, args) {
  const filter = args.get("status") || "";
  const names = await storageNames();
  const choose = select("status", [["", "all"], ["running", "running"], ["succeeded", "succeeded"],
    ["partially-succeeded", "partially succeeded"], ["failed", "failed"], ["skipped", "skipped"]], filter,
  { id: "status-filter", onchange: (e) => { location.hash = e.target.value ? `#/executions/status=${e.target.value}` : "#/executions"; } });
  const body = h("div", {});
  render(main, "Executions",
    h("div", { class: "actions" }, h("label", { for: "status-filter" }, "Status"), choose),
    body);
  const refresh = async () => {
    if (!body.isConnected) return;
    const page = await get(`/v1/executions?limit=50${filter ? `&status=${filter}` : ""}`);
    const rows = page.items.map((e) => {
      const p = e.progress || {};
      const eta = typeof p.etaSeconds === "number" ? ` · ETA ${seconds(p.etaSeconds)}` : "";
      return h("tr", { "data-id": e.id },
        h("td", {}, when(e.startedAt)), h("td", {}, e.trigger), h("td", { class: "exec-status" }, status(e.status)),
        h("td", {}, e.phase || "-"),
        h("td", {}, bar(p.percent, `Progress of the execution started ${when(e.startedAt)}`, e.status === "succeeded" ? "ok" : ""),
          h("span", { class: "progress-text" }, `${Math.round(p.percent || 0)}% · tables ${p.tablesDone || 0}/${p.tablesTotal || 0} · ${size(p.bytesDumped)}${eta}`)),
        h("td", {}, names[e.storageId] || e.storageId || "-"),
        h("td", {}, e.failoverReason ? h("span", { class: "status-partially-succeeded" }, e.failoverReason) : null,
          e.error ? h("span", { class: "status-failed" }, e.error) : null, e.reason || null));
    });
    body.replaceChildren(rows.length
      ? table(["Started", "Trigger", "Status", "Phase", "Progress", "Storage", "Failover / error"], rows)
      : empty(filter ? `No ${filter} execution.` : "No execution yet: run the plan now from the ", filter ? null : h("a", { href: "#/plan" }, "Plan page")));
    if (page.items.some((e) => e.status === "running")) poll(refresh);
    else poll(refresh);  // a scheduled run may start at any moment
  };
  await refresh();
}

// Backups ----------------------------------------------------------------------------------------

async function backupsPage(main, args) {
  const days = Number(args.get("days")) === 90 ? 90 : 30;
  const [backups, names] = await Promise.all([all("/v1/backups"), storageNames()]);
  const rows = backups.map((b) => h("tr", { "data-id": b.id },
    h("td", {}, when(b.createdAt)), h("td", {}, status(b.status)), h("td", {}, b.trigger || "-"),
    h("td", { class: "num" }, size(b.rawBytes)), h("td", { class: "num" }, size(b.compressedBytes)),
    h("td", { class: "num" }, seconds(b.durationSeconds)),
    h("td", {}, h("ul", { class: "plain" }, (b.copies || []).map((c) =>
      h("li", {}, `${names[c.storageId] || c.storageId} (${c.role}) `, status(c.status))))),
    h("td", {}, h("a", { href: `#/restores/backup=${encodeURIComponent(b.id)}`, "aria-label": `Restore the backup of ${when(b.createdAt)}` }, "Restore"))));
  const range = h("div", { class: "actions", role: "group", "aria-label": "Chart range" },
    [30, 90].map((n) => h("a", { href: `#/backups/days=${n}`, "aria-current": n === days ? "true" : null }, `last ${n} days`)));
  const since = Date.now() - days * 86400000;
  const recent = backups.filter((b) => new Date(b.createdAt).getTime() >= since);
  render(main, "Backups",
    backups.length ? null : empty("No backup yet: run the plan now from the ", h("a", { href: "#/plan" }, "Plan page")),
    section(`Size and duration, last ${days} days`, range,
      h("div", { class: "charts" },
        chart("Size", recent, since, days, (b) => b.compressedBytes, (b) => b.rawBytes, size),
        chart("Duration", recent, since, days, (b) => b.durationSeconds || 0, null, seconds))),
    backups.length ? table(["Taken", "Status", "Trigger", "Raw", "Compressed", "Duration", "Copies", ""], rows) : null);
}

// One bar per backup at its time in the window; a lighter bar behind for the raw size.
function chart(title, backups, since, days, value, behind, format) {
  const W = 600, H = 200, L = 56, B = 24, T = 10;
  const max = Math.max(1, ...backups.map((b) => Math.max(value(b), behind ? behind(b) : 0)));
  const x = (b) => L + ((new Date(b.createdAt).getTime() - since) / (days * 86400000)) * (W - L - 10);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const width = Math.max(3, (W - L - 10) / (days * 2));
  const bars = backups.flatMap((b) => {
    const label = `${when(b.createdAt)}: ${format(value(b))}${behind ? ` compressed, ${format(behind(b))} raw` : ""}`;
    return [
      behind ? svg("rect", { class: "bar-raw", x: x(b) - width / 2, y: y(behind(b)), width, height: H - B - y(behind(b)) }) : null,
      svg("rect", { class: "bar-main", x: x(b) - width / 2, y: y(value(b)), width, height: Math.max(1, H - B - y(value(b))), "data-id": b.id },
        svg("title", {}, label)),
    ];
  });
  const axis = [svg("line", { x1: L, y1: H - B, x2: W - 10, y2: H - B }), svg("line", { x1: L, y1: T, x2: L, y2: H - B }),
    svg("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, format(max)),
    svg("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0"),
    svg("text", { x: L, y: H - 6 }, when(new Date(since).toISOString()).slice(0, 10)),
    svg("text", { x: W - 10, y: H - 6, "text-anchor": "end" }, "today")];
  const description = backups.length ? `${backups.length} backups; largest ${format(max)}` : "no backup in this range";
  return h("figure", { class: "chart", "data-chart": title.toLowerCase() },
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title} of each backup, last ${days} days: ${description}` },
      axis, bars),
    h("figcaption", { class: "muted" }, `${title} of each backup${behind ? " (dark: compressed, light: raw)" : ""}`));
}

// Restores ---------------------------------------------------------------------------------------

async function restoresPage(main, args) {
  const [backups, plans, restores] = await Promise.all([all("/v1/backups"), all("/v1/plans"), get("/v1/restores?limit=50")]);
  const plan = plans[0];
  let recovery = null;  // offered only where the API answers the recovery window
  if (plan) {
    try { recovery = await get(`/v1/plans/${encodeURIComponent(plan.id)}/recovery-window`); } catch (err) { recovery = null; }
  }
  const list = h("div", {});
  render(main, "Restores",
    backups.length || recovery ? section("Start a restore", restoreForm(backups, plan, recovery, args.get("backup")))
      : empty("No backup to restore from yet: run the plan now from the ", h("a", { href: "#/plan" }, "Plan page")),
    h("h3", {}, "Restores"), list);
  const refresh = async () => {
    if (!list.isConnected) return;
    const page = await get("/v1/restores?limit=50");
    list.replaceChildren(page.items.length ? table(["Started", "Status", "Phase", "Progress", "Databases", "Warnings and rows"],
      page.items.map(restoreRow)) : empty("No restore yet."));
    poll(refresh);
  };
  list.replaceChildren(restores.items.length ? table(["Started", "Status", "Phase", "Progress", "Databases", "Warnings and rows"],
    restores.items.map(restoreRow)) : empty("No restore yet."));
  poll(refresh);
}

function restoreRow(r) {
  const p = r.progress || {};
  const eta = typeof p.etaSeconds === "number" ? ` · ETA ${seconds(p.etaSeconds)}` : "";
  const rows = Object.entries(r.rowCounts || {});
  return h("tr", { "data-id": r.id },
    h("td", {}, when(r.startedAt)), h("td", { class: "restore-status" }, status(r.status)), h("td", {}, r.phase),
    h("td", {}, bar(p.percent, `Progress of the restore started ${when(r.startedAt)}`, r.status === "succeeded" ? "ok" : ""),
      h("span", { class: "progress-text" }, `${Math.round(p.percent || 0)}% · ${size(p.bytesApplied)} of ${size(p.bytesTotal)}${eta}`)),
    h("td", {}, h("ul", { class: "plain" }, Object.entries(r.databases || {}).map(([from, to]) => h("li", {}, `${from} → ${to}`))),
      r.target ? h("span", { class: "muted" }, r.target.mode) : null),
    h("td", {}, r.error ? h("p", { class: "status-failed" }, r.error) : null,
      (r.warnings || []).length ? h("ul", { class: "plain" }, r.warnings.map((w) => h("li", {}, w))) : null,
      rows.length ? h("details", {}, h("summary", {}, `${rows.length} tables checked`),
        h("ul", { class: "plain" }, rows.map(([t, n]) => h("li", {}, `${t}: ${n} rows`)))) : null));
}

function restoreForm(backups, plan, recovery, chosen) {
  const options = backups.map((b) => [b.id, `${when(b.createdAt)} — ${size(b.compressedBytes)} (${b.trigger || "backup"})`]);
  const sources = [["backup", "a backup"]];
  if (recovery) sources.push(["point", "a point in time"]);
  const source = select("from", sources, "backup");
  const backupField = field("Backup", select("backupId", options, chosen || (options[0] || [])[0]), "backupId");
  const windows = recovery ? (recovery.windows || []).map((w) => `${when(w.from)} to ${when(w.to)}`).join("; ") : "";
  const pointField = recovery ? field("Point in time", input("pointInTime", recovery.lastRecoverableTime || ""), "pointInTime",
    `recoverable: ${windows || "no window yet"}`) : null;
  const mode = select("mode", [["new-database", "new databases (the live ones stay untouched)"], ["in-place", "in place (replaces the live databases)"]], "new-database");
  const suffix = field("Database suffix", input("databaseSuffix", "", { placeholder: "_restored_<time>" }), "target.databaseSuffix",
    "each database is restored as <name><suffix>");
  const confirmInput = input("confirm", "", { autocomplete: "off" });
  const confirmField = field("Type the plan's name to confirm", confirmInput, "confirm",
    "in place replaces the live platform database, after a safety backup (always taken)");
  const confirmLabel = confirmField.querySelector("label");
  const submit = h("button", { type: "submit" }, "Start restore");
  const form = h("form", { novalidate: true, "aria-label": "Start a restore" },
    h("fieldset", {}, h("legend", {}, "Restore from"), recovery ? field("Source", source, "source") : null, backupField, pointField),
    h("fieldset", {}, h("legend", {}, "Target"), field("Restore into", mode, "target.mode"), suffix, confirmField),
    h("div", { class: "actions" }, submit));
  // The plan's name confirms; a backup whose plan is gone is confirmed by its own id.
  const expected = () => {
    if (source.value === "point") return plan ? plan.name : "";
    const id = form.elements.backupId.value;
    const chosenBackup = backups.find((b) => b.id === id);
    return plan && (!chosenBackup || chosenBackup.planId === plan.id) ? plan.name : id;
  };
  const sync = () => {
    const inPlace = mode.value === "in-place";
    confirmLabel.textContent = plan && expected() === plan.name
      ? `Type the plan's name (${plan.name}) to confirm` : `Type the backup's id (${expected()}) to confirm`;
    suffix.hidden = inPlace;
    confirmField.hidden = !inPlace;
    submit.disabled = inPlace && confirmInput.value !== expected();
    submit.textContent = inPlace ? "Replace the live databases" : "Start restore";
    submit.className = inPlace ? "danger" : "";
    backupField.hidden = source.value === "point";
    if (pointField) pointField.hidden = source.value !== "point";
  };
  for (const el of [mode, confirmInput, source, form.elements.backupId]) el.addEventListener("input", sync);
  mode.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = new FormData(form);
    const inPlace = d.get("mode") === "in-place";
    const body = { target: { mode: d.get("mode") } };
    if (!inPlace && d.get("databaseSuffix")) body.target.databaseSuffix = d.get("databaseSuffix");
    if (inPlace) body.confirm = d.get("confirm");
    let path;
    if (source.value === "point") {
      body.pointInTime = d.get("pointInTime");
      path = `/v1/plans/${encodeURIComponent(plan.id)}/${inPlace ? "in-place-restores" : "restores"}`;
    } else {
      path = `/v1/backups/${encodeURIComponent(d.get("backupId"))}/${inPlace ? "in-place-restores" : "restores"}`;
    }
    try {
      // In place has routes of its own: an IAM policy may allow restores and deny in place.
      const restore = await api("POST", path, body);
      banner(`Restore started (${restore.id}).`, "info");
      route();
    } catch (err) { showErrors(form, err); }
  });
  return form;
}

window.addEventListener("hashchange", () => {
  if (keepBanner) keepBanner = false; else banner("");
  route();
});
route();
