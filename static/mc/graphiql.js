// GraphiQL on /graphql: the signed-in session's queries, with the explorer plugin.
// A file, not an inline script, so the pages' Content-Security-Policy holds here too.
(function () {
  "use strict";
  const root = document.getElementById("graphiql");
  const url = new URL(root.dataset.endpoint, window.location.origin).toString();
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  const headers = csrf ? { "X-CSRFToken": decodeURIComponent(csrf.split("=")[1]) } : {};
  const fetcher = GraphiQL.createFetcher({ url: url, headers: headers });
  const query = new URLSearchParams(window.location.search).get("query") ||
    "# Mission Control's GraphQL API: threads, logs, servers, permissions, directives.\n" +
    "# Ctrl-Enter runs the query; the Docs panel lists every field.\n" +
    "{\n  threads(pagination: {limit: 5}) {\n    results { id status userInput startedAt }\n  }\n}\n";

  function App() {
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: query,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      isHeadersEditorEnabled: true,
    });
  }
  root.textContent = "";
  ReactDOM.createRoot(root).render(React.createElement(App));
})();
