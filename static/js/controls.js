// Buttons, scrub slider, speed and keyboard: everything the presenter touches.

const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

export function bindControls(player) {
  const $ = (id) => document.getElementById(id);
  $("btn-play").addEventListener("click", () => player.toggle());
  $("btn-fwd").addEventListener("click", () => player.step(1));
  $("btn-back").addEventListener("click", () => player.step(-1));
  $("btn-start").addEventListener("click", () => player.seek(0));
  $("btn-end").addEventListener("click", () => player.seek(Infinity));
  $("speed").addEventListener("change", (ev) => player.setSpeed(ev.target.value));

  const scrub = $("scrub");
  scrub.addEventListener("input", () => player.seek((Number(scrub.value) / 1000) * player.end, { scrubbing: true }));
  scrub.addEventListener("change", () => player.seek((Number(scrub.value) / 1000) * player.end));

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const el = ev.target;
    const onScrub = el === scrub;
    if (!onScrub && (TYPING.has(el.tagName) || el.isContentEditable)) return;
    if (ev.key === " " || ev.code === "Space") {
      if (el.tagName === "BUTTON" || el.tagName === "SUMMARY") return;  // the focused control acts
      ev.preventDefault();
      player.toggle();
    } else if (ev.key === "ArrowRight") {
      ev.preventDefault(); player.step(1);
    } else if (ev.key === "ArrowLeft") {
      ev.preventDefault(); player.step(-1);
    } else if (ev.key === "Home") {
      ev.preventDefault(); player.seek(0);
    } else if (ev.key === "End") {
      ev.preventDefault(); player.seek(Infinity);
    }
  });

  // The server kind picks which knobs the form shows (and submits).
  document.addEventListener("change", (ev) => {
    if (!ev.target.matches("[data-kind-switch]")) return;
    const form = ev.target.form;
    for (const fs of form.querySelectorAll("fieldset.kind")) {
      const on = fs.dataset.kind === ev.target.value;
      fs.hidden = !on;
      fs.disabled = !on;
    }
  });

  $("toggle-panel").addEventListener("click", (ev) => {
    const hidden = document.body.classList.toggle("panel-hidden");
    ev.currentTarget.setAttribute("aria-pressed", String(hidden));
    ev.currentTarget.textContent = hidden ? "Scenario ▸" : "Scenario ◂";
    window.dispatchEvent(new Event("resize"));
  });
}

export function showPlaying(playing) {
  const b = document.getElementById("btn-play");
  b.textContent = playing ? "❚❚ Pause" : "▶ Play";
  b.setAttribute("aria-pressed", String(playing));
}
