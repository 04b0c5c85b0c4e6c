// The console's pages, in navigation order. A new page is one module under pages/ exporting
// `render(root, params)` (optionally returning a cleanup function) plus one line here.
export const pages = [
  { path: "catalogue", title: "Catalogue", module: "./pages/catalogue.js" },
  { path: "playground", title: "Playground", module: "./pages/playground.js" },
  { path: "executions", title: "Executions", module: "./pages/executions.js" },
  { path: "evaluations", title: "Evaluations", module: "./pages/evaluations.js" },
  { path: "health", title: "Health", module: "./pages/health.js" },
];
