// The portal's API reference: Swagger UI (served from node_modules) over the unified API part of the
// OpenAPI document; "Try it out" sends the key typed on the page as a Bearer token.
(() => {
  const keyField = document.getElementById("try-key");
  fetch("/docs/openapi.json")
    .then((answer) => answer.json())
    .then((spec) => {
      spec.paths = Object.fromEntries(Object.entries(spec.paths).filter(([path]) => path.startsWith("/v1/")));
      window.SwaggerUIBundle({
        spec,
        dom_id: "#reference",
        deepLinking: false,
        tryItOutEnabled: false,
        defaultModelsExpandDepth: -1, // the schemas are shown with each operation
        requestInterceptor: (request) => {
          const key = keyField.value.trim();
          if (key) request.headers.Authorization = `Bearer ${key}`;
          return request;
        },
      });
    });
})();
