"""The ``container`` handler (the SCAR / OSCAR model): ``handler`` runs a unit as a job, ``options``
reads the route's options, ``contract`` is what the job's script is told, ``workspace`` and
``outputs`` hold the job's folder and read what it wrote, ``transfer`` moves objects, and
``runtimes`` decides where the script runs (Docker, a host process)."""
