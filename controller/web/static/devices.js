// The first-boot bundle form: htmx cannot save a download, so this sends the form with fetch() (with the
// session's CSRF header, as htmx would), saves the zip, or shows the form the server sent back with its
// errors (422). No text lives here: the messages come from the server's rendered form.
"use strict";

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.id !== "bundle-form") return;
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "X-CSRF-Token": window.lpCsrfToken(), "HX-Request": "true" },
      credentials: "same-origin",
    });
    const type = response.headers.get("Content-Type") || "";
    if (response.ok && type.startsWith("application/zip")) {
      const blob = await response.blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = form.dataset.filename || "first-boot.zip";
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      return;
    }
    const html = await response.text();
    if (response.status === 422) {
      // The server's own rendering of the form, autoescaped, with each error under its field.
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const fresh = holder.querySelector("#bundle-form");
      if (fresh) form.replaceWith(fresh);
      return;
    }
    // Any other answer is the console's message fragment (its error page for htmx requests).
    const area = document.getElementById("messages");
    if (area) area.innerHTML = html;
  } catch {
    document.dispatchEvent(new CustomEvent("htmx:sendError"));
  } finally {
    if (button) button.disabled = false;
  }
});
