// Catalogue: namespaces and their skills with kind, WIT version, digest/tag, state, description and schemas;
// search by name and description; misconfigured namespaces with their error; tools and MCP servers.
import { getJson, skillPath } from "../api.js";
import { add, clear, formatBytes, formatTime, h } from "../dom.js";
import { schemaView } from "../schema-view.js";

const METADATA_CONCURRENCY = 2;

function kindLabel(kind) {
  return { function: "function", message_stream: "message stream", chat: "chat" }[kind] || "unknown kind";
}

export async function render(root) {
  const data = await getJson("/v1/console/skills");
  const search = h("input", { id: "skill-search", type: "search", placeholder: "name or description" });
  const count = h("span", { class: "muted", "aria-live": "polite" });
  const list = h("div", { class: "namespaces" });
  add(root, 
    h("h1", {}, "Catalogue"),
    h("div", { class: "toolbar" }, h("label", { for: "skill-search" }, "Search skills"), search, count),
    list,
  );
  const cards = [];
  for (const namespace of data.namespaces) {
    const section = h("section", { class: "namespace", "aria-labelledby": `ns-${namespace.name}` });
    add(section, 
      h("h2", { id: `ns-${namespace.name}` }, namespace.name, namespace.builtin ? h("span", { class: "badge" }, "built in") : null),
      h("p", { class: "muted" }, namespace.builtin ? "The engine's own example skills." : `Updated ${formatTime(namespace.updated_at)}`),
    );
    if (namespace.error) {
      add(section, h("p", { class: "error", role: "alert" }, "Misconfigured: ", namespace.error));
    }
    const refused = Object.entries(namespace.refused || {});
    if (refused.length) {
      add(section, h("div", { class: "error", role: "alert" }, "Entries not served:",
        h("ul", {}, refused.map(([name, reason]) => h("li", {}, h("code", {}, name), ": ", reason)))));
    }
    const extras = h("div", { class: "extras" });
    if (namespace.mcp_servers.length) {
      extras.append(h("p", {}, "MCP servers: ", namespace.mcp_servers.map((url) => h("code", { class: "chip" }, url))));
    }
    const tools = h("p", { class: "tools" });
    extras.append(tools);
    add(section, extras);
    loadTools(namespace.name, tools);
    const grid = h("div", { class: "skills" });
    if (!namespace.skills.length && !namespace.error) grid.append(h("p", { class: "muted" }, "No skills."));
    for (const skill of namespace.skills) {
      const card = skillCard(namespace.name, skill);
      cards.push(card);
      grid.append(card.element);
    }
    add(section, grid);
    list.append(section);
  }
  const filter = () => {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of cards) {
      const text = `${card.namespace}/${card.skill.name} ${card.description}`.toLowerCase();
      const visible = words.every((w) => text.includes(w));
      card.element.hidden = !visible;
      if (visible) shown += 1;
    }
    count.textContent = `${shown} of ${cards.length} skills`;
  };
  search.addEventListener("input", filter);
  filter();
  // Descriptions and schemas come from each skill's metadata (it loads the skill): a few at a time.
  const queue = [...cards];
  await Promise.all(
    Array.from({ length: METADATA_CONCURRENCY }, async () => {
      while (queue.length) {
        await queue.shift().loadMetadata();
        filter();
      }
    }),
  );
}

async function loadTools(namespace, target) {
  try {
    const tools = await getJson(`/v1/tools/${encodeURIComponent(namespace)}`);
    if (tools.length) {
      target.append("Tools: ", ...tools.map((tool) => h("code", { class: "chip", title: tool.description || "" }, tool.name)));
    }
  } catch {
    // a namespace without tools (or unknown to the tool registry) shows none
  }
}

function skillCard(namespace, skill) {
  const description = h("p", { class: "description muted" }, skill.kind === "chat" ? `Chat with ${skill.model}` : "");
  const schemas = h("div", { class: "schemas" });
  const kind = h("span", { class: "badge kind" }, kindLabel(skill.kind));
  const wit = h("span", { class: "badge" }, skill.wit_version ? `WIT ${skill.wit_version}` : skill.version ? `v${skill.version}` : "");
  const facts = h(
    "dl",
    { class: "facts" },
    skill.tag ? [h("dt", {}, "Tag"), h("dd", {}, skill.tag)] : null,
    skill.digest ? [h("dt", {}, "Digest"), h("dd", {}, h("code", { title: skill.digest }, skill.digest.slice(0, 19)))] : null,
    [h("dt", {}, "State"), h("dd", { class: "state" }, skill.state)],
    skill.size ? [h("dt", {}, "Size"), h("dd", {}, formatBytes(skill.size))] : null,
  );
  const element = h(
    "article",
    { class: "skill", "data-skill": `${namespace}/${skill.name}` },
    h("header", {}, h("h3", {}, skill.name), kind, wit),
    description,
    facts,
    schemas,
    h("a", { class: "button", href: `#/playground/${encodeURIComponent(namespace)}/${encodeURIComponent(skill.name)}` }, `Try ${skill.name}`),
  );
  const card = {
    namespace,
    skill,
    element,
    description: "",
    async loadMetadata() {
      if (skill.kind === "chat") return;
      try {
        const metadata = await getJson(`${skillPath(namespace, skill.name)}/metadata`);
        card.description = metadata.description || "";
        description.textContent = metadata.description || "No description.";
        kind.textContent = kindLabel(metadata.skill_type);
        if (metadata.version && !skill.wit_version) wit.textContent = `WIT ${metadata.version}`;
        clear(schemas);
        if (metadata.skill_type === "function") {
          schemas.append(schemaView("Input", metadata.input_schema), schemaView("Output", metadata.output_schema));
        }
      } catch (error) {
        description.textContent = `No metadata (${error.status || "error"}): ${error.message}`;
      }
    },
  };
  return card;
}
