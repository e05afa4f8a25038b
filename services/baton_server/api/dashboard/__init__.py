"""The dashboard: a web app served by the API process, from files shipped in the package.

`pages` serves the app's HTML and assets (and the API docs page, from local copies of Swagger
UI), signs people in and out; `data` adds the few read models the pages need that the REST API
does not have (a histogram, a run's graph, summaries of deployments and pools, an event's
firings, dead letters); `queries` holds their SQL. Every page reads and changes through `/api`,
with the same key checks as the CLI (see `api.session`).
"""
