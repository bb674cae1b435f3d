// loaphuong console, live broadcast (phát trực tiếp): the microphone to chosen zones and speakers, a relay
// on demand, and the record of every live session with its recording.
"use strict";

const STRINGS = {
  vi: {
    tagline: "Phát trực tiếp", back: "← Loa", lang: "English", login_needed: "Cần đăng nhập trước.",
    login: "Đăng nhập", live_title: "Phát trực tiếp từ micro", targets: "Phát tới", priority: "Mức ưu tiên",
    p_priority: "Ưu tiên", p_emergency: "Khẩn cấp", p_normal: "Thường", title: "Tiêu đề",
    go_live: "Phát trực tiếp", end_live: "Kết thúc", level: "Mức âm:", elapsed: "Thời gian:",
    relay_title: "Tiếp sóng ngay", relay_url: "Địa chỉ luồng (http/https)", relay_now: "Tiếp sóng ngay",
    record_title: "Nhật ký phát trực tiếp", col_started: "Bắt đầu", col_who: "Người phát", col_source: "Nguồn",
    col_status: "Trạng thái", col_notes: "Ghi chú", col_recording: "Bản ghi", listen: "Nghe", end: "Kết thúc",
    src_microphone: "micro", src_relay: "tiếp sóng", st_starting: "đang chuẩn bị", st_live: "đang phát",
    st_ended: "đã kết thúc", st_failed: "lỗi", no_targets: "Hãy chọn ít nhất một khu vực hoặc một loa.",
    hub_down: "Không phát trực tiếp được lúc này:", connecting: "Đang kết nối…",
    on_air: "Đang phát trực tiếp tới:", ended: "Đã kết thúc:", mic_error: "Không dùng được micro:",
    took_over: "giành loa từ", taken_over: "bị giành loa bởi", nothing: "—", relay_started: "Đã bắt đầu tiếp sóng.",
    busy: "Loa đang được dùng:",
  },
  en: {
    tagline: "Live broadcast", back: "← Speakers", lang: "Tiếng Việt", login_needed: "Please log in first.",
    login: "Log in", live_title: "Live from the microphone", targets: "Send to", priority: "Priority",
    p_priority: "Priority", p_emergency: "Emergency", p_normal: "Normal", title: "Title",
    go_live: "Go live", end_live: "End", level: "Level:", elapsed: "Elapsed:",
    relay_title: "Relay now", relay_url: "Stream address (http/https)", relay_now: "Relay now",
    record_title: "Live sessions", col_started: "Started", col_who: "Speaker", col_source: "Source",
    col_status: "Status", col_notes: "Notes", col_recording: "Recording", listen: "Listen", end: "End",
    src_microphone: "microphone", src_relay: "relay", st_starting: "starting", st_live: "on air",
    st_ended: "ended", st_failed: "failed", no_targets: "Choose at least one zone or speaker.",
    hub_down: "Cannot go live now:", connecting: "Connecting…",
    on_air: "On air to:", ended: "Ended:", mic_error: "Microphone unavailable:",
    took_over: "took over from", taken_over: "taken over by", nothing: "—", relay_started: "Relay started.",
    busy: "Speaker in use:",
  },
};

let lang = localStorage.getItem("lp.lang") || "vi";
const token = sessionStorage.getItem("lp.token");
const $ = (sel) => document.querySelector(sel);
const t = (key) => (STRINGS[lang][key] ?? key);
let live = null; // { ws, ctx, stream, timer, started, sessionId }

function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("#lang").textContent = t("lang");
}

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (resp.status === 401) { $("#login-needed").hidden = false; $("#app-view").hidden = true; }
  return resp;
}

function errorText(body) {
  const detail = body && body.detail;
  return Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : String(detail);
}

function checkbox(container, name, value, label) {
  const el = document.createElement("label");
  const input = document.createElement("input");
  input.type = "checkbox";
  input.name = name;
  input.value = value;
  el.append(input, " ", label);
  container.append(el, " ");
}

async function loadTargets() {
  const [zones, devices] = await Promise.all([api("GET", "/api/v1/zones"), api("GET", "/api/v1/devices")]);
  if (zones.ok) {
    $("#target-zones").replaceChildren();
    for (const z of await zones.json()) checkbox($("#target-zones"), "zone", z.id, z.name || z.id);
  }
  if (devices.ok) {
    $("#target-agents").replaceChildren();
    for (const d of await devices.json()) checkbox($("#target-agents"), "agent", d.id, d.name || d.id);
  }
}

async function checkHub() {
  const resp = await api("GET", "/api/v1/live/status");
  if (!resp.ok) return false;
  const body = await resp.json();
  $("#hub-status").textContent = body.available ? "" : `${t("hub_down")} ${body.error}`;
  return body.available;
}

function chosen(name) {
  return [...document.querySelectorAll(`input[name=${name}]:checked`)].map((el) => el.value);
}

function showElapsed() {
  if (!live) return;
  const s = Math.floor((Date.now() - live.started) / 1000);
  $("#elapsed").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function stopCapture() {
  if (!live) return;
  clearInterval(live.timer);
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  if (live.ctx) live.ctx.close();
  live = null;
  $("#level").value = 0;
  $("#go-live").disabled = false;
  $("#end-live").disabled = true;
  loadSessions();
}

async function goLive() {
  const zones = chosen("zone");
  const agents = chosen("agent");
  if (!zones.length && !agents.length) { $("#live-state").textContent = t("no_targets"); return; }
  $("#go-live").disabled = true;
  $("#live-state").textContent = t("connecting");
  if (!await checkHub()) { $("#live-state").textContent = $("#hub-status").textContent; $("#go-live").disabled = false; return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (err) {
    $("#live-state").textContent = `${t("mic_error")} ${err.message}`;
    $("#go-live").disabled = false;
    return;
  }
  const resp = await api("POST", "/api/v1/live/sessions",
    { zones, agents, priority: $("#priority").value, title: $("#live-title").value, source: "microphone" });
  const body = await resp.json();
  if (!resp.ok) {
    stream.getTracks().forEach((track) => track.stop());
    $("#live-state").textContent = resp.status === 409 ? `${t("busy")} ${errorText(body)}` : errorText(body);
    $("#go-live").disabled = false;
    return;
  }
  const ctx = new AudioContext({ sampleRate: 48000 });
  await ctx.audioWorklet.addModule("/console/live-worklet.js");
  const framer = new AudioWorkletNode(ctx, "pcm-framer", { channelCount: 1, channelCountMode: "explicit" });
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${body.ws_path}`);
  ws.binaryType = "arraybuffer";
  live = { ws, ctx, stream, started: Date.now(), sessionId: body.id, timer: setInterval(showElapsed, 250) };
  $("#end-live").disabled = false;
  ws.onopen = () => {
    ws.send(JSON.stringify({ token }));
    ctx.createMediaStreamSource(stream).connect(framer);
    framer.port.onmessage = (ev) => {
      $("#level").value = ev.data.peak;
      if (ws.readyState === WebSocket.OPEN) ws.send(ev.data.pcm);
    };
  };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.status === "live") {
      $("#live-state").textContent = `${t("on_air")} ${msg.targets.join(", ")}`;
      loadSessions();
    } else if (msg.status === "ended") {
      $("#live-state").textContent = `${t("ended")} ${msg.reason}`;
    }
  };
  ws.onclose = (ev) => {
    if (ev.reason && !$("#live-state").textContent.startsWith(t("ended"))) {
      $("#live-state").textContent = `${t("ended")} ${ev.reason}`;
    }
    stopCapture();
  };
}

function endLive() {
  if (live && live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify({ end: true }));
  else stopCapture();
}

async function startRelay(ev) {
  ev.preventDefault();
  const zones = chosen("zone");
  const agents = chosen("agent");
  if (!zones.length && !agents.length) { $("#relay-state").textContent = t("no_targets"); return; }
  const resp = await api("POST", "/api/v1/live/sessions", { zones, agents, priority: $("#priority").value,
    title: $("#live-title").value, source: "relay", relay_url: $("#relay-url").value });
  const body = await resp.json();
  $("#relay-state").textContent = resp.ok ? t("relay_started") : errorText(body);
  loadSessions();
}

async function listen(id) {
  const resp = await api("GET", `/api/v1/live/sessions/${id}/recording`);
  if (!resp.ok) { $("#live-state").textContent = errorText(await resp.json()); return; }
  const player = $("#player");
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(await resp.blob());
  player.hidden = false;
  player.play();
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text ?? t("nothing");
  row.append(td);
  return td;
}

async function loadSessions() {
  const resp = await api("GET", "/api/v1/live/sessions?limit=50");
  if (!resp.ok) return;
  const rows = [];
  for (const s of await resp.json()) {
    const tr = document.createElement("tr");
    tr.dataset.session = s.id;
    cell(tr, new Date(s.started_at).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB"));
    cell(tr, s.username);
    cell(tr, t(`src_${s.source}`));
    cell(tr, s.targets.join(", "));
    cell(tr, t(`p_${s.priority}`));
    cell(tr, t(`st_${s.status}`) + (s.end_reason ? ` (${s.end_reason})` : ""));
    cell(tr, s.notes.map((n) => `${t(n.kind)} ${n.username} (${n.agents.join(", ")})`).join("; ") || null);
    const actions = cell(tr, "");
    if (s.recording_available) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = t("listen");
      b.addEventListener("click", () => listen(s.id));
      actions.append(b);
    } else if (s.status === "live" || s.status === "starting") {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = t("end");
      b.addEventListener("click", async () => { await api("POST", `/api/v1/live/sessions/${s.id}/end`); loadSessions(); });
      actions.append(b);
    }
    rows.push(tr);
  }
  $("#sessions").replaceChildren(...rows);
}

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage();
  $("#lang").addEventListener("click", () => {
    lang = lang === "vi" ? "en" : "vi";
    localStorage.setItem("lp.lang", lang);
    applyLanguage();
    loadSessions();
  });
  if (!token) { $("#login-needed").hidden = false; return; }
  $("#app-view").hidden = false;
  $("#go-live").addEventListener("click", goLive);
  $("#end-live").addEventListener("click", endLive);
  $("#relay-form").addEventListener("submit", startRelay);
  loadTargets();
  checkHub();
  loadSessions();
});
