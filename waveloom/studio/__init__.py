"""``waveloom studio``: a local web app over every model (issue 28).

:mod:`~waveloom.studio.server` serves the page and the API on 127.0.0.1,
:mod:`~waveloom.studio.jobs` runs the work in one worker process with live progress and
cancellation, :mod:`~waveloom.studio.tasks` says which model plays in which panel and checks
requests, :mod:`~waveloom.studio.runners` calls the verbs' own functions.
"""
