// Starts Swagger UI on /api/docs. A file, not an inline script, so that the page's
// Content-Security-Policy can forbid inline scripts.
(function () {
  var spec = document.getElementById("swagger-ui").getAttribute("data-spec-url");
  window.ui = SwaggerUIBundle({
    url: spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null
  });
})();
