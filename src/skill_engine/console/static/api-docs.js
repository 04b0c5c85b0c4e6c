// /api-docs: Swagger UI from the engine's own copy (static/vendor/swagger-ui), no external requests.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: false,
});
