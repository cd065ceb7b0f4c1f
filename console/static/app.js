// The hotline console: plain JavaScript, no build step. Everything shown comes from the
// server's event stream; text is set with textContent only, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;        // who is signed in (with the CSRF token)
let es = null;        // the event stream
let view = null;      // the last view
let skew = 0;         // server clock minus ours, in ms
let lastTouch = 0;
let tab = "";         // this page's name, from the event stream (the phone's signalling needs it)
let wantPhone = false; // the phone in this page is on

// The phone in the page: a WebRTC call the server offers in the view (view.phone), answered
// here with the microphone; PCMU only, media encrypted (DTLS-SRTP), no servers but ours.
const phone = { pc: null, mic: null, ring: "", declined: "", kind: "", ac: null, analyser: null };
window.hotlinePhone = phone; // for the tests: stats() and peakHz()

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
  if (tab) opts.headers["X-Console-Tab"] = tab;
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
  endPhone();
  me = null; view = null; tab = ""; wantPhone = false;
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
  es.addEventListener("tab", (ev) => {
    tab = JSON.parse(ev.data).tab;
    if (wantPhone) setPhone(true); // back after a network blip: the phone goes on again
  });
  es.addEventListener("view", (ev) => {
    view = JSON.parse(ev.data);
    skew = view.now - Date.now();
    render();
  });
  es.addEventListener("expired", (ev) => { showSignIn(JSON.parse(ev.data).error); });
  es.addEventListener("replaced", (ev) => {
    es.close(); es = null; tab = ""; wantPhone = false;
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
    $("btn-hangup").hidden = c.ringing && !phone.pc;
    $("call-hint").hidden = !c.ringing || !!phone.pc;
  }
  renderPhone();
  if (me.role === "supervisor") renderWallboard();
  tick();
}

function renderPhone() {
  const p = view.phone, c = view.call;
  $("page-phone").hidden = !p || !p.enabled;
  if (p) {
    // Browsers give the microphone to secure pages only (HTTPS, or localhost).
    const secure = window.isSecureContext && !!navigator.mediaDevices;
    $("phone-toggle").disabled = !secure && !p.on;
    $("phone-toggle").checked = p.on;
    $("phone-state").textContent = !secure ? "needs the console over HTTPS (the browser gives the microphone to secure pages only)" :
      !p.on ? "" : phone.pc ? "in a call" : "on: calls ring here";
  }
  if (phone.pc && phone.kind === "caller" && !c) endPhone(); // the call ended on the server's side
  const ringing = !!(p && p.ring && !phone.pc && p.ring !== phone.declined);
  $("phone-ring").hidden = !ringing;
  if (ringing) $("ring-label").textContent = p.label || "A caller is ringing here";
  $("call-card").classList.toggle("ringing", ringing && !p.label);
  if (c && c.ringing) $("call-hint").textContent = ringing && !p.label ? "Ringing in this page (and on any phone you registered)." : "Answer on your phone.";
  $("phone-call").hidden = !phone.pc;
  $("btn-phone-hangup").hidden = !phone.pc || phone.kind === "caller";
  renderFeatures();
}

// The buttons of one's call in progress: interpreter, 911, partner, drop the last party.
function renderFeatures() {
  const fs = (view.call && !view.call.ringing && view.features) || [];
  const box = $("midcall-buttons");
  box.hidden = fs.length === 0;
  const key = JSON.stringify(fs);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...fs.map((f) => {
    const b = el("button", { type: "button", textContent: f.label, className: f.kind === "emergency" ? "danger" : "" });
    b.dataset.feature = f.id;
    b.addEventListener("click", () => press(f.id));
    return b;
  }));
}

async function press(feature) {
  const r = await api("POST", "feature", { feature });
  if (r.status === 401) showSignIn(r.data?.error);
  else if (r.status !== 204) notice(r.data?.error || `refused (${r.status})`);
  else notice("");
}

async function supervise(advocate, mode) {
  const r = await api("POST", "supervise", { advocate, mode });
  if (r.status === 401) showSignIn(r.data?.error);
  else if (r.status !== 202) notice(r.data?.error || `refused (${r.status})`);
  else notice("");
}

async function setPhone(on) {
  const r = await api("POST", "phone", { on });
  if (r.status === 401) { showSignIn(r.data?.error); return; }
  if (r.status !== 204) {
    wantPhone = false; $("phone-toggle").checked = false;
    notice(r.data?.error || `refused (${r.status})`);
    return;
  }
  wantPhone = on;
  notice("");
}

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") { resolve(); return; }
    const t = setTimeout(resolve, 3000);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
    });
  });
}

async function answerPhone() {
  const ring = view.phone.ring, offer = view.phone.offer;
  phone.kind = view.phone.label ? "other" : "caller";
  $("phone-ring").hidden = true;
  try {
    // Echo cancellation stays on (speakers); noise suppression and automatic gain are
    // off: they take steady sounds (a tone, a hum on the caller's line) for noise and fade
    // them, and a desk phone does neither.
    const mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false }, video: false });
    const pc = new RTCPeerConnection();
    phone.pc = pc; phone.ring = ring; phone.mic = mic.getAudioTracks()[0];
    pc.addEventListener("track", (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      $("phone-audio").srcObject = stream;
      listen(stream);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (phone.pc === pc && (pc.connectionState === "failed" || pc.connectionState === "closed")) endPhone();
    });
    await pc.setRemoteDescription({ type: "offer", sdp: offer });
    pc.addTrack(phone.mic, mic);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    const r = await api("POST", "phone/answer", { ring, sdp: pc.localDescription.sdp });
    if (r.status !== 204) { endPhone(); notice(r.data?.error || `refused (${r.status})`); }
  } catch (e) {
    endPhone();
    notice("The phone in this page could not answer: " + e.message);
    api("POST", "phone/answer", { ring, sdp: "" }).catch(() => {});
  }
  if (view) render();
}

async function declinePhone() {
  phone.declined = view.phone.ring;
  $("phone-ring").hidden = true;
  const r = await api("POST", "phone/answer", { ring: phone.declined, sdp: "" });
  if (r.status !== 204) notice(r.data?.error || `refused (${r.status})`);
}

// listen measures what the caller sends: the strongest frequency, for the tests.
function listen(stream) {
  try {
    phone.ac = new AudioContext();
    phone.analyser = phone.ac.createAnalyser();
    phone.analyser.fftSize = 4096;
    phone.ac.createMediaStreamSource(stream).connect(phone.analyser);
  } catch (e) { phone.analyser = null; }
}

phone.peakHz = () => {
  const an = phone.analyser;
  if (!an) return 0;
  const d = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(d);
  let k = 1;
  for (let i = 2; i < d.length; i++) if (d[i] > d[k]) k = i;
  return k * phone.ac.sampleRate / an.fftSize;
};

// levelAt is the level (dB) of what the caller's side sends at hz, for the tests.
phone.levelAt = (hz) => {
  const an = phone.analyser;
  if (!an) return -1000;
  const d = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(d);
  const k = Math.round(hz * an.fftSize / phone.ac.sampleRate);
  return Math.max(d[k - 1], d[k], d[k + 1]);
};

phone.stats = async () => {
  const out = { bytes: 0, level: 0, codec: "" };
  if (!phone.pc) return out;
  const st = await phone.pc.getStats();
  st.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out.bytes = s.bytesReceived; out.level = s.audioLevel || 0;
      const c = st.get(s.codecId); if (c) out.codec = c.mimeType;
    }
  });
  return out;
};

function endPhone() {
  if (!phone.pc) return;
  const pc = phone.pc;
  phone.pc = null;
  pc.close();
  if (phone.mic) phone.mic.stop();
  if (phone.ac) phone.ac.close().catch(() => {});
  phone.mic = phone.ac = phone.analyser = null;
  $("phone-audio").srcObject = null;
  $("btn-mute").textContent = "Mute";
  $("btn-mute").setAttribute("aria-pressed", "false");
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
    const sup = el("td", {});
    const cur = view.supervising && view.supervising.advocate === a.id ? view.supervising : null;
    if (a.state === "on_call" && a.id !== me.id) {
      const box = el("span", { className: "sup-buttons" });
      for (const [mode, label] of [["listen", "Listen"], ["whisper", "Whisper"], ["barge", "Barge"]]) {
        const b = el("button", { type: "button", textContent: label, className: cur && cur.mode === mode ? "on" : "" });
        b.dataset.mode = mode;
        b.addEventListener("click", () => supervise(a.id, mode));
        box.append(b);
      }
      if (cur) {
        const b = el("button", { type: "button", textContent: "Stop", className: "danger" });
        b.dataset.mode = "stop";
        b.addEventListener("click", () => supervise(a.id, "stop"));
        box.append(b);
      }
      sup.append(box);
    }
    return el("tr", { id: "a-" + a.id },
      el("td", { textContent: a.name ? `${a.name} (${a.id})` : a.id }),
      el("td", { textContent: a.languages.join(", ") }),
      el("td", {}, el("span", { className: "state " + a.state, textContent: stateName(a.state) + (a.pause_reason ? ` (${a.pause_reason})` : "") })),
      el("td", { className: "for", textContent: "" }),
      el("td", { textContent: a.queue || "" }),
      el("td", { textContent: a.registered ? "registered" : "—" }),
      el("td", {}, sel, " ", btn),
      sup);
  }));
  const sv = view.supervising;
  $("supervising").hidden = !sv;
  if (sv) $("supervising").textContent = sv.answered ?
    `You are in ${sv.advocate}'s call: ${sv.mode === "listen" ? "listening (no one hears you)" : sv.mode === "whisper" ? `whispering (only ${sv.advocate} hears you)` : "barged in (everyone hears you)"}.` :
    `Ringing your phone to join ${sv.advocate}'s call (${sv.mode})…`;
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
  $("phone-toggle").addEventListener("change", (ev) => setPhone(ev.target.checked));
  $("btn-answer").addEventListener("click", answerPhone);
  $("btn-decline").addEventListener("click", declinePhone);
  $("btn-phone-hangup").addEventListener("click", () => {
    endPhone();
    // A supervision call ends at once on the server too (else when the media stops).
    if (view && view.supervising) supervise(view.supervising.advocate, "stop");
    if (view) render();
  });
  $("btn-mute").addEventListener("click", () => {
    if (!phone.mic) return;
    phone.mic.enabled = !phone.mic.enabled;
    $("btn-mute").textContent = phone.mic.enabled ? "Mute" : "Unmute";
    $("btn-mute").setAttribute("aria-pressed", String(!phone.mic.enabled));
  });
  $("btn-hangup").addEventListener("click", async () => {
    const r = await api("POST", "hangup");
    endPhone();
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
