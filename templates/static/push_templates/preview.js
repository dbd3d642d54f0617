// Re-renders the preview of the template being edited from the form's current fields.
"use strict";

(function () {
  const DELAY_MS = 400;

  function setText(card, name, text) {
    card.querySelector(`[data-field="${name}"]`).textContent = text;
  }

  function show(card, preview) {
    const errors = card.querySelector('[data-field="errors"]');
    errors.replaceChildren(
      ...(preview.errors || []).map((message) => {
        const item = document.createElement("li");
        item.textContent = message;
        return item;
      })
    );
    setText(card, "title", preview.title || "");
    setText(card, "body", preview.body || "");
    const data = preview.data || {};
    setText(card, "data", Object.keys(data).length ? JSON.stringify(data, null, 2) : "");
    const sms = card.querySelector('[data-field="sms"]');
    sms.hidden = preview.sms_segments === null || preview.sms_segments === undefined;
    sms.textContent = sms.hidden
      ? ""
      : `SMS: ${preview.sms_encoding}, ${preview.sms_segments} segment` +
        (preview.sms_segments === 1 ? "" : "s");
    const html = card.querySelector('[data-field="html"]');
    // Setting srcdoc reloads the frame, so it is set only when the HTML changed.
    if (html.getAttribute("srcdoc") !== (preview.html || "")) {
      html.srcdoc = preview.html || "";
    }
    html.hidden = !preview.html;
  }

  async function refresh(form, area) {
    const card = area.querySelector("[data-current]");
    const response = await fetch(area.dataset.previewUrl, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
    });
    show(card, await response.json());
    area.dataset.state = "ready";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const area = document.getElementById("template-preview");
    const form = area && area.closest("form");
    if (!form) {
      return;
    }
    let timer = null;
    const schedule = () => {
      area.dataset.state = "pending";
      clearTimeout(timer);
      timer = setTimeout(() => refresh(form, area), DELAY_MS);
    };
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    document.getElementById("preview-refresh").addEventListener("click", () => {
      area.dataset.state = "pending";
      refresh(form, area);
    });
    area.dataset.state = "ready";
  });
})();
