// Playground: a form from the skill's input schema (raw JSON as fallback), run it, see the output or the
// error with its status; message streams grow live with reasoning and tool events shown apart; a curl
// command for the same call.
import { ApiError, api, eventStream, getJson, postJson, skillPath, token } from "../api.js";
import { add, clear, errorBox, h, pretty } from "../dom.js";
import { schemaForm } from "../schema-form.js";

export async function render(root, params) {
  const [namespace, name] = params;
  add(root, h("h1", {}, "Playground"));
  if (!namespace || !name) {
    await chooser(root);
    return;
  }
  let metadata = null;
  const loading = h("p", { class: "muted", role: "status" }, `Loading ${namespace}/${name} (a first load compiles it, which can take a while)…`);
  add(root, loading);
  try {
    metadata = await getJson(`${skillPath(namespace, name)}/metadata`);
  } catch (error) {
    add(root, errorBox(error));
  } finally {
    loading.remove();
  }
  const chat = metadata === null && (await isChat(namespace, name));
  const stream = chat || (metadata && metadata.skill_type === "message_stream");
  add(root, 
    h("h2", {}, `${namespace}/${name}`, h("span", { class: "badge kind" }, stream ? "message stream" : "function")),
    metadata && metadata.description ? h("p", {}, metadata.description) : null,
  );
  const built = metadata && metadata.input_schema ? schemaForm(metadata.input_schema) : null;
  const initial = chat ? { messages: [{ role: "user", content: "Hello" }] } : built ? built.read() : {};
  const rawInput = h("textarea", { id: "raw-input", rows: 10, class: "json", spellcheck: "false" }, pretty(initial));
  const rawPanel = h("div", { class: "raw" }, h("label", { for: "raw-input" }, "Input (JSON)"), rawInput);
  let mode = built ? "form" : "json";
  const formPanel = built ? h("div", { class: "generated" }, built.element) : null;
  const toggle = built
    ? h("div", { class: "tabs", role: "group", "aria-label": "Input editor" },
        h("button", { type: "button", id: "mode-form", "aria-pressed": "true", onclick: () => setMode("form") }, "Form"),
        h("button", { type: "button", id: "mode-json", "aria-pressed": "false", onclick: () => setMode("json") }, "JSON"))
    : h("p", { class: "muted" }, metadata && metadata.input_schema ? "This schema has no form; edit the JSON." : "No input schema: edit the JSON.");
  function setMode(next) {
    if (next === mode) return;
    if (next === "json") rawInput.value = pretty(readForm());
    mode = next;
    formPanel.hidden = mode !== "form";
    rawPanel.hidden = mode !== "json";
    document.getElementById("mode-form").setAttribute("aria-pressed", String(mode === "form"));
    document.getElementById("mode-json").setAttribute("aria-pressed", String(mode === "json"));
  }
  function readForm() {
    return built.read();
  }
  function input() {
    if (mode === "form") return readForm();
    return JSON.parse(rawInput.value);
  }
  if (formPanel) rawPanel.hidden = true;
  const output = h("section", { class: "output", "aria-live": "polite", "aria-label": "Output" });
  const curl = h("pre", { class: "code curl", id: "curl" });
  const runButton = h("button", { type: "submit", class: "primary", id: "run" }, "Run");
  const form = h(
    "form",
    { class: "playground", onsubmit: (event) => { event.preventDefault(); run(); } },
    toggle,
    formPanel,
    rawPanel,
    h("div", { class: "actions" }, runButton),
  );
  const route = stream ? "message-stream" : "run";
  const url = `${location.origin}${skillPath(namespace, name)}/${route}`;
  const updateCurl = () => {
    let body;
    try {
      body = JSON.stringify(input());
    } catch {
      body = rawInput.value;
    }
    const auth = token() ? ` \\\n  -H "Authorization: Bearer $TOKEN"` : "";
    curl.textContent = `curl${stream ? " -N" : ""} -X POST '${url}'${auth} \\\n  -H 'Content-Type: application/json' \\\n  -d '${body.replace(/'/g, "'\\''")}'`;
  };
  form.addEventListener("input", updateCurl);
  form.addEventListener("click", () => setTimeout(updateCurl));
  updateCurl();
  const copy = h("button", { type: "button", class: "small", onclick: async () => {
    await navigator.clipboard.writeText(curl.textContent).catch(() => {});
    copy.textContent = "Copied";
    setTimeout(() => (copy.textContent = "Copy"), 1500);
  } }, "Copy");
  add(root, form, h("h3", {}, "Output"), output, h("h3", {}, "curl ", copy), curl);

  async function run() {
    clear(output);
    let value;
    try {
      value = input();
    } catch (error) {
      add(output, errorBox(new Error(`Invalid input: ${error.message}`)));
      return;
    }
    runButton.disabled = true;
    const started = performance.now();
    try {
      const response = await postJson(`${skillPath(namespace, name)}/${route}`, value);
      if (!response.ok) throw new ApiError(response.status, await response.text());
      if (stream) await showStream(response, output);
      else add(output, h("pre", { class: "code result", id: "result" }, pretty(await response.json())));
      add(output, h("p", { class: "muted" }, `Finished in ${Math.round(performance.now() - started)} ms · `,
        h("a", { href: "#/executions" }, "see its trace")));
    } catch (error) {
      add(output, errorBox(error));
    } finally {
      runButton.disabled = false;
    }
  }
}

async function showStream(response, output) {
  const transcript = h("div", { class: "transcript", id: "transcript" });
  add(output, transcript);
  let message = null;
  let text = null;
  let reasoning = null;
  for await (const { event, data } of eventStream(response)) {
    if (event === "message" && data.type === "begin") {
      text = h("div", { class: "text" });
      reasoning = h("div", { class: "reasoning", hidden: true }, h("span", { class: "label" }, "Reasoning "));
      message = h("div", { class: "message" }, reasoning, text);
      transcript.append(message);
    } else if (event === "message" && data.type === "append") {
      text.append(data.text);
    } else if (event === "message" && data.type === "end") {
      if (data.payload !== null && data.payload !== undefined) {
        message.append(h("details", { class: "payload" }, h("summary", {}, "Payload"), h("pre", { class: "code" }, pretty(data.payload))));
      }
      message = null;
    } else if (event === "reasoning" && reasoning) {
      reasoning.hidden = false;
      reasoning.append(data.text);
    } else if (event === "tool") {
      transcript.append(h("div", { class: `tool tool-${data.type}` }, `Tool ${data.name}: ${data.type}`, data.message ? ` – ${data.message}` : ""));
    } else if (event === "error") {
      transcript.append(errorBox(new Error(data.message || pretty(data))));
    }
  }
}

async function isChat(namespace, name) {
  try {
    const data = await getJson("/v1/console/skills");
    const ns = data.namespaces.find((n) => n.name === namespace);
    return Boolean(ns && ns.skills.find((s) => s.name === name && s.kind === "chat"));
  } catch {
    return false;
  }
}

async function chooser(root) {
  const data = await getJson("/v1/console/skills");
  const list = h("ul", { class: "chooser" });
  for (const namespace of data.namespaces) {
    for (const skill of namespace.skills) {
      list.append(h("li", {}, h("a", { href: `#/playground/${encodeURIComponent(namespace.name)}/${encodeURIComponent(skill.name)}` }, `${namespace.name}/${skill.name}`)));
    }
  }
  add(root, h("p", {}, "Choose a skill to try:"), list);
}
