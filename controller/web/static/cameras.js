// Cameras page: says why a live picture is missing, and moves PTZ cameras while a button is held.
// Every sentence comes from the page (#camera-texts); the API calls carry the session's CSRF token.
"use strict";

(() => {
  const textBlock = document.getElementById("camera-texts");
  const TEXT = textBlock ? JSON.parse(textBlock.textContent || "{}") : {};
  // A tile with no frame after this long says it is still waiting (the camera may be dead).
  const WAIT_MS = 12000;

  function showFlash(kind, message) {
    const area = document.getElementById("messages");
    if (!area) return;
    const p = document.createElement("p");
    p.className = `flash ${kind}`;
    p.textContent = message;
    area.replaceChildren(p);
  }

  // ------------------------------------------------------------------------------------ live tiles

  function tileMessage(img, message, retry) {
    const box = img.parentElement.querySelector(".tile-message");
    if (!box) return;
    box.querySelector("p").textContent = message;
    box.querySelector(".retry").hidden = !retry;
    box.hidden = !message;
  }

  async function explainFailure(img) {
    // The <img> cannot say what the server answered: the camera's status tells a dead camera apart
    // from a refused view (the gateway's limit on open live views).
    img.dataset.failed = "1";
    let message = TEXT.refused;
    try {
      const resp = await fetch(img.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (resp.ok && (await resp.json()).online === false) message = TEXT.dead;
    } catch (err) {
      message = TEXT.network;
    }
    tileMessage(img, message, true);
  }

  // A finished <img> with no picture has failed (a refusal comes back before this script runs, so its
  // error event may have fired already).
  const broken = (img) => img.complete && img.naturalWidth === 0;

  function watch(img) {
    let started = Date.now();
    img.addEventListener("error", () => { if (!img.dataset.failed) explainFailure(img); });
    if (broken(img)) explainFailure(img);
    const timer = setInterval(() => {
      if (!img.isConnected) { clearInterval(timer); return; }
      if (img.dataset.failed) return;
      if (broken(img)) { explainFailure(img); return; }
      if (img.naturalWidth > 0) tileMessage(img, "", false);
      else if (Date.now() - started > WAIT_MS) tileMessage(img, `${TEXT.waiting} ${TEXT.dead}`, true);
    }, 1000);
    const retry = img.parentElement.querySelector(".retry");
    if (retry) {
      retry.addEventListener("click", () => {
        delete img.dataset.failed;
        started = Date.now();
        tileMessage(img, TEXT.waiting, false);
        const base = img.src.split("?")[0];
        img.src = `${base}?retry=${Date.now()}`;
      });
    }
  }

  // --------------------------------------------------------------------------------------------- PTZ

  async function post(url, body) {
    try {
      const resp = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": window.lpCsrfToken() },
        body: JSON.stringify(body),
      });
      if (!resp.ok) {
        let reason = "";
        try {
          const detail = (await resp.json()).detail;
          reason = typeof detail === "string" ? detail : (detail && detail.message) || "";
        } catch (err) { /* not JSON: the status says enough */ }
        showFlash("error", `${TEXT.ptz_failed} ${reason || resp.status}`);
      }
    } catch (err) {
      showFlash("error", TEXT.network);
    }
  }

  function setupPad(pad) {
    const moveUrl = pad.dataset.moveUrl;
    const stopUrl = pad.dataset.stopUrl;
    let moving = false;

    const start = (button) => {
      if (button.hasAttribute("data-stop")) { stop(); return; }
      moving = true;
      button.classList.add("pressed");
      // The camera stops by itself after timeout_s should the release never arrive (lost connection).
      post(moveUrl, { pan: Number(button.dataset.pan || 0), tilt: Number(button.dataset.tilt || 0),
        zoom: Number(button.dataset.zoom || 0), timeout_s: 15 });
    };
    const stop = () => {
      pad.querySelectorAll(".pressed").forEach((b) => b.classList.remove("pressed"));
      moving = false;
      post(stopUrl, {});
    };

    pad.querySelectorAll("button").forEach((button) => {
      button.addEventListener("pointerdown", (ev) => {
        ev.preventDefault();
        // Keep receiving the pointer's events when a finger slides off the button, so the release
        // still stops the camera.
        try { button.setPointerCapture(ev.pointerId); } catch (err) { /* a synthetic pointer */ }
        start(button);
      });
      button.addEventListener("pointerup", () => { if (moving) stop(); });
      button.addEventListener("pointercancel", () => { if (moving) stop(); });
      button.addEventListener("keydown", (ev) => {
        if ((ev.key === "Enter" || ev.key === " ") && !ev.repeat) { ev.preventDefault(); start(button); }
      });
      button.addEventListener("keyup", (ev) => {
        if ((ev.key === "Enter" || ev.key === " ") && moving) { ev.preventDefault(); stop(); }
      });
      button.addEventListener("contextmenu", (ev) => ev.preventDefault());
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("img.live").forEach(watch);
    document.querySelectorAll(".ptz-pad").forEach(setupPad);
  });
})();
