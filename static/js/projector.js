// Projector mode (?projector=1 or the header's toggle): a light, high-contrast page with
// large type, the form hidden, the house and the timeline filling the screen. And the
// reader's wish for less motion (prefers-reduced-motion), which the views consult.

const root = document.documentElement;

export function isProjector() { return root.classList.contains("projector"); }

// How much larger canvas text is drawn: labels a class reads from the back row are at
// least 20 px in projector mode.
export function textScale() { return isProjector() ? 1.45 : 1; }

export function reducedMotion() {
  return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

export function setProjector(on) {
  root.classList.toggle("projector", on);
  document.body.classList.toggle("panel-hidden", on);
  const b = document.getElementById("toggle-projector");
  if (b) b.setAttribute("aria-pressed", String(on));
  const panel = document.getElementById("toggle-panel");
  if (panel) {
    panel.setAttribute("aria-pressed", String(on));
    panel.textContent = on ? "Scenario ▸" : "Scenario ◂";
  }
  const url = new URL(location.href);
  if (on) url.searchParams.set("projector", "1"); else url.searchParams.delete("projector");
  history.replaceState(history.state, "", url);
  window.dispatchEvent(new Event("resize"));
}

export function bindProjector() {
  const b = document.getElementById("toggle-projector");
  if (b) b.addEventListener("click", () => setProjector(!isProjector()));
}

// A share link or address keeps projector mode when the page is in it.
export function withProjector(link) {
  if (!isProjector()) return link;
  const url = new URL(link, location.href);
  url.searchParams.set("projector", "1");
  return url.toString();
}
