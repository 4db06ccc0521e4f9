// The API reference page: Swagger UI over /api/v1/openapi.json, started from this file so
// the page needs no inline script (CSP).
(function () {
  const root = document.getElementById('swagger-ui');
  if (!root || typeof window.SwaggerUIBundle !== 'function') return;
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    // "Try it out" sends real requests with the token the reader enters.
    persistAuthorization: false,
  });
})();
