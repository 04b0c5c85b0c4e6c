// The console shell: navigation from pages.js, hash routing (#/page/param/...), the token form.
import { pages } from "./pages.js";
import { setToken, token } from "./api.js";
import { clear, errorBox, h } from "./dom.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const tokenForm = document.getElementById("token-form");
let cleanup = null;

for (const page of pages) {
  nav.append(h("li", {}, h("a", { href: `#/${page.path}`, "data-page": page.path }, page.title)));
}

function currentRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("?")[0].split("/").filter(Boolean).map(decodeURIComponent);
  const page = pages.find((p) => p.path === parts[0]) || pages[0];
  return { page, params: page.path === parts[0] ? parts.slice(1) : [] };
}

async function show() {
  const { page, params } = currentRoute();
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === page.path) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page.title} · Skill Console`;
  clear(main).append(h("p", { class: "muted" }, "Loading…"));
  try {
    const module = await import(page.module);
    clear(main);
    cleanup = await module.render(main, params);
  } catch (error) {
    clear(main).append(h("h1", {}, page.title), errorBox(error));
  }
}

window.addEventListener("console:auth", (event) => {
  tokenForm.hidden = false;
  const message = event.detail.status === 403 ? "The token was rejected." : token() ? "" : "";
  document.getElementById("token-error").textContent = message;
  document.getElementById("token-input").focus();
});

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(document.getElementById("token-input").value.trim());
  tokenForm.hidden = true;
  show();
});

window.addEventListener("hashchange", show);
show();
