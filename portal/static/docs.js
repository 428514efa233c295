// Swagger UI at /docs (portal/security_headers.py SwaggerPage): the OpenAPI document is read from its
// URL rather than inlined into a script, so the page's CSP allows no inline script.
(() => {
  const container = document.getElementById("swagger-container");
  window.SwaggerUIBundle({
    url: container.dataset.openapi,
    dom_id: "#swagger-container",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIStandalonePreset],
  });
})();
