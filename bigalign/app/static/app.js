// bigalign's pages: follow a running command, preview treatments as they are typed, save review marks.
"use strict";

function xsrf() {
  const meta = document.querySelector("meta[name='xsrf']");
  return meta ? meta.content : "";
}

async function post(url, body, json) {
  const headers = { "X-XSRFToken": xsrf() };
  if (json) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method: "POST", headers, body: json ? JSON.stringify(body) : body });
  return response.json();
}

// A plan, a run, an index or a batch: its stages and output, every second while it runs.
function followTask() {
  const panel = document.getElementById("task");
  if (!panel) return;
  const cancel = document.getElementById("cancel");
  const kind = panel.dataset.kind;
  cancel.addEventListener("click", () => post(`/cancel/${kind}`, {}, true));
  let wasRunning = false;
  async function poll() {
    const { command } = await (await fetch(`/task/${kind}`)).json();
    if (!command) return;
    const running = command.state === "running" || command.state === "cancelling";
    panel.dataset.state = command.state;
    document.getElementById("task-state").textContent = `${command.kind}: ${command.state} (${command.seconds} s)`;
    const stages = document.getElementById("stages");
    stages.replaceChildren(...command.stages.map((stage, i) => {
      const item = document.createElement("li");
      item.textContent = stage;
      if (running && i === command.stages.length - 1) item.className = "current";
      return item;
    }));
    document.getElementById("output").textContent = command.lines.join("\n");
    cancel.hidden = !running;
    if (running) {
      wasRunning = true;
      setTimeout(poll, 1000);
    } else if (wasRunning && command.reload) {
      location.reload();  // (the summary and the downloads of the finished run, index or batch; a suggestion)
    }
  }
  poll();
}

// Each treatment on sample records, as the form stands (not saved).
function previewTreatments() {
  const form = document.getElementById("treatments");
  if (!form) return;
  let timer = null;
  async function refresh() {
    const answer = await post("/treatments/preview", new FormData(form), false);
    const holder = document.createElement("div");
    holder.innerHTML = answer.html || "";
    form.querySelectorAll(".preview").forEach((box) => { box.textContent = answer.error || ""; });
    holder.querySelectorAll("template").forEach((template) => {
      const box = document.getElementById(`preview-${template.dataset.index}`);
      if (box) box.replaceChildren(template.content.cloneNode(true));
    });
  }
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 400); });
  refresh();
}

// Right or wrong: saved at once to labels.csv; a second click on the same mark removes it.
function reviewMarks() {
  document.querySelectorAll(".link").forEach((link) => {
    link.querySelectorAll("button.mark").forEach((button) => {
      button.addEventListener("click", async () => {
        const match = Number(button.dataset.match);
        const next = link.dataset.mark === String(match) ? null : match;
        await post("/mark", { align_id: link.dataset.align, target_id: link.dataset.target, match: next }, true);
        link.dataset.mark = next === null ? "" : String(next);
      });
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  followTask();
  previewTreatments();
  reviewMarks();
});
