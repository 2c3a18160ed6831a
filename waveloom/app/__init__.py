"""The verbs of the ``waveloom`` command, one module per verb group.

Every module here exposes ``add_parser(subparsers)``, which declares its verbs (and sets
``run`` as each verb's default), and ``run(args) -> int | None``, which carries one out.
:mod:`waveloom.cli` only loops over them. Shared flags and their validation live in
:mod:`waveloom.app.common`. Modules import only light things at the top (no torch), so
``waveloom --help`` stays instant; the work is imported inside ``run``.

This is the top of the layering: app modules may import anything below (train, evaluate,
listening, sampling, models, data, audio, config, ...), and nothing below imports them.
"""
