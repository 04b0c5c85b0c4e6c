// JSON Schemas rendered readably: one line per property with type, required, default, enum and
// description, nested objects indented; the raw schema in a disclosure below.
import { h, pretty } from "./dom.js";

function deref(schema, root) {
  if (schema && schema.$ref && schema.$ref.startsWith("#/")) {
    let target = root;
    for (const part of schema.$ref.slice(2).split("/")) target = target ? target[part] : undefined;
    return target ? { ...target, ...schema, $ref: undefined, refName: schema.$ref.split("/").pop() } : schema;
  }
  return schema || {};
}

function typeText(schema, root) {
  const s = deref(schema, root);
  if (s.enum) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(", ")}`;
  if (s.const !== undefined) return `= ${JSON.stringify(s.const)}`;
  for (const key of ["anyOf", "oneOf"]) {
    if (Array.isArray(s[key])) return s[key].map((option) => typeText(option, root)).join(" | ");
  }
  if (s.type === "array") return `array of ${typeText(s.items || {}, root)}`;
  if (Array.isArray(s.type)) return s.type.join(" | ");
  if (s.type) return s.type + (s.format ? ` (${s.format})` : "");
  if (s.properties) return s.refName || "object";
  return "any";
}

function properties(schema, root, depth) {
  const s = deref(schema, root);
  const target = s.type === "array" ? deref(s.items || {}, root) : s;
  if (!target.properties || depth > 6) return null;
  const required = new Set(target.required || []);
  return h(
    "ul",
    { class: "schema-props" },
    Object.entries(target.properties).map(([name, sub]) => {
      const resolved = deref(sub, root);
      return h(
        "li",
        {},
        h("code", { class: "prop" }, name),
        " ",
        h("span", { class: "type" }, typeText(sub, root)),
        required.has(name) ? h("span", { class: "badge" }, "required") : null,
        resolved.default !== undefined ? h("span", { class: "muted" }, ` default ${JSON.stringify(resolved.default)}`) : null,
        resolved.description ? h("div", { class: "muted" }, resolved.description) : null,
        properties(sub, root, depth + 1),
      );
    }),
  );
}

export function schemaView(title, schema) {
  if (schema === null || schema === undefined) {
    return h("div", { class: "schema" }, h("h4", {}, title), h("p", { class: "muted" }, "No schema."));
  }
  return h(
    "div",
    { class: "schema" },
    h("h4", {}, title, " ", h("span", { class: "type" }, typeText(schema, schema))),
    properties(schema, schema, 0),
    h("details", {}, h("summary", {}, "JSON Schema"), h("pre", { class: "code" }, pretty(schema))),
  );
}
