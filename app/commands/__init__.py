"""The sub-commands of ``wsgiscope``.

Each module exposes ``add_parser(subparsers)``, which registers its sub-command(s) with a
``func(args) -> int`` default; the entry module :mod:`wsgiscope.app.cli` collects them.
A sub-command never imports the entry module: what they share (:class:`CliError`, reading
a scenario argument, the output formats) lives in :mod:`.common`.
"""
