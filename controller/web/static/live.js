// Live broadcast page (phát trực tiếp): captures the microphone and streams it to the controller.
// The session is created through the live API (with the CSRF token, as htmx sends it); the WebSocket
// carries the session cookie and proves itself with the CSRF token as its first message; the audio is
// 20 ms frames of 16-bit PCM at 48 kHz from an AudioWorklet (docs/live.md). Every sentence comes from
// the page (#live-texts); the relay form and the session list are htmx.
"use strict";

(() => {
  const TEXT = JSON.parse((document.getElementById("live-texts") || {}).textContent || "{}");
  const $ = (sel) => document.querySelector(sel);
  let live = null; // { ws, ctx, stream, timer, started, sessionId }

  function state(message) { $("#live-state").textContent = message; }

  function refreshSessions() {
    document.body.dispatchEvent(new CustomEvent("live-changed", { bubbles: true }));
  }

  function errorText(body) {
    const detail = body && body.detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
    return typeof detail === "string" ? detail : "";
  }

  async function api(method, path, body) {
    return fetch(path, {
      method,
      headers: { "X-CSRF-Token": window.lpCsrfToken(), ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  }

  async function checkHub() {
    // Icecast may have gone since the page was drawn: ask again right before going live.
    const banner = $("#hub-status");
    try {
      const resp = await api("GET", "/api/v1/live/status");
      if (!resp.ok) return true; // the API refuses below, with its reason
      const body = await resp.json();
      banner.textContent = body.available ? "" : `${TEXT.hub_down} ${body.error}`;
      banner.hidden = body.available;
      return body.available;
    } catch (err) {
      banner.textContent = TEXT.network;
      banner.hidden = false;
      return false;
    }
  }

  const chosen = (name) => [...document.querySelectorAll(`#live-form input[name=${name}]:checked`)].map((el) => el.value);

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
    refreshSessions();
  }

  async function goLive() {
    const zones = chosen("zone");
    const agents = chosen("agent");
    if (!zones.length && !agents.length) { state(TEXT.no_targets); return; }
    $("#go-live").disabled = true;
    state(TEXT.connecting);
    if (!await checkHub()) { state($("#hub-status").textContent); $("#go-live").disabled = false; return; }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    } catch (err) {
      state(`${TEXT.mic_error} ${err.message}`);
      $("#go-live").disabled = false;
      return;
    }
    let resp;
    let body;
    try {
      resp = await api("POST", "/api/v1/live/sessions",
        { zones, agents, priority: $("#priority").value, title: $("#live-title").value, source: "microphone" });
      body = await resp.json();
    } catch (err) {
      stream.getTracks().forEach((track) => track.stop());
      state(TEXT.network);
      $("#go-live").disabled = false;
      return;
    }
    if (!resp.ok) {
      stream.getTracks().forEach((track) => track.stop());
      state(`${resp.status === 409 ? TEXT.busy : TEXT.refused} ${errorText(body)}`);
      $("#go-live").disabled = false;
      return;
    }
    const ctx = new AudioContext({ sampleRate: 48000 });
    await ctx.audioWorklet.addModule("/static/live-worklet.js");
    const framer = new AudioWorkletNode(ctx, "pcm-framer", { channelCount: 1, channelCountMode: "explicit" });
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${body.ws_path}`);
    ws.binaryType = "arraybuffer";
    live = { ws, ctx, stream, started: Date.now(), sessionId: body.id, timer: setInterval(showElapsed, 250) };
    $("#end-live").disabled = false;
    ws.onopen = () => {
      ws.send(JSON.stringify({ csrf: window.lpCsrfToken() }));
      ctx.createMediaStreamSource(stream).connect(framer);
      framer.port.onmessage = (ev) => {
        $("#level").value = ev.data.peak;
        if (ws.readyState === WebSocket.OPEN) ws.send(ev.data.pcm);
      };
    };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.status === "live") {
        state(`${TEXT.on_air} ${msg.targets.join(", ")}`);
        refreshSessions();
      } else if (msg.status === "ended") {
        state(`${TEXT.ended} ${msg.reason}`);
      }
    };
    ws.onclose = (ev) => {
      if (ev.reason && !$("#live-state").textContent.startsWith(TEXT.ended)) state(`${TEXT.ended} ${ev.reason}`);
      stopCapture();
    };
  }

  function endLive() {
    if (live && live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify({ end: true }));
    else stopCapture();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#go-live").addEventListener("click", goLive);
    $("#end-live").addEventListener("click", endLive);
    // Enter in the title box must not submit the form (there is no plain submit: every change is htmx/JS).
    $("#live-form").addEventListener("submit", (ev) => ev.preventDefault());
  });
})();
