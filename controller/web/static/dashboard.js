// The dashboard says whether its live feed is connected: the words are in the page (data-live toggles
// which one shows); htmx's SSE extension reports the stream opening and failing.
"use strict";

function setLive(event, state) {
  const board = event.target instanceof Element ? event.target.closest(".dashboard") : null;
  if (board instanceof HTMLElement) board.dataset.live = state;
}

document.addEventListener("htmx:sseOpen", (event) => setLive(event, "on"));
document.addEventListener("htmx:sseError", (event) => setLive(event, "off"));
