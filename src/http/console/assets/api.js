// The console's only way to the server: the same /v2 API every client uses, signed in by the session
// cookie (HttpOnly, so no script here ever sees a credential). Writes carry the session's CSRF token.

export const session = { csrf: null, info: null };

export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.join("\n"));
    this.status = status;
    this.errors = errors;
  }
}

async function parse(res) {
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) {
    const errors = body && Array.isArray(body.errors) ? body.errors.map(String) : [`${res.status} ${res.statusText}`];
    if (res.status === 401 && session.onSignedOut) session.onSignedOut(errors[0]);
    throw new ApiError(res.status, errors);
  }
  return { status: res.status, body, headers: res.headers };
}

/** Calls the API; answers {status, body, headers} or throws ApiError with the API's error sentences. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const out = await parse(res);
  // Any change may change costs (a rule, an account's links, an upload): forget remembered results.
  if (method !== "GET" && session.onWrite) session.onWrite();
  return out;
}

export const get = (path) => api("GET", path).then((r) => r.body);

/** Every item of a paged list, following `links.next`. */
export async function getAll(path, key) {
  const items = [];
  let url = path + (path.includes("?") ? "&" : "?") + "limit=1000";
  for (let i = 0; url && i < 100; i++) {
    const body = await get(url);
    items.push(...body[key]);
    url = nextPath(body);
  }
  return items;
}

/** The path of a list's next page (`links.next` is absolute, built from the server's public URL), or null. */
export function nextPath(body) {
  const next = body.links && body.links.next;
  if (!next) return null;
  const u = new URL(next, location.href);
  return u.pathname + u.search;
}

/** Uploads a file as multipart field `csv`, reporting progress (0..1); XHR because fetch has no upload progress. */
export function upload(path, file, onProgress, method = "POST") {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader("X-CSRF-Token", session.csrf || "");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      if (session.onWrite) session.onWrite();
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body && body.errors ? body.errors : [`${xhr.status} ${xhr.statusText}`]));
    };
    xhr.onerror = () => reject(new ApiError(0, ["the upload was interrupted (network error)"]));
    const form = new FormData();
    form.append("csv", file, file.name);
    xhr.send(form);
  });
}

/** The console session: signs in, reads and changes it. */
export const console_ = {
  async load() {
    const res = await fetch("/console/session", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.status === 401) return null;
    const { body } = await parse(res);
    session.csrf = body.csrf_token;
    session.info = body;
    return body;
  },
  async signIn(token) {
    const res = await fetch("/console/session", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ token }),
    });
    const saved = session.onSignedOut;
    session.onSignedOut = null; // a refused token is the sign-in form's error, not a sign-out
    try {
      const { body } = await parse(res);
      session.csrf = body.csrf_token;
      session.info = body;
      return body;
    } finally { session.onSignedOut = saved; }
  },
  async signOut() {
    await fetch("/console/session", { method: "DELETE", credentials: "same-origin", headers: { "X-CSRF-Token": session.csrf || "" } });
    session.csrf = null;
    session.info = null;
  },
  async view(accountToken) {
    const { body } = await api("PUT", "/console/session/view", { account_token: accountToken });
    session.info = body;
    return body;
  },
};
