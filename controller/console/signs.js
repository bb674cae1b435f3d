// loaphuong console, LED signs: compose, preview exactly as each board shows it, schedule, watch.
"use strict";

const STRINGS = {
  vi: {
    tagline: "Bảng LED thông tin", back: "← Loa", lang: "English", login_needed: "Cần đăng nhập trước.",
    login: "Đăng nhập", compose_title: "Soạn nội dung bảng", title: "Tiêu đề",
    lines: "Nội dung (mỗi dòng một dòng trên bảng)", mode: "Hiệu ứng", m_static: "Đứng yên",
    m_scroll_left: "Chạy chữ sang trái", m_scroll_up: "Cuộn lên", m_flash: "Nhấp nháy", colour: "Màu",
    c_amber: "Vàng cam", c_red: "Đỏ", c_green: "Xanh lá", c_yellow: "Vàng", c_white: "Trắng", c_blue: "Xanh dương",
    align: "Căn lề", a_center: "Giữa", a_left: "Trái", a_right: "Phải", dwell: "Thời gian mỗi trang (giây)",
    save_preview: "Lưu và xem trước", saved: "Đã lưu. Ảnh dưới đây đúng như từng bảng sẽ hiện:",
    no_signs: "Chưa có bảng nào được gắn vào thiết bị.", schedule_title: "Đưa lên bảng",
    targets: "Hiện trên", all_signs: "Tất cả các bảng", priority: "Mức ưu tiên", p_normal: "Thường",
    p_priority: "Ưu tiên", p_emergency: "Khẩn cấp", start: "Bắt đầu (để trống = ngay)",
    duration: "Hiện trong (phút)", repeat: "Lặp lại", r_none: "Không lặp", r_daily: "Hằng ngày",
    r_weekly: "Hằng tuần", put_on_signs: "Đưa lên bảng", scheduled_ok: "Đã lên lịch.",
    save_first: "Hãy lưu nội dung trước.", now_title: "Các bảng đang hiện gì", col_sign: "Bảng",
    col_size: "Kích thước", col_status: "Thiết bị", col_showing: "Đang hiện", col_planned: "Theo lịch",
    col_fault: "Lỗi", items_title: "Lịch bảng", cancel: "Huỷ", zone: "Khu vực",
    online: "trực tuyến", offline: "mất kết nối", stopped: "đã dừng", unknown: "chưa kết nối",
    s_playlist: "lịch", s_announcement: "thông báo đang phát", s_idle: "tắt", nothing: "—",
    image: "Thêm ảnh (PNG/JPEG, ≤ 1 MB)", need_something: "Hãy nhập chữ hoặc chọn ảnh.",
    approve: "Duyệt", st_active: "đang áp dụng", st_pending: "chờ duyệt", col_state: "Trạng thái",
  },
  en: {
    tagline: "LED information signs", back: "← Speakers", lang: "Tiếng Việt", login_needed: "Please log in first.",
    login: "Log in", compose_title: "Compose sign content", title: "Title",
    lines: "Text (each line is a line on the board)", mode: "Effect", m_static: "Static",
    m_scroll_left: "Scroll left", m_scroll_up: "Scroll up", m_flash: "Flash", colour: "Colour",
    c_amber: "Amber", c_red: "Red", c_green: "Green", c_yellow: "Yellow", c_white: "White", c_blue: "Blue",
    align: "Alignment", a_center: "Centre", a_left: "Left", a_right: "Right", dwell: "Seconds per page",
    save_preview: "Save and preview", saved: "Saved. Below is exactly what each board will show:",
    no_signs: "No sign is attached to an agent yet.", schedule_title: "Put on signs",
    targets: "Show on", all_signs: "All signs", priority: "Priority", p_normal: "Normal",
    p_priority: "Priority", p_emergency: "Emergency", start: "Start (empty = now)",
    duration: "Show for (minutes)", repeat: "Repeat", r_none: "Once", r_daily: "Daily",
    r_weekly: "Weekly", put_on_signs: "Put on signs", scheduled_ok: "Scheduled.",
    save_first: "Save the content first.", now_title: "What each sign shows now", col_sign: "Sign",
    col_size: "Size", col_status: "Agent", col_showing: "Showing", col_planned: "Planned",
    col_fault: "Fault", items_title: "Sign schedule", cancel: "Cancel", zone: "Zone",
    online: "online", offline: "offline", stopped: "stopped", unknown: "never connected",
    s_playlist: "schedule", s_announcement: "announcement playing", s_idle: "dark", nothing: "—",
    image: "Add a picture (PNG/JPEG, ≤ 1 MB)", need_something: "Type some text or choose a picture.",
    approve: "Approve", st_active: "active", st_pending: "awaiting approval", col_state: "State",
  },
};

let lang = localStorage.getItem("lp.lang") || "vi";
const token = sessionStorage.getItem("lp.token");
let contentId = null;
let signs = [];
const previewUrls = [];
const $ = (sel) => document.querySelector(sel);
const t = (key) => (STRINGS[lang][key] ?? key);

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

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? t("nothing");
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function checkbox(value, label, container) {
  const wrap = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.value = value;
  box.disabled = $("#target-all").checked;
  wrap.append(box, " " + label);
  container.appendChild(wrap);
}

async function loadSigns() {
  const resp = await api("GET", "/api/v1/signs");
  if (!resp.ok) return;
  signs = await resp.json();
  const zonesResp = await api("GET", "/api/v1/zones");
  const zones = zonesResp.ok ? await zonesResp.json() : [];
  $("#target-zones").replaceChildren();
  $("#target-signs").replaceChildren();
  for (const z of zones) checkbox(`zone:${z.id}`, `${t("zone")} ${z.id}`, $("#target-zones"));
  for (const s of signs) checkbox(`sign:${s.id}`, `${s.id} (${s.width}×${s.height})`, $("#target-signs"));
}

async function previewFigure(sign, page, pageCount) {
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = `${sign.id} — ${sign.width}×${sign.height}${pageCount > 1 ? ` — ${page + 1}/${pageCount}` : ""}`;
  fig.appendChild(cap);
  const resp = await api("GET",
    `/api/v1/signs/${encodeURIComponent(sign.id)}/preview.png?content_id=${contentId}&page=${page}`);
  if (resp.ok) {
    const url = URL.createObjectURL(await resp.blob());
    previewUrls.push(url);
    const img = document.createElement("img");
    img.src = url;
    img.alt = sign.id;
    // Show every LED dot: scale up without smoothing, several screen pixels per dot on small boards.
    const scale = Math.max(1, Math.min(8, Math.floor(480 / sign.width)));
    img.width = sign.width * scale;
    img.style.imageRendering = "pixelated";
    img.style.background = "#000";
    fig.appendChild(img);
  } else {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = errorText(await resp.json());
    fig.appendChild(p);
  }
  return fig;
}

async function showPreviews(pageCount) {
  const box = $("#previews");
  box.replaceChildren();
  previewUrls.splice(0).forEach((u) => URL.revokeObjectURL(u));
  if (!signs.length) { box.textContent = t("no_signs"); return; }
  for (const sign of signs) {
    for (let page = 0; page < pageCount; page++) box.appendChild(await previewFigure(sign, page, pageCount));
  }
}

async function refresh() {
  if (!token) return;
  const [n, i] = await Promise.all([api("GET", "/api/v1/signs/now"), api("GET", "/api/v1/sign-items")]);
  if (n.ok) renderNow(await n.json());
  if (i.ok) renderItems(await i.json());
}

function renderNow(list) {
  const body = $("#now");
  body.replaceChildren();
  for (const n of list) {
    const row = document.createElement("tr");
    cell(row, n.sign.id);
    cell(row, `${n.sign.width}×${n.sign.height}`);
    cell(row, t(n.agent_status), n.agent_status === "online" ? "online" : "offline");
    const r = n.reported;
    cell(row, r ? `${t("s_" + r.source)}${r.text ? ": " + r.text : ""}` : t("nothing"));
    cell(row, r && r.priority ? t("p_" + r.priority) : t("nothing"));
    cell(row, n.planned ? n.planned.title || n.planned.item_id : t("nothing"));
    const fault = (r && r.fault) || (n.last_fault && `${n.last_fault.code}: ${n.last_fault.message}`);
    cell(row, fault || t("nothing"), fault ? "offline" : "");
    body.appendChild(row);
  }
}

function renderItems(list) {
  const body = $("#items");
  body.replaceChildren();
  for (const item of list) {
    const row = document.createElement("tr");
    cell(row, item.title || item.content_id);
    cell(row, t("p_" + item.priority));
    cell(row, item.start.replace("T", " "));
    cell(row, item.rrule || t("r_none"));
    const tg = item.targets;
    cell(row, tg.all ? t("all_signs") : [...tg.zones.map((z) => `${t("zone")} ${z}`), ...tg.agents, ...tg.signs].join(", "));
    cell(row, t("st_" + item.status));
    const td = cell(row, "");
    if (item.status === "pending") {
      const ok = document.createElement("button");
      ok.className = "small";
      ok.textContent = t("approve");
      ok.addEventListener("click", async () => {
        const resp = await api("POST", `/api/v1/sign-items/${item.id}/approve`, {});
        if (!resp.ok) alert(errorText(await resp.json()));
        refresh();
      });
      td.appendChild(ok);
    }
    const btn = document.createElement("button");
    btn.className = "small";
    btn.textContent = t("cancel");
    btn.addEventListener("click", async () => { await api("DELETE", `/api/v1/sign-items/${item.id}`); refresh(); });
    td.appendChild(btn);
    body.appendChild(row);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  applyLanguage();
  $("#lang").addEventListener("click", () => {
    lang = lang === "vi" ? "en" : "vi";
    localStorage.setItem("lp.lang", lang);
    applyLanguage();
    refresh();
  });
  if (!token) { $("#login-needed").hidden = false; return; }
  $("#app-view").hidden = false;
  $("#target-all").addEventListener("change", () => {
    document.querySelectorAll("#target-zones input, #target-signs input").forEach((b) => {
      b.disabled = $("#target-all").checked;
    });
  });
  $("#compose").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    const out = $("#compose-result");
    const dwell = Math.round(Number(form.get("dwell")) * 1000);
    const lines = String(form.get("lines")).split("\n").filter((l) => l.trim());
    const pages = [];
    if (lines.length) {
      pages.push({ kind: "text", lines, mode: form.get("mode"), colour: form.get("colour"),
                   align: form.get("align"), dwell_ms: dwell });
    }
    const file = form.get("image");
    if (file && file.size) {
      // Uploaded as the raw body; the controller decodes it to check it is really a PNG or JPEG.
      const up = await fetch("/api/v1/sign-images", { method: "POST", headers: { Authorization: `Bearer ${token}` },
                                                       body: file });
      const image = await up.json();
      if (!up.ok) { out.className = "error"; out.textContent = errorText(image); return; }
      pages.push({ kind: "image", sha256: image.sha256, size: image.size, mime: image.mime, dwell_ms: dwell });
    }
    if (!pages.length) { out.className = "error"; out.textContent = t("need_something"); return; }
    const body = { title: form.get("title"), pages };
    const resp = contentId ? await api("PUT", `/api/v1/sign-contents/${contentId}`, body)
      : await api("POST", "/api/v1/sign-contents", body);
    const result = await resp.json();
    if (!resp.ok) { out.className = "error"; out.textContent = errorText(result); return; }
    contentId = result.id;
    out.className = result.warnings.length ? "error" : "";
    out.textContent = [...result.warnings, t("saved")].join(" ");
    await showPreviews(result.pages.length);
  });
  // Edited after saving: it must be saved again (as new content, so items already using the old stay as they are).
  $("#compose").addEventListener("input", () => { contentId = null; });
  $("#schedule").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = $("#schedule-result");
    if (!contentId) { out.className = "error"; out.textContent = t("save_first"); return; }
    const form = new FormData(ev.target);
    const picked = [...document.querySelectorAll("#target-zones input:checked, #target-signs input:checked")]
      .map((b) => b.value);
    const targets = $("#target-all").checked ? { all: true } : {
      zones: picked.filter((v) => v.startsWith("zone:")).map((v) => v.slice(5)),
      signs: picked.filter((v) => v.startsWith("sign:")).map((v) => v.slice(5)),
    };
    const start = form.get("start") ? new Date(form.get("start")) : new Date();
    const body = {
      content_id: contentId, title: $("#compose").elements.title.value, priority: form.get("priority"), targets,
      start: start.toISOString(), duration_ms: Math.round(Number(form.get("duration")) * 60000),
      ...(form.get("repeat") ? { rrule: form.get("repeat") } : {}),
    };
    const resp = await api("POST", "/api/v1/sign-items", body);
    const result = await resp.json();
    if (!resp.ok) { out.className = "error"; out.textContent = errorText(result); return; }
    out.className = "";
    out.textContent = t("scheduled_ok");
    refresh();
  });
  await loadSigns();
  refresh();
  setInterval(refresh, 3000);
});
