// The openkvs console: live task list and task page (polling every second), uploads with
// progress, players for outputs. No dependency; hls.js is used when it was installed
// into static/vendor/ (scripts/install.sh fetches it when npm is available), else HLS plays
// only where the browser plays it natively. Every value is written with textContent, never as HTML.
"use strict";

const POLL_MS = 1000;
const csrf = () => document.body.dataset.csrf || "";

function cell(row, text, href) {
  const td = document.createElement("td");
  if (href) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.appendChild(a);
  } else {
    td.textContent = text;
  }
  row.appendChild(td);
}

async function getJSON(url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (answer.status === 401) {
    window.location.href = "/console/signin";
    throw new Error("signed out");
  }
  if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
  return answer.json();
}

// -- the task list --------------------------------------------------------------------

function liveList(table) {
  const base = table.dataset.live;
  const pager = document.getElementById("pager");
  const admin = table.dataset.admin === "1";
  let page = Number(new URLSearchParams(window.location.search).get("page") || "1");

  async function refresh() {
    const url = base + (base.includes("?") ? "&" : "?") + "page=" + page;
    const data = await getJSON(url);
    const body = document.createElement("tbody");
    for (const t of data.Tasks) {
      const row = document.createElement("tr");
      row.dataset.taskId = t.TaskID;
      cell(row, t.TaskID, "/console/tasks/" + encodeURIComponent(t.TaskID));
      if (admin) cell(row, t.User);
      cell(row, t.Type);
      cell(row, t.Preset);
      cell(row, t.Pipeline);
      cell(row, t.Status);
      cell(row, t.Progress + "%");
      cell(row, t.ErrorCode ? String(t.ErrorCode) : "");
      cell(row, t.Created);
      body.appendChild(row);
    }
    table.replaceChild(body, table.tBodies[0]);
    const pages = Math.max(1, Math.ceil(data.Total / data.PageSize));
    pager.textContent = `${data.Total} tasks, page ${data.Page} of ${pages}`;
    pager.dataset.pages = String(pages);
  }

  document.getElementById("prev").addEventListener("click", () => {
    if (page > 1) { page -= 1; refresh(); }
  });
  document.getElementById("next").addEventListener("click", () => {
    if (page < Number(pager.dataset.pages || "1")) { page += 1; refresh(); }
  });
  const tick = () => refresh().catch(() => {}).finally(() => setTimeout(tick, POLL_MS));
  tick();
}

// -- one task -------------------------------------------------------------------------

async function replaceMain() {
  const answer = await fetch(window.location.href, { credentials: "same-origin" });
  const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
  const fresh = doc.querySelector("main");
  if (fresh) {
    document.querySelector("main").replaceWith(fresh);
    start();
  }
}

function liveTask(section) {
  const url = section.dataset.live;
  const tick = async () => {
    try {
      const data = await getJSON(url);
      document.getElementById("task-status").textContent = data.Status;
      document.getElementById("task-progress").textContent = data.Progress + "%";
      document.getElementById("task-bar").value = data.Progress;
      document.getElementById("task-started").textContent = data.Started;
      if (data.Status !== section.dataset.status && (data.Status === "succ" || data.Status === "fail" || data.Status === "exec")) {
        await replaceMain(); // the command, outputs and callbacks appear
        return;
      }
      if (data.Status === "succ" || data.Status === "fail") {
        // Callbacks may still be delivered after the task finished.
        if (JSON.stringify(data.Callbacks) !== section.dataset.callbacks) {
          if (section.dataset.callbacks !== undefined) { await replaceMain(); return; }
          section.dataset.callbacks = JSON.stringify(data.Callbacks);
        }
      }
    } catch (e) { /* next tick */ }
    setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

// -- outputs --------------------------------------------------------------------------

function hlsPlayers() {
  for (const video of document.querySelectorAll("video[data-hls]")) {
    const src = video.dataset.hls;
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src;
    } else if (window.Hls && window.Hls.isSupported()) {
      const hls = new window.Hls();
      hls.loadSource(src);
      hls.attachMedia(video);
    } else {
      const note = document.createElement("span");
      note.textContent = " (this browser plays HLS only with hls.js installed: use the link)";
      video.replaceWith(note);
    }
  }
}

function numbers(value) {
  // The first array of numbers in a waveform document (or an array of [min, max] pairs).
  if (Array.isArray(value)) {
    if (value.length && value.every((v) => typeof v === "number")) return value;
    if (value.length && value.every((v) => Array.isArray(v) && typeof v[0] === "number")) {
      return value.map((v) => Math.max(...v.map(Math.abs)));
    }
    for (const v of value) { const found = numbers(v); if (found) return found; }
  } else if (value && typeof value === "object") {
    for (const v of Object.values(value)) { const found = numbers(v); if (found) return found; }
  }
  return null;
}

async function waves() {
  for (const canvas of document.querySelectorAll("canvas[data-wave]")) {
    try {
      const answer = await fetch(canvas.dataset.wave, { credentials: "same-origin" });
      const peaks = numbers(await answer.json());
      if (!peaks) continue;
      const ctx = canvas.getContext("2d");
      const top = Math.max(...peaks.map(Math.abs), 1e-9);
      const w = canvas.width / peaks.length;
      const mid = canvas.height / 2;
      ctx.fillStyle = "#2b6cb0";
      peaks.forEach((p, i) => {
        const hgt = (Math.abs(p) / top) * mid;
        ctx.fillRect(i * w, mid - hgt, Math.max(w - 1, 1), 2 * hgt || 1);
      });
      canvas.dataset.drawn = String(peaks.length);
    } catch (e) { /* not a waveform document */ }
  }
}

// -- uploads --------------------------------------------------------------------------

function uploads(form) {
  const file = document.getElementById("upload-file");
  const key = document.getElementById("upload-key");
  const bar = document.getElementById("upload-bar");
  const status = document.getElementById("upload-status");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) { status.textContent = "Choose a file first."; return; }
    const name = key.value.trim() || chosen.name;
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", form.dataset.url + "?key=" + encodeURIComponent(name));
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 200) {
        // The object list is refreshed; the new form says what was uploaded.
        replaceMain().then(() => {
          document.getElementById("upload-bar").value = 100;
          document.getElementById("upload-status").textContent = "Uploaded " + name;
        });
      } else {
        let message = "HTTP " + xhr.status;
        try { message = JSON.parse(xhr.responseText).Error; } catch (e) { /* keep */ }
        status.textContent = "Upload refused: " + message;
      }
    });
    xhr.addEventListener("error", () => { status.textContent = "Upload failed."; });
    status.textContent = "Uploading…";
    xhr.send(chosen);
  });
}

function start() {
  const list = document.getElementById("task-list");
  if (list && list.dataset.live) liveList(list);
  const task = document.getElementById("task");
  if (task && task.dataset.live) liveTask(task);
  const form = document.getElementById("upload");
  if (form) uploads(form);
  hlsPlayers();
  waves();
}

document.addEventListener("DOMContentLoaded", start);
