// Calls the engine's API with the bearer token of this browser session (when the engine asks for one).
const KEY = "skill-engine-token";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, text) {
    super(text || `HTTP ${status}`);
    this.status = status;
  }
}

export function authHeaders(headers = {}) {
  const result = new Headers(headers);
  const current = token();
  if (current) result.set("Authorization", `Bearer ${current}`);
  return result;
}

export async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
  if (response.status === 401 || response.status === 403) {
    window.dispatchEvent(new CustomEvent("console:auth", { detail: { status: response.status } }));
  }
  return response;
}

export async function getJson(path) {
  const response = await api(path);
  if (!response.ok) throw new ApiError(response.status, await response.text());
  return response.json();
}

export async function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

// Server-Sent Events of a message-stream skill, as {event, data} objects, while they arrive.
export async function* eventStream(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      let parsed = data.join("\n");
      try {
        parsed = JSON.parse(parsed);
      } catch {
        // keep the raw text
      }
      yield { event, data: parsed };
    }
  }
}

export const skillPath = (namespace, name) =>
  `/v1/skills/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
