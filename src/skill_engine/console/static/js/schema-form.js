// A form generated from a JSON Schema (strings, numbers, booleans, enums, arrays, nested objects, required
// fields, defaults, local $refs as pydantic writes them). What it cannot render becomes a JSON field.
import { h } from "./dom.js";

let counter = 0;
const nextId = () => `field-${++counter}`;

function resolve(schema, root, seen = new Set()) {
  if (!schema || typeof schema !== "object") return {};
  if (schema.$ref && typeof schema.$ref === "string" && schema.$ref.startsWith("#/") && !seen.has(schema.$ref)) {
    seen.add(schema.$ref);
    let target = root;
    for (const part of schema.$ref.slice(2).split("/")) target = target ? target[part.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined;
    const { $ref, ...rest } = schema;
    return resolve({ ...target, ...rest }, root, seen);
  }
  // Optional[X] (anyOf/oneOf with null): X, allowed to stay empty.
  for (const key of ["anyOf", "oneOf"]) {
    if (Array.isArray(schema[key])) {
      const options = schema[key].filter((s) => !(s && s.type === "null"));
      if (options.length === 1) {
        const { [key]: _, ...rest } = schema;
        return { ...resolve(options[0], root, seen), ...rest, nullable: options.length < schema[key].length };
      }
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length === 1) {
    const { allOf, ...rest } = schema;
    return { ...resolve(allOf[0], root, seen), ...rest };
  }
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((t) => t !== "null");
    if (types.length === 1) return { ...schema, type: types[0], nullable: true };
  }
  return schema;
}

function typeOf(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  if (schema.const !== undefined) return "const";
  if (schema.type) return schema.type;
  if (schema.properties) return "object";
  return "json";
}

function labelFor(name, schema, required) {
  const title = schema.title || name;
  return [title, required ? h("span", { class: "required", "aria-hidden": "true" }, " *") : null];
}

// Returns { element, read() } where read() yields the value or `undefined` for "leave out".
function field(name, rawSchema, root, required, initial) {
  const schema = resolve(rawSchema, root);
  const kind = typeOf(schema);
  const id = nextId();
  const start = initial !== undefined ? initial : schema.default;
  const help = schema.description ? h("small", { class: "help", id: `${id}-help` }, schema.description) : null;
  const describedBy = help ? `${id}-help` : undefined;

  if (kind === "object") {
    const required_ = new Set(schema.required || []);
    const children = Object.entries(schema.properties || {}).map(([key, sub]) => [
      key,
      field(key, sub, root, required_.has(key), start && typeof start === "object" ? start[key] : undefined),
    ]);
    const extra = schema.additionalProperties && !schema.properties ? field(`${name} (JSON)`, {}, root, required, start) : null;
    const element = h(
      "fieldset",
      { class: "object", "data-field": name },
      h("legend", {}, labelFor(name, schema, required)),
      help,
      children.map(([, child]) => child.element),
      extra && extra.element,
    );
    return {
      element,
      read() {
        if (extra) return extra.read();
        const value = {};
        for (const [key, child] of children) {
          const v = child.read();
          if (v !== undefined) value[key] = v;
        }
        if (!required && Object.keys(value).length === 0) return undefined;
        return value;
      },
    };
  }

  if (kind === "array" && schema.items && !Array.isArray(schema.items)) {
    const list = h("ol", { class: "array-items" });
    const items = [];
    const add = (value) => {
      const child = field(`${name} item`, schema.items, root, true, value);
      const entry = { child };
      const remove = h("button", { type: "button", class: "small", onclick: () => {
        items.splice(items.indexOf(entry), 1);
        entry.row.remove();
      } }, "Remove");
      entry.row = h("li", {}, child.element, remove);
      items.push(entry);
      list.append(entry.row);
    };
    for (const value of Array.isArray(start) ? start : []) add(value);
    const element = h(
      "fieldset",
      { class: "array", "data-field": name },
      h("legend", {}, labelFor(name, schema, required)),
      help,
      list,
      h("button", { type: "button", class: "small", onclick: () => add(undefined) }, `Add ${schema.items.title || "item"}`),
    );
    return {
      element,
      read() {
        const value = items.map((entry) => entry.child.read()).filter((v) => v !== undefined);
        if (!required && value.length === 0 && start === undefined) return undefined;
        return value;
      },
    };
  }

  let input;
  let read;
  if (kind === "enum" || kind === "const") {
    const options = kind === "const" ? [schema.const] : schema.enum;
    input = h("select", { id, "aria-describedby": describedBy },
      required ? null : h("option", { value: "" }, "(not set)"),
      options.map((option, index) => h("option", { value: String(index) }, typeof option === "string" ? option : JSON.stringify(option))));
    const chosen = options.findIndex((o) => JSON.stringify(o) === JSON.stringify(start));
    if (chosen >= 0) input.value = String(chosen);
    read = () => (input.value === "" ? undefined : options[Number(input.value)]);
  } else if (kind === "boolean") {
    input = h("input", { id, type: "checkbox", "aria-describedby": describedBy });
    input.checked = Boolean(start);
    read = () => (required || input.checked || start !== undefined ? input.checked : undefined);
  } else if (kind === "integer" || kind === "number") {
    input = h("input", { id, type: "number", step: kind === "integer" ? "1" : "any", "aria-describedby": describedBy });
    if (schema.minimum !== undefined) input.min = schema.minimum;
    if (schema.maximum !== undefined) input.max = schema.maximum;
    if (start !== undefined && start !== null) input.value = String(start);
    read = () => (input.value === "" ? undefined : Number(input.value));
  } else if (kind === "string") {
    const long = schema.format === "textarea" || (schema.maxLength || 0) > 200;
    input = long
      ? h("textarea", { id, rows: 3, "aria-describedby": describedBy })
      : h("input", { id, type: "text", "aria-describedby": describedBy });
    if (schema.format === "date") input.type = "date";
    if (start !== undefined && start !== null) input.value = String(start);
    read = () => (input.value === "" && !required ? undefined : input.value);
  } else {
    input = h("textarea", { id, rows: 3, class: "json", spellcheck: "false", "aria-describedby": describedBy });
    input.placeholder = "JSON";
    if (start !== undefined) input.value = JSON.stringify(start, null, 2);
    read = () => {
      if (input.value.trim() === "") return undefined;
      try {
        return JSON.parse(input.value);
      } catch (error) {
        throw new Error(`${schema.title || name}: ${error.message}`);
      }
    };
  }
  if (required && input.tagName !== "SELECT" && input.type !== "checkbox") input.required = true;
  if (required) input.setAttribute("aria-required", "true");
  input.name = name;
  const element = h(
    "div",
    { class: `field field-${kind}`, "data-field": name },
    h("label", { for: id }, labelFor(name, schema, required)),
    input,
    help,
  );
  return { element, read };
}

// A form for `schema`, or null when the schema is absent or its top level is not an object.
export function schemaForm(schema, initial) {
  if (!schema || typeof schema !== "object") return null;
  const top = resolve(schema, schema);
  if (typeOf(top) !== "object" || !top.properties) return null;
  const root = field(top.title || "input", top, schema, true, initial);
  return { element: root.element, read: () => root.read() || {} };
}
