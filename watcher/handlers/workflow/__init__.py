"""The ``workflow`` handler (the Sparkflows / Fire Insights file watcher): ``handler`` makes the
request and polls the run, ``options`` reads the route's options, ``templates`` fills placeholders
and reads values out of responses, ``session`` is the process-wide HTTP session."""
