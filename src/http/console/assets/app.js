// The console's shell: sign-in, the header (sections, managed-account view, sign-out) and the hash router.
import { console_, session, getAll, ApiError } from "./api.js";
import { h, pages } from "./pages.js";

const main = document.getElementById("main");
const top = document.getElementById("top");
const banner = document.getElementById("view-banner");
const viewAs = document.getElementById("view-as");

function signInPage(message) {
  top.hidden = true;
  banner.hidden = true;
  const err = h("p", { class: "form-err", id: "signin-err", role: "alert" }, message || "");
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: "",
    "aria-describedby": "signin-help signin-err" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "signin panel", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to costd"),
    h("div", { class: "field" }, h("label", { for: "token" }, "API token"), input,
      h("p", { class: "muted", id: "signin-help" }, "A token from ", h("code", {}, "costd token create"), " or the ",
        h("code", {}, "bootstrap-token"), " file. It is kept in an HttpOnly session cookie, never in this page.")),
    err, button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    button.disabled = true;
    try {
      await console_.signIn(input.value);
      input.value = "";
      await start();
    } catch (x) {
      err.textContent = x instanceof ApiError ? x.errors.join("\n") : String(x);
      input.focus();
    } finally { button.disabled = false; }
  });
  main.replaceChildren(form);
  document.title = "Sign in · costd";
  input.focus();
}

let managed = [];

async function renderHeader() {
  top.hidden = false;
  const info = session.info;
  const viewing = info.view_account_token;
  // Only the account itself can list its managed accounts; a view of one shows just that one.
  managed = [];
  if (!viewing) {
    try { managed = await getAll("/v2/managed_accounts", "managed_accounts"); } catch { managed = []; }
  } else {
    managed = [{ token: viewing, name: info.view_account_name || viewing }];
  }
  viewAs.replaceChildren(h("option", { value: "" }, "My account"),
    ...managed.map((m) => h("option", { value: m.token }, `${m.name} (managed)`)));
  viewAs.value = viewing || "";
  const show = managed.length > 0 || !!viewing;
  viewAs.hidden = !show;
  document.querySelector(".viewas-label").hidden = !show;
  if (viewing) {
    const m = managed.find((x) => x.token === viewing);
    banner.textContent = `Viewing managed account ${m ? m.name : viewing}: its costs with its billing rules applied (read-only).`;
    banner.hidden = false;
  } else banner.hidden = true;
}

viewAs.addEventListener("change", async () => {
  try {
    await console_.view(viewAs.value || null);
    await renderHeader();
    route();
  } catch (x) { alert(x.message); }
});

document.getElementById("sign-out").addEventListener("click", async () => {
  await console_.signOut();
  location.hash = "#/costs";
  signInPage("Signed out.");
});

session.refreshHeader = renderHeader;
session.onSignedOut = (message) => signInPage(message || "Your session has ended; sign in again.");

function route() {
  const [path, query] = (location.hash.slice(1) || "/costs").split("?");
  const name = path.replace(/^\//, "") || "costs";
  const page = pages[name] || pages.costs;
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const params = new URLSearchParams(query || "");
  page(main, params).catch((x) => {
    if (x instanceof ApiError && x.status === 401) return;
    main.replaceChildren(h("p", { class: "form-err", role: "alert" }, x.message || String(x)));
  });
}

async function start() {
  // The page does not wait for the header's list of managed accounts.
  const header = renderHeader();
  route();
  await header;
}

window.addEventListener("hashchange", () => { if (session.info) route(); });

(async () => {
  const info = await console_.load().catch(() => null);
  if (!info) return signInPage();
  await start();
})();
