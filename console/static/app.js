// The hotline console: plain JavaScript, no build step. Everything shown comes from the
// server's event stream; text is set with textContent only, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;        // who is signed in (with the CSRF token)
let es = null;        // the event stream
let view = null;      // the last view
let skew = 0;         // server clock minus ours, in ms
let lastTouch = 0;

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const k of kids) e.append(k);
  return e;
}

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function dur(msec) {
  if (msec < 0) msec = 0;
  const s = Math.floor(msec / 1000), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

const serverNow = () => Date.now() + skew;
const stateName = (s) => s.replace("_", " ");

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (me) opts.headers["X-CSRF-Token"] = me.csrf;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/console/api/" + path, opts);
  let data = null;
  if (r.headers.get("Content-Type")?.startsWith("application/json")) data = await r.json();
  return { status: r.status, data };
}

function showSignIn(msg) {
  me = null; view = null;
  if (es) { es.close(); es = null; }
  $("desk").hidden = $("wallboard").hidden = $("signout").hidden = true;
  $("who").textContent = ""; $("link").textContent = "";
  $("signin").hidden = false;
  notice(msg);
}

async function start(who) {
  me = who;
  $("signin").hidden = true;
  $("signout").hidden = false;
  $("desk").hidden = false;
  $("wallboard").hidden = me.role !== "supervisor";
  $("who").textContent = `${me.name || me.id} (${me.role})`;
  const sel = $("pause-reason");
  sel.replaceChildren(...me.pause_reasons.map((r) => el("option", { value: r, textContent: r })));
  notice("");
  connect();
}

function connect() {
  if (es) es.close();
  es = new EventSource("/console/api/events");
  es.addEventListener("open", () => { $("link").textContent = "live"; $("link").className = "link"; });
  es.addEventListener("view", (ev) => {
    view = JSON.parse(ev.data);
    skew = view.now - Date.now();
    render();
  });
  es.addEventListener("expired", (ev) => { showSignIn(JSON.parse(ev.data).error); });
  es.addEventListener("replaced", (ev) => {
    es.close(); es = null;
    $("link").textContent = "paused";
    notice(JSON.parse(ev.data).error + ". Reload this page to use it here.");
  });
  es.addEventListener("error", async () => {
    $("link").textContent = "reconnecting"; $("link").className = "link down";
    if (es && es.readyState === EventSource.CLOSED) {
      // Refused outright (signed out, expired): ask why, else try again shortly.
      const r = await api("GET", "me").catch(() => null);
      if (r && r.status === 401) { showSignIn(r.data?.error); return; }
      setTimeout(() => { if (me) connect(); }, 2000);
    }
  });
}

function render() {
  if (!view || !view.me) return;
  const m = view.me;
  const st = $("my-state");
  st.textContent = stateName(m.state) + (m.pause_reason ? ` (${m.pause_reason})` : "");
  st.className = "state " + m.state;
  $("my-phone").textContent = m.registered ? "Phone registered" : "No phone registered";
  $("btn-available").disabled = m.state === "available";
  $("btn-offline").disabled = m.state === "offline";
  const c = view.call;
  $("call-card").hidden = !c;
  $("no-call").hidden = !!c;
  if (c) {
    $("call-title").textContent = c.ringing ? "Ringing call" : "Current call";
    $("call-queue").textContent = c.queue;
    $("call-language").textContent = c.language || "—";
    $("call-reason").textContent = c.reason || "—";
    $("call-kind").textContent = c.kind === "live" ? "Live call" : c.kind;
    $("btn-hangup").hidden = c.ringing;
    $("call-hint").hidden = !c.ringing;
  }
  if (me.role === "supervisor") renderWallboard();
  tick();
}

function counts(m) {
  return Object.entries(m || {}).filter(([, n]) => n > 0).map(([s, n]) => `${stateName(s)} ${n}`).join(", ") || "—";
}

function renderWallboard() {
  const qb = $("queues").tBodies[0];
  qb.replaceChildren(...view.queues.map((q) => {
    const sl = q.service_level === null ? "—" : `${Math.round(q.service_level * 100)}% (≤ ${q.threshold_s}s)`;
    const langs = Object.entries(q.by_language).map(([l, m]) => `${l}: ${counts(m)}`).join("; ");
    return el("tr", { id: "q-" + q.name },
      el("td", { textContent: q.name }),
      el("td", { className: "waiting", textContent: String(q.waiting) }),
      el("td", { className: "oldest", textContent: "—" }),
      el("td", { className: "answered", textContent: String(q.answered_today) }),
      el("td", { className: "abandoned", textContent: String(q.abandoned_today) }),
      el("td", { className: "sl", textContent: sl }),
      el("td", { textContent: counts(q.advocates) }),
      el("td", { textContent: langs }));
  }));
  const ab = $("advocates").tBodies[0];
  ab.replaceChildren(...view.advocates.map((a) => {
    const sel = el("select", { "ariaLabel": "New state for " + a.id });
    sel.append(el("option", { value: "available", textContent: "available" }));
    for (const r of me.pause_reasons) sel.append(el("option", { value: "paused:" + r, textContent: "paused: " + r }));
    sel.append(el("option", { value: "offline", textContent: "offline" }));
    const btn = el("button", { type: "button", textContent: "Set" });
    btn.addEventListener("click", () => {
      const [state, reason] = sel.value.split(":");
      setState(state, reason || "", a.id);
    });
    return el("tr", { id: "a-" + a.id },
      el("td", { textContent: a.name ? `${a.name} (${a.id})` : a.id }),
      el("td", { textContent: a.languages.join(", ") }),
      el("td", {}, el("span", { className: "state " + a.state, textContent: stateName(a.state) + (a.pause_reason ? ` (${a.pause_reason})` : "") })),
      el("td", { className: "for", textContent: "" }),
      el("td", { textContent: a.queue || "" }),
      el("td", { textContent: a.registered ? "registered" : "—" }),
      el("td", {}, sel, " ", btn));
  }));
}

// tick updates what counts by itself between views: waits, wrap-up, time in state.
function tick() {
  if (!view || !view.me) return;
  const now = serverNow(), m = view.me;
  $("my-since").textContent = m.since ? "for " + dur(now - m.since) : "";
  $("my-wrapup").hidden = !m.wrap_up_ends;
  if (m.wrap_up_ends) $("my-wrapup-left").textContent = dur(m.wrap_up_ends - now);
  if (view.call) $("call-waited").textContent = dur(now - view.call.since);
  if (me && me.role === "supervisor") {
    for (const q of view.queues) {
      const row = document.getElementById("q-" + q.name);
      if (row) row.querySelector(".oldest").textContent = q.oldest_since ? dur(now - q.oldest_since) : "—";
    }
    for (const a of view.advocates) {
      const row = document.getElementById("a-" + a.id);
      if (row) row.querySelector(".for").textContent = a.since ? dur(now - a.since) : "";
    }
  }
}

async function setState(state, reason, advocate) {
  const r = await api("POST", "state", { advocate: advocate || "", state, reason: reason || "" });
  if (r.status === 401) { showSignIn(r.data?.error); return; }
  if (r.status !== 204) notice(r.data?.error || `refused (${r.status})`);
  else notice("");
}

// Using the page keeps the session alive; an open page nobody uses times out.
function touch() {
  if (!me || Date.now() - lastTouch < 60000) return;
  lastTouch = Date.now();
  api("POST", "touch").then((r) => { if (r.status === 401) showSignIn(r.data?.error); }).catch(() => {});
}

document.addEventListener("DOMContentLoaded", async () => {
  $("signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "signin", { id: $("signin-id").value.trim(), password: $("signin-password").value });
    $("signin-password").value = "";
    if (r.status === 200) { lastTouch = Date.now(); start(r.data); }
    else notice(r.data?.error || `sign-in refused (${r.status})`);
  });
  $("btn-available").addEventListener("click", () => setState("available"));
  $("btn-pause").addEventListener("click", () => setState("paused", $("pause-reason").value));
  $("btn-offline").addEventListener("click", () => setState("offline"));
  $("btn-hangup").addEventListener("click", async () => {
    const r = await api("POST", "hangup");
    if (r.status === 401) showSignIn(r.data?.error);
    else if (r.status !== 204) notice(r.data?.error || `refused (${r.status})`);
  });
  $("signout").addEventListener("click", async () => {
    await api("POST", "signout").catch(() => {});
    showSignIn("Signed out.");
  });
  for (const t of ["click", "keydown"]) document.addEventListener(t, touch, { passive: true });
  setInterval(tick, 1000);
  const r = await api("GET", "me").catch(() => null);
  if (r && r.status === 200) start(r.data);
  else showSignIn(r && r.status === 401 && r.data?.error !== "not signed in" ? r.data.error : "");
});
