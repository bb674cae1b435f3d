// Schedule page: bring an item's details into view when they arrive (on a phone they are below the list),
// and close them. Text comes from the templates; nothing here is shown to the user.
"use strict";

document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  if (target instanceof HTMLElement && target.id === "item-detail" && target.firstElementChild) {
    target.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }
});

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-close]") : null;
  const area = document.getElementById("item-detail");
  if (button && area) area.replaceChildren();
});
