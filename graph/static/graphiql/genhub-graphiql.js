// genhub's GraphiQL bootstrap: React, GraphiQL and the explorer plugin are served by genhub
// itself (graph/static/graphiql/vendor, pinned by scripts/vendor_graphiql.py); this file
// replaces the inline script of strawberry's page, so the page's CSP can forbid inline code.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("genhub-graphiql-config").textContent);

  // ?query=... is a GraphQL GET request, so a shared editor state travels as ?q= / ?variables=.
  const parameters = {};
  for (const [key, value] of new URLSearchParams(window.location.search)) {
    if (key === "q" || key === "variables") parameters[key] = value;
  }

  function updateURL(data) {
    Object.assign(parameters, data);
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(parameters)) {
      if (value) search.set(key, value);
    }
    const text = search.toString();
    history.replaceState(null, "", text ? "?" + text : window.location.pathname);
  }

  const fetchURL = new URL(window.location.pathname, window.location.origin).toString();
  const subscriptionURL = new URL(fetchURL);
  subscriptionURL.protocol = subscriptionURL.protocol === "https:" ? "wss:" : "ws:";

  const fetcher = GraphiQL.createFetcher({ url: fetchURL, subscriptionUrl: subscriptionURL.toString() });
  const explorer = GraphiQLPluginExplorer.explorerPlugin();

  function GenhubGraphiQL() {
    const [query, setQuery] = React.useState(parameters.q || config.exampleQuery);
    const [variables, setVariables] = React.useState(parameters.variables);
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorer],
      query: query,
      variables: variables,
      onEditQuery: (next) => {
        setQuery(next);
        updateURL({ q: next });
      },
      onEditVariables: (next) => {
        setVariables(next);
        updateURL({ variables: next });
      },
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      // The Authorization header stays in this browser's storage, never in the URL.
      shouldPersistHeaders: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(GenhubGraphiQL));
})();
