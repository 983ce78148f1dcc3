"""Pages and htmx fragments: the page (:mod:`.pages`), the scenario form (:mod:`.forms`),
share links and exports (:mod:`.exports`) and the request inspector (:mod:`.inspector`).

Each routing module has its own blueprint, registered by :func:`wsgiscope.app.create_app`.
"""
