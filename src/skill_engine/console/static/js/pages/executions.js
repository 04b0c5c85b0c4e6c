// Executions: the last recorded invocations (filter by namespace, skill, status) and, for one, the
// waterfall of its spans (load, compile, CSI calls with model and tokens, tool calls) and its log lines.
import { getJson } from "../api.js";
import { add, clear, errorBox, formatMs, formatTime, h, pretty } from "../dom.js";

const REFRESH_MS = 4000;

export async function render(root, params) {
  if (params[0]) return detail(root, params[0]);
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  const namespace = h("input", { id: "filter-namespace", type: "text", value: query.get("namespace") || "" });
  const skill = h("input", { id: "filter-skill", type: "text", value: query.get("skill") || "" });
  const status = h("select", { id: "filter-status" },
    ["", "ok", "logic_error", "runtime_error"].map((v) => h("option", { value: v }, v || "any")));
  status.value = query.get("status") || "";
  const table = h("div", { class: "executions" });
  add(root, 
    h("h1", {}, "Executions"),
    h("form", { class: "toolbar filters", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("label", { for: "filter-namespace" }, "Namespace"), namespace,
      h("label", { for: "filter-skill" }, "Skill"), skill,
      h("label", { for: "filter-status" }, "Status"), status,
      h("button", { type: "submit" }, "Filter")),
    table,
  );
  for (const input of [namespace, skill, status]) input.addEventListener("change", load);
  async function load() {
    const search = new URLSearchParams();
    if (namespace.value) search.set("namespace", namespace.value.trim());
    if (skill.value) search.set("skill", skill.value.trim());
    if (status.value) search.set("status", status.value);
    try {
      const data = await getJson(`/v1/console/executions?${search}`);
      clear(table);
      if (!data.recording) {
        table.append(h("p", { class: "muted" }, "This engine records no executions (CONSOLE_EXECUTIONS=0)."));
        return;
      }
      if (data.workers > 1) {
        add(table, h("p", { class: "muted" }, `This engine runs ${data.workers} worker processes; these are the executions of worker ${data.worker}, the one that answered.`));
      }
      if (!data.executions.length) {
        table.append(h("p", { class: "muted" }, "No executions recorded yet. Run a skill in the playground."));
        return;
      }
      table.append(
        h("table", {},
          h("caption", { class: "muted" }, `Newest first, the last ${data.capacity} are kept in memory`),
          h("thead", {}, h("tr", {}, ["Started", "Skill", "Status", "Duration", "Spans", "Error"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, data.executions.map((e) =>
            h("tr", { class: `status-${e.status}` },
              h("td", {}, formatTime(e.started_at)),
              h("td", {}, h("a", { href: `#/executions/${e.trace_id}` }, `${e.namespace}/${e.skill}`)),
              h("td", {}, h("span", { class: `badge status ${e.status}` }, e.status)),
              h("td", { class: "num" }, formatMs(e.duration_ms)),
              h("td", { class: "num" }, e.spans),
              h("td", { class: "error-text" }, e.error || ""))))),
      );
    } catch (error) {
      add(clear(table), errorBox(error));
    }
  }
  await load();
  const timer = setInterval(() => {
    if (!root.contains(document.activeElement) || document.activeElement === document.body) load();
  }, REFRESH_MS);
  return () => clearInterval(timer);
}

function label(span) {
  const a = span.attributes;
  const parts = [];
  if (a["gen_ai.request.model"]) parts.push(a["gen_ai.request.model"]);
  if (a["gen_ai.usage.input_tokens"] !== undefined || a["gen_ai.usage.output_tokens"] !== undefined) {
    parts.push(`${a["gen_ai.usage.input_tokens"] ?? "?"} in / ${a["gen_ai.usage.output_tokens"] ?? "?"} out tokens`);
  }
  if (a["gen_ai.tool.name"]) parts.push(a["gen_ai.tool.name"]);
  if (a.skill && span.name !== "skill_execution") parts.push(a.skill);
  if (a["http.response.status_code"]) parts.push(`HTTP ${a["http.response.status_code"]}`);
  return parts.join(" · ");
}

async function detail(root, traceId) {
  add(root, h("p", {}, h("a", { href: "#/executions" }, "← All executions")));
  let data;
  try {
    data = await getJson(`/v1/console/executions/${encodeURIComponent(traceId)}`);
  } catch (error) {
    add(root, errorBox(error));
    return;
  }
  add(root, 
    h("h1", {}, `${data.namespace}/${data.skill}`),
    h("p", {}, h("span", { class: `badge status ${data.status}` }, data.status), ` ${formatMs(data.duration_ms)} · started ${formatTime(data.started_at)} · trace `, h("code", {}, data.trace_id)),
    data.error ? h("p", { class: "error", role: "alert" }, data.error) : null,
  );
  const total = Math.max(data.duration_ms, 0.001);
  const depth = new Map();
  for (const span of data.spans) {
    depth.set(span.span_id, span.parent_id && depth.has(span.parent_id) ? depth.get(span.parent_id) + 1 : 0);
  }
  const rows = data.spans.map((span) => {
    const left = (span.start_ms / total) * 100;
    const width = Math.max((span.duration_ms / total) * 100, 0.3);
    return h("li", { class: `span status-${span.status}`, "data-span": span.name },
      h("details", {},
        h("summary", {},
          h("span", { class: "span-name", style: `padding-left: ${depth.get(span.span_id) * 1.1}rem` }, span.name,
            h("span", { class: "muted" }, ` ${label(span)}`)),
          h("span", { class: "track", "aria-hidden": "true" },
            h("span", { class: "bar", style: `left: ${left}%; width: ${width}%` })),
          h("span", { class: "num" }, formatMs(span.duration_ms))),
        h("pre", { class: "code" }, pretty({ attributes: span.attributes, events: span.events, kind: span.kind, status: span.status }))));
  });
  add(root, h("h2", {}, "Spans"), h("ol", { class: "waterfall", "aria-label": "Span waterfall" }, rows));
  if (data.dropped_spans) add(root, h("p", { class: "muted" }, `${data.dropped_spans} more spans not kept.`));
  add(root, h("h2", {}, "Log lines"));
  if (!data.logs.length) add(root, h("p", { class: "muted" }, "The skill wrote nothing to stdout or stderr."));
  else add(root, h("pre", { class: "code logs", id: "logs" }, data.logs.map((l) => `${new Date(l.time * 1000).toISOString()} ${l.stream || l.level} ${l.message}`).join("\n")));
}
