// The agent console's script: it keeps the page's live part up to date,
// polling the server, and posts the forms' actions as JSON. The server
// renders and escapes everything; the script only moves its HTML in place.
"use strict";

(function () {
  const live = document.getElementById("live");
  const status = document.getElementById("status");
  let etag = "";

  function say(text, bad) {
    status.textContent = text;
    status.className = bad ? "bad" : "ok";
  }

  // swap puts html in place of the live part, keeping what the user was
  // typing or had picked, and where the cursor was.
  function swap(html) {
    const kept = new Map();
    for (const el of live.querySelectorAll("input[id], select[id]")) {
      kept.set(el.id, el.value);
    }
    const focused = document.activeElement;
    const focusID = focused && live.contains(focused) ? focused.id : "";
    const doc = new DOMParser().parseFromString(html, "text/html");
    live.replaceChildren(...doc.body.childNodes);
    for (const [id, value] of kept) {
      const el = document.getElementById(id);
      if (el) el.value = value;
    }
    if (focusID) {
      const el = document.getElementById(focusID);
      if (el) el.focus();
    }
  }

  async function refresh() {
    let resp;
    try {
      resp = await fetch("live", {
        headers: etag ? { "If-None-Match": etag } : {},
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (e) {
      say("The stand-in does not answer: has it stopped?", true);
      return;
    }
    if (resp.status === 304) return;
    if (resp.status === 401) {
      location.reload(); // to the login form
      return;
    }
    if (!resp.ok) {
      say("Refreshing failed: " + resp.status, true);
      return;
    }
    etag = resp.headers.get("ETag") || "";
    swap(await resp.text());
  }

  document.addEventListener("submit", async (ev) => {
    const form = ev.target.closest("form.act");
    if (!form) return;
    ev.preventDefault();
    const body = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      body[el.name] = el.dataset.kind === "json" ? JSON.parse(el.value) : el.value;
    }
    const action = form.dataset.action;
    let resp;
    try {
      resp = await fetch("api/" + action, {
        method: action === "webhooks" ? "PUT" : "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (e) {
      say(action + ": the stand-in does not answer", true);
      return;
    }
    const answer = await resp.json().catch(() => ({}));
    if (resp.ok) {
      say(action + ": done", false);
      if (form.dataset.reset) form.reset();
    } else {
      say(action + ": " + resp.status + " " + (answer.error || ""), true);
    }
    refresh();
  });

  refresh();
  setInterval(refresh, 1000);
})();
