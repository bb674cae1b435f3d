// The console's own behaviour on top of htmx: which error answers are shown, and network failures.
// Server-rendered pages do the rest; nothing here holds text (every string comes from the templates).
"use strict";

document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  // A form answered 422 re-renders itself with its errors next to the fields; 4xx/5xx pages aimed at the
  // message area (HX-Retarget: #messages) say what went wrong in the user's language.
  if (xhr.status === 422 || xhr.getResponseHeader("HX-Retarget")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

document.addEventListener("htmx:sendError", () => {
  const area = document.getElementById("messages");
  const template = document.getElementById("network-error");
  if (area && template instanceof HTMLTemplateElement) {
    area.replaceChildren(template.content.cloneNode(true));
  }
});

// An old message goes when the user changes something again; the refreshes a live page makes by itself
// (GETs on SSE events or timers) leave it in place so it can be read.
document.addEventListener("htmx:beforeRequest", (event) => {
  const verb = (event.detail.requestConfig && event.detail.requestConfig.verb) || "get";
  if (verb.toLowerCase() === "get") return;
  const area = document.getElementById("messages");
  if (area) area.replaceChildren();
});

// The menu is a <details>: open on wide screens, folded on phones.
function placeMenu() {
  const menu = document.getElementById("menu");
  if (menu instanceof HTMLDetailsElement) menu.open = window.matchMedia("(min-width: 52rem)").matches;
}
document.addEventListener("DOMContentLoaded", placeMenu);
window.matchMedia("(min-width: 52rem)").addEventListener("change", placeMenu);

// Pages that talk to the JSON API with fetch() (live broadcast, sign previews) send the CSRF token the
// same way htmx does.
window.lpCsrfToken = () => {
  const match = document.cookie.match(/(?:^|;\s*)lp_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
};
