// Buttons, scrub slider, speed and keyboard: everything the presenter touches.

// Inputs whose keys belong to them: typing text. Everything else (buttons, selects, the
// scrub slider, the page itself) hands Space, arrows, Home and End to the player.
const NOT_TEXT = new Set(["button", "checkbox", "radio", "range", "submit", "reset", "file", "color", "image"]);

export function isTextField(el) {
  if (!el || !el.tagName) return false;
  if (el.isContentEditable || el.tagName === "TEXTAREA") return true;
  return el.tagName === "INPUT" && !NOT_TEXT.has((el.type || "text").toLowerCase());
}

// Controls that act on Space themselves (a button presses, a box ticks, a summary opens).
function actsOnSpace(el) {
  if (el.tagName === "BUTTON" || el.tagName === "SUMMARY" || el.tagName === "A") return true;
  return el.tagName === "INPUT" && ["checkbox", "radio", "button", "submit", "reset", "file"].includes(el.type);
}

// After a choice in a dropdown, the keyboard goes back to the player.
export function focusPlayer() {
  const b = document.getElementById("btn-play");
  if (b) b.focus({ preventScroll: true });
}

export function bindControls(player) {
  const $ = (id) => document.getElementById(id);
  $("btn-play").addEventListener("click", () => player.toggle());
  $("btn-fwd").addEventListener("click", () => player.step(1));
  $("btn-back").addEventListener("click", () => player.step(-1));
  $("btn-start").addEventListener("click", () => player.seek(0));
  $("btn-end").addEventListener("click", () => player.seek(Infinity));
  $("speed").addEventListener("change", (ev) => { player.setSpeed(ev.target.value); focusPlayer(); });
  $("preset").addEventListener("change", () => focusPlayer());

  const scrub = $("scrub");
  scrub.addEventListener("input", () => player.seek((Number(scrub.value) / 1000) * player.end, { scrubbing: true }));
  scrub.addEventListener("change", () => player.seek((Number(scrub.value) / 1000) * player.end));

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const el = ev.target;
    if (isTextField(el)) return;
    if (el.type === "radio" && ev.key.startsWith("Arrow")) return;  // moves the choice
    if (ev.key === " " || ev.code === "Space") {
      if (actsOnSpace(el)) return;  // the focused control acts
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
