// loaphuong console: a small page over the JSON API. Vietnamese first, English on request.
"use strict";

const STRINGS = {
  vi: {
    tagline: "Hệ thống truyền thanh thông minh của phường", logout: "Đăng xuất", lang: "English",
    login_title: "Đăng nhập", username: "Tên đăng nhập", password: "Mật khẩu", login: "Đăng nhập",
    login_failed: "Sai tên đăng nhập hoặc mật khẩu.", login_locked: "Đăng nhập sai quá nhiều lần, vui lòng thử lại sau.",
    compose_title: "Soạn thông báo", text: "Nội dung", targets: "Phát tới", all_speakers: "Tất cả các loa",
    priority: "Mức ưu tiên", p_normal: "Thường", p_priority: "Ưu tiên", p_emergency: "Khẩn cấp",
    start_at: "Thời gian phát (để trống = phát ngay)", send: "Gửi thông báo",
    preview: "Nghe thử", spoken_as: "Loa sẽ đọc:",
    sent_ok: "Đã nhận thông báo, đang chuyển giọng nói…", devices_title: "Thiết bị",
    announcements_title: "Thông báo gần đây", plays_title: "Nhật ký phát (bằng chứng phát)",
    col_device: "Loa", col_zones: "Khu vực", col_status: "Trạng thái", col_playing: "Đang phát",
    col_seen: "Lần cuối", col_version: "Phiên bản", col_time: "Thời gian", col_deliveries: "Tình trạng gửi",
    col_scheduled: "Giờ phát dự kiến", col_offset: "Lệch (ms)", col_ended: "Kết thúc", col_outcome: "Kết quả",
    online: "trực tuyến", offline: "mất kết nối", stopped: "đã dừng", unknown: "chưa kết nối",
    listen: "Nghe", nothing: "—",
    s_rendering: "đang tạo giọng nói", s_sent: "đã gửi", s_failed: "lỗi",
    o_completed: "đã phát xong", o_preempted: "bị ngắt bởi tin ưu tiên", o_stopped: "đã dừng",
    o_expired: "quá hạn", o_failed: "lỗi",
    d_queued: "chờ gửi", d_sent: "đã gửi", d_accepted: "loa đã nhận", d_playing: "đang phát", d_played: "đã phát",
    d_preempted: "bị ngắt", d_stopped: "đã dừng", d_expired: "quá hạn", d_failed: "lỗi", d_rejected: "bị từ chối",
  },
  en: {
    tagline: "Smart public address for the ward", logout: "Log out", lang: "Tiếng Việt",
    login_title: "Log in", username: "Username", password: "Password", login: "Log in",
    login_failed: "Wrong username or password.", login_locked: "Too many failed logins; try again later.",
    compose_title: "Compose an announcement", text: "Text", targets: "Play on", all_speakers: "All speakers",
    priority: "Priority", p_normal: "Normal", p_priority: "Priority", p_emergency: "Emergency",
    start_at: "Start time (empty = now)", send: "Send announcement",
    preview: "Listen first", spoken_as: "The speakers will read:",
    sent_ok: "Accepted; rendering speech…", devices_title: "Devices",
    announcements_title: "Recent announcements", plays_title: "Proof of play",
    col_device: "Speaker", col_zones: "Zones", col_status: "Status", col_playing: "Playing",
    col_seen: "Last seen", col_version: "Version", col_time: "Time", col_deliveries: "Deliveries",
    col_scheduled: "Scheduled", col_offset: "Offset (ms)", col_ended: "Ended", col_outcome: "Outcome",
    online: "online", offline: "offline", stopped: "stopped", unknown: "never connected",
    listen: "Listen", nothing: "—",
    s_rendering: "rendering speech", s_sent: "sent", s_failed: "failed",
    o_completed: "completed", o_preempted: "pre-empted", o_stopped: "stopped", o_expired: "expired",
    o_failed: "failed",
    d_queued: "queued", d_sent: "sent", d_accepted: "accepted", d_playing: "playing", d_played: "played",
    d_preempted: "pre-empted", d_stopped: "stopped", d_expired: "expired", d_failed: "failed", d_rejected: "rejected",
  },
};

let lang = localStorage.getItem("lp.lang") || "vi";
let token = sessionStorage.getItem("lp.token");
let devices = [];
const $ = (sel) => document.querySelector(sel);
const t = (key) => (STRINGS[lang][key] ?? key);

function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("#lang").textContent = t("lang");
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB") : t("nothing");
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? t("nothing");
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (resp.status === 401) { showLogin(); throw new Error("unauthorized"); }
  return resp;
}

function showLogin() {
  token = null;
  sessionStorage.removeItem("lp.token");
  $("#login-view").hidden = false;
  $("#app-view").hidden = true;
  $("#logout").hidden = true;
}

function showApp() {
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#logout").hidden = false;
  refresh();
}

async function refresh() {
  if (!token) return;
  try {
    const [d, a, p] = await Promise.all([api("GET", "/api/v1/devices"), api("GET", "/api/v1/announcements?limit=15"),
                                         api("GET", "/api/v1/plays?limit=20")]);
    devices = await d.json();
    renderDevices();
    renderAnnouncements(await a.json());
    renderPlays(await p.json());
  } catch (err) { /* shown by the login screen or retried on the next tick */ }
}

function renderDevices() {
  const body = $("#devices");
  body.replaceChildren();
  const list = $("#target-list");
  const checked = new Set([...list.querySelectorAll("input:checked")].map((i) => i.value));
  list.replaceChildren();
  for (const dev of devices) {
    const row = document.createElement("tr");
    cell(row, `${dev.id}${dev.name && dev.name !== dev.id ? " — " + dev.name : ""}`);
    cell(row, dev.zones.join(", "));
    cell(row, t(dev.status), dev.online ? "online" : "offline");
    const playing = dev.state && dev.state.now_playing;
    cell(row, playing ? `${t("p_" + playing.priority)} · ${when(new Date(playing.started_at).toISOString())}` : t("nothing"));
    cell(row, when(dev.last_seen_at));
    cell(row, dev.version);
    body.appendChild(row);
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = dev.id;
    box.checked = checked.has(dev.id);
    box.disabled = $("#target-all").checked;
    label.append(box, " " + dev.id);
    list.appendChild(label);
  }
}

function renderAnnouncements(items) {
  const body = $("#announcements");
  body.replaceChildren();
  for (const ann of items) {
    const row = document.createElement("tr");
    cell(row, when(ann.start_at || ann.created_at));
    cell(row, ann.text.length > 120 ? ann.text.slice(0, 120) + "…" : ann.text);
    cell(row, t("p_" + ann.priority));
    cell(row, t("s_" + ann.status));
    cell(row, Object.entries(ann.deliveries).map(([k, v]) => `${t("d_" + k)}: ${v}`).join(", ") || t("nothing"));
    const td = cell(row, "");
    if (ann.media_sha256) {
      const btn = document.createElement("button");
      btn.className = "small";
      btn.textContent = t("listen");
      btn.addEventListener("click", () => listen(ann.media_sha256));
      td.appendChild(btn);
    }
    body.appendChild(row);
  }
}

function renderPlays(items) {
  const body = $("#plays");
  body.replaceChildren();
  for (const play of items) {
    const row = document.createElement("tr");
    cell(row, play.agent_id);
    cell(row, when(play.scheduled_start));
    cell(row, play.start_offset_ms === null ? t("nothing") : String(play.start_offset_ms));
    cell(row, when(play.ended_at));
    cell(row, play.outcome ? t("o_" + play.outcome) : t("nothing"), play.outcome === "failed" ? "offline" : "");
    body.appendChild(row);
  }
}

async function listen(sha) {
  const resp = await api("GET", `/media/${sha}`);
  if (!resp.ok) return;
  const url = URL.createObjectURL(await resp.blob());
  const audio = new Audio(url);
  audio.addEventListener("ended", () => URL.revokeObjectURL(url));
  audio.play();
}

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage();
  $("#lang").addEventListener("click", () => {
    lang = lang === "vi" ? "en" : "vi";
    localStorage.setItem("lp.lang", lang);
    applyLanguage();
    refresh();
  });
  $("#logout").addEventListener("click", async () => {
    try { await api("POST", "/api/v1/auth/logout"); } catch (err) { /* already logged out */ }
    showLogin();
  });
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    const resp = await fetch("/api/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
    });
    if (!resp.ok) {
      $("#login-error").textContent = t(resp.status === 429 ? "login_locked" : "login_failed");
      return;
    }
    token = (await resp.json()).token;
    sessionStorage.setItem("lp.token", token);
    $("#login-error").textContent = "";
    showApp();
  });
  $("#text").addEventListener("input", (ev) => { $("#count").textContent = ev.target.value.length; });
  $("#preview").addEventListener("click", async () => {
    const out = $("#compose-result");
    const resp = await api("POST", "/api/v1/speech/preview", { text: $("#text").value });
    const body = await resp.json();
    if (!resp.ok) {
      out.className = "error";
      out.textContent = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : String(body.detail);
      return;
    }
    out.textContent = "";
    $("#spoken-text").textContent = body.spoken_text;
    $("#spoken").hidden = false;
    listen(body.media.sha256);
  });
  $("#target-all").addEventListener("change", renderDevices);
  $("#compose").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    const targets = $("#target-all").checked ? ["all"]
      : [...document.querySelectorAll("#target-list input:checked")].map((i) => i.value);
    const body = { text: form.get("text"), targets, priority: form.get("priority") };
    if (form.get("start_at")) body.start_at = new Date(form.get("start_at")).toISOString();
    const resp = await api("POST", "/api/v1/announcements", body);
    const out = $("#compose-result");
    if (resp.status === 202) {
      out.className = "";
      out.textContent = t("sent_ok");
      ev.target.reset();
      $("#count").textContent = "0";
      refresh();
    } else {
      const detail = (await resp.json()).detail;
      out.className = "error";
      out.textContent = Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : String(detail);
    }
  });
  if (token) showApp(); else showLogin();
  setInterval(refresh, 3000);
});
